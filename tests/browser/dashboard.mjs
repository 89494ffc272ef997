// Browser test of the growth-stack dashboard: headless Debian Chromium driven by puppeteer-core.
//
//   node dashboard.mjs <base-url> <admin-token> <screenshot-dir>
//
// Signs in (after a wrong token), visits every page, switches the range, toggles the theme
// and logs out, failing on any console error, page error or unexpected failed request.
// Chromium is /usr/bin/chromium unless $CHROMIUM says otherwise. Exits 0 only if all passed.

import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import puppeteer from "puppeteer-core";

const [baseArg, token, shots] = process.argv.slice(2);
if (!baseArg || !token || !shots) {
  console.error("usage: node dashboard.mjs <base-url> <admin-token> <screenshot-dir>");
  process.exit(2);
}
const base = baseArg.replace(/\/+$/, "");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const PAGES = { overview: "Overview", performance: "Performance", growth: "Growth", ai: "AI", database: "Database", scaling: "Scaling", start: "Get started" };
const TIMEOUT = 15_000;
mkdirSync(shots, { recursive: true });

const results = [];
const problems = []; // unexpected console errors, page errors and failed requests, in order
const allow401 = new Set(); // "METHOD /path" that may answer 401 right now
let stopped = false;

// The whole run must finish: a hung browser should fail CI, not stall it.
const watchdog = setTimeout(() => {
  console.log("FAIL  the test did not finish within 240 s");
  console.log(`browser: ${results.filter((r) => r.ok).length} passed, ${results.filter((r) => !r.ok).length + 1} failed`);
  rmSync(profile, { recursive: true, force: true });
  process.exit(1); // puppeteer kills the browser it launched on exit
}, 240_000);

const profile = mkdtempSync(join(tmpdir(), "gs-browser-"));
const browser = await puppeteer.launch({
  executablePath: CHROMIUM,
  headless: false, // the flags below ask for headless mode explicitly
  defaultViewport: { width: 1400, height: 1000 },
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
    "--lang=en-US", "--window-size=1400,1000", `--user-data-dir=${profile}`,
  ],
}).catch((e) => {
  console.log(`FAIL  could not start Chromium at ${CHROMIUM} (set $CHROMIUM to another): ${e.message.split("\n")[0]}`);
  console.log("browser: 0 passed, 1 failed");
  rmSync(profile, { recursive: true, force: true });
  process.exit(1);
});
const page = await browser.newPage();
await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: "light" }]);

page.on("console", (m) => {
  // HTTP failures are judged by the response handler, which knows which ones are expected.
  if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`console error: ${m.text()}`);
});
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
page.on("response", (r) => {
  if (r.status() < 400) return;
  const key = `${r.request().method()} ${new URL(r.url()).pathname}`;
  if (r.status() === 401 && allow401.has(key)) return;
  problems.push(`HTTP ${r.status()} for ${key}`);
});
page.on("requestfailed", (r) => {
  // The dashboard aborts a page's requests when the user moves on: that is not a failure.
  if (r.failure()?.errorText === "net::ERR_ABORTED") return;
  problems.push(`request failed: ${r.method()} ${r.url()} (${r.failure()?.errorText})`);
});

/** Distinct error texts, a few of them: one API error usually shows in every card. */
const listed = (errors) => {
  const u = [...new Set(errors)];
  return u.slice(0, 3).join(" | ") + (u.length > 3 ? ` (+${u.length - 3} more)` : "");
};
const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs one step; a thrown error or a new console/network problem fails it. */
async function step(name, fn) {
  if (stopped) {
    results.push({ name, ok: false });
    console.log(`FAIL  ${name}: not run, signing in failed`);
    return false;
  }
  const seen = problems.length;
  try {
    const detail = await fn();
    await sleep(150); // let late console messages and responses arrive
    const fresh = problems.slice(seen);
    if (fresh.length) throw new Error(`unexpected browser errors:\n      ${fresh.join("\n      ")}`);
    results.push({ name, ok: true });
    console.log(`ok    ${name}${detail ? ` (${detail})` : ""}`);
    return true;
  } catch (e) {
    results.push({ name, ok: false });
    console.log(`FAIL  ${name}: ${e.message}`);
    await page.screenshot({ path: join(shots, `fail-${name.replace(/\W+/g, "-")}.png`), fullPage: true }).catch(() => {});
    return false;
  }
}

