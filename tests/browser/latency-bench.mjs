// Publish -> displayed latency of framecast's viewer in headless Chromium (a benchmark program,
// not a test). Run through scripts/latency-bench.sh, which builds the release binary and prints
// machine information around this script's markdown table.
//
// For each (size, fps, transport): start `framecast serve` on the test card, open the embedded
// viewer page in headless Chromium, let it settle, then log every displayed frame for a window:
//   latency = displayed_unix_ms - publish_unix_ms
// where displayed_unix_ms = performance.timeOrigin + performance.now() taken in the viewer worker
// right after drawImage() into the OffscreenCanvas (the compositor's present, at most one vsync
// later, is not observable from a page and not included), and publish_unix_ms is the frame's
// `timestamp_us` (the server's per-stream monotonic clock) mapped to wall-clock time with the
// server's clock pair (see clockMapping()). Server and browser share this machine's wall clock.
//
// Environment: FRAMECAST_BIN (default target/release/framecast), BENCH_SECONDS (10), BENCH_WARMUP (2),
// BENCH_CONFIGS e.g. "1280x720@30:video,1920x1080@60:image" (default: all eight).

import { launchBrowser, newPage, freePort, startServer, waitFrames, sleep, ROOT, stats, clockMapping } from "./lib.js";
import path from "node:path";
import os from "node:os";

const BIN = process.env.FRAMECAST_BIN || path.join(ROOT, "target/release/framecast");
const SECONDS = Number(process.env.BENCH_SECONDS || 10);
const WARMUP = Number(process.env.BENCH_WARMUP || 2);
const DEFAULT_CONFIGS = [];
for (const size of ["1280x720", "1920x1080"]) for (const fps of [30, 60]) for (const t of ["video", "image"]) DEFAULT_CONFIGS.push(`${size}@${fps}:${t}`);
const CONFIGS = (process.env.BENCH_CONFIGS ? process.env.BENCH_CONFIGS.split(",") : DEFAULT_CONFIGS).map((c) => {
  const m = /^(\d+)x(\d+)@(\d+):(video|image)$/.exec(c.trim());
  if (!m) throw new Error(`bad BENCH_CONFIGS entry ${c} (want WxH@FPS:video|image)`);
  return { w: +m[1], h: +m[2], fps: +m[3], transport: m[4] };
});

async function serverMetrics(base) {
  try {
    const r = await fetch(`${base}/streams/default/metrics`);
    return r.ok ? await r.json() : null;
  } catch {
    return null;
  }
}

function findEncodeP50(m) {
  // Tolerant: the metrics shape is the server's; look for encode_ms_p50 anywhere.
  let best = null;
  const walk = (v) => {
    if (!v || typeof v !== "object") return;
    if (typeof v.encode_ms_p50 === "number" && v.encode_ms_p50 > 0) best = best === null ? v.encode_ms_p50 : Math.max(best, v.encode_ms_p50);
    for (const x of Object.values(v)) walk(x);
  };
  walk(m);
  return best;
}

