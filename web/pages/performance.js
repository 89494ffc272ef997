// Performance: real-user Core Web Vitals at a chosen percentile (p75 first), per device,
// with the 0-100 score, ratings, trend, distribution, routes ranked by opportunity, samples,
// and the top JavaScript and server errors.

import { h, panel, pageHead, card, cardGrid, loading, error, show, empty, table, pagedTable, segmented } from "/ui.js";
import { reportSeries, histogram } from "/charts.js";
import * as f from "/format.js";

const METRICS = ["lcp", "inp", "cls", "fcp", "ttfb", "fid"];
const CHARTED = ["lcp", "inp", "cls", "fcp", "ttfb"];
const STATS = ["p50", "p75", "p90", "p95", "p99"];
const DEVICES = [["", "All"], ["mobile", "Mobile"], ["tablet", "Tablet"], ["desktop", "Desktop"]];
const PAGE = 20;

/** Score bands as Lighthouse colours them: 90+ good, 50+ needs improvement. */
const scoreKind = (s) => (s === null || s === undefined ? null : s >= 90 ? "good" : s >= 50 ? "needs-improvement" : "poor");
const score = (s) => (s === null || s === undefined ? f.DASH : String(Math.round(s)));

export default function performance(root, ctx) {
  const pick = (name, list, dflt) => (list.includes(ctx.param(name)) ? ctx.param(name) : dflt);
  let metric = pick("metric", CHARTED, "lcp");
  let stat = pick("stat", STATS, "p75");
  let device = pick("device", DEVICES.map((d) => d[0]), "");
  let last = null;
  let reload = () => {};

  const query = (extra = {}) => ({ stat, ...(device ? { device } : {}), ...extra });
  const head = pageHead("Performance", "");
  const setSub = () => {
    head.querySelector("p")?.remove();
    head.append(h("p", { class: "muted" },
      `Core Web Vitals from real visits, ${ctx.rangeLabel}${device ? `, ${device}` : ""}. ${stat}: ${stat === "p75" ? "three visits in four" : `${stat.slice(1)}% of visits`} are at least this fast.`));
  };
  setSub();
  const controls = h("div", { class: "controls" },
    segmented("Percentile", STATS.map((s) => [s, s]), stat, (s) => {
      stat = s;
      ctx.setParam("stat", s === "p75" ? null : s);
      reload();
    }),
    segmented("Device", DEVICES, device, (d) => {
      device = d;
      ctx.setParam("device", d || null);
      reload();
    }));

  const totals = cardGrid(["Score", "Samples", "Sessions", "Routes"], "cards-4 compact");
  const vitals = cardGrid(METRICS.map((m) => f.VITALS[m].label), "cards-3 vitals");
  const tabs = segmented("Metric", CHARTED.map((m) => [m, f.VITALS[m].label]), metric, (m) => {
    metric = m;
    ctx.setParam("metric", m === "lcp" ? null : m);
    drawChart();
    loadHistogram();
  });
  const chart = panel("Trend", { wide: true, actions: tabs });
  const dist = panel("Distribution", { wide: true, note: "samples per bin, coloured by rating" });
  const routes = panel("Routes by opportunity", { wide: true, note: "site-score points gained if the route × device scored 100" });

  const cellRated = (m, info) => (r) => {
    const v = r[m];
    if (v === null || v === undefined) return null;
    const th = info && info[m] && info[m].thresholds;
    return h("span", { class: `rated rate-${f.rate(v, th) || "none"}` }, f.vital(m, v));
  };
  const th = () => (last && last.vitals) || {};
  const samples = pagedTable({
    caption: "Newest samples",
    columns: [
      { label: "Time", value: (r) => h("time", { datetime: r.created_at, title: r.created_at }, f.when(r.created_at)) },
      { label: "Route", value: (r) => r.route && h("span", { title: r.path || r.route }, r.route), mono: true },
      { label: "Device", value: (r) => r.device },
      ...CHARTED.map((m) => ({ label: f.VITALS[m].label, num: true, value: (r) => cellRated(m, th())(r) })),
      { label: "Connection", value: (r) => r.connection },
    ],
    fetchPage: (offset) => ctx.get("/api/analytics/performance", query({ limit: PAGE, offset })),
  });
  const newest = panel("Newest samples", { wide: true, note: "newest report of each page view or metric" });
  newest.body.append(samples.el);

  const errors = panel("Top errors", { wide: true, note: "JavaScript errors gs.js reports, and 5xx answers of this server and its AI gateway" });

  root.append(head, controls, totals.el, vitals.el, chart.el, dist.el, routes.el, errors.el, newest.el);

  async function loadErrors() {
    try {
      const d = await ctx.get("/api/analytics/errors", { limit: 10 });
      const rate = d.error_rate === null || d.error_rate === undefined ? f.DASH : `${d.error_rate.toFixed(2)}%`;
      const summary = h("p", { class: "muted small" },
        `${f.count(d.js_errors)} JavaScript errors over ${f.count(d.page_views)} page views (${rate} per view) · ${f.count(d.server_errors)} server errors`);
      if (!(d.top || []).length) return show(errors.body, summary, h("p", { class: "muted" }, "No errors in this range."));
      show(errors.body, summary, table([
        { label: "Error", value: (e) => h("span", { class: "clamp-2", title: e.stack || e.message }, e.message), cls: "err-msg" },
        { label: "Kind", value: (e) => (e.kind === "js" ? "JavaScript" : `server ${e.status || ""}`) },
        { label: "Where", value: (e) => (e.source ? `${e.source.replace(/^https?:\/\/[^/]+/, "")}${e.line ? `:${e.line}` : ""}` : null), mono: true },
        { label: "Routes", value: (e) => e.routes, mono: true },
        { label: "Count", num: true, value: (e) => f.count(e.count) },
        { label: "Sessions", num: true, value: (e) => f.count(e.sessions) },
        { label: "Last seen", value: (e) => h("time", { datetime: e.last_seen, title: e.last_seen }, f.when(e.last_seen)) },
      ], d.top, { caption: "Top errors" }));
    } catch (e) {
      error(errors.body, e);
    }
  }

  function drawChart() {
    if (!last) return;
    const info = (last.vitals || {})[metric] || {};
    const t = info.thresholds;
    const meta = f.VITALS[metric];
    reportSeries(chart.body, last, {
      series: [{ key: metric, label: `${meta.label} ${stat}`, area: true, color: 0 }],
      fill: "gap", format: (v) => f.vital(metric, v), tick: f.vitalTick(metric),
      thresholds: t ? [
        { value: t[0], kind: "good", label: `good ≤ ${f.vital(metric, t[0])}` },
        { value: t[1], kind: "poor", label: `poor > ${f.vital(metric, t[1])}`, showAbove: t[0] },
      ] : [],
      label: `${meta.name} ${stat} over time`,
    });
  }

  async function loadHistogram() {
    loading(dist.body);
    try {
      const d = await ctx.get("/api/analytics/performance/histogram", { metric, ...(device ? { device } : {}) });
      const bins = (d.bins || []).map((b) => ({
        label: b.to === null ? `>${f.vital(metric, b.from)}` : f.vital(metric, b.to),
        value: b.count,
        kind: b.rating,
      }));
      histogram(dist.body, bins, { label: `${f.VITALS[metric].name} distribution` });
    } catch (e) {
      error(dist.body, e);
    }
  }

  function render(d, quiet) {
    last = d;
    const t = d.totals || {};
    totals.show([
      card({ label: "Score", value: score(d.score), title: "0-100, log-normal per metric, weights LCP 30, INP 30, CLS 15, FCP 15, TTFB 10 (see README)",
        chip: scoreKind(d.score) ? { kind: scoreKind(d.score), text: f.RATING_LABEL[scoreKind(d.score)] } : null }),
      card({ label: "Samples", value: f.count(t.samples) }),
      card({ label: "Sessions", value: f.count(t.sessions) }),
      card({ label: "Routes", value: f.count(t.routes) }),
    ]);

    vitals.show(METRICS.map((m) => {
      const v = (d.vitals || {})[m] || {};
      const meta = f.VITALS[m];
      const meter = h("span", { class: "meter", title: `${f.pct(v.good_share)} good · ${f.pct(v.needs_improvement_share)} needs improvement · ${f.pct(v.poor_share)} poor` }, h("span", { class: "meter-fill" }));
      meter.firstChild.style.width = `${Math.round((v.good_share || 0) * 100)}%`;
      return card({
        label: `${meta.label} ${stat}`, title: `${meta.name}: ${meta.about}`,
        value: f.vital(m, v.value),
        chip: v.rating ? { kind: v.rating, text: f.RATING_LABEL[v.rating] } : null,
        sub: [
          v.count ? h("span", { class: "good-share" }, meter, `${f.pct(v.good_share)} good · ${f.pct(v.poor_share)} poor`) : "No samples in this range",
          h("span", { class: "th" }, f.thresholdText(m, v.thresholds)),
          v.count ? h("span", { class: "th" }, `${f.count(v.count)} samples`) : null,
        ],
      });
    }));

    drawChart();
    samples.set(d, { quiet });
  }

  function renderRoutes(g) {
    const list = g.groups || [];
    if (!list.length) return empty(routes.body);
    const info = th();
    show(routes.body, table([
      { label: "Route", value: (r) => r.route || "(none)", mono: true },
      { label: "Device", value: (r) => r.device },
      { label: "Views", num: true, value: (r) => f.count(r.views) },
      { label: "Score", num: true, value: (r) => r.score === null ? null : h("span", { class: `rated rate-${scoreKind(r.score)}` }, score(r.score)) },
      { label: "Gain", num: true, value: (r) => (r.opportunity === null ? null : `+${r.opportunity.toFixed(1)}`) },
      ...CHARTED.map((m) => ({ label: `${f.VITALS[m].label} ${stat}`, num: true, value: (r) => cellRated(m, info)({ [m]: r.vitals[m] && r.vitals[m].value }) })),
    ], list.slice(0, 30), { caption: "Routes by opportunity" }));
  }

  async function load({ quiet } = {}) {
    setSub();
    if (!quiet) {
      totals.loading();
      vitals.loading();
      loading(chart.body);
      loading(routes.body, "table");
      samples.loading();
    }
    if (!quiet) loading(errors.body, "table");
    const hist = loadHistogram();
    const errs = loadErrors();
    try {
      const [d, g] = await Promise.all([
        ctx.get("/api/analytics/performance", query({ limit: PAGE, offset: 0 })),
        ctx.get("/api/analytics/performance/routes", query()),
      ]);
      render(d, quiet);
      renderRoutes(g);
    } catch (e) {
      totals.error(e);
      vitals.error(e);
      error(chart.body, e);
      error(routes.body, e);
      samples.error(e);
    }
    await Promise.all([hist, errs]);
  }
  reload = () => load();

  return { load };
}
