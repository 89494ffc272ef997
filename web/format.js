// Number, unit and time formatting shared by pages and charts. Missing values print as "—".

export const DASH = "—";
const missing = (v) => v === null || v === undefined || Number.isNaN(v);
const nf = new Intl.NumberFormat();
const nf1 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const nf2 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
const compactNf = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });

/** 1234 -> "1,234". */
export function count(v) {
  return missing(v) ? DASH : nf.format(Math.round(v));
}

/** 1234567 -> "1.2M"; small numbers stay exact. */
export function compact(v) {
  if (missing(v)) return DASH;
  return Math.abs(v) < 10000 ? nf.format(Math.round(v)) : compactNf.format(v);
}

/** A rate 0..1 -> "12.3%". */
export function pct(rate) {
  if (missing(rate)) return DASH;
  const p = rate * 100;
  if (p === 0) return "0%";
  return Math.abs(p) < 1 ? `${p.toFixed(2)}%` : `${nf1.format(p)}%`;
}

/** Milliseconds -> "850 ms", "12.4 ms", "1.23 s", "2.5 min". */
export function ms(v) {
  if (missing(v)) return DASH;
  const a = Math.abs(v);
  if (a < 10) return `${nf2.format(v)} ms`;
  if (a < 1000) return `${nf.format(Math.round(v))} ms`;
  if (a < 60000) return `${nf2.format(v / 1000)} s`;
  return `${nf1.format(v / 60000)} min`;
}

/** Compact ms for axis ticks: "500 ms", "1.5 s". */
export function msTick(v) {
  if (missing(v)) return "";
  if (v === 0) return "0";
  if (Math.abs(v) < 1000) return `${nf1.format(v)} ms`;
  return `${nf1.format(v / 1000)} s`;
}

/** Unitless CLS. */
export function cls(v) {
  return missing(v) ? DASH : v < 0.01 && v > 0 ? v.toFixed(3) : v.toFixed(2);
}

export function tokens(v) {
  return missing(v) ? DASH : `${compact(v)} tokens`;
}

/** A web vital's value with the right unit. */
export function vital(metric, v) {
  return metric === "cls" ? cls(v) : ms(v);
}

export function vitalTick(metric) {
  return metric === "cls" ? (v) => (v === 0 ? "0" : nf2.format(v)) : msTick;
}

/** Rating of a value against [good, poor] thresholds. */
export function rate(v, thresholds) {
  if (missing(v) || !thresholds) return null;
  return v <= thresholds[0] ? "good" : v <= thresholds[1] ? "needs-improvement" : "poor";
}

export const RATING_LABEL = { good: "Good", "needs-improvement": "Needs work", poor: "Poor" };

const dtDay = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
const dtWeekday = new Intl.DateTimeFormat(undefined, { weekday: "short", month: "short", day: "numeric" });
const dtTime = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const dtTimeSec = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit", second: "2-digit" });
const dtFull = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" });

export const toMs = (t) => (t instanceof Date ? t.getTime() : typeof t === "number" ? t : Date.parse(t));

export const day = (t) => dtDay.format(toMs(t));
export const clock = (t) => dtTime.format(toMs(t));
export const clockSec = (t) => dtTimeSec.format(toMs(t));

/** The label of a time bucket in a tooltip: day for day buckets, else day and time. */
export function bucketLabel(t, bucketSeconds) {
  const v = toMs(t);
  return bucketSeconds >= 86400 ? dtWeekday.format(v) : dtFull.format(v);
}

/** A row's timestamp: the time today, else the day and time. */
export function when(t) {
  if (missing(t) || t === "") return DASH;
  const v = toMs(t);
  if (Number.isNaN(v)) return String(t);
  const d = new Date(v);
  const now = new Date();
  return d.toDateString() === now.toDateString() ? dtTimeSec.format(v) : dtFull.format(v);
}

export const RANGES = ["1h", "24h", "7d", "30d"];
export const RANGE_LABEL = { "1h": "last hour", "24h": "last 24 hours", "7d": "last 7 days", "30d": "last 30 days" };
export const rangeLabel = (r) => RANGE_LABEL[r] || `last ${r}`;

/** The first characters of an id, for tables. */
export const short = (id, n = 8) => (id ? String(id).slice(0, n) : DASH);

export const VITALS = {
  lcp: { label: "LCP", name: "Largest Contentful Paint", about: "when the main content has loaded" },
  inp: { label: "INP", name: "Interaction to Next Paint", about: "how fast the page answers taps and clicks" },
  cls: { label: "CLS", name: "Cumulative Layout Shift", about: "how much the layout jumps" },
  fcp: { label: "FCP", name: "First Contentful Paint", about: "when the first content shows" },
  ttfb: { label: "TTFB", name: "Time to First Byte", about: "how fast the server answers" },
  fid: { label: "FID", name: "First Input Delay", about: "older browsers' responsiveness metric" },
};

/** "good ≤ 2.5 s · poor > 4 s" */
export const thresholdText = (metric, th) =>
  th ? `good ≤ ${vital(metric, th[0])} · poor > ${vital(metric, th[1])}` : "";
