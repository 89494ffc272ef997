// Database: reported query timings: volume, slow share, p95 trend, distribution, slowest SQL.

import { h, panel, pageHead, card, cardGrid, loading, error, empty, show, table, pagedTable, ratingChip } from "/ui.js";
import { timeSeries, histogram } from "/charts.js";
import * as f from "/format.js";

const PAGE = 20;
const SAMPLE = 500; // newest timings fetched once: the first table page and the histogram
const EDGES = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000];
const slowKind = (rate) => (rate > 0.05 ? "poor" : rate > 0.01 ? "needs-improvement" : "good");

function bins(rows, slow) {
  const out = [];
  for (let i = 0; i <= EDGES.length; i++) {
    const lo = i ? EDGES[i - 1] : 0;
    const hi = EDGES[i];
    const e = (v) => (v >= 1000 ? v / 1000 : v);
    const unit = (hi ?? lo) > 500 ? " s" : " ms";
    const label = hi === undefined ? `≥ ${e(lo)}${unit}` : i === 0 ? `< ${hi} ms` : `${e(lo)}–${e(hi)}${hi > 500 ? " s" : ""}`;
    out.push({ lo, hi: hi ?? Infinity, label, value: 0, kind: isFinite(slow) && lo >= slow ? "poor" : null });
  }
  for (const r of rows) {
    if (typeof r.duration !== "number") continue;
    const b = out.find((x) => r.duration < x.hi) || out[out.length - 1];
    b.value++;
  }
  // Trim empty bins at both ends so the shape fills the width.
  let a = 0;
  let z = out.length - 1;
  while (a < z && !out[a].value) a++;
  while (z > a && !out[z].value) z--;
  return out.slice(a, z + 1);
}

export default function database(root, ctx) {
  let slowThreshold = Infinity;
  const totals = cardGrid(["Queries", "Slow queries", "p95 duration", "Cache hit rate"], "cards-4");
  const volume = panel("Queries and slow queries", { wide: true, note: ctx.rangeLabel });
  const p95 = panel("p95 duration");
  const dist = panel("Duration distribution", { note: `newest ${SAMPLE} queries` });
  const slowest = panel("Slowest queries", { wide: true, note: "by average duration" });
  const isSlow = (r) => typeof r.duration === "number" && r.duration > slowThreshold;
  const timings = pagedTable({
    caption: "Newest timings",
    rowClass: (r) => (isSlow(r) ? "row-warn" : null),
    columns: [
      { label: "Time", value: (r) => h("time", { datetime: r.event_time, title: `acted ${r.event_time}, received ${r.created_at}` }, f.when(r.event_time)) },
      { label: "Query", value: (r) => h("code", { class: "sql clamp", title: r.query }, r.query), cls: "sql-cell" },
      { label: "Duration", num: true, value: (r) => (isSlow(r) ? h("span", { class: "rated rate-poor" }, f.ms(r.duration)) : f.ms(r.duration)) },
      { label: "Rows", num: true, value: (r) => f.count(r.rows) },
      { label: "Cache", value: (r) => (r.cached ? ratingChip("good", "cached") : h("span", { class: "muted" }, "—")) },
    ],
    fetchPage: (offset) => ctx.get("/api/analytics/database-performance", { limit: PAGE, offset }),
  });
  const newest = panel("Newest timings", { wide: true, note: "slow ones highlighted" });
  newest.body.append(timings.el);

  root.append(
    pageHead("Database", `Query timings your apps reported, ${ctx.rangeLabel}.`),
    totals.el, volume.el, h("div", { class: "grid-2" }, p95.el, dist.el), slowest.el, newest.el,
  );

  function render(d, quiet) {
    const t = d.totals || {};
    const has = t.queries > 0;
    slowThreshold = typeof t.slow_threshold === "number" ? t.slow_threshold : Infinity;
    totals.show([
      card({ label: "Queries", value: f.count(t.queries), sub: has ? null : "No timings in this range yet" }),
      card({
        label: "Slow queries", value: f.count(t.slow),
        chip: has ? { kind: slowKind(t.slow_rate), text: `${f.pct(t.slow_rate)} slow` } : null,
        sub: `over ${f.ms(t.slow_threshold)}`,
      }),
      card({ label: "p95 duration", value: f.ms(t.p95_duration), sub: has ? `avg ${f.ms(t.avg_duration)} · p75 ${f.ms(t.p75_duration)}` : null }),
      card({ label: "Cache hit rate", value: f.pct(t.cache_hit_rate), sub: has ? `${f.count(t.cached)} from cache` : null }),
    ]);

    const span = { from: d.range && d.range.from, to: d.range && d.range.to, bucket: d.bucket_seconds };
    timeSeries(volume.body, d.series, {
      ...span, integer: true, label: "Queries and slow queries over time",
      series: [
        { key: "queries", label: "Queries", area: true, color: 0 },
        { key: "slow", label: "Slow", color: 4 },
      ],
    });
    const thr = t.slow_threshold;
    timeSeries(p95.body, d.series, {
      ...span, fill: "gap", format: f.ms, tick: f.msTick, height: 200, label: "Query p95 duration over time",
      series: [{ key: "p95_duration", label: "p95", area: true, color: 3 }],
      thresholds: typeof thr === "number" ? [{ value: thr, kind: "poor", label: `slow > ${f.ms(thr)}`, showAbove: thr / 2 }] : [],
    });
    const rows = d.rows || [];
    histogram(dist.body, bins(rows, slowThreshold), { label: `Durations of the newest ${rows.length} queries`, height: 200 });

    const list = d.slowest || [];
    if (!list.length) empty(slowest.body);
    else {
      show(slowest.body, table([
        { label: "Query", value: (q) => h("code", { class: "sql", title: q.query }, q.query), cls: "sql-cell" },
        { label: "Calls", num: true, value: (q) => f.count(q.calls) },
        { label: "Avg", num: true, value: (q) => h("span", { class: q.avg_duration > slowThreshold ? "rated rate-poor" : null }, f.ms(q.avg_duration)) },
        { label: "p75", num: true, value: (q) => f.ms(q.p75_duration) },
        { label: "Max", num: true, value: (q) => f.ms(q.max_duration) },
        { label: "Cache", num: true, value: (q) => f.pct(q.cache_hit_rate) },
      ], list, { caption: "Slowest queries" }));
    }

    const total = d.page ? d.page.total : rows.length;
    timings.set({ rows: rows.slice(0, PAGE), page: { limit: PAGE, offset: 0, total } }, { quiet });
  }

  return {
    async load({ quiet }) {
      if (!quiet) {
        totals.loading();
        [volume, p95, dist].forEach((p) => loading(p.body));
        loading(slowest.body, "table");
        timings.loading();
      }
      try {
        render(await ctx.get("/api/analytics/database-performance", { limit: SAMPLE, offset: 0 }), quiet);
      } catch (e) {
        totals.error(e);
        [volume, p95, dist, slowest].forEach((p) => error(p.body, e));
        timings.error(e);
      }
    },
  };
}
