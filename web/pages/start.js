// Get started: the snippets to paste, filled in with this server's address, and a live
// check that the first data arrived.

import { h, clear, pageHead, codeBlock, loading, error } from "/ui.js";
import * as f from "/format.js";

function trackerSnippet(origin, keyed) {
  const q = keyed ? ' + "?key=YOUR_INGEST_KEY"' : "";
  return `<script type="module">
  // growth-stack: page views, custom events, conversions and Core Web Vitals.
  const GS = "${origin}";
  const send = (path, body) =>
    navigator.sendBeacon(GS + "/api/analytics/" + path${q}, JSON.stringify(body));

  // Anonymous ids: one per browser (user_id must be a UUID) and one per tab session.
  const uuid = () => {
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    const x = [...b].map((v) => v.toString(16).padStart(2, "0")).join("");
    return [x.slice(0, 8), x.slice(8, 12), x.slice(12, 16), x.slice(16, 20), x.slice(20)].join("-");
  };
  const keep = (store, key) => {
    try {
      return store.getItem(key) || (store.setItem(key, uuid()), store.getItem(key));
    } catch {
      return uuid();
    }
  };
  const user_id = keep(localStorage, "gs_uid");
  const session_id = keep(sessionStorage, "gs_sid");

  window.analytics = {
    track: (event, properties) =>
      send("events", { event, properties, user_id, session_id, route: location.pathname, referrer: document.referrer || null }),
    conversion: (funnel, step, props) => send("conversions", { funnel, step, props, user_id, session_id }),
  };
  analytics.track("page_view");

  // Core Web Vitals, measured in the page and sent once when it is hidden.
  const vitals = {};
  const watch = (type, fn, extra) => {
    try {
      new PerformanceObserver((list) => list.getEntries().forEach(fn)).observe({ type, buffered: true, ...extra });
    } catch {} // this browser does not measure it
  };
  watch("largest-contentful-paint", (e) => (vitals.lcp = e.startTime));
  watch("paint", (e) => e.name === "first-contentful-paint" && (vitals.fcp = e.startTime));
  if (PerformanceObserver.supportedEntryTypes?.includes("layout-shift")) vitals.cls = 0;
  watch("layout-shift", (e) => e.hadRecentInput || (vitals.cls += e.value));
  // INP here is the slowest interaction, which is what INP is for most pages.
  const interaction = (e) => (vitals.inp = Math.max(vitals.inp || 0, e.duration));
  watch("first-input", (e) => { vitals.fid = e.processingStart - e.startTime; interaction(e); });
  watch("event", (e) => e.interactionId && interaction(e), { durationThreshold: 16 });
  const nav = performance.getEntriesByType("navigation")[0];
  if (nav) vitals.ttfb = nav.responseStart;
  let sent = false;
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState !== "hidden" || sent || !Object.keys(vitals).length) return;
    sent = true;
    send("performance", { ...vitals, route: location.pathname, session_id, user_id, connection: navigator.connection?.effectiveType });
  });
</script>`;
}

const usage = `// Anywhere in your app, after the snippet has run:
analytics.track("recipe_saved", { recipeId: "r1", category: "dinner" });
analytics.conversion("Onboarding", "signup_completed", { plan: "pro" });`;

function curlSnippet(origin, keyed) {
  const q = keyed ? "?key=YOUR_INGEST_KEY" : "";
  return `curl -X POST '${origin}/api/analytics/events${q}' \\
  -H 'content-type: application/json' \\
  -d '{"event":"signup_completed","properties":{"plan":"pro"}}'
# {"accepted":1}`;
}

function nodeSnippet(origin, keyed) {
  const q = keyed ? "?key=${process.env.GROWTH_INGEST_KEY}" : "";
  const url = keyed ? `\`${origin}/api/analytics/ai-performance${q}\`` : `"${origin}/api/analytics/ai-performance"`;
  return `// Node 18+: report each LLM call after it finishes.
const started = performance.now();
const reply = await openai.chat.completions.create({ model: "gpt-4o-mini", messages });

await fetch(${url}, {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({
    model: "gpt-4o-mini",
    endpoint: "/v1/chat/completions",
    tokens: reply.usage?.total_tokens,
    duration: performance.now() - started, // milliseconds
    success: true,
    cache_hit: false,
  }),
});`;
}

