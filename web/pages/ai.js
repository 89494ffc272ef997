// AI: calls through the gateway or reported by apps: volume, cache, latency, errors,
// tokens and cost per model and per user, and their trends.

import { h, panel, pageHead, card, cardGrid, loading, error, empty, show, table, pagedTable, ratingChip } from "/ui.js";
import { reportSeries } from "/charts.js";
import * as f from "/format.js";

const PAGE = 20;
const errorKind = (rate) => (rate > 0.05 ? "poor" : rate > 0.01 ? "needs-improvement" : "good");
const failed = (r) => r.success === false || (r.error !== null && r.error !== undefined && r.error !== "");
const usd = (v) => (v === null || v === undefined ? f.DASH : v === 0 ? "$0" : v < 0.01 ? `$${v.toFixed(4)}` : `$${v.toFixed(2)}`);

/** Columns shared by the model and user breakdowns. */
const groupColumns = [
  { label: "Calls", num: true, value: (m) => f.count(m.calls) },
  { label: "Errors", num: true, value: (m) => h("span", { class: m.error_rate > 0.05 ? "error-text" : null }, f.pct(m.error_rate)) },
  { label: "Cache", num: true, value: (m) => f.pct(m.cache_hit_rate) },
  { label: "p50", num: true, value: (m) => f.ms(m.p50_duration) },
  { label: "p95", num: true, value: (m) => f.ms(m.p95_duration) },
  { label: "Tokens/call", num: true, value: (m) => f.count(m.avg_tokens) },
  { label: "Cost", num: true, value: (m) => usd(m.cost) },
];

export default function ai(root, ctx) {
  const totals = cardGrid(["Calls", "Error rate", "Cache hit rate", "Latency", "Tokens per call", "Cost"]);
  const volume = panel("Calls, cache hits and errors", { wide: true, note: ctx.rangeLabel });
  const latency = panel("Latency");
  const spend = panel("Tokens and cost");
  const models = panel("Models", { wide: true, note: "busiest first" });
  const users = panel("Users", { wide: true, note: "most calls first" });
  const calls = pagedTable({
    caption: "Newest calls",
    rowClass: (r) => (failed(r) ? "row-error" : null),
    columns: [
      { label: "Time", value: (r) => h("time", { datetime: r.event_time, title: `acted ${r.event_time}, received ${r.created_at}` }, f.when(r.event_time)) },
      { label: "Model", value: (r) => r.model, mono: true },
      { label: "Provider", value: (r) => (r.demo ? ratingChip("needs-improvement", "demo") : r.provider || f.DASH) },
      { label: "User", value: (r) => r.user_id || f.DASH, mono: true },
      { label: "Tokens", num: true, value: (r) => f.count(r.tokens) },
      { label: "Duration", num: true, value: (r) => f.ms(r.duration) },
      { label: "Cost", num: true, value: (r) => usd(r.cost) },
      { label: "Cache", value: (r) => (r.cache_hit ? ratingChip("good", "hit") : h("span", { class: "muted" }, "miss")) },
      { label: "Result", value: (r) => (failed(r) ? h("span", { class: "error-text" }, r.error || "failed") : h("span", { class: "muted" }, "ok")) },
    ],
    fetchPage: (offset) => ctx.get("/api/analytics/ai-performance", { limit: PAGE, offset }),
  });
  const newest = panel("Newest calls", { wide: true, note: "errors highlighted" });
  newest.body.append(calls.el);

  root.append(
    pageHead("AI", `LLM calls, ${ctx.rangeLabel}: how many, how fast, how often the cache answered, what they cost.`),
    totals.el, volume.el, h("div", { class: "grid-2" }, latency.el, spend.el), models.el, users.el, newest.el,
  );

  function render(d, quiet) {
    const t = d.totals || {};
    const has = t.calls > 0;
    totals.show([
      card({ label: "Calls", value: f.count(t.calls), sub: has ? `${f.count(t.errors)} errors${t.demo_calls ? ` · ${f.count(t.demo_calls)} demo` : ""}` : "No calls in this range yet" }),
      card({
        label: "Error rate", value: f.pct(t.error_rate),
        chip: has ? { kind: errorKind(t.error_rate), text: t.error_rate > 0.01 ? "check errors" : "healthy" } : null,
      }),
      card({ label: "Cache hit rate", value: f.pct(t.cache_hit_rate), sub: has ? `${f.count(t.cache_hits)} answered from cache` : null }),
      card({ label: "Latency p50", value: f.ms(t.p50_duration), sub: has ? `p95 ${f.ms(t.p95_duration)}${t.p50_ttft != null ? ` · first byte p50 ${f.ms(t.p50_ttft)}` : ""}` : null }),
      card({ label: "Tokens per call", value: f.count(t.avg_tokens), sub: has ? `${f.compact(t.tokens)} in total${t.tokens_saved ? ` · ${f.compact(t.tokens_saved)} saved` : ""}` : null }),
      card({ label: "Cost", value: usd(t.cost), sub: has ? `${f.compact(t.prompt_tokens)} in · ${f.compact(t.completion_tokens)} out` : null }),
    ]);

    reportSeries(volume.body, d, {
      integer: true, label: "AI calls, cache hits and errors over time",
      series: [
        { key: "calls", label: "Calls", area: true, color: 0 },
        { key: "cache_hits", label: "Cache hits", color: 1 },
        { key: "errors", label: "Errors", color: 4 },
      ],
    });
    reportSeries(latency.body, d, {
      fill: "gap", format: f.ms, tick: f.msTick, height: 200, label: "AI latency over time",
      series: [
        { key: "p50_duration", label: "p50", area: true, color: 3 },
        { key: "p95_duration", label: "p95", color: 4 },
      ],
    });
    reportSeries(spend.body, d, {
      format: usd, height: 200, label: "AI cost over time",
      series: [{ key: "cost", label: "Cost (USD)", area: true, color: 2 }],
    });

    const list = d.models || [];
    if (!list.length) empty(models.body);
    else {
      show(models.body, table([
        { label: "Model", value: (m) => m.model || "(unknown)", mono: true },
        { label: "Provider", value: (m) => m.provider || f.DASH },
        ...groupColumns,
      ], list, { caption: "Models" }));
    }
    const people = d.users || [];
    if (!people.length) empty(users.body, "No calls named a user in this range");
    else show(users.body, table([{ label: "User", value: (u) => u.user, mono: true }, ...groupColumns], people, { caption: "Users" }));
    calls.set(d, { quiet });
  }

  return {
    async load({ quiet }) {
      if (!quiet) {
        totals.loading();
        loading(volume.body);
        loading(latency.body);
        loading(spend.body);
        loading(models.body, "table");
        loading(users.body, "table");
        calls.loading();
      }
      try {
        render(await ctx.get("/api/analytics/ai-performance", { limit: PAGE, offset: 0 }), quiet);
      } catch (e) {
        totals.error(e);
        [volume, latency, spend, models, users].forEach((p) => error(p.body, e));
        calls.error(e);
      }
    },
  };
}
