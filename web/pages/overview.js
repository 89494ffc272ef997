// Overview: the headline numbers of every part, each linking to the page that explains it,
// and the state of each part's alert rules.

import { h, clear, panel, pageHead, card, cardGrid, loading, error, emptyState } from "/ui.js";
import { reportSeries } from "/charts.js";
import * as f from "/format.js";

export default function overview(root, ctx) {
  const banner = h("div", { class: "banner-slot" });
  const scale = h("div", { class: "scale-slot" });
  const traffic = cardGrid(["Events", "Active users", "Conversions"], "cards-3");
  const chart = panel("Events and users", { wide: true, note: ctx.rangeLabel });
  const vitals = cardGrid(["LCP", "INP", "CLS"], "cards-3");
  const ai = cardGrid(["AI calls", "Cache hit rate", "AI p75 latency"], "cards-3");
  const db = cardGrid(["Slow queries", "Query p95", "Queries"], "cards-3");

  // One alert badge per card group, filled from /api/alerts/summary.
  const badges = { vitals: h("a", { class: "alert-badge" }), ai: h("a", { class: "alert-badge" }), database: h("a", { class: "alert-badge" }), growth: h("a", { class: "alert-badge" }) };
  const group = (title, href, grid, area) =>
    h("section", { class: "group" },
      h("header", { class: "group-head" }, h("h2", {}, title), badges[area], h("a", { href, class: "more" }, "Details →")),
      grid.el);

  function renderBadges(s) {
    for (const [area, el] of Object.entries(badges)) {
      const c = (s.cards || {})[area];
      el.href = ctx.link("alerts");
      if (!c) {
        el.hidden = true;
        continue;
      }
      el.hidden = false;
      const kind = c.firing ? "poor" : c.pending ? "needs-improvement" : c.state === "nodata" ? "none" : "good";
      el.className = `alert-badge chip chip-${kind}`;
      el.textContent = c.firing ? `${c.firing} firing` : c.pending ? `${c.pending} pending` : c.state === "nodata" ? "alerts: no data" : "alerts OK";
      el.title = `${c.rules} alert rules: ${c.firing} firing, ${c.pending} pending`;
    }
  }

  root.append(
    pageHead("Overview", `Everything at a glance, ${ctx.rangeLabel}.`),
    banner,
    scale,
    h("header", { class: "group-head" }, h("h2", {}, "Growth"), badges.growth),
    traffic.el,
    chart.el,
    h("div", { class: "groups" },
      group("Web vitals · p75", ctx.link("performance"), vitals, "vitals"),
      group("AI", ctx.link("ai"), ai, "ai"),
      group("Database", ctx.link("database"), db, "database")),
  );

  const grids = [traffic, vitals, ai, db];

  function render(d) {
    const ev = d.events || {};
    const v = d.vitals || {};
    const a = d.ai || {};
    const q = d.database || {};
    const none = "No data in this range yet";
    const growth = ctx.link("growth");

    const hasAny = ev.total || a.calls || q.queries || Object.values(v).some((m) => m && m.count);
    clear(banner, hasAny ? null : h("div", { class: "banner" }, emptyState()));

    traffic.show([
      card({ label: "Events", value: f.count(ev.total), sub: ev.total ? `${f.count(ev.sessions)} sessions` : none, href: growth }),
      card({
        label: "Active users", value: f.count(ev.users), href: growth,
        sub: ev.users ? `${(ev.total / ev.users).toFixed(1)} events per user` : none,
      }),
      card({
        label: "Conversions", value: f.count(ev.conversions), href: ctx.link("growth", { focus: "funnels" }),
        sub: ev.conversions ? "funnel steps reached" : none,
      }),
    ]);

    reportSeries(chart.body, d, {
      series: [
        { key: "events", label: "Events", area: true, color: 0 },
        { key: "users", label: "Users", color: 1 },
      ],
      integer: true, label: "Events and users over time",
    });

    vitals.show(["lcp", "inp", "cls"].map((m) => {
      const x = v[m] || {};
      const meta = f.VITALS[m];
      return card({
        label: meta.label, title: `${meta.name}: ${meta.about}. p75 over ${ctx.rangeLabel}.`,
        value: f.vital(m, x.p75),
        chip: x.rating ? { kind: x.rating, text: f.RATING_LABEL[x.rating] } : null,
        sub: x.count ? `${f.count(x.count)} samples` : none,
        href: ctx.link("performance", { metric: m }),
      });
    }));

    const aiHref = ctx.link("ai");
    const errKind = a.error_rate > 0.05 ? "poor" : a.error_rate > 0.01 ? "needs-improvement" : null;
    ai.show([
      card({
        label: "AI calls", value: f.count(a.calls), href: aiHref,
        chip: a.calls && errKind ? { kind: errKind, text: `${f.pct(a.error_rate)} errors` } : null,
        sub: a.calls ? (errKind ? null : `${f.pct(a.error_rate)} errors`) : none,
      }),
      card({
        label: "Cache hit rate", value: f.pct(a.cache_hit_rate), href: aiHref,
        sub: a.calls ? f.tokens(a.tokens) : none,
      }),
      card({ label: "AI p75 latency", value: f.ms(a.p75_duration), href: aiHref, sub: a.calls ? "per call" : none }),
    ]);

    const dbHref = ctx.link("database");
    const slowKind = q.slow_rate > 0.05 ? "poor" : q.slow_rate > 0.01 ? "needs-improvement" : q.queries ? "good" : null;
    db.show([
      card({
        label: "Slow queries", value: f.count(q.slow), href: dbHref,
        chip: slowKind ? { kind: slowKind, text: f.pct(q.slow_rate) } : null,
        sub: q.queries ? `over ${f.ms(q.slow_threshold)}` : none,
      }),
      card({ label: "Query p95", value: f.ms(q.p95_duration), href: dbHref, sub: q.queries ? "95% are faster" : none }),
      card({ label: "Queries", value: f.count(q.queries), href: dbHref, sub: q.queries ? "reported" : none }),
    ]);
  }

  // Only when the recommendation differs from what runs: the overview stays quiet otherwise.
  function renderScaling(r) {
    clear(scale, r && r.changes ? h("div", { class: "cards" }, card({
      label: "Scaling", value: `${r.current_instances} → ${r.desired_instances}`, unit: " instances",
      chip: { kind: r.urgency === "urgent" ? "poor" : "needs-improvement", text: r.action === "scale_up" ? "Scale up" : "Scale down" },
      sub: r.reason, href: ctx.link("scaling"),
    })) : null);
  }

  return {
    async load({ quiet }) {
      if (!quiet) {
        grids.forEach((g) => g.loading());
        loading(chart.body);
        clear(banner);
      }
      ctx.get("/api/alerts/summary").then(renderBadges, () => renderBadges({}));
      try {
        const d = await ctx.get("/api/overview");
        render(d);
        renderScaling(d.scaling);
      } catch (e) {
        grids.forEach((g) => g.error(e));
        error(chart.body, e);
      }
    },
  };
}
