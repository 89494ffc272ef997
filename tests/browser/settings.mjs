// Browser test of the tracker's settings: growth-stack serves gs.js with its [performance]
// values (the Rust test starts it with batch_size 3, flush_interval 10 minutes and custom
// metrics off), and each page's tag may override them with data- attributes:
//
//   /configured  no attributes: nothing is sent until the third item (batch size 3, and
//                the flush interval is far away); on hide, vitals without FCP and TTFB
//   /override    data-batch-size="1" data-web-vitals="false" data-custom-metrics="true":
//                the page view goes alone at once; on hide, FCP and TTFB but no vitals
//   /off         data-web-vitals="false" data-flush-interval="300": the page view goes
//                after 300 ms although the batch is not full; on hide, no vitals report
//
//   node settings.mjs <growth-stack-url>
//
// Every beacon must carry `?sent_at=` and every item a `timestamp` no later than it.
// Prints `RESULT {...}` with the requests each page made; the Rust test checks what the
// server stored. Exits non-zero when the browser part fails.

import http from "node:http";
import { fail, launch, sleep } from "./chromium.mjs";

const [gsArg] = process.argv.slice(2);
if (!gsArg) {
  console.error("usage: node settings.mjs <growth-stack-url>");
  process.exit(2);
}
const gs = gsArg.replace(/\/+$/, "");

const PAGES = {
  "/configured": "",
  "/override": 'data-batch-size="1" data-web-vitals="false" data-custom-metrics="true"',
  "/off": 'data-web-vitals="false" data-flush-interval="300"',
};
const html = (attrs) => `<!doctype html>
<html><head><meta charset="utf-8"><title>settings fixture</title>
<script defer src="${gs}/gs.js" ${attrs}></script></head>
<body><h1>Tracker settings</h1><p>${"A paragraph the browser paints, so there is a largest contentful paint. ".repeat(20)}</p></body></html>`;

const server = http.createServer((req, res) => {
  const path = req.url.split("?")[0];
  if (!(path in PAGES)) {
    // The browser asks for /favicon.ico too; a 404 would be a console error.
    res.writeHead(path === "/favicon.ico" ? 204 : 404);
    res.end();
    return;
  }
  res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
  res.end(html(PAGES[path]));
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const site = `http://127.0.0.1:${server.address().port}`;

const { browser, done } = await launch({ name: "settings" });

const problems = [];
const result = {};
// Waits for a condition the page should reach; the deadline only keeps a broken tracker
// from hanging the test.
async function until(what, test) {
  for (let i = 0; i < 100; i++) {
    if (test()) return;
    await sleep(100);
  }
  fail(what);
}

for (const [path, attrs] of Object.entries(PAGES)) {
  const tab = await browser.newPage();
  tab.on("pageerror", (e) => problems.push(`${path}: page error: ${e.message}`));
  tab.on("console", (m) => m.type() === "error" && problems.push(`${path}: console error: ${m.text()}`));
  let phase = "shown";
  const sent = [];
  tab.on("request", (r) => {
    if (!r.url().startsWith(gs + "/api/analytics/")) return;
    let items = null;
    // Every beacon carries its send time and every item the time it was queued, by the
    // page's clock, so the server can file it when it happened.
    const sentAt = Number(new URL(r.url()).searchParams.get("sent_at"));
    let stamped = sentAt > 0;
    try {
      const body = JSON.parse(r.postData() ?? "null");
      const list = body === null ? [] : Array.isArray(body) ? body : [body];
      if (body !== null) items = list.length;
      stamped &&= list.every((i) => typeof i.timestamp === "number" && i.timestamp <= sentAt);
    } catch (e) {}
    sent.push({ stream: new URL(r.url()).pathname.split("/").pop(), phase, items, stamped });
  });
  const events = () => sent.filter((s) => s.stream === "events");

  await tab.goto(`${site}${path}`, { waitUntil: "load" });
  await tab.waitForFunction(() => typeof window.growth === "object", { timeout: 10_000 })
    .catch(() => fail(`${path}: gs.js did not define window.growth`));

  if (path === "/configured") {
    // The page view and one event: two items, below the batch size of 3.
    await tab.evaluate(() => window.growth.track("first"));
    await sleep(1000);
    if (events().length) fail(`/configured sent before its batch was full: ${JSON.stringify(sent)}`);
    await tab.evaluate(() => window.growth.track("second"));
    await until("/configured did not send its full batch of 3", () => events().length > 0);
  } else {
    await until(`${path} did not send its page view`, () => events().length > 0);
  }
  await sleep(500); // paints and the navigation entry settle

  const other = await browser.newPage();
  phase = "hidden";
  await other.bringToFront();
  let hidden = (await tab.evaluate(() => document.visibilityState)) === "hidden";
  if (!hidden) await tab.goto("about:blank"); // some headless builds keep background tabs visible
  await sleep(1500);
  result[path] = { sent, hidden: hidden ? "another tab" : "navigated away" };
  await other.close();
  await tab.close();
}

await done();
server.close();
if (problems.length) fail(problems.join("; "));

const shown = (p) => result[p].sent.filter((s) => s.stream === "events" && s.phase === "shown");
const vitals = (p) => result[p].sent.filter((s) => s.stream === "performance");
const first = shown("/configured")[0];
if (first.items !== null && first.items !== 3) fail(`/configured's first batch held ${first.items} items, not 3`);
const alone = shown("/override")[0];
if (alone.items !== null && alone.items !== 1) fail(`/override's page view went with ${alone.items} items, not alone`);
if (vitals("/off").length) fail(`/off sent vitals although both kinds were off: ${JSON.stringify(result["/off"])}`);
if (!vitals("/configured").length || !vitals("/override").length) fail(`no vitals report on hide: ${JSON.stringify(result)}`);
const unstamped = Object.values(result).flatMap((r) => r.sent).filter((s) => !s.stamped);
if (unstamped.length) fail(`beacons without sent_at or items without timestamp: ${JSON.stringify(unstamped)}`);
for (const p of Object.keys(PAGES)) console.log(`ok    ${p}: ${JSON.stringify(result[p])}`);
console.log(`RESULT ${JSON.stringify(result)}`);