/** Polls `check` (run in the page) until it returns { ok: true }; else fails with its last answer. */
async function until(what, check, arg, timeout = TIMEOUT) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    last = await page.evaluate(check, arg);
    if (last && last.ok) return last;
    await sleep(100);
  }
  throw new Error(`timed out after ${timeout / 1000} s waiting for ${what}; last seen: ${JSON.stringify(last)}`);
}

/** The state of the rendered page in <main>: what is loaded, busy, empty or broken. */
function mainState(want) {
  const { label, sub } = typeof want === "string" ? { label: want } : want;
  const main = document.getElementById("main");
  const texts = (sel) => [...main.querySelectorAll(sel)].map((e) => e.textContent.trim().replace(/\s+/g, " ").slice(0, 120));
  const h1 = main.querySelector(".page-head h1")?.textContent.trim() || null;
  const s = {
    h1,
    busy: main.querySelectorAll("[aria-busy=true], .skeleton").length,
    // Error cards and panels (their message only, so one API error reads once), and any alert.
    errors: texts(".card-error .card-sub, .state.error span, [role=alert]:not(.state)").filter(Boolean),
    cards: main.querySelectorAll(".cards .card").length,
    charts: main.querySelectorAll("svg.chart").length,
    snippets: main.querySelectorAll("pre.code").length,
    empty: main.querySelectorAll(".state.empty").length,
    login: !!document.querySelector("form.login"),
  };
  // Get started: the snippets, the arrival line, and the "Your data" table of streams.
  const streams = [...main.querySelectorAll("caption")].some((c) => c.textContent.includes("per stream"));
  const rendered = label === "Get started"
    ? s.snippets >= 4 && !!main.querySelector(".status-line .pulse") && streams
    : s.cards > 0 && s.charts > 0;
  s.sub = main.querySelector(".page-head p")?.textContent.trim() || null;
  s.ok = h1 === label && (!sub || (s.sub || "").includes(sub)) && !s.busy && !s.login && (s.errors.length > 0 || rendered);
  return s;
}

async function visit(name) {
  const label = PAGES[name];
  await page.click(`.nav a[data-page="${name}"]`);
  const s = await until(`the ${label} page to render`, mainState, label);
  if (s.errors.length) throw new Error(`the page shows errors: ${listed(s.errors)}`);
  const hash = await page.evaluate(() => location.hash);
  if (!hash.startsWith(`#/${name}?`)) throw new Error(`nav link led to ${hash}, not #/${name}`);
  await page.mouse.move(0, 0); // no chart tooltip in the screenshot
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  if (name === "start") return plural(s.snippets, "snippet");
  return `${plural(s.cards, "card")}, ${plural(s.charts, "chart")}${s.empty ? `, ${plural(s.empty, "empty panel")}` : ""}`;
}

/** The big number on the overview card labelled `label`, as shown and as a number. */
const cardNumber = (label) =>
  page.evaluate((label) => {
    const card = [...document.querySelectorAll("#main .card")].find((c) => c.querySelector(".card-label")?.textContent.trim() === label);
    const text = card?.querySelector(".card-value")?.textContent.trim() ?? null;
    return { text, value: text && /\d/.test(text) ? Number(text.replace(/[^\d.]/g, "")) : null };
  }, label);

// ---- the steps ----------------------------------------------------------------------

await step("server reachable", async () => {
  const res = await fetch(`${base}/`).catch((e) => {
    throw new Error(`${base}/ is not answering: ${e.cause?.code || e.message}`);
  });
  if (!res.ok) throw new Error(`${base}/ answered ${res.status}`);
  const probe = await fetch(`${base}/api/session`);
  if (probe.status !== 401) throw new Error(`GET /api/session without a cookie answered ${probe.status}, expected 401`);
});
if (results.some((r) => !r.ok)) stopped = true;

