// Growth: active people and stickiness, a funnel builder, retention cohorts, feature
// adoption, where people come from, top events, and the newest events.

import { h, clear, panel, pageHead, card, cardGrid, loading, error, empty, pagedTable, props, table, segmented } from "/ui.js";
import { timeSeries, barList, funnel, heatmap } from "/charts.js";
import { request } from "/api.js";
import * as f from "/format.js";

const PAGE = 20;
const BREAKDOWNS = [
  ["routes", "Pages", "page views"], ["referrers", "Referrers", "page views"],
  ["utm_sources", "UTM source", "page views"], ["utm_mediums", "UTM medium", "page views"],
  ["utm_campaigns", "UTM campaign", "page views"], ["browsers", "Browsers", "events"],
  ["os", "Operating systems", "events"], ["devices", "Devices", "events"],
];
const WINDOWS = [["1h", "1 hour"], ["1d", "1 day"], ["7d", "7 days"], ["30d", "30 days"]];

const seconds = (s) => (s === null || s === undefined ? f.DASH : s < 90 ? `${Math.round(s)} s` : s < 5400 ? `${Math.round(s / 60)} min` : s < 172800 ? `${(s / 3600).toFixed(1)} h` : `${(s / 86400).toFixed(1)} d`);

export default function growth(root, ctx) {
  const totals = cardGrid(["Events", "People", "DAU", "MAU", "Stickiness"], "cards-5");
  const active = panel("Active people", { wide: true, note: "DAU, WAU (7 days) and MAU (30 days) per day" });
  const top = panel("Top events", { note: "events · people" });
  const adoption = panel("Feature adoption", { note: "share of active people" });
  adoption.el.id = "features";

  // Funnel builder: steps are event names, kept in the URL so a funnel can be shared.
  const stepsBox = h("div", { class: "funnel-steps" });
  const windowSel = h("select", { name: "window", "aria-label": "Conversion window" },
    WINDOWS.map(([v, t]) => h("option", { value: v, selected: v === (ctx.param("window") || "7d") }, t)));
  const breakdownIn = h("input", { name: "breakdown", placeholder: "breakdown property (optional)", value: ctx.param("breakdown") || "" });
  const addBtn = h("button", { type: "button", class: "btn small", text: "+ Step" });
  const runBtn = h("button", { type: "submit", class: "btn small primary", text: "Run funnel" });
  const names = h("datalist", { id: "event-names" });
  const form = h("form", { class: "funnel-form" }, stepsBox, h("div", { class: "funnel-opts" }, addBtn, windowSel, breakdownIn, runBtn), names);
  const funnelOut = h("div", { class: "funnel-box" });
  const funnelTable = h("div", {});
  const builder = panel("Funnel builder", { wide: true, note: "ordered steps within the window from the first step" });
  builder.el.id = "funnel-builder";
  builder.body.append(form, funnelOut, funnelTable);

  let interval = ctx.param("interval") || "week";
  const intervalSeg = segmented("Interval", [["day", "Daily"], ["week", "Weekly"], ["month", "Monthly"]], interval, (v) => {
    interval = v;
    ctx.setParam("interval", v);
    loadRetention();
  });
  const retention = panel("Retention", { wide: true, note: "people who came back, by cohort", actions: intervalSeg });
  retention.el.id = "retention";
  const sources = panel("Where people come from", { wide: true, note: ctx.rangeLabel });
  sources.el.id = "breakdowns";
  const funnels = panel("Conversion funnels", { wide: true, note: "from analytics.conversion, steps in the order first seen" });
  funnels.el.id = "funnels";
  const rows = pagedTable({
    caption: "Newest events",
    columns: [
      { label: "Time", value: (r) => h("time", { datetime: r.event_time, title: `acted ${r.event_time}, received ${r.created_at}` }, f.when(r.event_time)) },
      { label: "Event", value: (r) => h("span", { class: "event-name" }, r.event) },
      { label: "Properties", value: (r) => props(r.properties), cls: "props" },
      { label: "Route", value: (r) => r.route, mono: true },
      { label: "Person", value: (r) => r.visitor_id && h("span", { class: "mono", title: r.visitor_id }, f.short(r.visitor_id, 12)) },
    ],
    fetchPage: (offset) => ctx.get("/api/analytics/events", { limit: PAGE, offset }),
  });
  const newest = panel("Newest events", { wide: true });
  newest.body.append(rows.el);

  root.append(
    pageHead("Growth", `What people do in your product, ${ctx.rangeLabel}.`),
    totals.el, active.el, builder.el, retention.el,
    h("div", { class: "grid-2" }, adoption.el, top.el),
    sources.el, funnels.el, newest.el,
  );

  function addStep(value = "") {
    if (stepsBox.children.length >= 10) return;
    const input = h("input", { name: "step", list: "event-names", placeholder: `step ${stepsBox.children.length + 1} event`, value, required: true });
    const remove = h("button", { type: "button", class: "btn small icon", "aria-label": "Remove step", text: "×" });
    const row = h("div", { class: "funnel-step-in" }, h("span", { class: "step-no" }, stepsBox.children.length + 1), input, remove);
    remove.addEventListener("click", () => {
      if (stepsBox.children.length > 2) row.remove();
      [...stepsBox.children].forEach((r, i) => (r.querySelector(".step-no").textContent = i + 1));
    });
    stepsBox.append(row);
  }
  addBtn.addEventListener("click", () => addStep());
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    runFunnel(true);
  });

  const stepNames = () => [...stepsBox.querySelectorAll("input")].map((i) => i.value.trim()).filter(Boolean);

  async function runFunnel(remember) {
    const steps = stepNames();
    if (steps.length < 2) return void empty(funnelOut, "Pick at least two events");
    if (remember) {
      ctx.setParam("funnel", steps.join(","));
      ctx.setParam("window", windowSel.value);
      ctx.setParam("breakdown", breakdownIn.value.trim());
    }
    const body = { steps, window: windowSel.value, range: ctx.range };
    if (breakdownIn.value.trim()) body.breakdown = breakdownIn.value.trim();
    try {
      const d = await request("/api/analytics/funnels", { method: "POST", body, signal: ctx.signal });
      funnel(funnelOut, d.steps.map((s) => ({
        label: s.event, value: s.users,
        sub: s.step > 1 ? `median ${seconds(s.median_seconds_from_previous)} from step ${s.step - 1}` : null,
      })), { label: "Funnel", emptyText: "Nobody did the first step in this range" });
      const bd = d.breakdowns || [];
      clear(funnelTable, bd.length ? table(
        [{ label: d.breakdown, value: (r) => r.value ?? "(none)" },
          ...d.steps.map((s, i) => ({ label: `${i + 1}. ${s.event}`, num: true, value: (r) => `${f.count(r.steps[i].users)} · ${f.pct(r.steps[i].conversion_from_first)}` }))],
        bd, { caption: "Funnel by breakdown" }) : "");
    } catch (e) {
      error(funnelOut, e);
    }
  }

  async function loadRetention() {
    loading(retention.body, "table");
    try {
      const d = await ctx.get("/api/analytics/retention", { interval, periods: interval === "day" ? 14 : interval === "week" ? 8 : 6 });
      const unit = { day: "Day", week: "Week", month: "Month" }[interval];
      heatmap(retention.body, {
        columns: d.retention.map((_, k) => `${unit} ${k}`),
        rows: d.cohorts.map((c) => ({ label: f.day(c.start), sub: `${f.count(c.size)} people`, values: c.size ? c.rates : c.rates.map(() => null) })),
      }, { emptyText: "No cohorts in this period yet" });
      const churn = d.churn[1];
      if (churn !== null && churn !== undefined) {
        retention.body.append(h("p", { class: "muted small" }, `Churn after one ${interval}: `, h("b", {}, f.pct(churn)), ` · retained: ${f.pct(d.retention[1])}`));
      }
    } catch (e) {
      error(retention.body, e);
    }
  }

  function renderOverview(d) {
    const cur = (d.active && d.active.current) || {};
    totals.show([
      card({ label: "Events", value: f.count(d.totals.events), sub: `${f.count(d.totals.pageviews)} page views` }),
      card({ label: "People", value: f.count(d.totals.users), sub: "users and anonymous visitors" }),
      card({ label: "DAU", value: f.count(cur.dau), sub: `WAU ${f.count(cur.wau)}` }),
      card({ label: "MAU", value: f.count(cur.mau), sub: "last 30 days" }),
      card({ label: "Stickiness", value: f.pct(d.active.stickiness), sub: "mean DAU / MAU" }),
    ]);
    timeSeries(active.body, (d.active.series || []).map((r) => ({ ...r, t: r.t })), {
      series: [
        { key: "mau", label: "MAU", area: true, color: 0 },
        { key: "wau", label: "WAU", color: 1 },
        { key: "dau", label: "DAU", color: 2 },
      ],
      from: d.range.from, to: d.range.to, bucket: 86400, integer: true, label: "Active people per day",
    });
    const b = d.breakdowns || {};
    barList(top.body, b.events, { label: (i) => i.key, value: (i) => i.events, sub: (i) => `${f.count(i.users)} people` });
    clear(names, (b.events || []).map((e) => h("option", { value: e.key })));
    clear(sources.body, h("div", { class: "breakdowns" }, BREAKDOWNS.map(([key, title, what]) => {
      const list = b[key] || [];
      return h("section", { class: "breakdown" }, h("h3", {}, title),
        list.length ? table([
          { label: "", value: (r) => r.key, mono: key === "routes" },
          { label: "People", num: true, value: (r) => f.count(r.users) },
          { label: what === "page views" ? "Views" : "Events", num: true, value: (r) => f.count(r.events) },
        ], list, { caption: title }) : h("p", { class: "muted small" }, "None in this range"));
    })));
    if (!stepsBox.children.length) {
      const saved = (ctx.param("funnel") || "").split(",").filter(Boolean);
      const picked = saved.length >= 2 ? saved : (b.events || []).map((e) => e.key).filter((k) => k !== "pageview").slice(0, 3);
      (picked.length >= 2 ? picked : ["", ""]).forEach((s) => addStep(s));
      if (picked.length >= 2) runFunnel(false);
      else empty(funnelOut, "Pick at least two events");
    }
  }

  function renderAdoption(d) {
    barList(adoption.body, d.features, {
      label: (i) => i.feature, value: (i) => i.adoption, format: f.pct,
      sub: (i) => `${f.count(i.users)} people · ${i.uses_per_user.toFixed(1)} uses each`,
      emptyText: "No feature events yet: send a `feature` property or map events in analytics.features",
    });
  }

  function renderConversions(d) {
    const byFunnel = new Map();
    for (const st of d.steps || []) {
      if (!byFunnel.has(st.funnel)) byFunnel.set(st.funnel, []);
      byFunnel.get(st.funnel).push(st);
    }
    if (!byFunnel.size) return void empty(funnels.body, "No conversions in this range yet");
    clear(funnels.body, h("div", { class: "funnels" }, [...byFunnel].map(([name, steps]) => {
      const box = h("div", { class: "funnel-box" });
      funnel(box, steps.map((st) => ({ label: st.step, value: st.users, sub: `${f.count(st.conversions)} conversions` })), { label: `Funnel ${name}` });
      return h("section", { class: "funnel-card" }, h("h3", {}, name), box);
    })));
  }

  return {
    async load({ quiet }) {
      if (!quiet) {
        totals.loading();
        for (const p of [active, top, adoption]) loading(p.body);
        loading(sources.body, "table");
        loading(funnels.body, "table");
        rows.loading();
      }
      await Promise.all([
        ctx.get("/api/analytics/growth").then(renderOverview, (e) => {
          totals.error(e);
          for (const p of [active, top, sources]) error(p.body, e);
        }),
        ctx.get("/api/analytics/features").then(renderAdoption, (e) => error(adoption.body, e)),
        ctx.get("/api/analytics/events", { limit: PAGE, offset: 0 }).then((d) => rows.set(d, { quiet }), (e) => rows.error(e)),
        ctx.get("/api/analytics/conversions", { limit: 1, offset: 0 }).then(renderConversions, (e) => error(funnels.body, e)),
        quiet ? null : loadRetention(),
        quiet && stepsBox.children.length ? runFunnel(false) : null,
      ]);
    },
  };
}