export default function start(root, ctx) {
  const origin = location.origin;
  const keyed = !!(ctx.session && ctx.session.ingest_key_required);
  const status = h("div", { class: "status-line" });

  const step = (n, title, ...body) =>
    h("section", { class: "panel wide step" },
      h("header", { class: "panel-head" }, h("h2", {}, h("span", { class: "step-no" }, n), title)),
      h("div", { class: "panel-body prose" }, body));

  clear(root,
    pageHead("Get started", "Paste one script tag, open your site, and the dashboard fills up."),
    h("section", { class: "panel wide" }, h("header", { class: "panel-head" }, h("h2", {}, "Is data arriving?")), h("div", { class: "panel-body" }, status)),
    keyed ? h("div", { class: "note warn", role: "note" },
      h("strong", {}, "This server requires an ingest key. "),
      "Append ", h("code", {}, "?key=YOUR_INGEST_KEY"), " to every ingest URL (or send it as the ",
      h("code", {}, "X-Growth-Key"), " header from servers). The snippets below already have the placeholder; replace it with the key you configured as ",
      h("code", {}, "ingest.key"), ".") : null,
    step(1, "Add the tracker to your pages",
      h("p", {}, "Paste this before ", h("code", {}, "</body>"), " on every page. It records a page view, keeps an anonymous visitor id, and sends Core Web Vitals when the tab is hidden. It uses ",
        h("code", {}, "navigator.sendBeacon"), ", so it never delays your page."),
      codeBlock(trackerSnippet(origin, keyed), "Tracker snippet"),
      h("p", { class: "muted small" }, "Your site runs on another origin? It is allowed by default; if you set ", h("code", {}, "ingest.cors_origins"), ", add your site's origin there.")),
    step(2, "Track what matters",
      h("p", {}, "Name events after what the user did. Conversions feed the funnels on the ", h("a", { href: ctx.link("growth") }, "Growth"), " page; steps show in the order they were first seen."),
      codeBlock(usage, "Tracking calls")),
    step(3, "Send events from anywhere",
      h("p", {}, "Every ingest endpoint takes one JSON object or an array of up to 1000. A ", h("code", {}, "200"), " means the rows are on disk."),
      codeBlock(curlSnippet(origin, keyed), "curl example")),
    step(4, "Report AI calls from your server",
      h("p", {}, "Latency, tokens and cache hits show on the ", h("a", { href: ctx.link("ai") }, "AI"), " page. Query timings go to ",
        h("code", {}, "/api/analytics/database-performance"), " the same way (", h("code", {}, "query"), ", ", h("code", {}, "duration"), ")."),
      codeBlock(nodeSnippet(origin, keyed), "Node example")),
  );

  return {
    async load({ quiet }) {
      if (!quiet) loading(status, "line");
      try {
        const d = await ctx.get("/api/overview");
        const ev = (d && d.events) || {};
        const vitals = Object.values((d && d.vitals) || {}).reduce((a, v) => Math.max(a, (v && v.count) || 0), 0);
        const got = ev.total > 0 || vitals > 0;
        clear(status,
          h("span", { class: `pulse ${got ? "ok" : "wait"}`, "aria-hidden": "true" }),
          got
            ? h("span", {}, h("strong", {}, `${f.count(ev.total)} events`), ` and ${f.count(vitals)} vitals samples in the ${ctx.rangeLabel}. `,
              h("a", { href: ctx.link("overview") }, "See the overview →"))
            : h("span", {}, "Waiting for the first event… this page checks every 30 seconds while auto-refresh is on."));
        status.removeAttribute("aria-busy");
      } catch (e) {
        error(status, e);
      }
    },
  };
}