const signedIn = await step("sign in", async () => {
  allow401.add("GET /api/session"); // the session probe before signing in
  await page.goto(`${base}/`, { waitUntil: "domcontentloaded" });
  await page.waitForSelector("form.login #token", { visible: true, timeout: TIMEOUT }).catch(() => {
    throw new Error("the login form did not show for a fresh browser");
  });

  allow401.add("POST /api/session");
  await page.type("#token", "not-the-admin-token");
  await page.click("form.login button[type=submit]");
  const wrong = await until("an error after a wrong token", () => {
    const t = document.getElementById("login-error")?.textContent.trim();
    return { ok: !!t, text: t, visible: !!document.getElementById("login-error")?.offsetParent };
  });
  if (!wrong.visible) throw new Error("the wrong-token error is not visible");
  allow401.delete("POST /api/session");

  await page.$eval("#token", (e) => (e.value = ""));
  await page.type("#token", token);
  await page.click("form.login button[type=submit]");
  const login = await until("the login form to go away", () => {
    const error = document.getElementById("login-error")?.textContent.trim();
    return { ok: !document.querySelector("form.login") || !!error, error };
  });
  if (login.error) throw new Error(`signing in with the given admin token failed: "${login.error}"`);
  const s = await until("the overview after signing in", mainState, "Overview");
  if (s.errors.length) throw new Error(`the overview shows errors: ${listed(s.errors)}`);
  allow401.delete("GET /api/session");
  return `wrong token said "${wrong.text}"`;
});
if (!signedIn && (await page.$("form.login"))) stopped = true;

for (const name of Object.keys(PAGES)) await step(`page ${name}`, () => visit(name));

await step("growth analytics", async () => {
  await page.click('.nav a[data-page="growth"]');
  await until("the Growth page", mainState, "Growth");
  const parts = () => {
    const q = (sel) => document.querySelectorAll(sel).length;
    const s = {
      funnelSteps: q("#funnel-builder ol.funnel .funnel-step"),
      cohorts: q("#retention table.heatmap tbody tr"),
      adoption: q("#features .bars .bar-row"),
      breakdowns: q("#breakdowns .breakdown table"),
      dau: q("#main svg.chart"),
      errors: [...document.querySelectorAll("#main .state.error")].map((e) => e.textContent.trim()),
    };
    s.ok = s.errors.length > 0 || (s.funnelSteps >= 2 && s.cohorts > 0 && s.adoption > 0 && s.breakdowns >= 6);
    return s;
  };
  const s = await until("funnel, cohorts, adoption and breakdowns", parts);
  if (s.errors.length) throw new Error(`the Growth page shows errors: ${listed(s.errors)}`);
  // Build a two-step funnel by hand and run it.
  const first = await page.$eval("#funnel-builder ol.funnel .funnel-value", (e) => e.textContent);
  await page.$$eval("#funnel-builder .funnel-step-in input", (ins) => {
    ins[0].value = "pageview";
    ins[1].value = "recipe_viewed";
  });
  await page.select('#funnel-builder select[name="window"]', "1h");
  await page.click('#funnel-builder button[type="submit"]');
  const ran = await until("the new funnel", () => {
    const names = [...document.querySelectorAll("#funnel-builder .step-name")].map((e) => e.textContent);
    return { names, hash: location.hash, ok: names[0] === "pageview" && names[1] === "recipe_viewed" };
  });
  if (!ran.hash.includes("funnel=pageview%2Crecipe_viewed") && !ran.hash.includes("funnel=pageview,recipe_viewed")) {
    throw new Error(`the funnel is not kept in the URL: ${ran.hash}`);
  }
  await page.click('#retention .seg button:first-child');
  await until("daily cohorts", () => {
    const cols = document.querySelectorAll("#retention table.heatmap thead th").length;
    return { cols, ok: cols === 16 };
  });
  await page.mouse.move(0, 0);
  await page.screenshot({ path: join(shots, "growth-analytics.png"), fullPage: true });
  return `${s.funnelSteps} funnel steps (first ${first.trim()}), ${s.cohorts} cohorts, ${s.adoption} features, ${s.breakdowns} breakdown tables`;
});

