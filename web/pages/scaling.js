// Scaling: the recommendation and its reason, CPU / memory / request charts with the target
// and the up/down thresholds, the instances reporting, the load forecast with its band,
// this host's capacity, and the settings as HPA / KEDA / compose snippets to copy.

import { h, clear, panel, pageHead, card, cardGrid, loading, error, empty, show, table, ratingChip, codeBlock } from "/ui.js";
import { reportSeries, timeSeries } from "/charts.js";
import * as f from "/format.js";

const ACTION = { scale_up: "Scale up", scale_down: "Scale down", hold: "Hold" };
const URGENCY = {
  urgent: ["poor", "Urgent"],
  normal: ["good", "Normal"],
  over_provisioned: ["needs-improvement", "Over-provisioned"],
};
const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

const pctv = (v) => (typeof v === "number" ? `${v.toFixed(v < 10 ? 1 : 0)}%` : f.DASH);
const pctTick = (v) => `${Math.round(v)}%`;
const rps = (v) => (typeof v === "number" ? `${v < 10 ? v.toFixed(1) : f.count(Math.round(v))}/s` : f.DASH);
const bytes = (v) => {
  if (typeof v !== "number") return f.DASH;
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let x = v;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${x.toFixed(x < 10 && i ? 1 : 0)} ${units[i]}`;
};

export default function scaling(root, ctx) {
  const top = cardGrid(["Instances reporting", "Recommendation", "Fleet CPU", "Fleet memory"], "cards-4");
  const why = panel("Why", { wide: true, note: "Kubernetes HPA algorithm" });
  const cpu = panel("CPU", { note: "percent of each instance's limit" });
  const mem = panel("Memory", { note: "percent of the limit" });
  const reqs = panel("Requests", { note: ctx.rangeLabel });
  const hist = panel("Recommended instances", { note: ctx.rangeLabel });
  const ahead = panel("Load forecast", { wide: true, note: "Holt-Winters, daily season, 95% band" });
  const capacity = cardGrid(["Disk full in", "Disk free", "Memory headroom"], "cards-3");
  const fleet = panel("Instances", { wide: true, note: `seen ${ctx.rangeLabel}` });
  const nameInput = h("input", {
    type: "text", value: ctx.param("name") || "app", spellcheck: "false", "aria-label": "Deployment or service name",
    class: "input small", size: 14, pattern: NAME_RE.source,
  });
  const apply = panel("Apply it", { wide: true, note: "the settings and the current recommendation", actions: h("label", { class: "inline" }, "Name ", nameInput) });

  root.append(
    pageHead("Scaling", `Instances, load and what to run next, ${ctx.rangeLabel}.`),
    top.el, why.el,
    h("div", { class: "grid-2" }, cpu.el, mem.el),
    h("div", { class: "grid-2" }, reqs.el, hist.el),
    ahead.el,
    h("section", { class: "group" }, h("header", { class: "group-head" }, h("h2", {}, "This host's capacity")), capacity.el),
    fleet.el, apply.el,
  );

  let limits = null;

  function renderRecommendation(r) {
    limits = r.limits;
    const inputs = r.inputs || [];
    const by = (m) => inputs.find((i) => i.metric === m);
    const c = by("cpu");
    const m = by("memory");
    const ok = r.state === "ok";
    const [uKind, uText] = URGENCY[r.urgency] || [null, null];
    top.show([
      card({ label: "Instances reporting", value: f.count(r.current_instances), sub: `${r.fleet === "host" ? "this host" : "app instances"}, seen in the last ${r.limits.stale_after_seconds} s` }),
      card({
        label: "Recommendation",
        value: ok ? f.count(r.desired_instances) : f.DASH,
        chip: ok ? { kind: r.action === "hold" ? "good" : r.urgency === "urgent" ? "poor" : "needs-improvement", text: ACTION[r.action] } : null,
        sub: ok ? `min ${r.limits.min_instances} · max ${r.limits.max_instances}` : r.state === "disabled" ? "recommendations are off" : "not enough data",
      }),
      card({
        label: "Fleet CPU", value: c ? pctv(c.value) : f.DASH,
        chip: uKind && c ? { kind: uKind, text: uText } : null,
        sub: `target ${pctv(r.limits.target_cpu)} · up ${pctv(r.limits.scale_up_threshold)} · down ${pctv(r.limits.scale_down_threshold)}`,
      }),
      card({ label: "Fleet memory", value: m ? pctv(m.value) : f.DASH, sub: r.limits.target_memory ? `target ${pctv(r.limits.target_memory)}` : "not a scaling metric" }),
    ]);
    const rows = inputs.map((i) => ({ ...i }));
    show(why.body,
      h("p", { class: "reason" }, r.reason),
      rows.length ? table([
        { label: "Metric", value: (i) => i.metric },
        { label: "Average", num: true, value: (i) => pctv(i.value) },
        { label: "Target", num: true, value: (i) => pctv(i.target) },
        { label: "Ratio", num: true, value: (i) => i.ratio.toFixed(2) },
        { label: "Reporting", num: true, value: (i) => f.count(i.reporting) },
        { label: "Asks for", num: true, value: (i) => (i.within_tolerance ? h("span", { class: "muted" }, `${i.desired} (within tolerance)`) : f.count(i.desired)) },
      ], rows, { caption: "Inputs of the recommendation" }) : null,
      r.stabilization && r.stabilization.held
        ? h("p", { class: "muted small" }, `Scale-down held: the highest recommendation of the last ${r.stabilization.window_seconds} s was ${r.stabilization.window_highest}.`)
        : null);
  }

  function renderSystem(d) {
    const lim = limits || {};
    const hasApps = (d.series || []).some((r) => typeof r.cpu === "number");
    const th = [
      { value: lim.scale_up_threshold, label: `scale up ${pctv(lim.scale_up_threshold)}`, kind: "poor" },
      { value: lim.target_cpu, label: `target ${pctv(lim.target_cpu)}`, kind: "mark" },
      { value: lim.scale_down_threshold, label: `scale down ${pctv(lim.scale_down_threshold)}`, kind: "good" },
    ];
    reportSeries(cpu.body, d, {
      fill: "gap", format: pctv, tick: pctTick, label: "CPU over time with target and thresholds", thresholds: th,
      series: [
        hasApps ? { key: "cpu", label: "Apps (avg)", area: true, color: 0 } : null,
        { key: "host_cpu", label: "This host", color: 1 },
      ].filter(Boolean),
    });
    reportSeries(mem.body, d, {
      fill: "gap", format: pctv, tick: pctTick, label: "Memory over time",
      thresholds: lim.target_memory ? [{ value: lim.target_memory, label: `target ${pctv(lim.target_memory)}`, kind: "mark" }] : [],
      series: [
        hasApps ? { key: "memory", label: "Apps (avg)", area: true, color: 0 } : null,
        { key: "host_memory", label: "This host", color: 1 },
      ].filter(Boolean),
    });
    reportSeries(reqs.body, d, {
      fill: "gap", format: rps, label: "Requests per second over time",
      series: [
        hasApps ? { key: "requests_per_second", label: "Apps", area: true, color: 0 } : null,
        { key: "host_requests_per_second", label: "growth-stack", color: 1 },
      ].filter(Boolean),
    });
    const list = d.instances || [];
    if (!list.length) empty(fleet.body, "No instance reported in this range. Apps send POST /api/analytics/system (see Get started).");
    else {
      show(fleet.body, table([
        { label: "Instance", value: (i) => h("code", {}, i.instance) },
        { label: "Source", value: (i) => (i.source === "host" ? "this host" : "app") },
        { label: "Last seen", value: (i) => h("time", { datetime: i.last_seen, title: i.last_seen }, f.when(i.last_seen)) },
        { label: "State", value: (i) => (i.fresh ? ratingChip("good", "reporting") : ratingChip("none", "stale")) },
        { label: "CPU", num: true, value: (i) => pctv(i.cpu) },
        { label: "Memory", num: true, value: (i) => pctv(i.memory) },
        { label: "Requests", num: true, value: (i) => rps(i.requests_per_second) },
        { label: "p95", num: true, value: (i) => f.ms(i.p95_latency) },
      ], list, { caption: "Instances", rowClass: (i) => (i.fresh ? null : "row-muted") }));
    }
  }

  function renderHistory(d) {
    reportSeries(hist.body, d, {
      fill: "gap", integer: true,
      label: "Running and recommended instances over time", emptyText: "No recommendation recorded in this range yet",
      series: [
        { key: "current_instances", label: "Running", color: 1 },
        { key: "desired_instances", label: "Recommended", color: 0 },
      ],
    });
  }

  function renderForecast(fc) {
    const rows = [
      ...(fc.actual || []).map((p) => ({ t: p.t, actual: p.value })),
      ...(fc.points || []).map((p) => ({ t: p.t, forecast: p.value, low: p.low, high: p.high })),
    ];
    if (fc.state !== "ok") {
      empty(ahead.body, `Not enough history for a forecast yet: it needs ${fc.needs_hours} hours of samples, there are ${fc.history_hours}.`);
    } else {
      const target = fc.target_cpu;
      const a = fc.ahead;
      clear(ahead.body,
        a ? h("p", { class: "reason" }, a.reason) : null,
        h("div", { class: "chart-slot" }));
      timeSeries(ahead.body.lastChild, rows, {
        bucket: 3600, fill: "gap", format: pctv, tick: pctTick,
        label: "Fleet load, last two days and forecast, in percent of one instance",
        band: { low: "low", high: "high", color: 0 },
        thresholds: [{ value: target, label: `1 instance at target ${pctv(target)}`, kind: "mark" }],
        series: [
          { key: "actual", label: "Load", color: 1 },
          { key: "forecast", label: "Forecast", color: 0, dash: true },
        ],
      });
    }
    const cap = fc.capacity || {};
    const days = cap.days_until_disk_full;
    capacity.show([
      card({
        label: "Disk full in", value: typeof days === "number" ? (days > 3650 ? "10+ years" : `${Math.round(days)} days`) : f.DASH,
        chip: typeof days === "number" && days < 14 ? { kind: days < 3 ? "poor" : "needs-improvement", text: "plan space" } : null,
        sub: typeof cap.disk_free_change_per_day === "number" ? `${bytes(Math.abs(cap.disk_free_change_per_day))}/day ${cap.disk_free_change_per_day < 0 ? "used" : "freed"}` : "free space is not shrinking",
      }),
      card({ label: "Disk free", value: bytes(cap.disk_free), sub: cap.disk_total ? `of ${bytes(cap.disk_total)} under the data dir` : "no host sample yet" }),
      card({
        label: "Memory headroom", value: pctv(cap.memory_headroom_percent),
        sub: typeof cap.memory_peak_percent === "number" ? `peak ${pctv(cap.memory_peak_percent)} in 7 days · limit ${bytes(cap.memory_limit)}` : "no host sample yet",
      }),
    ]);
  }

  async function loadManifests() {
    const name = nameInput.value.trim() || "app";
    if (!NAME_RE.test(name)) {
      nameInput.setAttribute("aria-invalid", "true");
      return;
    }
    nameInput.removeAttribute("aria-invalid");
    try {
      const m = await ctx.get("/api/scaling/manifests", { name });
      show(apply.body, h("div", { class: "grid-2 snippets" },
        h("div", {}, h("h3", {}, "Kubernetes HorizontalPodAutoscaler"), codeBlock(m.hpa, "HPA manifest")),
        h("div", {}, h("h3", {}, "KEDA ScaledObject"), codeBlock(m.keda, "KEDA manifest"))),
      h("h3", {}, "Docker Compose, now"), codeBlock(m.compose, "docker compose command"),
      h("h3", {}, "kubectl, now"), codeBlock(m.kubectl, "kubectl command"));
    } catch (e) {
      error(apply.body, e);
    }
  }
  nameInput.addEventListener("change", () => {
    ctx.setParam("name", nameInput.value.trim() === "app" ? null : nameInput.value.trim());
    loadManifests();
  });

  return {
    async load({ quiet }) {
      if (!quiet) {
        top.loading();
        capacity.loading();
        [why, cpu, mem, reqs, hist, ahead].forEach((p) => loading(p.body));
        loading(fleet.body, "table");
        loading(apply.body);
      }
      const jobs = [
        ctx.get("/api/scaling/recommendation").then(renderRecommendation, (e) => {
          top.error(e);
          error(why.body, e);
        }),
      ];
      await jobs[0];
      await Promise.all([
        ctx.get("/api/analytics/system", { limit: 1 }).then(renderSystem, (e) => [cpu, mem, reqs, fleet].forEach((p) => error(p.body, e))),
        ctx.get("/api/scaling/history", { limit: 1 }).then(renderHistory, (e) => error(hist.body, e)),
        ctx.get("/api/scaling/forecast").then(renderForecast, (e) => {
          error(ahead.body, e);
          capacity.error(e);
        }),
        loadManifests(),
      ]);
    },
  };
}
