// The dashboard shell: hash router, range and auto-refresh state (kept in the URL so a
// view can be shared), theme, login and logout. Pages live in /pages/*.js and export
// `default (root, ctx) => ({ load({ quiet }) })`.

import * as api from "/api.js";
import { h, clear, setLinker } from "/ui.js";
import { RANGES, clockSec, rangeLabel } from "/format.js";

const PAGES = {
  overview: "Overview",
  performance: "Performance",
  growth: "Growth",
  ai: "AI",
  database: "Database",
  alerts: "Alerts",
  scaling: "Scaling",
  start: "Get started",
};
const DEFAULT_RANGE = "24h";
const REFRESH_MS = 30_000;
const THEME_KEY = "growth-stack.theme";

const $ = (id) => document.getElementById(id);
const main = $("main");

const state = { page: "overview", range: DEFAULT_RANGE, refresh: true, extra: new URLSearchParams() };
let session = { ingest_key_required: false, version: "" };
let signedIn = true;
let view = null; // { page, range, ctrl, page module instance, busy }
let lastLoad = 0;
const modules = new Map();

// ---- URL state ----------------------------------------------------------------------

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const q = raw.indexOf("?");
  const path = (q < 0 ? raw : raw.slice(0, q)).replace(/\/+$/, "");
  const params = new URLSearchParams(q < 0 ? "" : raw.slice(q + 1));
  const range = params.get("range");
  state.page = PAGES[path] ? path : "overview";
  state.range = range && /^\d{1,4}[mhd]$/.test(range) ? range : DEFAULT_RANGE;
  state.refresh = params.get("refresh") !== "0";
  params.delete("range");
  params.delete("refresh");
  state.extra = params;
}

/** A link to `page` that keeps the range and refresh choice (and `params`, if given). */
function hashFor(page, params = {}, { range = state.range, refresh = state.refresh, keepExtra = false } = {}) {
  const p = new URLSearchParams();
  p.set("range", range);
  if (!refresh) p.set("refresh", "0");
  if (keepExtra) for (const [k, v] of state.extra) p.set(k, v);
  for (const [k, v] of Object.entries(params)) {
    if (v === null || v === undefined || v === "") p.delete(k);
    else p.set(k, v);
  }
  return `#/${page}?${p}`;
}
setLinker((page, params) => hashFor(page, params));

function go(changes) {
  location.hash = hashFor(state.page, {}, { ...changes, keepExtra: true });
}

// ---- pages --------------------------------------------------------------------------

function context(signal) {
  const range = state.range;
  return {
    range,
    rangeLabel: rangeLabel(range),
    signal,
    session,
    get: (path, query = {}) => api.get(path, { range, ...query }, signal),
    link: (page, params) => hashFor(page, params),
    param: (name) => state.extra.get(name),
    /** Remembers a page-level choice (a tab, a filter) in the URL without reloading. */
    setParam(name, value) {
      if (value === null || value === undefined || value === "") state.extra.delete(name);
      else state.extra.set(name, value);
      history.replaceState(null, "", hashFor(state.page, {}, { keepExtra: true }));
      syncChrome();
    },
  };
}

async function loadModule(page) {
  if (!modules.has(page)) modules.set(page, import(`/pages/${page}.js`));
  return modules.get(page);
}

async function mount() {
  if (view) view.ctrl.abort();
  const ctrl = new AbortController();
  const page = state.page;
  const current = { page, range: state.range, ctrl, inst: null, busy: false };
  view = current;
  syncChrome();
  let mod;
  try {
    mod = await loadModule(page);
  } catch (e) {
    modules.delete(page);
    if (view === current) clear(main, h("div", { class: "state error", role: "alert" }, h("strong", {}, "Could not load this page"), h("span", {}, String(e.message || e))));
    return;
  }
  if (view !== current) return;
  clear(main);
  current.inst = mod.default(main, context(ctrl.signal));
  await refresh(false);
}

async function refresh(quiet) {
  const current = view;
  if (!current || !current.inst || current.busy || !signedIn) return;
  current.busy = true;
  document.body.classList.toggle("refreshing", quiet);
  try {
    await current.inst.load({ quiet });
    if (view === current && signedIn) {
      lastLoad = Date.now();
      $("updated").textContent = `Updated ${clockSec(lastLoad)}`;
    }
  } catch (e) {
    if (!api.isAbort(e)) console.error(e);
  } finally {
    current.busy = false;
    document.body.classList.remove("refreshing");
  }
}

function onHashChange() {
  const before = view && { page: view.page, range: view.range };
  parseHash();
  syncChrome();
  if (!signedIn) return;
  if (!before || before.page !== state.page || before.range !== state.range) mount();
}

// ---- chrome: nav, range, refresh, theme ---------------------------------------------

function syncChrome() {
  document.title = `${PAGES[state.page]} · growth-stack`;
  const nav = document.querySelector(".nav");
  for (const a of nav.querySelectorAll("a[data-page]")) {
    a.href = hashFor(a.dataset.page);
    if (a.dataset.page !== state.page) {
      a.removeAttribute("aria-current");
      continue;
    }
    a.setAttribute("aria-current", "page");
    // On a phone the nav scrolls sideways: keep the current section in view.
    if (a.offsetLeft < nav.scrollLeft || a.offsetLeft + a.offsetWidth > nav.scrollLeft + nav.clientWidth) {
      nav.scrollLeft = a.offsetLeft - 12;
    }
  }
  $("brand").href = hashFor("overview");
  for (const b of $("ranges").querySelectorAll("button")) b.setAttribute("aria-pressed", String(b.dataset.range === state.range));
  const r = $("refresh");
  r.setAttribute("aria-pressed", String(state.refresh));
  r.querySelector(".live-text").textContent = state.refresh ? "Live" : "Paused";
  r.title = state.refresh ? "Auto-refresh every 30 s is on: click to pause" : "Auto-refresh is paused: click to resume";
}

