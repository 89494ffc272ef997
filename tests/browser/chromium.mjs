// What every browser test shares: Debian's Chromium started headless with a fresh profile,
// a watchdog so a hung browser fails CI instead of stalling it, and one way to fail.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import puppeteer from "puppeteer-core";

export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let profile = null;
function cleanUp() {
  if (profile) rmSync(profile, { recursive: true, force: true });
  profile = null;
}

/** Prints `FAIL  msg` and exits 1 (puppeteer kills the browser it launched on exit). */
export function fail(msg) {
  console.log(`FAIL  ${msg}`);
  cleanUp();
  process.exit(1);
}

/**
 * Starts Chromium with the flags this machine needs (no background networking: its
 * connections would be refused) and a new profile; `done()` closes it and removes the
 * profile. The run fails when it is not done within `seconds`.
 */
export async function launch({ name, width = 800, height = 600, seconds = 90, args = [] }) {
  profile = mkdtempSync(join(tmpdir(), `gs-${name}-`));
  const watchdog = setTimeout(() => fail(`the test did not finish within ${seconds} s`), seconds * 1000);
  const browser = await puppeteer
    .launch({
      executablePath: CHROMIUM,
      headless: false, // the flags below ask for the new headless mode explicitly
      defaultViewport: { width, height },
      args: [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
        `--window-size=${width},${height}`, `--user-data-dir=${profile}`, ...args,
      ],
    })
    .catch((e) => fail(`could not start Chromium at ${CHROMIUM} (set $CHROMIUM to another): ${e.message.split("\n")[0]}`));
  const done = async () => {
    clearTimeout(watchdog);
    await browser.close().catch(() => {});
    cleanUp();
  };
  return { browser, done };
}
