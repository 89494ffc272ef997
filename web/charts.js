// Our own small chart module: SVG time series, bar lists, histograms, funnels and a cohort
// heatmap. Every function takes (container, data, options), draws into the container and
// shows the empty state when there is nothing to draw. Colours come from CSS variables.

import { bucketLabel, count, pct, toMs } from "/format.js";
import { h, clear, emptyState } from "/ui.js";

const NS = "http://www.w3.org/2000/svg";

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

const isNum = (v) => typeof v === "number" && Number.isFinite(v);

// ---- resizing: charts redraw when their container's width changes --------------------

const redraws = new WeakMap();
const widths = new WeakMap();
const resizer = typeof ResizeObserver === "function"
  ? new ResizeObserver((entries) => {
    for (const e of entries) {
      const el = e.target;
      if (!el.isConnected) {
        resizer.unobserve(el);
        continue;
      }
      const w = Math.round(e.contentRect.width);
      if (w > 0 && Math.abs(w - (widths.get(el) || 0)) > 4) {
        const fn = redraws.get(el);
        if (fn) requestAnimationFrame(fn);
      }
    }
  })
  : null;

function responsive(el, draw) {
  redraws.set(el, draw);
  if (resizer) resizer.observe(el);
  draw();
}

function widthOf(el) {
  const w = Math.round(el.clientWidth || el.getBoundingClientRect().width || 600);
  widths.set(el, w);
  return Math.max(w, 200);
}

// ---- scales -------------------------------------------------------------------------

/** Ticks from 0 to a round number at or above `max`, in steps of 1, 2, 2.5 or 5 x 10^n. */
export function niceTicks(max, target = 4, integer = false) {
  if (!(max > 0)) max = integer ? 4 : 1;
  const raw = max / target;
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  let step = (m <= 1 ? 1 : m <= 2 ? 2 : m <= 2.5 ? 2.5 : m <= 5 ? 5 : 10) * p;
  if (integer) step = Math.max(1, Math.ceil(step));
  const ticks = [];
  const top = Math.ceil(max / step - 1e-9) * step;
  for (let v = 0; v <= top + step / 2; v += step) ticks.push(+v.toPrecision(12));
  return ticks;
}

const MIN = 60e3;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const TIME_STEPS = [MIN, 2 * MIN, 5 * MIN, 10 * MIN, 15 * MIN, 30 * MIN, HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR,
  12 * HOUR, DAY, 2 * DAY, 3 * DAY, 5 * DAY, 7 * DAY, 14 * DAY];
const fmtHM = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const fmtH = new Intl.DateTimeFormat(undefined, { hour: "numeric" });
const fmtMD = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });

/** Time ticks at local round times, about one per `px` pixels; labels fit the step. */
export function timeTicks(from, to, width, px = 80) {
  const span = Math.max(to - from, MIN);
  const most = Math.max(2, Math.floor(width / px));
  const step = TIME_STEPS.find((st) => span / st <= most) || TIME_STEPS[TIME_STEPS.length - 1];
  const out = [];
  let t;
  if (step >= DAY) {
    const d = new Date(from);
    d.setHours(0, 0, 0, 0);
    if (d.getTime() < from) d.setDate(d.getDate() + 1);
    const days = Math.round(step / DAY);
    for (; d.getTime() <= to; d.setDate(d.getDate() + days)) out.push({ t: d.getTime(), label: fmtMD.format(d) });
    return out;
  }
  const tz = new Date(from).getTimezoneOffset() * MIN;
  for (t = Math.ceil((from - tz) / step) * step + tz; t <= to; t += step) {
    const d = new Date(t);
    const midnight = d.getHours() === 0 && d.getMinutes() === 0;
    out.push({ t, label: midnight && step >= HOUR ? fmtMD.format(d) : step >= HOUR ? fmtH.format(d) : fmtHM.format(d) });
  }
  return out;
}

// ---- time series --------------------------------------------------------------------

/**
 * Line / area chart over time.
 * rows: [{ t: ISO, key: number|null, ... }] oldest first (order is not required).
 * options: {
 *   series: [{ key, label, color: 0..5, area, dash }],
 *   from, to          the window (ISO or ms); the x axis spans it,
 *   bucket            seconds per bucket (the API's bucket_seconds),
 *   fill              "zero" (counts: missing buckets are 0) or "gap" (values: line breaks),
 *   format, tick      value formatters for tooltip and y axis,
 *   thresholds        [{ value, label, kind: "good" | "poor" | "mark", showAbove }] dashed lines,
 *   band              { low, high, color } keys of a shaded range (a forecast's interval),
 *   integer, height, label (accessible name), emptyText
 * }
 */
