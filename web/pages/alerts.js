// Alerts: what fires and what is pending now, the day's timeline of state changes, the
// rules (the guide's defaults and your own) with an editor that previews the measure over
// the last day against the threshold, silences, and the notifications sent.

import { request } from "/api.js";
import { h, clear, panel, pageHead, card, cardGrid, loading, error, show, empty, table, ratingChip } from "/ui.js";
import { timeSeries } from "/charts.js";
import * as f from "/format.js";

const STATE_CHIP = { firing: "poor", pending: "needs-improvement", nodata: "none", resolved: "good", inactive: "good" };
const STATE_TEXT = { firing: "Firing", pending: "Pending", nodata: "No data", resolved: "Resolved", inactive: "OK" };
const chip = (s) => ratingChip(STATE_CHIP[s] || "none", STATE_TEXT[s] || s);
const AREA = { vitals: "Performance", ai: "AI", database: "Database", growth: "Growth", storage: "Storage" };

function fmtValue(v, unit) {
  if (v === null || v === undefined) return f.DASH;
  const n = Math.abs(v) >= 100 ? Math.round(v).toLocaleString() : Math.abs(v) >= 1 ? v.toFixed(2).replace(/\.?0+$/, "") : v.toFixed(3).replace(/\.?0+$/, "");
  return unit === "%" ? `${n}%` : unit ? `${n} ${unit}` : n;
}

const dur = (s) => (s % 3600 === 0 && s >= 3600 ? `${s / 3600}h` : s % 60 === 0 && s >= 60 ? `${s / 60}m` : `${s}s`);
const labelText = (labels) => Object.entries(labels || {})
  .filter(([k]) => !["alertname", "severity", "measure", "rule_id"].includes(k))
  .map(([k, v]) => `${k}=${v}`).join(", ");