await step("range switch", async () => {
  await page.click('.nav a[data-page="overview"]');
  await until("the overview", mainState, "Overview");
  if (!(await page.evaluate(() => location.hash.includes("range=24h")))) throw new Error("the overview did not start on range=24h");
  const day = await cardNumber("Events");
  if (day.value === null) throw new Error(`the Events card shows "${day.text}" for 24h`);

  await page.click('#ranges button[data-range="30d"]');
  const s = await until("the overview to render for 30 days", mainState, { label: "Overview", sub: "last 30 days" });
  if (s.errors.length) throw new Error(`the overview shows errors for 30d: ${listed(s.errors)}`);
  const month = await cardNumber("Events");
  const hash = await page.evaluate(() => location.hash);
  const pressed = await page.$eval('#ranges button[data-range="30d"]', (b) => b.getAttribute("aria-pressed"));
  if (!/[?&]range=30d(&|$)/.test(hash)) throw new Error(`the URL hash is ${hash}, without range=30d`);
  if (pressed !== "true") throw new Error("the 30d button is not marked pressed");
  if (month.text === day.text) throw new Error(`the Events number stayed ${day.text} after switching 24h to 30d`);
  if (!(month.value > day.value)) throw new Error(`30d shows ${month.text} events, not more than 24h's ${day.text}`);
  return `events ${day.text} → ${month.text}`;
});

await step("dark theme", async () => {
  const before = await page.evaluate(() => ({ theme: document.documentElement.dataset.theme, bg: getComputedStyle(document.body).backgroundColor }));
  await page.click("#theme");
  const after = await until("the theme to change", (b) => {
    const theme = document.documentElement.dataset.theme;
    const bg = getComputedStyle(document.body).backgroundColor;
    return { theme, bg, ok: theme !== b.theme && bg !== b.bg };
  }, before, 5000);
  if (after.theme !== "dark") throw new Error(`the toggle switched ${before.theme} to ${after.theme}, expected dark`);
  await sleep(300); // colour transitions
  await page.mouse.move(0, 0);
  await page.screenshot({ path: join(shots, "overview-dark.png"), fullPage: true });
  return `${before.theme} → ${after.theme}`;
});

await step("log out", async () => {
  const cookies = (await browser.cookies()).filter((c) => base.includes(c.domain.replace(/^\./, "")));
  if (!cookies.length) throw new Error("no session cookie was set by signing in");
  const jar = cookies.map((c) => `${c.name}=${c.value}`).join("; ");

  allow401.add("GET /api/session");
  const logout = await page.$$eval("#logout", (bs) => bs.filter((b) => b.offsetParent && /log out/i.test(b.textContent)).length);
  if (!logout) throw new Error('no visible "Log out" button');
  await page.click("#logout");
  await page.waitForSelector("form.login #token", { visible: true, timeout: TIMEOUT }).catch(() => {
    throw new Error("the login form did not show after logging out");
  });
  const inPage = await page.evaluate(() => fetch("/api/session", { credentials: "same-origin" }).then((r) => r.status));
  if (inPage !== 401) throw new Error(`fetch('/api/session') from the page answered ${inPage} after logout, expected 401`);
  // The server must forget the session, not only the browser its cookie.
  const replay = await fetch(`${base}/api/session`, { headers: { cookie: jar } });
  if (replay.status !== 401) throw new Error(`the old session cookie still answers ${replay.status} after logout, expected 401`);
  return "session probe 401, old cookie 401";
});

// ---- summary ------------------------------------------------------------------------

clearTimeout(watchdog);
await browser.close().catch(() => {});
rmSync(profile, { recursive: true, force: true });
const passed = results.filter((r) => r.ok).length;
const failed = results.length - passed;
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