export function timeSeries(el, rows, options = {}) {
  const opts = { fill: "zero", height: 220, format: count, ...options };
  opts.tick = opts.tick || opts.format;
  const series = opts.series || [];
  const band = opts.band ? [{ key: opts.band.low }, { key: opts.band.high }] : [];
  const data = prepare(rows || [], [...series, ...band], opts);
  if (band.length) data.band = data.vals.splice(series.length, 2);
  if (!data.xs.length || !series.some((sr, i) => data.vals[i].some(isNum))) {
    redraws.delete(el);
    clear(el, emptyState(opts.emptyText));
    return;
  }
  responsive(el, () => drawSeries(el, data, series, opts));
}

function prepare(rows, series, opts) {
  const b = (opts.bucket || 0) * 1000;
  const byT = new Map();
  for (const r of rows) {
    const t = toMs(r.t);
    if (Number.isFinite(t)) byT.set(t, r);
  }
  let xs = [...byT.keys()].sort((a, c) => a - c);
  const from = opts.from ? toMs(opts.from) : xs[0];
  const to = opts.to ? toMs(opts.to) : xs[xs.length - 1];
  if (opts.fill === "zero" && b > 0 && xs.length && (to - from) / b <= 5000) {
    // Grid of bucket starts through the first point, covering the whole window.
    const grid = new Set(xs);
    const first = xs[0] - Math.floor((xs[0] - from) / b) * b;
    for (let t = first; t < to; t += b) grid.add(t);
    xs = [...grid].sort((a, c) => a - c);
  }
  const vals = series.map((sr) => xs.map((t) => {
    const r = byT.get(t);
    const v = r ? r[sr.key] : undefined;
    if (isNum(v)) return v;
    return opts.fill === "zero" && (v === undefined || v === null) ? 0 : null;
  }));
  return { xs, vals, from: Math.min(from, xs[0] ?? from), to: Math.max(to, xs[xs.length - 1] ?? to), b };
}

