// Growth: product events, top events, conversions over time and one funnel per funnel name.

import { h, clear, panel, pageHead, card, cardGrid, loading, error, empty, pagedTable, props } from "/ui.js";
import { timeSeries, barList, funnel } from "/charts.js";
import * as f from "/format.js";

const PAGE = 20;

export default function growth(root, ctx) {
  const totals = cardGrid(["Events", "Users", "Sessions", "Event types", "Conversions"], "cards-5");
  const events = panel("Events and users", { wide: true, note: ctx.rangeLabel });
  const top = panel("Top events", { note: "events · users" });
  const conv = panel("Conversions over time");
  const funnels = panel("Funnels", { wide: true, note: "unique users per step, in the order steps were first seen" });
  funnels.el.id = "funnels";
  const rows = pagedTable({
    caption: "Newest events",
    columns: [
      { label: "Time", value: (r) => h("time", { datetime: r.created_at, title: r.created_at }, f.when(r.created_at)) },
      { label: "Event", value: (r) => h("span", { class: "event-name" }, r.event) },
      { label: "Properties", value: (r) => props(r.properties), cls: "props" },
      { label: "Route", value: (r) => r.route, mono: true },
      { label: "User", value: (r) => r.user_id && h("span", { class: "mono", title: r.user_id }, f.short(r.user_id)) },
    ],
    fetchPage: (offset) => ctx.get("/api/analytics/events", { limit: PAGE, offset }),
  });
  const newest = panel("Newest events", { wide: true });
  newest.body.append(rows.el);

  root.append(
    pageHead("Growth", `What people do in your product, ${ctx.rangeLabel}.`),
    totals.el, events.el,
    h("div", { class: "grid-2" }, top.el, conv.el),
    funnels.el, newest.el,
  );
  let scrolled = false;

  function renderEvents(d, quiet) {
    const t = d.totals || {};
    const convCard = card({
      label: "Conversions", value: f.count(t.conversions), sub: "see funnels below",
      href: ctx.link("growth", { focus: "funnels" }),
    });
    convCard.addEventListener("click", (e) => {
      e.preventDefault();
      ctx.setParam("focus", "funnels");
      funnels.el.scrollIntoView({ behavior: "smooth" });
    });
    totals.show([
      card({ label: "Events", value: f.count(t.events) }),
      card({ label: "Users", value: f.count(t.users) }),
      card({ label: "Sessions", value: f.count(t.sessions) }),
      card({ label: "Event types", value: f.count(t.event_types) }),
      convCard,
    ]);
    timeSeries(events.body, d.series, {
      series: [
        { key: "events", label: "Events", area: true, color: 0 },
        { key: "users", label: "Users", color: 1 },
      ],
      from: d.range && d.range.from, to: d.range && d.range.to, bucket: d.bucket_seconds,
      integer: true, label: "Events and users over time",
    });
    barList(top.body, d.top_events, {
      label: (i) => i.event, value: (i) => i.count, sub: (i) => `${f.count(i.users)} users`,
    });
    rows.set(d, { quiet });
  }

  function renderConversions(d) {
    timeSeries(conv.body, d.series, {
      series: [{ key: "conversions", label: "Conversions", area: true, color: 2 }],
      from: d.range && d.range.from, to: d.range && d.range.to, bucket: d.bucket_seconds,
      integer: true, label: "Conversions over time", height: 200,
    });
    // Steps come ordered by funnel, then by when each step was first seen.
    const byFunnel = new Map();
    for (const st of d.steps || []) {
      if (!byFunnel.has(st.funnel)) byFunnel.set(st.funnel, []);
      byFunnel.get(st.funnel).push(st);
    }
    if (!byFunnel.size) return void empty(funnels.body, "No conversions in this range yet");
    clear(funnels.body, h("div", { class: "funnels" }, [...byFunnel].map(([name, steps]) => {
      const box = h("div", { class: "funnel-box" });
      funnel(box, steps.map((st) => ({
        label: st.step, value: st.users, sub: `${f.count(st.conversions)} conversions`,
      })), { label: `Funnel ${name}` });
      return h("section", { class: "funnel-card" }, h("h3", {}, name), box);
    })));
    if (!scrolled && ctx.param("focus") === "funnels") {
      scrolled = true;
      funnels.el.scrollIntoView();
    }
  }

  return {
    async load({ quiet }) {
      if (!quiet) {
        totals.loading();
        loading(events.body);
        loading(top.body, "table");
        loading(conv.body);
        loading(funnels.body, "table");
        rows.loading();
      }
      await Promise.all([
        ctx.get("/api/analytics/events", { limit: PAGE, offset: 0 }).then((d) => renderEvents(d, quiet), (e) => {
          totals.error(e);
          error(events.body, e);
          error(top.body, e);
          rows.error(e);
        }),
        ctx.get("/api/analytics/conversions", { limit: 1, offset: 0 }).then(renderConversions, (e) => {
          error(conv.body, e);
          error(funnels.body, e);
        }),
      ]);
    },
  };
}
