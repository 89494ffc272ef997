// Browser test of gs.js: headless Chromium loads a page from a loopback server of its own
// (so the tracker is cross-origin, as on a real site), the page paints a late image (LCP),
// shifts its layout twice by amounts it measures itself (CLS), handles a real mouse click
// with a slow handler (INP), changes route through the History API and tracks an event;
// then the page is hidden and the tracker must beacon everything. Then it is shown,
// clicked more slowly and hidden again (a re-report), left and restored from the
// back/forward cache (a new metric instance), and hidden once more.
//
//   node vitals.mjs <growth-stack-url> <ingest-key>
//
// Prints `RESULT {...}` with what the page measured; the Rust test checks what the server
// stored against it. Exits non-zero when the browser part fails.

import http from "node:http";
import { fail, launch, sleep } from "./chromium.mjs";

const [gsArg, key] = process.argv.slice(2);
if (!gsArg || !key) {
  console.error("usage: node vitals.mjs <growth-stack-url> <ingest-key>");
  process.exit(2);
}
const gs = gsArg.replace(/\/+$/, "");
const IMAGE_DELAY_MS = 400;
// Event durations are rounded to 8 ms: delays of 8k + 4 ms round up, so INP > delay.
const HANDLER_MS = 300;
const SECOND_HANDLER_MS = 604;

const page = `<!doctype html>
<html><head><meta charset="utf-8"><title>vitals fixture</title>
<style>html,body{margin:0;padding:0;overflow:hidden}#slow{display:block;height:40px;width:200px;margin:0;border:0}
#box{height:300px;width:100%;background:#cde}img{display:block}</style>
<script defer src="${gs}/gs.js" data-key="${key}"></script></head>
<body><button id="slow">slow</button>
<div id="box"><img id="hero" src="/big.svg" width="800" height="300" alt=""></div>
<script>
  // The page's own account of its shifts: impact fraction x distance fraction, per the
  // Layout Instability spec, from the box's rectangles before and after each move.
  window.__shifts = [];
  const box = document.getElementById("box");
  function shift(px) {
    const a = box.getBoundingClientRect();
    box.style.marginTop = (parseFloat(box.style.marginTop || 0) + px) + "px";
    const b = box.getBoundingClientRect();
    const vw = innerWidth, vh = innerHeight;
    const union = Math.min(vh, Math.max(a.bottom, b.bottom)) - Math.max(0, Math.min(a.top, b.top));
    const impact = (union * Math.min(vw, a.width)) / (vw * vh);
    const distance = Math.abs(b.top - a.top) / Math.max(vw, vh);
    window.__shifts.push(impact * distance);
  }
  document.getElementById("hero").addEventListener("load", () => {
    setTimeout(() => shift(150), 300);
    // A second, smaller shift more than 1 s later: a new session window, so CLS is the
    // larger window, not the sum.
    setTimeout(() => { shift(30); window.__shifted = true; }, 1800);
  });
  addEventListener("pageshow", (e) => { if (e.persisted) window.__restored = true; });
  document.getElementById("slow").addEventListener("click", () => {
    const end = performance.now() + (window.__handler || ${HANDLER_MS});
    while (performance.now() < end) {}
    window.__clicked = true;
  });
</script></body></html>`;

// Chromium skips low-entropy images (under 0.05 bits per pixel) as LCP candidates, so the
// picture carries some detail: a few hundred circles, about 12 KB for 800 x 300 pixels.
let seed = 7;
const rnd = (n) => ((seed = (seed * 16807) % 2147483647) % n);
const circles = Array.from({ length: 300 }, () =>
  `<circle cx="${rnd(800)}" cy="${rnd(300)}" r="${5 + rnd(30)}" fill="#${(0x100000 + rnd(0xefffff)).toString(16)}"/>`).join("");
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="800" height="300"><rect width="800" height="300" fill="#4a7"/>${circles}</svg>`;

const server = http.createServer((req, res) => {
  if (req.url.startsWith("/big.svg")) {
    setTimeout(() => {
      res.writeHead(200, { "content-type": "image/svg+xml", "cache-control": "no-store" });
      res.end(svg);
    }, IMAGE_DELAY_MS);
    return;
  }
  if (req.url === "/favicon.ico") {
    res.writeHead(204);
    res.end();
    return;
  }
  // Every other path is the app (an SPA serves its shell on any route).
  res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
  res.end(page);
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const site = `http://127.0.0.1:${server.address().port}`;