export default function alerts(root, ctx) {
  const post = (path, body, method = "POST") => request(path, { method, body });
  let data = null;
  let catalogue = [];
  let editing = null; // the rule id being edited, or "" for a new rule

  const totals = cardGrid(["Firing", "Pending", "No data", "Rules"], "cards-4 compact");
  const now = panel("Firing and pending now", { wide: true });
  const timeline = panel("Timeline", { wide: true, note: "state changes in the last 24 hours" });
  const newRule = h("button", { type: "button", class: "btn small", text: "New rule", on: { click: () => openEditor(null) } });
  const rules = panel("Rules", { wide: true, actions: newRule });
  const editor = panel("Rule editor", { wide: true, cls: "rule-editor" });
  editor.el.hidden = true;
  const silences = panel("Silences", { wide: true, note: "silenced alerts still show here; only their notifications stop" });
  const testBtn = h("button", { type: "button", class: "btn small", text: "Send test" });
  const sent = panel("Notifications", { wide: true, actions: testBtn });
  const head = pageHead("Alerts", "");
  root.append(head, totals.el, now.el, timeline.el, rules.el, editor.el, silences.el, sent.el);

  testBtn.addEventListener("click", async () => {
    testBtn.disabled = true;
    try {
      const r = await post("/api/alerts/test", {});
      testBtn.textContent = `Queued for ${r.queued.join(", ")}`;
      setTimeout(loadSent, 1500);
    } catch (e) {
      testBtn.textContent = e.message;
    } finally {
      setTimeout(() => { testBtn.disabled = false; testBtn.textContent = "Send test"; }, 4000);
    }
  });

  // ---- now ------------------------------------------------------------------------
  function renderNow() {
    const active = [];
    for (const r of data.rules) {
      for (const s of r.series) if (s.state === "firing" || s.state === "pending") active.push({ r, s });
    }
    if (!active.length) return empty(now.body, "Nothing is firing or pending.");
    show(now.body, table([
      { label: "State", value: ({ s }) => [chip(s.state), s.silenced ? h("span", { class: "chip chip-none", title: "notifications held back" }, "silenced") : null] },
      { label: "Alert", value: ({ r }) => h("strong", {}, r.name) },
      { label: "Where", value: ({ s }) => labelText(s.labels) || "all", mono: true },
      { label: "Value", num: true, value: ({ r, s }) => fmtValue(s.value, r.unit) },
      { label: "Condition", value: ({ r }) => r.description },
      { label: "Since", value: ({ s }) => f.when(s.firing_since || s.active_since) },
      { label: "", value: ({ r, s }) => s.silenced ? null : h("button", {
        type: "button", class: "btn small", text: "Silence 2h",
        on: { click: async () => { await post("/api/alerts/silences", { matchers: { alertname: r.name, ...(s.series && r.group_by ? { [r.group_by]: s.series } : {}) }, duration: "2h", comment: "from the dashboard" }); load({ quiet: true }); } },
      }) },
    ], active, { caption: "Active alerts" }));
  }

  // ---- timeline -------------------------------------------------------------------
  async function loadTimeline() {
    try {
      const hist = await ctx.get("/api/alerts/history", { range: "24h", limit: 1000 });
      const changes = (hist.changes || []).slice().reverse();
      if (!changes.length) return empty(timeline.body, "No state changes in the last 24 hours.");
      const to = Date.now();
      const from = to - 86400e3;
      const byKey = new Map();
      for (const c of changes) {
        const k = `${c.rule_id}\u0000${c.series}`;
        if (!byKey.has(k)) byKey.set(k, { rule: c.labels.alertname || c.rule_id, series: c.series, list: [] });
        byKey.get(k).list.push(c);
      }
      const rows = [...byKey.values()].slice(0, 30).map((row) => {
        const bar = h("div", { class: "tl-bar" });
        row.list.forEach((c, i) => {
          const start = Math.max(from, f.toMs(c.at));
          const end = i + 1 < row.list.length ? f.toMs(row.list[i + 1].at) : to;
          if (!["firing", "pending", "nodata"].includes(c.to_state) || end <= from) return;
          const seg = h("span", { class: `tl-seg tl-${c.to_state}`, title: `${STATE_TEXT[c.to_state]} from ${f.clock(start)}${i + 1 < row.list.length ? ` to ${f.clock(end)}` : " (now)"}` });
          seg.style.left = `${((start - from) / (to - from)) * 100}%`;
          seg.style.width = `${Math.max(0.4, ((end - start) / (to - from)) * 100)}%`;
          bar.append(seg);
        });
        return h("div", { class: "tl-row" }, h("span", { class: "tl-name mono", title: row.series }, row.series ? `${row.rule} · ${row.series}` : row.rule), bar);
      });
      const recent = table([
        { label: "Time", value: (c) => h("time", { datetime: c.at, title: c.at }, f.when(c.at)) },
        { label: "Alert", value: (c) => c.labels.alertname || c.rule_id },
        { label: "Where", value: (c) => labelText(c.labels) || "all", mono: true },
        { label: "Change", value: (c) => [chip(c.from_state), " → ", chip(c.to_state)] },
        { label: "Value", num: true, value: (c) => fmtValue(c.value) },
      ], (hist.changes || []).slice(0, 15), { caption: "Recent state changes" });
      show(timeline.body, h("div", { class: "tl" }, rows,
        h("div", { class: "tl-axis muted small" }, h("span", {}, f.clock(from)), h("span", {}, "now"))), recent);
    } catch (e) {
      error(timeline.body, e);
    }
  }

  // ---- rules ----------------------------------------------------------------------
  function renderRules() {
    show(rules.body, table([
      { label: "State", value: (r) => (r.enabled ? chip(r.state) : ratingChip("none", "Off")) },
      { label: "Rule", value: (r) => [h("strong", {}, r.name), h("div", { class: "muted small" }, r.description)] },
      { label: "Area", value: (r) => AREA[r.area] || r.area },
      { label: "Now", num: true, value: (r) => fmtValue(r.value, r.unit) },
      { label: "Window", value: (r) => dur(r.window) },
      { label: "For", value: (r) => (r.for === undefined ? `${dur(data.default_for || 0)}*` : dur(r.for)) },
      { label: "Source", value: (r) => (r.origin === "default" ? (r.edited ? "default (edited)" : "default") : r.origin) },
      { label: "", value: (r) => h("button", { type: "button", class: "btn small", text: r.origin === "config" ? "View" : "Edit", on: { click: () => openEditor(r) } }) },
    ], data.rules, { caption: "Alert rules" }));
  }

  // ---- editor ---------------------------------------------------------------------
  function field(label, control, hint) {
    return h("label", { class: "field" }, h("span", { class: "field-label" }, label), control, hint ? h("span", { class: "muted small" }, hint) : null);
  }
  function select(name, options, value) {
    return h("select", { name }, options.map(([v, t]) => h("option", { value: v, selected: String(v) === String(value ?? "") }, t)));
  }
  const input = (name, value, attrs = {}) => h("input", { name, value: value ?? "", ...attrs });

  function openEditor(rule) {
    editing = rule ? rule.id : "";
    editor.el.hidden = false;
    const r = rule || { name: "", measure: "lcp", window: 900, condition: "threshold", op: "gt", threshold: 4000, severity: "warning", enabled: true, filters: {}, labels: {}, channels: [] };
    const m = () => catalogue.find((c) => c.id === form.measure.value) || catalogue[0];
    const form = h("form", { class: "rule-form" });
    const readOnly = rule && rule.origin === "config";
    const aggSel = h("select", { name: "aggregation" });
    const groupSel = h("select", { name: "group_by" });
    const fillMeasure = () => {
      const c = m();
      aggSel.replaceChildren(...c.aggregations.map((a) => h("option", { value: a, selected: a === (r.aggregation || c.default_aggregation) }, a)));
      groupSel.replaceChildren(h("option", { value: "" }, "no split"), ...c.dimensions.map((d) => h("option", { value: d, selected: d === r.group_by }, `per ${d}`)));
      // Only the filters this measure's rows carry (the server refuses the others).
      for (const [d, el] of Object.entries(filterFields)) el.hidden = !c.dimensions.includes(d);
    };
    const filterFields = {
      route: field("Route filter", input("route", r.filters.route, { placeholder: "any" })),
      model: field("Model filter", input("model", r.filters.model, { placeholder: "any" })),
    };
    form.append(
      field("Name (alertname)", input("name", r.name, { required: true, maxlength: 256 })),
      field("Measure", select("measure", catalogue.map((c) => [c.id, `${AREA[c.area] || c.area}: ${c.label}${c.unit ? ` (${c.unit})` : ""}`]), r.measure)),
      field("Aggregation", aggSel),
      field("Series", groupSel),
      filterFields.route,
      filterFields.model,
      field("Condition", select("condition", [["threshold", "value compared with threshold"], ["decline", "decline vs one week earlier (%)"], ["anomaly", "outside the usual band"]], r.condition)),
      field("Comparison", select("op", [["gt", ">"], ["ge", "≥"], ["lt", "<"], ["le", "≤"]], r.op), "for anomalies: > above the band, < below"),
      field("Threshold", input("threshold", r.threshold, { type: "number", step: "any" })),
      field("Window", input("window", dur(r.window), { placeholder: "15m" })),
      field("For", input("for", r.for === undefined ? "" : dur(r.for), { placeholder: "default" })),
      field("Keep firing for", input("keep_firing_for", r.keep_firing_for ? dur(r.keep_firing_for) : "", { placeholder: "0" })),
      field("Severity", select("severity", [["info", "info"], ["warning", "warning"], ["critical", "critical"]], r.severity)),
      field("Channels", input("channels", (r.channels || []).join(", "), { placeholder: "all" })),
      field("Enabled", h("input", { name: "enabled", type: "checkbox", checked: r.enabled !== false })),
    );
    fillMeasure();
    form.measure.addEventListener("change", () => { r.aggregation = null; r.group_by = null; fillMeasure(); });
    const msg = h("p", { class: "error-text", role: "alert" });
    const chart = h("div", { class: "preview" });
    const spec = () => {
      const v = (n) => form[n].value.trim();
      const s = {
        name: v("name"), measure: v("measure"), aggregation: v("aggregation"), condition: v("condition"), op: v("op"),
        threshold: Number(v("threshold")), window: v("window") || "15m", severity: v("severity"), enabled: form.enabled.checked,
        filters: {}, labels: r.labels || {}, channels: v("channels") ? v("channels").split(",").map((x) => x.trim()).filter(Boolean) : [],
      };
      if (v("group_by")) s.group_by = v("group_by");
      for (const d of Object.keys(filterFields)) if (v(d) && !filterFields[d].hidden) s.filters[d] = v(d);
      if (v("for")) s.for = v("for");
      if (v("keep_firing_for")) s.keep_firing_for = v("keep_firing_for");
      if (r.summary) s.summary = r.summary;
      return s;
    };
    async function preview() {
      msg.textContent = "";
      loading(chart);
      try {
        const p = await post("/api/alerts/preview", spec());
        const agg = p.rule.aggregation || (catalogue.find((c) => c.id === p.rule.measure) || {}).default_aggregation;
        const key = { p50: "p50", p75: "p75", p95: "p95", max: "max", count: "n" }[agg] || "avg";
        const byT = new Map();
        for (const pt of p.points) {
          const t = pt.bucket_us / 1000;
          const row = byT.get(t) || { t, value: null };
          const v = pt[key];
          if (v !== null && v !== undefined) row.value = row.value === null ? v : Math.max(row.value, v);
          byT.set(t, row);
        }
        const to = Date.now();
        timeSeries(chart, [...byT.values()], {
          series: [{ key: "value", label: p.description, area: true, color: 0 }],
          from: to - 86400e3, to, bucket: p.bucket_seconds, fill: "gap",
          format: (x) => fmtValue(x, p.unit),
          thresholds: p.rule.condition === "threshold" ? [{ value: p.threshold, kind: "poor", label: `threshold ${fmtValue(p.threshold, p.unit)}` }] : [],
          label: `${p.description}, last 24 hours`, emptyText: "No data for this measure in the last day",
        });
      } catch (e) {
        clear(chart);
        msg.textContent = e.message;
      }
    }
    const buttons = h("div", { class: "form-actions" },
      h("button", { type: "button", class: "btn", text: "Preview", on: { click: preview } }),
      readOnly ? h("span", { class: "muted small" }, "Defined in the config file ([[alerts.rules]]): change it there.") :
        h("button", { type: "submit", class: "btn primary", text: rule ? "Save" : "Create" }),
      rule && !readOnly && (rule.origin === "api" || rule.edited) ? h("button", {
        type: "button", class: "btn", text: rule.origin === "api" ? "Delete" : "Reset to default",
        on: { click: async () => { try { await post(`/api/alerts/rules/${encodeURIComponent(rule.id)}`, undefined, "DELETE"); close(); load({ quiet: true }); } catch (e) { msg.textContent = e.message; } } },
      }) : null,
      h("button", { type: "button", class: "btn", text: "Close", on: { click: () => close() } }));
    form.append(buttons);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      msg.textContent = "";
      try {
        if (rule) await post(`/api/alerts/rules/${encodeURIComponent(rule.id)}`, spec(), "PUT");
        else await post("/api/alerts/rules", spec());
        close();
        load({ quiet: true });
      } catch (ex) {
        msg.textContent = ex.message;
      }
    });
    if (readOnly) for (const el of form.querySelectorAll("input, select")) el.disabled = true;
    clear(editor.body, form, msg, chart);
    editor.el.querySelector("h2").textContent = rule ? `Rule: ${rule.name}` : "New rule";
    editor.el.scrollIntoView({ behavior: "smooth", block: "start" });
    preview();
  }
  function close() {
    editing = null;
    editor.el.hidden = true;
    clear(editor.body);
  }

  // ---- silences -------------------------------------------------------------------
  function renderSilences(list) {
    const matchers = input("matchers", "", { placeholder: "alertname=SlowLCP, route=/checkout", required: true });
    const duration = input("duration", "2h", { size: 6 });
    const comment = input("comment", "", { placeholder: "why" });
    const msg = h("span", { class: "error-text small", role: "alert" });
    const form = h("form", { class: "inline-form" }, field("Matchers", matchers), field("For", duration), field("Comment", comment),
      h("button", { type: "submit", class: "btn primary", text: "Silence" }), msg);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const m = {};
      for (const part of matchers.value.split(",")) {
        const [k, ...v] = part.split("=");
        if (k && k.trim()) m[k.trim()] = v.join("=").trim();
      }
      try {
        await post("/api/alerts/silences", { matchers: m, duration: duration.value.trim(), comment: comment.value.trim() || undefined });
        load({ quiet: true });
      } catch (ex) {
        msg.textContent = ex.message;
      }
    });
    const rows = list.filter((s) => s.active).concat(list.filter((s) => !s.active).slice(0, 5));
    show(silences.body, form, rows.length ? table([
      { label: "", value: (s) => (s.active ? ratingChip("needs-improvement", "Active") : ratingChip("none", "Expired")) },
      { label: "Matchers", value: (s) => Object.entries(s.matchers).map(([k, v]) => `${k}=${v}`).join(", "), mono: true },
      { label: "Until", value: (s) => h("time", { datetime: s.ends_at, title: s.ends_at }, `${f.day(s.ends_at)} ${f.clock(s.ends_at)}`) },
      { label: "Comment", value: (s) => s.comment },
      { label: "", value: (s) => (s.active ? h("button", { type: "button", class: "btn small", text: "Expire", on: { click: async () => { await post(`/api/alerts/silences/${s.id}`, undefined, "DELETE"); load({ quiet: true }); } } }) : null) },
    ], rows, { caption: "Silences" }) : h("p", { class: "muted small" }, "No silences."));
  }

  // ---- notifications --------------------------------------------------------------
  async function loadSent() {
    try {
      const d = await ctx.get("/api/alerts/notifications", { limit: 20 });
      const list = d.notifications || [];
      const channels = (data && data.channels) || [];
      const note = channels.length ? `channels: ${channels.map((c) => `${c.name} (${c.kind})`).join(", ")}` : "no channel configured: set alerts.webhook_url (GROWTH_ALERTS_WEBHOOK_URL)";
      if (!list.length) return show(sent.body, h("p", { class: "muted small" }, note), h("p", { class: "muted" }, "Nothing sent yet."));
      show(sent.body, h("p", { class: "muted small" }, note), table([
        { label: "Queued", value: (n) => h("time", { datetime: n.created_at }, f.when(n.created_at)) },
        { label: "Channel", value: (n) => `${n.channel} (${n.kind})` },
        { label: "What", value: (n) => n.summary },
        { label: "Delivery", value: (n) => ratingChip(n.status === "sent" ? "good" : n.status === "failed" ? "poor" : "needs-improvement", n.status) },
        { label: "Attempts", num: true, value: (n) => n.attempts },
        { label: "Last error", value: (n) => n.last_error && h("span", { class: "clamp-2", title: n.last_error }, n.last_error) },
      ], list, { caption: "Notifications" }));
    } catch (e) {
      error(sent.body, e);
    }
  }

  async function load({ quiet } = {}) {
    if (!quiet) {
      totals.loading();
      loading(now.body, "table");
      loading(timeline.body);
      loading(rules.body, "table");
      loading(silences.body, "table");
      loading(sent.body, "table");
    }
    const side = [loadTimeline()];
    try {
      const [d, s, m] = await Promise.all([
        ctx.get("/api/alerts"),
        ctx.get("/api/alerts/silences"),
        catalogue.length ? Promise.resolve(null) : ctx.get("/api/alerts/measures"),
      ]);
      data = d;
      if (m) catalogue = m.measures;
      head.querySelector("p")?.remove();
      head.append(h("p", { class: "muted" }, `${d.rules.length} rules, evaluated every ${dur(d.interval_seconds)}${d.last_round && d.last_round.at ? `; last round ${f.clockSec(d.last_round.at)} in ${Math.round(d.last_round.millis)} ms` : ""}.`));
      const nodata = d.rules.filter((r) => r.enabled && r.state === "nodata").length;
      totals.show([
        card({ label: "Firing", value: f.count(d.firing), chip: d.firing ? { kind: "poor", text: "act now" } : { kind: "good", text: "none" } }),
        card({ label: "Pending", value: f.count(d.pending), sub: "condition true, waiting out its 'for'" }),
        card({ label: "No data", value: f.count(nodata), sub: "rules without enough samples" }),
        card({ label: "Rules", value: f.count(d.rules.filter((r) => r.enabled).length), sub: `${d.rules.filter((r) => !r.enabled).length} off` }),
      ]);
      renderNow();
      renderRules();
      renderSilences(s.silences || []);
      side.push(loadSent());
      if (editing === null) editor.el.hidden = true;
    } catch (e) {
      totals.error(e);
      error(now.body, e);
      error(rules.body, e);
      error(silences.body, e);
      error(sent.body, e);
    }
    await Promise.all(side);
  }

  return { load };
}