function drawSeries(el, data, series, opts) {
  const W = widthOf(el);
  const H = opts.height;
  const { xs, vals, b } = data;
  let from = data.from;
  let to = data.to;
  if (to <= from) {
    from -= b || HOUR;
    to += b || HOUR;
  }

  // y domain: the data and the thresholds shown (one with `showAbove` only once the
  // data passes that value, so a far-off "poor" line does not flatten a healthy chart).
  let max = 0;
  for (const v of [...vals, ...(data.band || [])]) for (const x of v) if (isNum(x) && x > max) max = x;
  const th = (opts.thresholds || []).filter((t) => isNum(t.value));
  const shown = th.filter((t) => !(isNum(t.showAbove) && max <= t.showAbove));
  for (const t of shown) max = Math.max(max, t.value * 1.08);
  const ticks = niceTicks(max, H < 200 ? 3 : 4, opts.integer);
  const yMax = ticks[ticks.length - 1] || 1;

  const labels = ticks.map((t) => opts.tick(t));
  const left = Math.max(28, Math.max(...labels.map((l) => l.length)) * 6.6 + 12);
  const M = { t: 10, r: 14, b: 24, l: left };
  const pw = W - M.l - M.r;
  const ph = H - M.t - M.b;
  const x = (t) => M.l + ((t - from) / (to - from)) * pw;
  const y = (v) => M.t + ph - (v / yMax) * ph;

  const svg = s("svg", {
    class: "chart", viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", tabindex: "0",
    "aria-label": `${opts.label || "Chart"}. Use left and right arrow keys to read values.`,
  });

  const grid = s("g", { class: "grid" });
  ticks.forEach((t, i) => {
    const yy = Math.round(y(t)) + 0.5;
    grid.append(s("line", { x1: M.l, x2: W - M.r, y1: yy, y2: yy }));
    grid.append(s("text", { x: M.l - 8, y: yy, dy: "0.32em", "text-anchor": "end", class: "axis" }, labels[i]));
  });
  for (const tk of timeTicks(from, to, pw)) {
    const xx = x(tk.t);
    if (xx < M.l - 1 || xx > W - M.r + 1) continue;
    grid.append(s("text", { x: xx, y: H - 6, "text-anchor": "middle", class: "axis" }, tk.label));
  }
  svg.append(grid);

  for (const t of shown) {
    const yy = Math.round(y(t.value)) + 0.5;
    const g = s("g", { class: `threshold th-${t.kind || "mark"}` });
    if (t.kind === "poor") g.append(s("rect", { x: M.l, y: M.t, width: pw, height: Math.max(0, yy - M.t), class: "zone" }));
    g.append(s("line", { x1: M.l, x2: W - M.r, y1: yy, y2: yy }));
    if (t.label) g.append(s("text", { x: W - M.r - 4, y: yy - 4, "text-anchor": "end" }, t.label));
    svg.append(g);
  }

  const maxGap = b ? b * 1.5 : Infinity;
  if (data.band) {
    const [lo, hi] = data.band;
    const pts = xs.map((t, k) => [t, lo[k], hi[k]]).filter(([, l, u]) => isNum(l) && isNum(u));
    if (pts.length > 1) {
      const top = pts.map(([t, , u], k) => `${k ? "L" : "M"}${x(t).toFixed(1)},${y(u).toFixed(1)}`).join("");
      const bottom = pts.slice().reverse().map(([t, l]) => `L${x(t).toFixed(1)},${y(l).toFixed(1)}`).join("");
      svg.append(s("path", { class: `band s${opts.band.color ?? 0}`, d: `${top}${bottom}Z` }));
    }
  }
  series.forEach((sr, i) => {
    const g = s("g", { class: `series s${sr.color ?? i}${sr.dash ? " dashed" : ""}` });
    const segs = segments(xs, vals[i], maxGap);
    for (const seg of segs) {
      if (seg.length === 1) {
        g.append(s("circle", { cx: x(seg[0][0]), cy: y(seg[0][1]), r: 2.5, class: "pt" }));
        continue;
      }
      const line = seg.map(([t, v], k) => `${k ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join("");
      if (sr.area) {
        const base = y(0).toFixed(1);
        g.append(s("path", { class: "area", d: `${line}L${x(seg[seg.length - 1][0]).toFixed(1)},${base}L${x(seg[0][0]).toFixed(1)},${base}Z` }));
      }
      g.append(s("path", { class: "line", d: line }));
    }
    svg.append(g);
  });

  // Hover: a vertical rule, a dot per series and a tooltip.
  const rule = s("line", { class: "rule", y1: M.t, y2: M.t + ph, visibility: "hidden" });
  const dots = series.map((sr, i) => s("circle", { class: `dot s${sr.color ?? i}`, r: 3.5, visibility: "hidden" }));
  svg.append(rule, ...dots);
  const overlay = s("rect", { x: M.l, y: M.t, width: pw, height: ph, class: "overlay" });
  svg.append(overlay);

  const tip = h("div", { class: "tooltip", role: "status", hidden: true });
  const legend = series.length > 1
    ? h("div", { class: "legend" }, series.map((sr, i) => h("span", { class: `key s${sr.color ?? i}` }, h("i"), sr.label)))
    : null;
  clear(el, legend, h("div", { class: "chart-box" }, svg, tip));
  el.classList.add("chart-host");

  let idx = -1;
  function showAt(i) {
    idx = Math.max(0, Math.min(xs.length - 1, i));
    const t = xs[idx];
    const xx = x(t);
    rule.setAttribute("x1", xx);
    rule.setAttribute("x2", xx);
    rule.setAttribute("visibility", "visible");
    const lines = [h("div", { class: "tip-time" }, bucketLabel(t, b / 1000))];
    series.forEach((sr, k) => {
      const v = vals[k][idx];
      if (isNum(v)) {
        dots[k].setAttribute("cx", xx);
        dots[k].setAttribute("cy", y(v));
        dots[k].setAttribute("visibility", "visible");
      } else dots[k].setAttribute("visibility", "hidden");
      lines.push(h("div", { class: `tip-row s${sr.color ?? k}` }, h("i"), h("span", {}, sr.label), h("b", {}, isNum(v) ? opts.format(v) : "no data")));
    });
    clear(tip, lines);
    tip.hidden = false;
    const box = svg.getBoundingClientRect();
    const scale = box.width / W || 1;
    const px = xx * scale;
    const tw = tip.offsetWidth;
    tip.style.left = `${Math.min(Math.max(0, px > box.width / 2 ? px - tw - 12 : px + 12), Math.max(0, box.width - tw))}px`;
    tip.style.top = `${M.t * scale}px`;
  }
  function hide() {
    idx = -1;
    tip.hidden = true;
    rule.setAttribute("visibility", "hidden");
    dots.forEach((d) => d.setAttribute("visibility", "hidden"));
  }
  function nearest(clientX) {
    const box = svg.getBoundingClientRect();
    const t = from + (((clientX - box.left) * (W / box.width) - M.l) / pw) * (to - from);
    let lo = 0;
    let hi = xs.length - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (xs[mid] < t) lo = mid;
      else hi = mid;
    }
    return Math.abs(xs[lo] - t) <= Math.abs(xs[hi] - t) ? lo : hi;
  }
  const follow = (e) => showAt(nearest(e.clientX));
  svg.addEventListener("pointermove", follow);
  svg.addEventListener("pointerdown", follow); // a tap on a touch screen
  svg.addEventListener("pointerleave", hide);
  svg.addEventListener("blur", hide);
  svg.addEventListener("focus", () => showAt(xs.length - 1));
  svg.addEventListener("keydown", (e) => {
    const step = { ArrowLeft: -1, ArrowRight: 1, Home: -Infinity, End: Infinity }[e.key];
    if (step !== undefined) {
      e.preventDefault();
      showAt(idx < 0 ? xs.length - 1 : idx + (Number.isFinite(step) ? step : step > 0 ? xs.length : -xs.length));
    } else if (e.key === "Escape") hide();
  });
}

/** Runs of consecutive numeric points; a gap longer than `maxGap` ms breaks the run. */
function segments(xs, vs, maxGap) {
  const out = [];
  let cur = [];
  for (let i = 0; i < xs.length; i++) {
    const v = vs[i];
    if (!isNum(v)) {
      if (cur.length) out.push(cur);
      cur = [];
      continue;
    }
    if (cur.length && xs[i] - cur[cur.length - 1][0] > maxGap) {
      out.push(cur);
      cur = [];
    }
    cur.push([xs[i], v]);
  }
  if (cur.length) out.push(cur);
  return out;
}

// ---- bar list -----------------------------------------------------------------------

/** timeSeries over an API report: its `series`, its `range` and `bucket_seconds` as the span. */
export function reportSeries(el, report, options = {}) {
  const range = report.range || {};
  return timeSeries(el, report.series, { from: range.from, to: range.to, bucket: report.bucket_seconds, ...options });
}

/**
 * Horizontal bars behind labels, biggest first as given.
 * options: { label(item), value(item), format, sub(item), href(item), color, emptyText }
 */
export function barList(el, items, options = {}) {
  const o = { label: (i) => i.label, value: (i) => i.value, format: count, ...options };
  const list = (items || []).filter((i) => isNum(o.value(i)));
  if (!list.length) return void clear(el, emptyState(o.emptyText));
  const max = Math.max(...list.map(o.value), 0) || 1;
  clear(el, h("ol", { class: `bars s${o.color ?? 0}` }, list.map((item) => {
    const v = o.value(item);
    const label = o.label(item);
    const fill = h("span", { class: "bar-fill", "aria-hidden": "true" });
    fill.style.width = `${Math.max(0.5, (v / max) * 100)}%`;
    const sub = o.sub ? o.sub(item) : null;
    return h("li", { class: "bar-row" }, fill,
      h("span", { class: "bar-label", title: String(label) }, o.href ? h("a", { href: o.href(item) }, label) : label),
      sub ? h("span", { class: "bar-sub" }, sub) : null,
      h("span", { class: "bar-value" }, o.format(v)));
  })));
}

// ---- histogram ----------------------------------------------------------------------

/**
 * Vertical bars, one per bin: [{ label, value, kind }] (`kind` adds a class, e.g. "poor").
 * options: { format, height, label, emptyText, unit }
 */
export function histogram(el, bins, options = {}) {
  const o = { format: count, height: 180, ...options };
  const list = bins || [];
  if (!list.length || !list.some((b) => isNum(b.value) && b.value > 0)) {
    redraws.delete(el);
    return void clear(el, emptyState(o.emptyText));
  }
  responsive(el, () => {
    const W = widthOf(el);
    const H = o.height;
    const M = { t: 18, r: 6, b: 22, l: 6 };
    const pw = W - M.l - M.r;
    const ph = H - M.t - M.b;
    const max = Math.max(...list.map((b) => b.value || 0)) || 1;
    const slot = pw / list.length;
    const gap = Math.min(8, slot * 0.2);
    const total = list.reduce((a, b) => a + (b.value || 0), 0);
    const every = Math.max(1, Math.ceil((Math.max(...list.map((b) => String(b.label).length)) * 6 + 6) / slot));
    const svg = s("svg", { class: "chart histogram", viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-label": o.label || "Distribution" });
    list.forEach((b, i) => {
      const v = b.value || 0;
      const bh = (v / max) * ph;
      const bx = M.l + i * slot + gap / 2;
      const g = s("g", { class: `bin ${b.kind ? "bin-" + b.kind : ""}` },
        s("title", {}, `${b.label}: ${o.format(v)} (${pct(total ? v / total : null)})`),
        s("rect", { x: bx, y: M.t + ph - bh, width: Math.max(1, slot - gap), height: Math.max(v ? 1 : 0, bh), rx: 2 }));
      if (slot > 26) g.append(s("text", { class: "axis val", x: bx + (slot - gap) / 2, y: M.t + ph - bh - 4, "text-anchor": "middle" }, o.format(v)));
      if (i % every === 0) {
        g.append(s("text", { class: "axis", x: bx + (slot - gap) / 2, y: H - 6, "text-anchor": "middle" }, b.label));
      }
      svg.append(g);
    });
    clear(el, svg);
  });
}

// ---- funnel -------------------------------------------------------------------------

/**
 * Steps in order: [{ label, value, sub }]; bars are relative to the first step and the
 * share that went on from the previous step sits between them.
 * options: { format, emptyText, label }
 */
export function funnel(el, steps, options = {}) {
  const o = { format: count, ...options };
  const list = (steps || []).filter((st) => isNum(st.value));
  if (!list.length || !list[0].value) return void clear(el, emptyState(o.emptyText));
  const first = list[0].value;
  const rows = [];
  list.forEach((st, i) => {
    if (i > 0) {
      const prev = list[i - 1].value;
      const rate = prev ? st.value / prev : null;
      rows.push(h("li", { class: "funnel-step-rate", "aria-label": `${pct(rate)} continued` },
        h("span", { class: `chip ${rate !== null && rate < 0.25 ? "chip-poor" : "chip-none"}` }, `↓ ${pct(rate)}`),
        h("span", { class: "muted" }, rate === null ? "" : `${o.format(Math.max(0, prev - st.value))} dropped`)));
    }
    const fill = h("span", { class: "bar-fill", "aria-hidden": "true" });
    fill.style.width = `${Math.max(0.5, Math.min(100, (st.value / first) * 100))}%`;
    rows.push(h("li", { class: "funnel-step" },
      h("div", { class: "funnel-label" }, h("span", { class: "step-no" }, i + 1), h("span", { class: "step-name" }, st.label),
        st.sub ? h("span", { class: "muted small" }, st.sub) : null),
      h("div", { class: "funnel-bar" }, fill, h("span", { class: "funnel-value" }, o.format(st.value), h("small", {}, pct(st.value / first))))));
  });
  const last = list[list.length - 1].value;
  clear(el, h("ol", { class: "funnel", "aria-label": o.label || "Funnel" }, rows),
    list.length > 1 ? h("p", { class: "funnel-total" }, "Overall conversion ", h("b", {}, pct(last / first))) : null);
}

// ---- cohort heatmap -----------------------------------------------------------------

/**
 * Rows x columns of shares 0..1, shaded by value.
 * data: { columns: ["Week 0", ...], rows: [{ label, sub, values: [0..1 | null] }] }
 * options: { format, corner, emptyText }
 */
export function heatmap(el, data, options = {}) {
  const o = { format: pct, corner: "Cohort", ...options };
  const rows = (data && data.rows) || [];
  const cols = (data && data.columns) || [];
  if (!rows.length || !cols.length) return void clear(el, emptyState(o.emptyText));
  clear(el, h("div", { class: "table-wrap" }, h("table", { class: "heatmap" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, o.corner), cols.map((c) => h("th", { scope: "col", class: "num" }, c)))),
    h("tbody", {}, rows.map((r) => h("tr", {},
      h("th", { scope: "row" }, r.label, r.sub ? h("small", {}, r.sub) : null),
      cols.map((_, i) => {
        const v = r.values ? r.values[i] : null;
        if (!isNum(v)) return h("td", { class: "num blank" }, "");
        const td = h("td", { class: `num${v > 0.55 ? " strong" : ""}`, title: `${r.label} · ${cols[i]}: ${o.format(v)}` }, o.format(v));
        td.style.setProperty("--heat", `${Math.round(Math.max(0, Math.min(1, v)) * 100)}%`);
        return td;
      })))))));
}
