// Small DOM toolkit: element builder, panels with loading / empty / error states, cards,
// tables with API pagination, copy buttons. Text always goes in as text, never as HTML.

import { isAbort } from "/api.js";
import { count } from "/format.js";

/** h("a", { class: "x", href, on: { click } }, child, [children], "text") */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k === "on") for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === "style") for (const [p, sv] of Object.entries(v)) el.style.setProperty(p, sv);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces `el`'s children; new content ends a loading state, so aria-busy goes too. */
export function clear(el, ...children) {
  el.removeAttribute("aria-busy");
  el.replaceChildren();
  append(el, children);
  return el;
}

let linker = (path) => `#/${path}`;
/** The app tells the toolkit how to build links that keep the current range. */
export function setLinker(fn) {
  linker = fn;
}
export const link = (path, params) => linker(path, params);

// ---- states -------------------------------------------------------------------------

export function skeleton(kind = "chart") {
  if (kind === "table") {
    return h("div", { class: "skeleton-table", "aria-hidden": "true" },
      [0, 1, 2, 3, 4].map(() => h("div", { class: "skeleton line" })));
  }
  return h("div", { class: `skeleton ${kind}`, "aria-hidden": "true" });
}

export function loading(el, kind = "chart") {
  clear(el, skeleton(kind), h("span", { class: "sr-only", text: "Loading…" }));
  el.setAttribute("aria-busy", "true");
  return el;
}

export function emptyState(text = "No data in this range yet") {
  return h("div", { class: "state empty" },
    h("span", {}, text, " — see "),
    h("a", { href: link("start") }, "Get started"));
}

export function empty(el, text) {
  el.removeAttribute("aria-busy");
  return clear(el, emptyState(text));
}

export function errorState(err) {
  const msg = (err && err.message) || "Something went wrong";
  return h("div", { class: "state error", role: "alert" },
    h("strong", {}, err && err.status === 401 ? "Signed out" : "Could not load"),
    h("span", {}, msg));
}

export function error(el, err) {
  if (isAbort(err)) return el;
  el.removeAttribute("aria-busy");
  return clear(el, errorState(err));
}

export function show(el, ...children) {
  el.removeAttribute("aria-busy");
  return clear(el, ...children);
}

// ---- layout -------------------------------------------------------------------------

/** A titled section with a body whose content the page swaps between states. */
export function panel(title, { wide = false, cls = "", note, actions } = {}) {
  const body = h("div", { class: "panel-body" });
  const el = h("section", { class: `panel${wide ? " wide" : ""} ${cls}`.trim() },
    h("header", { class: "panel-head" },
      h("h2", {}, title),
      note ? h("span", { class: "panel-note" }, note) : null,
      actions ? h("div", { class: "panel-actions" }, actions) : null),
    body);
  return { el, body };
}

export function pageHead(title, sub) {
  return h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, title), sub ? h("p", { class: "muted" }, sub) : null);
}

// ---- cards --------------------------------------------------------------------------

/** A metric card: label, big number, chip, small line. With `href` the card is a link. */
export function card({ label, value, unit, chip, sub, href, tone, title }) {
  const body = [
    h("span", { class: "card-label" }, label),
    h("span", { class: "card-value" }, value, unit ? h("small", {}, unit) : null),
    chip || sub ? h("span", { class: "card-foot" }, chip ? ratingChip(chip.kind, chip.text) : null, sub ? h("span", { class: "card-sub" }, sub) : null) : null,
  ];
  const cls = `card${tone ? " tone-" + tone : ""}`;
  return href ? h("a", { class: cls, href, title }, body) : h("div", { class: cls, title }, body);
}

export function skeletonCard(label) {
  return h("div", { class: "card", "aria-busy": "true" },
    h("span", { class: "card-label" }, label),
    h("span", { class: "skeleton value", "aria-hidden": "true" }),
    h("span", { class: "skeleton sub", "aria-hidden": "true" }));
}

export function errorCard(label, err) {
  return h("div", { class: "card card-error" },
    h("span", { class: "card-label" }, label),
    h("span", { class: "card-value" }, "—"),
    h("span", { class: "card-sub error-text clamp-2", title: (err && err.message) || null }, (err && err.message) || "Could not load"));
}

export function ratingChip(kind, text) {
  return h("span", { class: `chip chip-${kind || "none"}` }, text);
}

/** A grid of cards that shows skeletons, errors or the cards `build` returns. */
export function cardGrid(labels, cls = "") {
  const el = h("div", { class: `cards ${cls}`.trim() });
  return {
    el,
    loading() {
      clear(el, labels.map((l) => skeletonCard(l)));
    },
    error(err) {
      if (!isAbort(err)) clear(el, labels.map((l) => errorCard(l, err)));
    },
    show(cards) {
      clear(el, cards);
    },
  };
}

// ---- tables -------------------------------------------------------------------------

