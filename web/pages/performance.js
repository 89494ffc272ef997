// Performance: real-user Core Web Vitals, p75 first, with thresholds, trend, routes and samples.

import { h, panel, pageHead, card, cardGrid, loading, error, show, empty, table, pagedTable, segmented } from "/ui.js";
import { timeSeries } from "/charts.js";
import * as f from "/format.js";

const METRICS = ["lcp", "inp", "cls", "fcp", "ttfb", "fid"];
const CHARTED = ["lcp", "inp", "cls"]; // the series carries these three
const PAGE = 20;

export default function performance(root, ctx) {
  let metric = CHARTED.includes(ctx.param("metric")) ? ctx.param("metric") : "lcp";
  let last = null;

  const totals = cardGrid(["Samples", "Sessions", "Users", "Routes"], "cards-4 compact");
  const vitals = cardGrid(METRICS.map((m) => f.VITALS[m].label), "cards-3 vitals");
  const tabs = segmented("Metric", CHARTED.map((m) => [m, f.VITALS[m].label]), metric, (m) => {
    metric = m;
    ctx.setParam("metric", m === "lcp" ? null : m);
    drawChart();
  });
  const chart = panel("p75 over time", { wide: true, actions: tabs });
  const routes = panel("Routes", { wide: true, note: "p75 per route, busiest first" });

  const cellRated = (m, vitalsInfo) => (r) => {
    const v = r[m];
    if (v === null || v === undefined) return null;
    const th = vitalsInfo && vitalsInfo[m] && vitalsInfo[m].thresholds;
    return h("span", { class: `rated rate-${f.rate(v, th) || "none"}` }, f.vital(m, v));
  };
  const th = () => (last && last.vitals) || {};
  const samples = pagedTable({
    caption: "Newest samples",
    columns: [
      { label: "Time", value: (r) => h("time", { datetime: r.created_at, title: r.created_at }, f.when(r.created_at)) },
      { label: "Route", value: (r) => r.route, mono: true },
      ...["lcp", "inp", "cls", "fcp", "ttfb"].map((m) => ({ label: f.VITALS[m].label, num: true, value: (r) => cellRated(m, th())(r) })),
      { label: "Connection", value: (r) => r.connection },
      { label: "Session", value: (r) => r.session_id && h("span", { class: "mono", title: r.session_id }, f.short(r.session_id, 10)) },
    ],
    fetchPage: (offset) => ctx.get("/api/analytics/performance", { limit: PAGE, offset }),
  });
  const newest = panel("Newest samples", { wide: true });
  newest.body.append(samples.el);

  root.append(
    pageHead("Performance", `Core Web Vitals from real visits, ${ctx.rangeLabel}. p75: three visits in four are at least this fast.`),
    totals.el, vitals.el, chart.el, routes.el, newest.el,
  );

  function drawChart() {
    if (!last) return;
    const info = (last.vitals || {})[metric] || {};
    const t = info.thresholds;
    const meta = f.VITALS[metric];
    timeSeries(chart.body, last.series, {
      series: [{ key: metric, label: `${meta.label} p75`, area: true, color: 0 }],
      from: last.range && last.range.from, to: last.range && last.range.to, bucket: last.bucket_seconds,
      fill: "gap", format: (v) => f.vital(metric, v), tick: f.vitalTick(metric),
      thresholds: t ? [
        { value: t[0], kind: "good", label: `good ≤ ${f.vital(metric, t[0])}` },
        { value: t[1], kind: "poor", label: `poor > ${f.vital(metric, t[1])}`, showAbove: t[0] },
      ] : [],
      label: `${meta.name} p75 over time`,
    });
  }

  function render(d, quiet) {
    last = d;
    const t = d.totals || {};
    totals.show([
      card({ label: "Samples", value: f.count(t.samples) }),
      card({ label: "Sessions", value: f.count(t.sessions) }),
      card({ label: "Users", value: f.count(t.users) }),
      card({ label: "Routes", value: f.count(t.routes) }),
    ]);

    vitals.show(METRICS.map((m) => {
      const v = (d.vitals || {})[m] || {};
      const meta = f.VITALS[m];
      const meter = h("span", { class: "meter", title: `${f.pct(v.good_share)} of samples rated good` }, h("span", { class: "meter-fill" }));
      meter.firstChild.style.width = `${Math.round((v.good_share || 0) * 100)}%`;
      return card({
        label: meta.label, title: `${meta.name}: ${meta.about}`,
        value: f.vital(m, v.p75),
        chip: v.rating ? { kind: v.rating, text: f.RATING_LABEL[v.rating] } : null,
        sub: [
          v.count ? h("span", { class: "good-share" }, meter, `${f.pct(v.good_share)} good`) : "No samples in this range",
          h("span", { class: "th" }, f.thresholdText(m, v.thresholds)),
          v.count ? h("span", { class: "th" }, `${f.count(v.count)} samples`) : null,
        ],
      });
    }));

    drawChart();

    const list = [...(d.routes || [])].sort((a, b) => (b.samples || 0) - (a.samples || 0));
    if (!list.length) empty(routes.body);
    else {
      const cols = ["lcp", "inp", "cls", "fcp", "ttfb", "fid"].filter((m) => m !== "fid" || list.some((r) => r.fid !== null && r.fid !== undefined));
      show(routes.body, table([
        { label: "Route", value: (r) => r.route || "(none)", mono: true },
        { label: "Samples", num: true, value: (r) => f.count(r.samples) },
        ...cols.map((m) => ({ label: f.VITALS[m].label, num: true, value: cellRated(m, d.vitals) })),
      ], list, { caption: "Routes" }));
    }

    samples.set(d, { quiet });
  }

  return {
    async load({ quiet }) {
      if (!quiet) {
        totals.loading();
        vitals.loading();
        loading(chart.body);
        loading(routes.body, "table");
        samples.loading();
      }
      try {
        render(await ctx.get("/api/analytics/performance", { limit: PAGE, offset: 0 }), quiet);
      } catch (e) {
        totals.error(e);
        vitals.error(e);
        error(chart.body, e);
        error(routes.body, e);
        samples.error(e);
      }
    },
  };
}
