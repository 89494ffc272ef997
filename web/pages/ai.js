// AI: calls through the gateway or reported by apps: volume, cache, latency, errors, models.

import { h, panel, pageHead, card, cardGrid, loading, error, empty, show, table, pagedTable, ratingChip } from "/ui.js";
import { timeSeries } from "/charts.js";
import * as f from "/format.js";

const PAGE = 20;
const errorKind = (rate) => (rate > 0.05 ? "poor" : rate > 0.01 ? "needs-improvement" : "good");
const failed = (r) => r.success === false || (r.error !== null && r.error !== undefined && r.error !== "");

export default function ai(root, ctx) {
  const totals = cardGrid(["Calls", "Error rate", "Cache hit rate", "p75 latency", "Tokens"], "cards-5");
  const volume = panel("Calls, cache hits and errors", { wide: true, note: ctx.rangeLabel });
  const latency = panel("p75 latency");
  const models = panel("Models", { note: "busiest first" });
  const calls = pagedTable({
    caption: "Newest calls",
    rowClass: (r) => (failed(r) ? "row-error" : null),
    columns: [
      { label: "Time", value: (r) => h("time", { datetime: r.created_at, title: r.created_at }, f.when(r.created_at)) },
      { label: "Model", value: (r) => r.model, mono: true },
      { label: "Endpoint", value: (r) => r.endpoint, mono: true },
      { label: "Tokens", num: true, value: (r) => f.count(r.tokens) },
      { label: "Duration", num: true, value: (r) => f.ms(r.duration) },
      { label: "Cache", value: (r) => (r.cache_hit ? ratingChip("good", "hit") : h("span", { class: "muted" }, "miss")) },
      { label: "Result", value: (r) => (failed(r) ? h("span", { class: "error-text" }, r.error || "failed") : h("span", { class: "muted" }, "ok")) },
    ],
    fetchPage: (offset) => ctx.get("/api/analytics/ai-performance", { limit: PAGE, offset }),
  });
  const newest = panel("Newest calls", { wide: true, note: "errors highlighted" });
  newest.body.append(calls.el);

  root.append(
    pageHead("AI", `LLM calls, ${ctx.rangeLabel}: how many, how fast, how often the cache answered.`),
    totals.el, volume.el, h("div", { class: "grid-2" }, latency.el, models.el), newest.el,
  );

  function render(d, quiet) {
    const t = d.totals || {};
    const has = t.calls > 0;
    totals.show([
      card({ label: "Calls", value: f.count(t.calls), sub: has ? `${f.count(t.errors)} errors` : "No calls in this range yet" }),
      card({
        label: "Error rate", value: f.pct(t.error_rate),
        chip: has ? { kind: errorKind(t.error_rate), text: t.error_rate > 0.01 ? "check errors" : "healthy" } : null,
      }),
      card({ label: "Cache hit rate", value: f.pct(t.cache_hit_rate), sub: has ? `${f.count(t.cache_hits)} answered from cache` : null }),
      card({ label: "p75 latency", value: f.ms(t.p75_duration), sub: has ? `avg ${f.ms(t.avg_duration)} · p95 ${f.ms(t.p95_duration)}` : null }),
      card({ label: "Tokens", value: f.compact(t.tokens), sub: has ? `${f.count(t.avg_tokens)} per call` : null }),
    ]);

    const span = { from: d.range && d.range.from, to: d.range && d.range.to, bucket: d.bucket_seconds };
    timeSeries(volume.body, d.series, {
      ...span, integer: true, label: "AI calls, cache hits and errors over time",
      series: [
        { key: "calls", label: "Calls", area: true, color: 0 },
        { key: "cache_hits", label: "Cache hits", color: 1 },
        { key: "errors", label: "Errors", color: 4 },
      ],
    });
    timeSeries(latency.body, d.series, {
      ...span, fill: "gap", format: f.ms, tick: f.msTick, height: 200, label: "AI p75 latency over time",
      series: [{ key: "p75_duration", label: "p75 latency", area: true, color: 3 }],
    });

    const list = d.models || [];
    if (!list.length) empty(models.body);
    else {
      show(models.body, table([
        { label: "Model", value: (m) => m.model || "(unknown)", mono: true },
        { label: "Calls", num: true, value: (m) => f.count(m.calls) },
        { label: "Errors", num: true, value: (m) => h("span", { class: m.error_rate > 0.05 ? "error-text" : null }, f.pct(m.error_rate)) },
        { label: "Cache", num: true, value: (m) => f.pct(m.cache_hit_rate) },
        { label: "p75", num: true, value: (m) => f.ms(m.p75_duration) },
        { label: "Tokens", num: true, value: (m) => f.compact(m.tokens) },
      ], list, { caption: "Models" }));
    }
    calls.set(d, { quiet });
  }

  return {
    async load({ quiet }) {
      if (!quiet) {
        totals.loading();
        loading(volume.body);
        loading(latency.body);
        loading(models.body, "table");
        calls.loading();
      }
      try {
        render(await ctx.get("/api/analytics/ai-performance", { limit: PAGE, offset: 0 }), quiet);
      } catch (e) {
        totals.error(e);
        [volume, latency, models].forEach((p) => error(p.body, e));
        calls.error(e);
      }
    },
  };
}
