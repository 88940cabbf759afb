// Shared helpers of the browser tests: system Chromium through playwright-core, child servers,
// a static server that lays the viewer out as framecast serves it, and the test-card geometry.

import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { createServer as netServer } from "node:net";
import { readFile, stat } from "node:fs/promises";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const VIEWER_DIR = path.join(ROOT, "crates/framecast-stream/viewer");
export const FRAMECAST = process.env.FRAMECAST_BIN || path.join(ROOT, "target/debug/framecast");
export const PEER_PY = process.env.PEER_PYTHON || path.join(ROOT, ".peer/bin/python");
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

/** Generous: CI runs on 2 shared cores. Nothing asserts on time; this only bounds a hang. */
export const WAIT_MS = Number(process.env.BROWSER_TEST_WAIT_MS || 30000);

export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--autoplay-policy=no-user-gesture-required",
  // Shared memory from /tmp: a container's /dev/shm may be 64 MB, too small for several pages.
  "--disable-dev-shm-usage",
];

// Each test's start, with the time, on stderr (the runner shows it at once, where a test's
// result is only shown when it ends): a test that never ends is named in the log. Only in a
// file that `node --test` runs: a hook would turn the scripts that use these helpers
// (netview.mjs, latency-bench.mjs) into test files that print TAP on their JSON stdout.
if (process.env.NODE_TEST_CONTEXT) {
  const { beforeEach } = await import("node:test");
  beforeEach((t) => process.stderr.write(`[${new Date().toISOString()}] start: ${t.name}\n`));
}

/**
 * Launches headless system Chromium (playwright gives it a fresh temporary profile). Its
 * `close()` gives up after 15 s with a message rather than holding the test file open.
 */
export async function launchBrowser() {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  const close = browser.close.bind(browser);
  browser.close = () => within(close(), 15000, "Chromium did not close").catch((e) => process.stderr.write(`${e.message}\n`));
  return browser;
}

/** A new page whose console errors and page errors are collected in `page.logs`. */
export async function newPage(browser, viewport = { width: 800, height: 450 }) {
  const page = await within(browser.newPage({ viewport, deviceScaleFactor: 1 }), WAIT_MS, "Chromium to open a page");
  page.logs = [];
  page.on("console", (m) => page.logs.push(`[${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => page.logs.push(`[pageerror] ${e.message}`));
  return page;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = netServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitPort(port, proc, timeoutMs) {
  const { connect } = await import("node:net");
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`server exited with ${proc.exitCode}:\n${proc.output()}`);
    const ok = await new Promise((resolve) => {
      const c = connect(port, "127.0.0.1");
      c.once("connect", () => { c.destroy(); resolve(true); });
      c.once("error", () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms:\n${proc.output()}`);
}

/** Spawns a server and waits until it accepts TCP connections on `port`. */
export async function startServer(cmd, args, port, { env } = {}) {
  const proc = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout.on("data", (d) => (out += d));
  proc.stderr.on("data", (d) => (out += d));
  proc.output = () => out.slice(-4000);
  proc.stop = () => new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode) return resolve();
    proc.once("exit", () => resolve());
    proc.kill("SIGTERM");
    setTimeout(() => proc.exitCode === null && proc.kill("SIGKILL"), 3000);
  });
  try {
    await waitPort(port, proc, WAIT_MS);
  } catch (e) {
    await proc.stop();
    throw e;
  }
  return proc;
}

const MIME = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
  ".css": "text/css", ".map": "application/json", ".json": "application/json" };

/**
 * A static HTTP server. `routes` maps URL prefixes to directories; "/" and "/<name>" (no dot,
 * no further slash) serve `index` as framecast does. Returns {port, url, close()}.
 */
