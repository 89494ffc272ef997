// Database: reported query timings: volume, slow share, p95 trend, distribution, the
// fingerprints (pg_stat_statements style), N+1 findings, index advice with copyable SQL,
// unused and duplicate indexes, and the select cache.

import { h, panel, pageHead, card, cardGrid, loading, error, empty, show, table, pagedTable, ratingChip, codeBlock } from "/ui.js";
import { reportSeries, histogram } from "/charts.js";
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

const SVG = "http://www.w3.org/2000/svg";

/** A tiny line of `values` (oldest first), for a table cell. */
function sparkline(values, label) {
  const w = 80;
  const ht = 18;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${ht}`);
  svg.setAttribute("width", String(w));
  svg.setAttribute("height", String(ht));
  svg.setAttribute("class", "spark");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  if (values.length) {
    const max = Math.max(...values, 1);
    const step = values.length > 1 ? w / (values.length - 1) : 0;
    const pts = values.map((v, i) => `${(i * step).toFixed(1)},${(ht - 1 - (v / max) * (ht - 2)).toFixed(1)}`);
    if (pts.length === 1) pts.push(`${w},${pts[0].split(",")[1]}`);
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", pts.join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", "currentColor");
    line.setAttribute("stroke-width", "1.5");
    svg.append(line);
  }
  return svg;
}

const bytes = (n) => (typeof n !== "number" ? f.DASH : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : n >= 1024 ? `${Math.round(n / 1024)} kB` : `${n} B`);
const sql = (text) => h("code", { class: "sql clamp", title: text }, text);

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
  const prints = panel("Queries by fingerprint", { wide: true, note: "literals replaced by $n; most total time first" });
  const nplus = panel("N+1 queries", { wide: true, note: "one query 5+ times in a request, over 50 ms" });
  const advice = panel("Index advice", { wide: true, note: "slow and frequent queries, checked against your PostgreSQL" });
  const unused = panel("Unused and duplicate indexes", { wide: true });
  const cache = cardGrid(["Select cache entries", "Cache hits", "Cache misses", "Cache hit rate"], "cards-4 compact");

  root.append(
    pageHead("Database", `Query timings your apps reported, ${ctx.rangeLabel}.`),
    totals.el, volume.el, h("div", { class: "grid-2" }, p95.el, dist.el), prints.el, nplus.el, advice.el,
    unused.el, cache.el, slowest.el, newest.el,
  );

  function renderPrints(d) {
    const list = d.queries || [];
    if (!list.length) return empty(prints.body);
    const thr = d.slow_rules ? d.slow_rules.threshold_ms : Infinity;
    show(prints.body, table([
      { label: "Query", value: (q) => sql(q.query), cls: "sql-cell" },
      { label: "Calls", num: true, value: (q) => f.count(q.calls) },
      { label: "Trend", value: (q) => sparkline((q.series || []).map((p) => p.calls), `calls over time of ${q.fingerprint}`) },
      { label: "Total", num: true, value: (q) => f.ms(q.total_ms) },
      { label: "Share", num: true, value: (q) => f.pct(q.share) },
      { label: "Mean", num: true, value: (q) => h("span", { class: q.mean_ms > thr ? "rated rate-poor" : null }, f.ms(q.mean_ms)) },
      { label: "p95", num: true, value: (q) => f.ms(q.p95_ms) },
      { label: "Rows", num: true, value: (q) => f.count(q.rows) },
      { label: "Slow", value: (q) => [
        q.slow_by_threshold ? ratingChip("poor", `> ${f.ms(thr)}`) : null,
        q.slow_by_pghero ? ratingChip("needs-improvement", "PgHero") : null,
        q.slow ? h("span", { class: "muted" }, ` ${f.pct(q.slow_rate)} slow`) : null,
      ] },
    ], list, { caption: "Queries by fingerprint" }));
  }

  function renderNplus(d) {
    const list = d.queries || [];
    if (!list.length) return empty(nplus.body, "No N+1 loops found in this range");
    show(nplus.body, table([
      { label: "Query", value: (q) => sql(q.query), cls: "sql-cell" },
      { label: "Requests", num: true, value: (q) => f.count(q.requests) },
      { label: "Calls", num: true, value: (q) => f.count(q.calls) },
      { label: "Time lost", num: true, value: (q) => f.ms(q.lost_ms) },
      { label: "Routes", value: (q) => (q.routes || []).join(", ") },
      { label: "Source", mono: true, value: (q) => (q.sources || []).join(", ") },
    ], list, { caption: "N+1 queries" }));
  }

  function renderAdvice(d) {
    const list = (d.advice || []).filter((a) => a.statement || a.covered_by || !d.database);
    const items = list.map((a) => h("div", { class: "advice" },
      h("p", {}, sql(a.query)),
      h("p", { class: "muted" }, `${f.count(a.calls)} calls, mean ${f.ms(a.mean_ms)}. ${a.reason}`),
      a.statement ? codeBlock(a.statement, "Index to create") : null,
      a.explain_before ? h("details", {}, h("summary", {}, "EXPLAIN"), h("pre", { class: "code" }, a.explain_before)) : null,
      a.explain_after ? h("details", {}, h("summary", {}, "EXPLAIN with the index (hypothetical)"), h("pre", { class: "code" }, a.explain_after)) : null));
    if (d.database_error) items.unshift(h("p", { class: "muted" }, `database.url: ${d.database_error}`));
    if (!items.length) return empty(advice.body, d.database ? "No index to suggest in this range" : "No slow queries in this range");
    show(advice.body, ...items);
  }

  function renderUnused(d) {
    if (!d.database) return empty(unused.body, "Set database.url to your PostgreSQL to check its indexes");
    const parts = [];
    const u = d.unused_indexes || [];
    const dup = d.duplicate_indexes || [];
    const seq = d.seq_scan_tables || [];
    if (u.length) parts.push(table([
      { label: "Unused index", mono: true, value: (i) => i.name },
      { label: "Table", mono: true, value: (i) => `${i.schema}.${i.table}` },
      { label: "Size", num: true, value: (i) => bytes(i.size_bytes) },
      { label: "Definition", value: (i) => sql(i.definition), cls: "sql-cell" },
    ], u, { caption: "Unused indexes" }));
    if (dup.length) parts.push(table([
      { label: "Duplicate index", mono: true, value: (i) => i.index },
      { label: "Covered by", mono: true, value: (i) => `${i.covered_by} (${i.covered_by_columns.join(", ")})` },
      { label: "Size", num: true, value: (i) => bytes(i.size_bytes) },
      { label: "Drop", value: (i) => codeBlock(i.statement, "Statement to drop it") },
    ], dup, { caption: "Duplicate indexes" }));
    if (seq.length) parts.push(table([
      { label: "Table read whole", mono: true, value: (t) => t.table },
      { label: "Rows", num: true, value: (t) => f.count(t.rows) },
      { label: "Seq scans", num: true, value: (t) => f.count(t.seq_scan) },
      { label: "Index scans", num: true, value: (t) => f.count(t.idx_scan) },
    ], seq, { caption: "Tables with many sequential scans" }));
    if (!parts.length) return empty(unused.body, "No unused or duplicate indexes");
    show(unused.body, ...parts);
  }

  function renderCache(c) {
    cache.show([
      card({ label: "Select cache entries", value: f.count(c.entries), sub: c.enabled ? `of ${f.count(c.capacity)}` : "cache off" }),
      card({ label: "Cache hits", value: f.count(c.hits), sub: "since start" }),
      card({ label: "Cache misses", value: f.count(c.misses), sub: "since start" }),
      card({ label: "Cache hit rate", value: f.pct(c.hit_rate), sub: "POST /api/db/select" }),
    ]);
  }

  async function loadExtras(quiet) {
    if (!quiet) {
      [prints, nplus, advice, unused].forEach((p) => loading(p.body, "table"));
      cache.loading();
    }
    const jobs = [
      [ctx.get("/api/analytics/database-performance/queries", { limit: 25 }), renderPrints, prints],
      [ctx.get("/api/analytics/database-performance/n-plus-one", { limit: 25 }), renderNplus, nplus],
      [ctx.get("/api/analytics/database-performance/index-advice", {}), (d) => { renderAdvice(d); renderUnused(d); }, advice],
      [ctx.get("/api/db/cache", {}), renderCache, null],
    ];
    await Promise.all(jobs.map(async ([p, render, target]) => {
      try {
        render(await p);
      } catch (e) {
        if (target) error(target.body, e);
        else cache.error(e);
      }
    }));
  }

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

    reportSeries(volume.body, d, {
      integer: true, label: "Queries and slow queries over time",
      series: [
        { key: "queries", label: "Queries", area: true, color: 0 },
        { key: "slow", label: "Slow", color: 4 },
      ],
    });
    const thr = t.slow_threshold;
    reportSeries(p95.body, d, {
      fill: "gap", format: f.ms, tick: f.msTick, height: 200, label: "Query p95 duration over time",
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
      const extras = loadExtras(quiet);
      try {
        render(await ctx.get("/api/analytics/database-performance", { limit: SAMPLE, offset: 0 }), quiet);
        await extras;
      } catch (e) {
        totals.error(e);
        [volume, p95, dist, slowest].forEach((p) => error(p.body, e));
        timings.error(e);
      }
    },
  };
}