// The navigation's firing count, refreshed with the page (and every 30 s when paused).
let alertsAt = 0;
async function alertCount() {
  if (!signedIn || Date.now() - alertsAt < REFRESH_MS - 1000) return;
  alertsAt = Date.now();
  try {
    const s = await api.get("/api/alerts/summary");
    const badge = $("alert-count");
    badge.hidden = !s.firing;
    badge.textContent = s.firing || "";
    badge.title = `${s.firing} firing, ${s.pending} pending`;
  } catch {
    /* the count is a hint; the Alerts page says what went wrong */
  }
}

function tick() {
  alertCount();
  if (!state.refresh || !signedIn || document.visibilityState !== "visible") return;
  if (Date.now() - lastLoad >= REFRESH_MS - 1000) refresh(true);
}

let chosenTheme = null;
try {
  chosenTheme = localStorage.getItem(THEME_KEY);
} catch {
  /* storage blocked: follow the system */
}

const darkQuery = matchMedia("(prefers-color-scheme: dark)");
function applyTheme() {
  const theme = chosenTheme === "dark" || chosenTheme === "light" ? chosenTheme : darkQuery.matches ? "dark" : "light";
  document.documentElement.dataset.theme = theme;
  const next = theme === "dark" ? "light" : "dark";
  $("theme").setAttribute("aria-label", `Switch to ${next} theme`);
  $("theme").title = `Switch to ${next} theme`;
}

function toggleTheme() {
  chosenTheme = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
  try {
    localStorage.setItem(THEME_KEY, chosenTheme);
  } catch {
    /* private mode: the choice lasts for this page only */
  }
  applyTheme(); // charts take their colours from CSS variables, so nothing to redraw
}

let toastTimer = 0;
function toast(text) {
  const t = $("toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (t.hidden = true), 4000);
}

// ---- session ------------------------------------------------------------------------

function showLogin(message) {
  signedIn = false;
  if (view) view.ctrl.abort();
  view = null;
  document.body.classList.add("signed-out");
  document.title = "Sign in · growth-stack";
  const input = h("input", {
    id: "token", name: "token", type: "password", autocomplete: "current-password", required: true,
    spellcheck: "false", "aria-describedby": "login-help login-error",
  });
  const err = h("p", { id: "login-error", class: "error-text", role: "alert" }, message || "");
  const submit = h("button", { type: "submit", class: "btn primary", text: "Sign in" });
  const form = h("form", { class: "login card-like", novalidate: true },
    h("h1", {}, "Sign in"),
    h("label", { for: "token" }, "Admin token"),
    input,
    h("p", { id: "login-help", class: "muted small" },
      "Printed when growth-stack starts, and kept in ", h("code", {}, "data/admin_token"), "."),
    err,
    submit);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const token = input.value.trim();
    if (!token) {
      err.textContent = "Enter the admin token.";
      input.focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = "Signing in…";
    err.textContent = "";
    try {
      await api.login(token);
      input.value = "";
      await signIn();
    } catch (ex) {
      // The server's 401 text speaks to API clients (bearer header): say it plainly here.
      err.textContent = ex.status === 401 ? "That admin token is not right." : ex.message;
      submit.disabled = false;
      submit.textContent = "Sign in";
      input.select();
      input.focus();
    }
  });
  clear(main, h("div", { class: "login-wrap" }, form));
  input.focus();
}

async function loadSession() {
  try {
    const s = await api.session();
    session = { ...session, ...s };
    $("version").textContent = s.version ? `v${s.version}` : "";
    return true;
  } catch (e) {
    // 401 shows the login (via onUnauthorized); an older server without the endpoint
    // still serves the dashboard, so anything else lets the pages try.
    return e.status !== 401;
  }
}

async function signIn() {
  signedIn = true;
  document.body.classList.remove("signed-out");
  if (await loadSession()) {
    alertsAt = 0;
    alertCount();
    mount();
  }
}

api.onUnauthorized(() => {
  if (signedIn) showLogin();
});

// ---- start --------------------------------------------------------------------------

function start() {
  applyTheme();
  darkQuery.addEventListener("change", applyTheme);
  parseHash();
  if (!location.hash.startsWith("#/")) history.replaceState(null, "", hashFor(state.page, {}, { keepExtra: true }));
  syncChrome();

  $("ranges").addEventListener("click", (e) => {
    const b = e.target.closest("button[data-range]");
    if (b && RANGES.includes(b.dataset.range)) go({ range: b.dataset.range });
  });
  $("refresh").addEventListener("click", () => {
    const on = !state.refresh;
    history.replaceState(null, "", hashFor(state.page, {}, { refresh: on, keepExtra: true }));
    state.refresh = on;
    syncChrome();
    if (on) tick();
  });
  $("theme").addEventListener("click", toggleTheme);
  $("logout").addEventListener("click", async () => {
    try {
      await api.logout();
      showLogin();
    } catch (e) {
      if (e.status === 401) showLogin();
      else toast(`Could not log out: ${e.message}`);
    }
  });
  $("skip").addEventListener("click", (e) => {
    e.preventDefault();
    const target = main.querySelector("h1") || main;
    if (!target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
    target.focus();
  });
  addEventListener("hashchange", onHashChange);
  document.addEventListener("visibilitychange", tick);
  setInterval(tick, 5000);

  signIn();
}

start();