export async function staticServer({ routes = {}, index = path.join(VIEWER_DIR, "index.html"), extra = {} } = {}) {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, "http://x");
    const p = decodeURIComponent(url.pathname);
    try {
      if (extra[p]) {
        const [type, body] = extra[p];
        res.writeHead(200, { "content-type": type, "cache-control": "no-store" });
        return res.end(body);
      }
      let file = null;
      for (const [prefix, dir] of Object.entries(routes)) {
        if (p.startsWith(prefix)) {
          const rel = p.slice(prefix.length);
          const f = path.resolve(dir, rel);
          if (f.startsWith(path.resolve(dir))) file = f;
          break;
        }
      }
      if (!file && /^\/[^/.]*$/.test(p)) file = index;
      if (!file || !(await stat(file).catch(() => null))?.isFile()) {
        res.writeHead(404);
        return res.end("not found");
      }
      res.writeHead(200, { "content-type": MIME[path.extname(file)] || "application/octet-stream", "cache-control": "no-store" });
      res.end(await readFile(file));
    } catch (e) {
      res.writeHead(500);
      res.end(String(e));
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  // close() waits for connections still in use; the test is done with them, so end them all.
  const close = () => new Promise((r) => {
    server.close(r);
    server.closeAllConnections();
  });
  return { port, url: `http://127.0.0.1:${port}`, close };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * `promise`, or a rejection with `what` after `ms` (its timer cleared either way, so nothing
 * fires after the test). For the calls that have no timeout of their own (`page.evaluate`,
 * `page.mouse`, `browser.close`): a wedged renderer fails the test instead of hanging it.
 */
export function within(promise, ms, what) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} (no result within ${ms} ms)`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** Polls `fn` in the page until it returns a truthy value; fails with `what` and the page log. */
export async function waitInPage(page, fn, arg, what) {
  try {
    const h = await page.waitForFunction(fn, arg, { timeout: WAIT_MS, polling: 100 });
    return await h.jsonValue();
  } catch (e) {
    const state = await within(page.evaluate(() => {
      const T = window.__framecast;
      return T ? { state: T.state, stateLog: T.stateLog, frames: T.frames, errors: T.errors, stats: T.stats() } : null;
    }), 5000, "viewer state").catch(() => null);
    throw new Error(`timed out waiting for ${what}\nviewer: ${JSON.stringify(state)}\npage log:\n${page.logs.join("\n")}`);
  }
}

/** Waits until the framecast viewer has displayed at least `n` frames (more than `after`). */
export function waitFrames(page, n = 1, after = 0) {
  return waitInPage(page, ([n, after]) => window.__framecast && window.__framecast.frames >= after + n,
    [n, after], `${n} displayed frame(s) after ${after}`);
}

/** Reads the viewer canvas (frame pixels) through the worker: {width, height, px(x, y) -> [r,g,b]}. */
export async function readCanvas(page) {
  const r = await page.evaluate(async () => {
    const p = await window.__framecast.readPixels();
    return { width: p.width, height: p.height, data: p.data ? Array.from(p.data) : null };
  });
  return {
    width: r.width,
    height: r.height,
    px: (x, y) => {
      const i = 4 * (y * r.width + x);
      return [r.data[i], r.data[i + 1], r.data[i + 2]];
    },
    /** Mean RGB of the w x h block at (x, y). */
    mean: (x, y, w, h) => {
      const s = [0, 0, 0];
      for (let j = y; j < y + h; j++) for (let i = x; i < x + w; i++) {
        const k = 4 * (j * r.width + i);
        s[0] += r.data[k]; s[1] += r.data[k + 1]; s[2] += r.data[k + 2];
      }
      return s.map((v) => v / (w * h));
    },
  };
}

/**
 * framecast_io::test_card_patches(width, height), replicated from
 * crates/framecast-io/src/pattern.rs (CardLayout::new and PATCH_COLOURS). Integer arithmetic.
 */
export function testCardPatches(width, height) {
  const colours = [
    ["white", [191, 191, 191]], ["yellow", [191, 191, 0]], ["cyan", [0, 191, 191]], ["green", [0, 191, 0]],
    ["magenta", [191, 0, 191]], ["red", [191, 0, 0]], ["blue", [0, 0, 191]], ["black", [0, 0, 0]],
    ["mid-grey", [128, 128, 128]], ["dark-grey", [64, 64, 64]], ["near-white", [235, 235, 235]],
  ];
  const d = (a, b) => Math.floor(a / b);
  const marginX = d(width, 24);
  const cellW = d(width - 2 * marginX, 8);
  const patchW = cellW - d(cellW, 8);
  const rowH = d(height, 4);
  const gapY = d(height, 24);
  const row1Y = d(height, 12);
  const row2Y = row1Y + rowH + gapY;
  return colours.map(([name, rgb], i) => {
    const col = i < 8 ? i : i - 8;
    return { name, rgb, x: marginX + col * cellW + d(cellW - patchW, 2), y: i < 8 ? row1Y : row2Y, w: patchW, h: rowH };
  });
}

export function haveFile(p) {
  return existsSync(p);
}

// --- latency measurement (latency-bench.mjs, netview.mjs) ---------------------------------

export function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const i = (sorted.length - 1) * q;
  const lo = Math.floor(i);
  const hi = Math.ceil(i);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (i - lo);
}
export const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: quantile(s, 0.5), p95: quantile(s, 0.95), n: s.length };
};

/**
 * The server's clock pair: its per-stream clock (the one frame `timestamp_us` uses) and the wall
 * clock, read at the same instant. Looks for GET /streams/<name>/time -> {timestamp_us, unix_us},
 * then the same two fields in /streams/<name>/metrics ({clock: {...}} or top level).
 * Returns unix_us - timestamp_us, or null.
 */
export async function clockMapping(base, stream = "default") {
  for (const p of [`/streams/${stream}/time`, `/streams/${stream}/metrics`]) {
    try {
      const r = await fetch(base + p);
      if (!r.ok) continue;
      const j = await r.json();
      const c = j.clock || j;
      if (typeof c.timestamp_us === "number" && typeof c.unix_us === "number") return c.unix_us - c.timestamp_us;
    } catch { /* try the next */ }
  }
  return null;
}
