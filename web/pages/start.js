// Get started: the snippets to paste, filled in with this server's address, and a live
// check that the first data arrived.

import { h, clear, pageHead, codeBlock, loading, error, table } from "/ui.js";
import * as f from "/format.js";
import { request } from "/api.js";

const FORMATS = ["parquet", "csv", "jsonl"];

function bytes(n) {
  if (!n) return "0 B";
  const u = ["B", "KB", "MB", "GB", "TB"];
  const i = Math.min(u.length - 1, Math.floor(Math.log(n) / Math.log(1024)));
  return `${(n / 1024 ** i).toFixed(i ? 1 : 0)} ${u[i]}`;
}

/** Your data: size per stream, retention in force, downloads, backups. */
function dataPanel() {
  const body = h("div", { class: "panel-body" });
  const note = h("span", { class: "muted small" });
  const button = h("button", { type: "button", class: "btn small" }, "Back up now");
  const el = h("section", { class: "panel wide" },
    h("header", { class: "panel-head" }, h("h2", {}, "Your data"), h("div", { class: "panel-actions" }, note, button)),
    body);
  const draw = async () => {
    const [s, backups] = await Promise.all([request("/api/admin/storage"), request("/api/admin/backups")]);
    const downloads = (st) => h("span", {}, FORMATS.map((fmt) =>
      h("a", { href: `/api/export?stream=${st}&format=${fmt}`, download: "", class: "small" }, fmt, " ")));
    clear(body,
      h("p", { class: "muted small" }, `${s.path}: ${bytes(s.file_bytes)} (WAL ${bytes(s.wal_bytes)}), `,
        s.free_bytes === null ? "" : `${bytes(s.free_bytes)} free on its disk`,
        s.disk_full ? h("strong", {}, " · disk full: ingest is paused") : "",
        `. Daily roll-ups (web vitals, active people) kept ${s.rollup_retention_days ? s.rollup_retention_days + " days" : "forever"}.`),
      table([
        { label: "Stream", value: (r) => r.stream },
        { label: "Rows", value: (r) => f.count(r.rows), num: true },
        { label: "Size", value: (r) => bytes(r.bytes), num: true },
        { label: "Oldest", value: (r) => r.oldest },
        { label: "Kept", value: (r) => (r.retention_days ? `${r.retention_days} days` : "forever") },
        { label: "Download", value: (r) => downloads(r.stream) },
      ], s.streams, { caption: "Rows, size and retention per stream" }),
      h("h3", {}, "Backups"),
      backups.length
        ? table([
          { label: "Taken", value: (b) => b.created_at },
          { label: "Rows", value: (b) => f.count(b.rows), num: true },
          { label: "Size", value: (b) => bytes(b.bytes), num: true },
          { label: "Folder", value: (b) => b.path, mono: true },
        ], backups.slice(0, 10), { caption: "The newest backups" })
        : h("p", { class: "muted small" }, "No backups yet. Restore one with growth-stack restore FOLDER --data-dir NEW_DIR."));
  };
  button.addEventListener("click", async () => {
    button.disabled = true;
    note.textContent = "Backing up…";
    try {
      const b = await request("/api/admin/backup", { method: "POST" });
      note.textContent = `Backed up ${f.count(b.rows)} rows to ${b.path}`;
      await draw();
    } catch (e) {
      note.textContent = e.message;
    } finally {
      button.disabled = false;
    }
  });
  return { el, draw, body };
}

function trackerSnippet(origin, keyed) {
  const key = keyed ? ' data-key="YOUR_INGEST_KEY"' : "";
  return `<!-- growth-stack: page views (SPA routes too), events, conversions, Core Web Vitals -->
<script defer src="${origin}/gs.js"${key}></script>`;
}

const usage = `// Anywhere in your app, once gs.js has loaded:
growth.track("recipe_saved", { recipeId: "r1", category: "dinner" });
growth.conversion("Onboarding", "signup_completed", { plan: "pro" });

// Only measure vitals on a share of page views (page views and events are always sent):
// <script defer src=".../gs.js" data-sample="0.25"></script>`;

function nextSnippet(origin, keyed) {
  const q = keyed ? "?key=YOUR_INGEST_KEY" : "";
  return `// Already using web-vitals or Next.js? Post its metric objects as they are.
"use client";
import { useReportWebVitals } from "next/web-vitals";

export function WebVitals() {
  useReportWebVitals((metric) => {
    const body = JSON.stringify({ ...metric, route: location.pathname });
    navigator.sendBeacon("${origin}/api/analytics/performance${q}", body);
  });
  return null;
}`;
}

function curlSnippet(origin, keyed) {
  const q = keyed ? "?key=YOUR_INGEST_KEY" : "";
  return `curl -X POST '${origin}/api/analytics/events${q}' \\
  -H 'content-type: application/json' \\
  -d '{"event":"signup_completed","properties":{"plan":"pro"}}'
# {"accepted":1}`;
}

function gatewaySnippet(origin) {
  return `# Provider keys stay on this server (OPENAI_API_KEY, ANTHROPIC_API_KEY); apps use the
# gateway key it printed at first start (also in data/gateway_key).
from openai import OpenAI
client = OpenAI(base_url="${origin}/v1", api_key="gsk_...")
client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Plan my week"}])

import anthropic
claude = anthropic.Anthropic(base_url="${origin}", api_key="gsk_...")
claude.messages.create(model="claude-3-5-haiku-latest", max_tokens=500,
                       messages=[{"role": "user", "content": "Plan my week"}])`;
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
  const data = dataPanel();

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
      h("p", {}, "Paste this tag into the ", h("code", {}, "<head>"), " of every page. It is under 2.5 KB, sets no cookies, records page views (History API route changes included) and sends LCP, INP, CLS, FCP and TTFB when the tab is hidden, with ",
        h("code", {}, "navigator.sendBeacon"), ", so it never delays your page."),
      codeBlock(trackerSnippet(origin, keyed), "Tracker tag"),
      h("p", {}, "Keep your own reporting instead? Post web-vitals or Next.js metric objects as-is; the newest report of each metric counts once."),
      codeBlock(nextSnippet(origin, keyed), "Next.js example"),
      h("p", { class: "muted small" }, "Your site runs on another origin? It is allowed by default; if you set ", h("code", {}, "ingest.cors_origins"), ", add your site's origin there.")),
    step(2, "Track what matters",
      h("p", {}, "Name events after what the user did. Conversions feed the funnels on the ", h("a", { href: ctx.link("growth") }, "Growth"), " page; steps show in the order they were first seen."),
      codeBlock(usage, "Tracking calls")),
    step(3, "Send events from anywhere",
      h("p", {}, "Every ingest endpoint takes one JSON object or an array of up to 1000. A ", h("code", {}, "200"), " means the rows are on disk."),
      codeBlock(curlSnippet(origin, keyed), "curl example")),
    step(4, "Send AI calls through the gateway",
      h("p", {}, "Point the official OpenAI or Anthropic SDK at this server: answers are cached, rate limited and every call shows on the ",
        h("a", { href: ctx.link("ai") }, "AI"), " page with its latency, tokens and cost."),
      codeBlock(gatewaySnippet(origin), "Python SDK example"),
      h("p", {}, "Calling providers yourself? Report each call instead. Query timings go to ",
        h("code", {}, "/api/analytics/database-performance"), " the same way (", h("code", {}, "query"), ", ", h("code", {}, "duration"), ")."),
      codeBlock(nodeSnippet(origin, keyed), "Node example")),
    data.el,
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
      try {
        await data.draw();
      } catch (e) {
        error(data.body, e);
      }
    },
  };
}