/** columns: [{ label, value(row) -> node|string, num, cls, mono }] */
export function table(columns, rows, { rowClass, caption } = {}) {
  return h("div", { class: "table-wrap" },
    h("table", {},
      caption ? h("caption", { class: "sr-only" }, caption) : null,
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: colClass(c) }, c.label)))),
      h("tbody", {}, rows.map((r) =>
        h("tr", { class: rowClass ? rowClass(r) : null },
          columns.map((c) => h("td", { class: colClass(c) }, cell(c.value(r)))))))));
}

const colClass = (c) => [c.num ? "num" : "", c.mono ? "mono" : "", c.cls || ""].join(" ").trim() || null;
const cell = (v) => (v === null || v === undefined || v === "" ? "—" : v);

/**
 * A table paged through the API's limit/offset. `fetchPage(offset)` answers
 * `{ rows, page: { limit, offset, total } }`. The page's own load feeds offset 0 with `set`.
 */
export function pagedTable({ columns, rowClass, fetchPage, caption, emptyText }) {
  const body = h("div", { class: "paged-body" });
  const info = h("span", { class: "pager-info", "aria-live": "polite" });
  const prev = h("button", { type: "button", class: "btn small", text: "← Newer" });
  const next = h("button", { type: "button", class: "btn small", text: "Older →" });
  const el = h("div", { class: "paged" }, body, h("div", { class: "pager" }, info, h("div", { class: "pager-btns" }, prev, next)));
  let page = { limit: 20, offset: 0, total: 0 };
  let busy = false;

  function render(data) {
    page = data.page || { limit: data.rows.length, offset: 0, total: data.rows.length };
    if (!data.rows.length) {
      empty(body, page.offset ? "No rows on this page" : emptyText);
    } else {
      show(body, table(columns, data.rows, { rowClass, caption }));
    }
    const from = page.total ? page.offset + 1 : 0;
    const to = page.offset + data.rows.length;
    info.textContent = page.total ? `${count(from)}–${count(to)} of ${count(page.total)}` : "";
    prev.disabled = page.offset <= 0;
    next.disabled = to >= page.total;
    el.classList.toggle("no-pages", page.total <= page.limit && page.offset === 0);
  }

  async function go(offset) {
    if (busy) return;
    busy = true;
    el.classList.add("is-busy");
    try {
      render(await fetchPage(Math.max(0, offset)));
    } catch (e) {
      error(body, e);
    } finally {
      busy = false;
      el.classList.remove("is-busy");
    }
  }
  prev.addEventListener("click", () => go(page.offset - page.limit));
  next.addEventListener("click", () => go(page.offset + page.limit));
  prev.disabled = next.disabled = true;

  return {
    el,
    /** First page from the page's main request; a refresh leaves an older page alone. */
    set(data, { quiet = false } = {}) {
      if (quiet && page.offset > 0) return;
      render(data);
    },
    loading() {
      page = { ...page, offset: 0 };
      loading(body, "table");
      info.textContent = "";
    },
    error(err) {
      if (!isAbort(err)) error(body, err);
    },
  };
}

// ---- misc ---------------------------------------------------------------------------

/** A code block with a copy button. */
export function codeBlock(code, label) {
  const pre = h("pre", { class: "code", tabindex: "0", "aria-label": label }, h("code", {}, code));
  const btn = h("button", { type: "button", class: "btn small copy", text: "Copy" });
  btn.addEventListener("click", async () => {
    const ok = await copyText(code);
    btn.textContent = ok ? "Copied" : "Press Ctrl+C";
    if (!ok) selectText(pre);
    setTimeout(() => (btn.textContent = "Copy"), 1800);
  });
  return h("div", { class: "code-wrap" }, btn, pre);
}

async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    /* fall through to the selection fallback */
  }
  const ta = h("textarea", { class: "offscreen", readonly: true, "aria-hidden": "true" });
  ta.value = text;
  document.body.append(ta);
  ta.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  ta.remove();
  return ok;
}

function selectText(el) {
  const r = document.createRange();
  r.selectNodeContents(el);
  const s = getSelection();
  s.removeAllRanges();
  s.addRange(r);
}

/** An object's properties as compact key=value chips; the full JSON in the tooltip. */
export function props(obj) {
  if (obj === null || obj === undefined) return null;
  if (typeof obj !== "object") return h("span", { class: "mono" }, String(obj));
  const entries = Object.entries(obj);
  if (!entries.length) return null;
  const shown = entries.slice(0, 4).map(([k, v]) =>
    h("span", { class: "kv" }, h("span", { class: "k" }, k), "=", typeof v === "object" ? JSON.stringify(v) : String(v)));
  if (entries.length > 4) shown.push(h("span", { class: "kv more" }, `+${entries.length - 4}`));
  return h("span", { class: "kvs", title: JSON.stringify(obj, null, 1) }, shown);
}

/** Segmented toggle of buttons; `onPick(value)` on click. */
export function segmented(label, options, current, onPick) {
  const el = h("div", { class: "seg", role: "group", "aria-label": label });
  for (const [value, text] of options) {
    const b = h("button", { type: "button", "aria-pressed": String(value === current), text });
    b.addEventListener("click", () => {
      for (const o of el.children) o.setAttribute("aria-pressed", String(o === b));
      onPick(value);
    });
    el.append(b);
  }
  return el;
}