async function runOne(browser, c) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const args = ["serve", "--pattern", "testcard", "--size", `${c.w}x${c.h}`, "--fps", String(c.fps),
    "--listen", `127.0.0.1:${port}`];
  const server = await startServer(BIN, [...args, "--stats-interval", "0.25"], port);
  const page = await newPage(browser, { width: 960, height: 540 });
  try {
    await page.goto(`${base}/?controls=0${c.transport === "image" ? "&transport=image" : ""}`);
    await waitFrames(page, 5);
    await sleep(WARMUP * 1000);
    const offsetUs = await clockMapping(base);
    await page.evaluate(() => {
      const T = window.__framecast;
      T.frameLog = [];
      T.frameLogLimit = 1e6;
      T.rttLog = [];
      T.rttTimer = setInterval(() => { const r = T.stats().rtt_ms; if (typeof r === "number") T.rttLog.push(r); }, 250);
    });
    const load0 = os.loadavg()[0];
    const t0 = Date.now();
    await sleep(SECONDS * 1000);
    const log = await page.evaluate(() => { window.__framecast.frameLogLimit = 0; return window.__framecast.frameLog; });
    const rtts = await page.evaluate(() => { clearInterval(window.__framecast.rttTimer); return window.__framecast.rttLog; });
    const elapsed = (Date.now() - t0) / 1000;
    const offsetUs2 = await clockMapping(base);
    const metrics = await serverMetrics(base);
    const st = await page.evaluate(() => window.__framecast.stats());
    // [seq, timestamp_us, displayed_unix_ms, received_unix_ms, decode_ms, publish_unix_us, draw_ms]
    const lat = [];
    for (const [, ts, disp, , , pub] of log) {
      if (typeof pub === "number") lat.push(disp - pub / 1000);
      else if (offsetUs !== null) lat.push(disp - (ts + offsetUs) / 1000);
    }
    return {
      ...c,
      transportSeen: st.transport,
      codec: st.codec,
      fpsShown: log.length / elapsed,
      latency: lat.length ? stats(lat) : null,
      recvToDisplay: stats(log.map((e) => e[2] - e[3])),
      decode: stats(log.map((e) => e[4])),
      draw: stats(log.map((e) => e[6]).filter((v) => typeof v === "number")),
      rtt: stats(rtts),
      encodeP50: findEncodeP50(metrics),
      clockDriftMs: offsetUs !== null && offsetUs2 !== null ? (offsetUs2 - offsetUs) / 1000 : null,
      dropped: st.dropped,
      serverDropped: st.server_dropped,
      frames: log.length,
      load: [load0, os.loadavg()[0]],
    };
  } finally {
    await page.close();
    await server.stop();
  }
}

const f1 = (v) => (typeof v === "number" && Number.isFinite(v) ? v.toFixed(1) : "–");

const browser = await launchBrowser();
const version = browser.version();
const rows = [];
try {
  for (const c of CONFIGS) {
    process.stderr.write(`bench ${c.w}x${c.h}@${c.fps} ${c.transport} ...\n`);
    rows.push(await runOne(browser, c));
  }
} finally {
  await browser.close();
}

console.log(`Chromium ${version}, headless, --disable-gpu (software decode and 2D canvas); ${SECONDS} s window after ${WARMUP} s warm-up per row.\n`);
console.log("| size | fps | transport | displayed fps | publish→displayed p50 ms | p95 ms | receive→displayed p50 / p95 ms | decode p50 ms | drawImage p50 ms | server encode p50 ms | p50 − encode p50 ms (target ≤ 10), p50 / encode p50 | server RTT (send→displayed ack) p50 ms | frames | load avg (1 min) start→end |");
console.log("|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
for (const r of rows) {
  const t = r.transport === "video" ? `OpenH264 → WebCodecs (${r.codec ?? "?"})` : "JPEG image";
  const over = r.latency && r.encodeP50 !== null ? r.latency.p50 - r.encodeP50 : NaN;
  const verdict = Number.isFinite(over) ? ` ${over <= 10 ? "✓" : "✗"}` : "";
  console.log(`| ${r.w}x${r.h} | ${r.fps} | ${t} | ${f1(r.fpsShown)} | ${f1(r.latency?.p50)} | ${f1(r.latency?.p95)} | ${f1(r.recvToDisplay.p50)} / ${f1(r.recvToDisplay.p95)} | ${f1(r.decode.p50)} | ${f1(r.draw.p50)} | ${f1(r.encodeP50)} | ${f1(over)}${verdict}, ×${f1(r.latency && r.encodeP50 ? r.latency.p50 / r.encodeP50 : NaN)} | ${f1(r.rtt.p50)} | ${r.frames} | ${r.load.map((v) => v.toFixed(2)).join(" → ")} |`);
}
console.log("\nTarget (issue 3): p50 publish→displayed ≤ server encode p50 + 10 ms on loopback.");
if (rows.some((r) => !r.latency)) {
  console.log("\nNo publish→displayed column where the server exposed no clock pair (GET /streams/<name>/time -> {timestamp_us, unix_us}).");
}
const drift = rows.map((r) => r.clockDriftMs).filter((v) => v !== null);
if (drift.length) console.log(`\nServer clock-pair drift over a row: max ${f1(Math.max(...drift.map(Math.abs)))} ms.`);
