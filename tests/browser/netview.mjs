// A headless-Chromium viewer for the test network (scripts/netbench.sh VIEWER=chromium): opens
// framecast's own viewer page at --url (through the delay relay, inside the viewers' network
// namespace), lets it settle, then logs every displayed frame for --seconds and prints one JSON
// line in the shape of examples/probe.rs's, so the two viewers' rows compare:
//   latency = displayed_unix_ms - publish_unix_ms, publish time from the frame's timestamp_us
//   and the server's clock pair (the namespaces share this machine's wall clock); "gap" is the
//   longest time between two displayed frames; keyframes and bytes from the viewer's counters.
//
//   node tests/browser/netview.mjs --url http://127.0.0.1:9000/ [--seconds 60] [--warmup 3]
//
// A benchmark program, not a test: it asserts nothing, and exits non-zero only when the page
// shows no frame at all.

import { launchBrowser, newPage, waitFrames, sleep, quantile, clockMapping } from "./lib.js";

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}
const url = arg("url", "http://127.0.0.1:9000/");
const seconds = Number(arg("seconds", 60));
const warmup = Number(arg("warmup", 3));
const base = new URL(url).origin;

const browser = await launchBrowser();
try {
  const page = await newPage(browser, { width: 1280, height: 720 });
  await page.goto(url);
  await waitFrames(page, 1);
  await sleep(warmup * 1000);
  const offsetUs = await clockMapping(base);
  const before = await page.evaluate((limit) => {
    const T = window.__framecast;
    T.frameLog = [];
    T.frameLogLimit = limit;
    return { keyframes: T.stats().keyframes };
  }, Math.ceil(seconds * 120) + 100);
  // The viewer counts bytes only as a 1 s rate: sample it every second.
  const rates = [];
  for (let t = 0; t < seconds; t++) {
    await sleep(1000);
    rates.push(await page.evaluate(() => window.__framecast.stats().bitrate_bps || 0));
  }
  const { log, after } = await page.evaluate(() => ({
    log: window.__framecast.frameLog,
    after: (({ keyframes, decode_errors, recoveries }) => ({ keyframes, decode_errors, recoveries }))(window.__framecast.stats()),
  }));
  if (log.length === 0) {
    console.error("netview: no frame displayed");
    process.exit(1);
  }
  const lat = offsetUs === null ? [] : log.map((e) => e[2] - (e[1] + offsetUs) / 1000).sort((a, b) => a - b);
  const shown = log.map((e) => e[2]);
  let gap = 0;
  for (let i = 1; i < shown.length; i++) gap = Math.max(gap, shown[i] - shown[i - 1]);
  const span = (shown.at(-1) - shown[0]) / 1000 || seconds;
  const round = (v) => Math.round(v * 1000) / 1000;
  console.log(JSON.stringify({
    viewer: "chromium",
    viewers: 1,
    seconds,
    fps_per_viewer: round(log.length / span),
    keyframes_per_s_per_viewer: round((after.keyframes - before.keyframes) / span),
    latency_ms: lat.length ? { p50: round(quantile(lat, 0.5)), p95: round(quantile(lat, 0.95)), p99: round(quantile(lat, 0.99)) } : null,
    max_gap_ms: round(gap),
    mbps: round(rates.reduce((a, b) => a + b, 0) / rates.length / 1e6),
    // WebCodecs decode errors and decoder rebuilds over the whole visit.
    decode_errors: after.decode_errors,
    decoder_recoveries: after.recoveries,
  }));
} finally {
  await browser.close();
}
