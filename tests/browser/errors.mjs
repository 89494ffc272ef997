// Browser test of JavaScript error reporting: a page on a loopback site of its own loads
// gs.js, throws an uncaught error and leaves a promise rejected, then is left (the tracker
// beacons on hide). Then the dashboard must list both errors on the Performance page, and
// the Alerts page must render with its rules and the rule editor's preview.
//
//   node errors.mjs <growth-stack-url> <admin-token> <screenshot-dir>
//
// Prints `RESULT {...}`; exits non-zero on failure or on any error in the dashboard tab.

import http from "node:http";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { fail as failWith, launch, sleep } from "./chromium.mjs";

const [gsArg, token, shots] = process.argv.slice(2);
if (!gsArg || !token || !shots) {
  console.error("usage: node errors.mjs <growth-stack-url> <admin-token> <screenshot-dir>");
  process.exit(2);
}
const gs = gsArg.replace(/\/+$/, "");
const THROWN = "checkout exploded: cart is undefined";
const REJECTED = "payment promise rejected";
mkdirSync(shots, { recursive: true });

const page = `<!doctype html>
<html><head><meta charset="utf-8"><title>errors fixture</title>
<script defer src="${gs}/gs.js"></script></head>
<body><h1>Checkout</h1>
<script>
  addEventListener("load", () => {
    setTimeout(() => { throw new Error(${JSON.stringify(THROWN)}); }, 100);
    setTimeout(() => { Promise.reject(new Error(${JSON.stringify(REJECTED)})); }, 150);
    // The same error again: reported once.
    setTimeout(() => { throw new Error(${JSON.stringify(THROWN)}); }, 200);
    setTimeout(() => { window.__done = true; }, 400);
  });
</script></body></html>`;

const site = http.createServer((req, res) => {
  res.writeHead(200, { "content-type": "text/html" });
  res.end(page);
});
await new Promise((r) => site.listen(0, "127.0.0.1", r));
const siteUrl = `http://127.0.0.1:${site.address().port}`;

const problems = [];
const fail = async (msg, tab) => {
  if (tab) await tab.screenshot({ path: join(shots, "fail-errors.png"), fullPage: true }).catch(() => {});
  site.close();
  failWith(msg);
};
const { browser, done } = await launch({ name: "errors", width: 1400, height: 1000, seconds: 120, args: ["--lang=en-US"] });

// 1. The page with errors, then away (pagehide sends the beacon).
const tab = await browser.newPage();
await tab.goto(`${siteUrl}/checkout`, { waitUntil: "load" });
await tab.waitForFunction(() => window.__done === true, { timeout: 10_000 }).catch(() => fail("the fixture page never finished", tab));
await tab.goto("about:blank");

const api = async (path) => {
  const r = await fetch(`${gs}${path}`, { headers: { authorization: `Bearer ${token}` } });
  if (!r.ok) throw new Error(`${path} answered ${r.status}`);
  return r.json();
};
let stored = null;
for (let i = 0; i < 100 && !stored; i++) {
  const d = await api("/api/analytics/errors?range=1h");
  if (d.js_errors >= 2) stored = d;
  else await sleep(200);
}
if (!stored) await fail("the errors never reached the server");

// 2. The dashboard.
const dash = await browser.newPage();
dash.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
dash.on("console", (m) => {
  if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`console error: ${m.text()}`);
});
await dash.goto(`${gs}/#/performance?range=1h`, { waitUntil: "load" });
await dash.waitForSelector("form.login #token", { visible: true, timeout: 15_000 }).catch(() => fail("no login form", dash));
await dash.type("#token", token);
await dash.click("form.login button[type=submit]");
const listed = await dash.waitForFunction((thrown, rejected) => {
  const panel = [...document.querySelectorAll("#main .panel")].find((p) => p.querySelector("h2")?.textContent.trim() === "Top errors");
  const text = panel?.textContent || "";
  return text.includes(thrown) && text.includes(rejected) ? text : false;
}, { timeout: 20_000 }, THROWN, REJECTED).then((h) => h.jsonValue()).catch(() => null);
if (!listed) await fail("the Performance page does not list both errors", dash);
await dash.evaluate(() => [...document.querySelectorAll("#main .panel h2")].find((h) => h.textContent.trim() === "Top errors")?.scrollIntoView());
await dash.mouse.move(0, 0);
await dash.screenshot({ path: join(shots, "performance-errors.png") });

// 3. The Alerts page: rules listed, the editor previews a rule.
await dash.click('.nav a[data-page="alerts"]');
const rules = await dash.waitForFunction(() => {
  const h1 = document.querySelector("#main .page-head h1")?.textContent.trim();
  const rows = [...document.querySelectorAll("#main .panel")].find((p) => p.querySelector("h2")?.textContent.trim() === "Rules")?.querySelectorAll("tbody tr").length || 0;
  return h1 === "Alerts" && rows >= 14 && !document.querySelector("#main [aria-busy=true]") ? rows : false;
}, { timeout: 20_000 }).then((h) => h.jsonValue()).catch(() => null);
if (!rules) await fail("the Alerts page did not list the rules", dash);
await dash.mouse.move(0, 0);
await dash.screenshot({ path: join(shots, "alerts.png"), fullPage: true });
await dash.evaluate(() => {
  const b = [...document.querySelectorAll("#main button")].find((x) => x.textContent.trim() === "Edit");
  b?.click();
});
const preview = await dash.waitForFunction(() => {
  const ed = document.querySelector(".rule-editor");
  return ed && !ed.hidden && ed.querySelector(".preview") && !ed.querySelector(".preview[aria-busy=true]") ? true : false;
}, { timeout: 20_000 }).catch(() => null);
if (!preview) await fail("the rule editor did not open with a preview", dash);
await sleep(300);
await dash.screenshot({ path: join(shots, "alerts-editor.png"), fullPage: true });
const badge = await dash.$eval("#alert-count", (b) => ({ hidden: b.hidden, text: b.textContent }));

if (problems.length) await fail(`dashboard errors: ${problems.join(" | ")}`, dash);
console.log(`RESULT ${JSON.stringify({ js_errors: stored.js_errors, top: stored.top.map((e) => e.message), rules, badge })}`);
await done();
site.close();