const { browser, done } = await launch({ name: "vitals" });

const problems = [];
const tab = await browser.newPage();
tab.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
tab.on("console", (m) => m.type() === "error" && problems.push(`console error: ${m.text()}`));
const beacons = [];
tab.on("request", (r) => {
  if (r.url().startsWith(gs + "/api/")) beacons.push(`${r.method()} ${r.url().slice(gs.length)}`);
});

await tab.goto(`${site}/`, { waitUntil: "load" });
await tab.waitForFunction(() => window.__shifted === true && typeof window.growth === "object", { timeout: 15_000 })
  .catch(() => fail("the page did not finish its layout shifts, or gs.js did not define window.growth"));
await sleep(300);

// A real (trusted) mouse click through the DevTools input pipeline.
await tab.click("#slow");
await tab.waitForFunction(() => window.__clicked === true, { timeout: 5000 }).catch(() => fail("the click handler did not run"));
await sleep(500); // event timing entries arrive after the next paint

// A route change in the SPA and a custom event.
await tab.evaluate(() => {
  history.pushState({}, "", "/recipes/123?utm_source=newsletter");
  window.growth.track("recipe_saved", { recipeId: "r1" });
  window.growth.conversion("Recipe Discovery", "recipe_saved", { recipeId: "r1" });
});

const measured = await tab.evaluate(() => ({ shifts: window.__shifts }));

// Hide the page: another tab comes to the front.
const other = await browser.newPage();
await other.bringToFront();
let state = await tab.evaluate(() => document.visibilityState);
if (state !== "hidden") {
  // Some headless builds keep background tabs visible: navigate away instead (pagehide).
  await tab.goto("about:blank");
  state = "unloaded";
}
await sleep(1500);

// Back to the page, a slower interaction, hidden again: CLS and INP are reported again
// for the same page view, and the server must keep only the newer report.
let second = null;
let restored = null;
if (state === "hidden") {
  await tab.bringToFront();
  await tab.waitForFunction(() => document.visibilityState === "visible", { timeout: 5000 }).catch(() => fail("the page did not become visible again"));
  await tab.evaluate((ms) => { window.__handler = ms; window.__clicked = false; }, SECOND_HANDLER_MS);
  await tab.click("#slow");
  await tab.waitForFunction(() => window.__clicked === true, { timeout: 5000 }).catch(() => fail("the second click did not run"));
  await sleep(500);
  await other.bringToFront();
  await sleep(1000);
  second = SECOND_HANDLER_MS;

  // Leave and come back: from the back/forward cache when Chromium keeps the page there.
  await tab.bringToFront();
  await tab.goto(`${site}/elsewhere`, { waitUntil: "load" });
  await tab.goBack({ waitUntil: "load" });
  restored = await tab.evaluate(() => window.__restored === true);
  await sleep(300);
  await other.bringToFront();
  await sleep(1000);
}

await done();
server.close();
if (problems.length) fail(problems.join("; "));
console.log(`ok    page measured its shifts: ${measured.shifts.map((s) => s.toFixed(4)).join(", ")}`);
console.log(`ok    hidden by ${state === "hidden" ? "another tab" : "navigating away"}; requests to growth-stack: ${beacons.join(", ")}`);
console.log(`RESULT ${JSON.stringify({ shifts: measured.shifts, handler_ms: HANDLER_MS, second_handler_ms: second, restored, image_delay_ms: IMAGE_DELAY_MS, hidden: state })}`);
