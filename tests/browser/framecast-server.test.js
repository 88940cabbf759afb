// framecast's viewer (served by framecast itself) against `framecast serve --pattern testcard`,
// and pdum.rfb 0.3's own viewer bundle against the same server.
//
// Colour check of the H.264 path. framecast encodes BT.709 limited range (and says so in the
// VUI). Chromium's software WebCodecs path (headless, --disable-gpu) draws VideoFrames into a 2D
// canvas with BT.601 coefficients whatever the VUI says (observed: 75% blue, 191, comes out as
// ~181). So each patch's expected colour is computed for both decoder hypotheses (BT.709 and
// BT.601 inverse of our BT.709 forward conversion); every patch must match ONE hypothesis, the
// same for all patches, within a tolerance for coding error. A wrong range (full vs limited),
// swapped planes or misplaced patches miss both by far more than the tolerance.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import path from "node:path";
import {
  launchBrowser, newPage, staticServer, startServer, freePort, waitFrames, waitInPage, readCanvas, WAIT_MS,
  testCardPatches, FRAMECAST, PEER_PY, ROOT, haveFile, sleep, within,
} from "./lib.js";

const W = 640;
const H = 360;

function serveHelp() {
  try {
    return execFileSync(FRAMECAST, ["serve", "--help"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    return "";
  }
}
const help = haveFile(FRAMECAST) ? serveHelp() : "";
const skip = !haveFile(FRAMECAST)
  ? `no framecast binary at ${FRAMECAST}`
  : !/--pattern/.test(help) ? "`framecast serve --pattern` is not available in this build" : false;

/** Arguments of `framecast serve` for the test card at W x H on `port`. */
function serveArgs(port, extra = []) {
  return ["serve", "--pattern", "testcard", "--size", `${W}x${H}`, "--listen", `127.0.0.1:${port}`, ...extra];
}

// --- colour expectations ------------------------------------------------------------------
const KR709 = 0.2126, KB709 = 0.0722;
function rgbToYuv709Limited([r, g, b]) {
  const [R, G, B] = [r / 255, g / 255, b / 255];
  const y = KR709 * R + (1 - KR709 - KB709) * G + KB709 * B;
  const cb = (B - y) / (2 * (1 - KB709));
  const cr = (R - y) / (2 * (1 - KR709));
  return [16 + 219 * y, 128 + 224 * cb, 128 + 224 * cr];
}
function yuvLimitedToRgb([y, cb, cr], kr, kb) {
  const Y = (y - 16) / 219, Cb = (cb - 128) / 224, Cr = (cr - 128) / 224;
  const R = Y + 2 * (1 - kr) * Cr;
  const B = Y + 2 * (1 - kb) * Cb;
  const G = (Y - kr * R - kb * B) / (1 - kr - kb);
  return [R, G, B].map((v) => Math.min(255, Math.max(0, v * 255)));
}
const expected709 = (rgb) => yuvLimitedToRgb(rgbToYuv709Limited(rgb), KR709, KB709);
const expected601 = (rgb) => yuvLimitedToRgb(rgbToYuv709Limited(rgb), 0.299, 0.114);
const dist = (a, b) => Math.max(...a.map((v, i) => Math.abs(v - b[i])));

/** Mean colour of the central half of each test-card patch. */
async function patchColours(page) {
  const c = await readCanvas(page);
  assert.equal(c.width, W, "canvas backing store is the frame size");
  assert.equal(c.height, H);
  return testCardPatches(W, H).map((p) => {
    const x = p.x + Math.floor(p.w / 4), y = p.y + Math.floor(p.h / 4);
    return { ...p, got: c.mean(x, y, Math.floor(p.w / 2), Math.floor(p.h / 2)).map(Math.round) };
  });
}

function assertPatchesVideo(patches, tolerance) {
  const fits = { "BT.709": expected709, "BT.601": expected601 };
  const report = Object.entries(fits).map(([name, f]) => ({
    name,
    worst: Math.max(...patches.map((p) => dist(p.got, f(p.rgb)))),
  }));
  const best = report.reduce((a, b) => (a.worst <= b.worst ? a : b));
  const table = patches.map((p) => `${p.name}: got ${p.got} want ${p.rgb} (709 ${expected709(p.rgb).map(Math.round)}, 601 ${expected601(p.rgb).map(Math.round)})`).join("\n");
  assert.ok(best.worst <= tolerance,
    `no decoder-matrix hypothesis fits every patch within ${tolerance}: ${JSON.stringify(report)}\n${table}`);
  return best.name;
}

function assertPatchesImage(patches, tolerance) {
  for (const p of patches) {
    assert.ok(dist(p.got, p.rgb) <= tolerance, `${p.name}: got ${p.got}, want ${p.rgb} ± ${tolerance}`);
  }
}

describe("framecast viewer against framecast serve", { skip }, () => {
  let server, port, base, browser;

  before(async () => {
    port = await freePort();
    base = `http://127.0.0.1:${port}`;
    server = await startServer(FRAMECAST, serveArgs(port, ["--stats-interval", "0.5"]), port);
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it("shows the test card's colour patches through WebCodecs", async (t) => {
    const page = await newPage(browser);
    await page.goto(`${base}/`);
    await waitFrames(page, 10);
    const cfg = await page.evaluate(() => window.__framecast.config);
    assert.equal(cfg.transport, "webcodecs");
    assert.match(cfg.codec || "", /^avc1\.[0-9A-Fa-f]{6}$/);
    assert.equal(cfg.backend, "openh264"); // framecast's extension of pdum's config
    const f = await page.evaluate(() => window.__framecast.lastFrame);
    assert.equal(f.type, "video_chunk");
    const matrix = assertPatchesVideo(await patchColours(page), 10);
    t.diagnostic(`Chromium's conversion matched the ${matrix} hypothesis`);
    await page.close();
  });

  it("shows the test card's colour patches through the image transport (viewer advertises JPEG/PNG only)", async () => {
    const page = await newPage(browser);
    await page.goto(`${base}/?transport=image`);
    await waitFrames(page, 5);
    const cfg = await page.evaluate(() => window.__framecast.config);
    assert.equal(cfg.transport, "image");
    assert.equal(cfg.backend, "jpeg");
    const f = await page.evaluate(() => window.__framecast.lastFrame);
    assert.equal(f.type, "image_frame");
    assertPatchesImage(await patchColours(page), 8);
    await page.close();
  });

  it("recovers after a forced decoder reset: decoder_reset and request_keyframe sent, a keyframe, frames resume", async () => {
    const page = await newPage(browser);
    await page.goto(`${base}/`);
    await waitFrames(page, 5);
    const before = await page.evaluate(() => ({ frames: window.__framecast.frames, keyframes: window.__framecast.stats().keyframes }));
    await page.evaluate(() => window.__framecast.forceDecoderReset());
    await waitFrames(page, 10, before.frames);
    // stats() is a snapshot the worker refreshes every 500 ms: wait for one taken after the reset.
    const s = await waitInPage(page, () => {
      const st = window.__framecast.stats();
      return st && st.recoveries >= 1 ? st : null;
    }, null, "a stats snapshot that counts the recovery");
    assert.ok(s.sent.decoder_reset >= 1, JSON.stringify(s.sent));
    assert.ok(s.sent.request_keyframe >= 1, JSON.stringify(s.sent));
    // The server saw the reset (its metrics count decoder_reset messages per viewer).
    const m = await (await fetch(`${base}/streams/default/metrics`)).json();
    const resets = JSON.stringify(m).match(/"decoder_resets":(\d+)/g) || [];
    assert.ok(resets.some((r) => Number(r.split(":")[1]) >= 1), `server metrics show a decoder_reset: ${JSON.stringify(m)}`);
    await page.close();
  });

  it("a viewer that stops acknowledging is recovered with a P-frame: no IDR for anyone, WebCodecs keeps decoding", async () => {
    const metrics = async () => (await fetch(`${base}/streams/default/metrics`)).json();
    const [a, b] = [await newPage(browser), await newPage(browser)];
    // B joins only once A is displaying, so B is the newest viewer the server knows (its
    // metrics list viewers by id; two pages loading at once connect in either order).
    await a.goto(`${base}/`);
    await waitFrames(a, 15);
    await b.goto(`${base}/`);
    await waitFrames(b, 15);
    // Both pages share one encoder group: the only IDRs so far are the joins'.
    const m0 = await metrics();
    const vb0 = m0.viewers.at(-1);
    const g0 = m0.groups.find((g) => g.id === vb0.group);
    assert.equal(g0.viewers, 2, JSON.stringify(m0.groups));
    const b0 = await b.evaluate(() => ({ frames: window.__framecast.frames }));
    // B keeps displaying what it has but acknowledges nothing for a second: the server fills
    // its window, waits for its ack (its usual round trip plus 100 ms; longer on a loaded
    // machine), and leaves it behind: B misses frames its group encodes. Read the server's
    // metrics as soon as B is back, before congestion control, which reads the silence as
    // a slow link, could move it to a tier of its own (that costs a keyframe, 2 s later).
    await b.evaluate(() => window.__framecast.holdAcks(1000));
    let m1 = null;
    for (const deadline = Date.now() + WAIT_MS; Date.now() < deadline && !m1; await sleep(50)) {
      const m = await metrics();
      if (m.viewers.find((v) => v.id === vb0.id)?.recovered_without_keyframe >= 1) m1 = m;
    }
    assert.ok(m1, `B came back with a recovery P-frame: ${JSON.stringify((await metrics()).viewers)}`);
    const vb = m1.viewers.find((v) => v.id === vb0.id);
    const g1 = m1.groups.find((g) => g.id === g0.id);
    assert.ok(vb.recoveries + vb.backstops >= 1, `B was left behind: ${JSON.stringify(vb)}`);
    assert.equal(vb.group, g0.id, "B stayed in its group");
    assert.equal(g1.keyframes_encoded, g0.keyframes_encoded, `no IDR was encoded: ${JSON.stringify(g1)}`);
    assert.ok(g1.recovery_frames >= 1, JSON.stringify(g1));
    for (const v0 of m0.viewers.filter((v) => v.group === g0.id)) {
      const v1 = m1.viewers.find((v) => v.id === v0.id);
      assert.equal(v1.keyframes_sent, v0.keyframes_sent, `no keyframe was sent to viewer ${v0.id}`);
    }
    // The browser side keeps decoding: no decode error, no decoder rebuild, the right picture.
    await waitFrames(b, 20, b0.frames);
    for (const page of [a, b]) {
      const st = await waitInPage(page, (n) => {
        const st = window.__framecast.stats();
        return st && st.displayed >= n ? st : null;
      }, b0.frames + 20, "a stats snapshot after the recovery");
      assert.equal(st.decode_errors, 0, JSON.stringify(st));
      assert.equal(st.recoveries, 0, JSON.stringify(st));
    }
    // B's silence also looks like a slow link to congestion control, which may have lowered
    // the group's rate: the picture is coarser (a patch 11 off was seen on CI), while a frame
    // decoded from a wrong reference would be far off.
    assertPatchesVideo(await patchColours(b), 16);
    await a.close();
    await b.close();
  });

  it("toggles the stats overlay with 's' and shows transport, fps and RTT", async () => {
    const page = await newPage(browser);
    await page.goto(`${base}/`);
    await waitFrames(page, 5);
    assert.equal(await page.evaluate(() => window.__framecast.statsVisible()), false);
    await page.locator("#view").press("s");
    assert.equal(await page.evaluate(() => window.__framecast.statsVisible()), true);
    const text = await waitInPage(page, () => {
      const el = document.querySelector(".framecast-stats");
      return el && /rtt\s+\d/.test(el.textContent) ? el.textContent : null;
    }, null, "an overlay with an RTT");
    assert.match(text, /transport webcodecs/);
    assert.match(text, /backend\s+openh264/);
    assert.match(text, /fps\s+\d+/);
    await page.locator("#view").press("s");
    assert.equal(await page.evaluate(() => window.__framecast.statsVisible()), false);
    await page.close();
  });

  it("maps header timestamps to wall-clock time with the server's clock pair (publish before display)", async () => {
    const page = await newPage(browser);
    await page.goto(`${base}/`);
    await waitFrames(page, 3);
    const pairs = [];
    for (const p of ["/time", "/streams/default/time", "/streams/default/metrics"]) {
      const j = await (await fetch(base + p)).json();
      const c = j.clock || j;
      assert.ok(Number.isInteger(c.timestamp_us) && Number.isInteger(c.unix_us), `${p}: ${JSON.stringify(j)}`);
      pairs.push(c);
    }
    for (let i = 1; i < pairs.length; i++) {
      assert.ok(pairs[i].timestamp_us >= pairs[i - 1].timestamp_us, JSON.stringify(pairs));
      const drift = (pairs[i].unix_us - pairs[i].timestamp_us) - (pairs[0].unix_us - pairs[0].timestamp_us);
      assert.ok(Math.abs(drift) < 5000, `clock offset drifted ${drift} us: ${JSON.stringify(pairs)}`);
    }
    const offsetUs = pairs[0].unix_us - pairs[0].timestamp_us;
    await page.evaluate(() => { window.__framecast.frameLog = []; window.__framecast.frameLogLimit = 30; });
    await waitInPage(page, () => window.__framecast.frameLog.length >= 30 || null, null, "30 logged frames");
    const log = await page.evaluate(() => window.__framecast.frameLog);
    for (const [seq, ts, displayed, received] of log) {
      const published = (ts + offsetUs) / 1000;
      // Same machine, same wall clock: published <= received <= displayed (1 ms of rounding).
      assert.ok(published <= received + 1 && received <= displayed, `seq ${seq}: ${published} ${received} ${displayed}`);
      assert.ok(displayed - published < 2000, `seq ${seq}: ${displayed - published} ms`);
    }
    await page.close();
  });

  it("shows 'unknown stream' on close code 4404 and does not reconnect", async () => {
    const page = await newPage(browser);
    await page.goto(`${base}/no-such-stream`);
    const st = await waitInPage(page, () => window.__framecast.state === "closed" ? window.__framecast.stateLog.at(-1) : null, null, "closed");
    assert.equal(st.code, 4404);
    assert.match(await page.locator("#status").textContent(), /4404.*unknown stream/);
    await sleep(1500); // longer than the first reconnect delay would be
    const log = await page.evaluate(() => window.__framecast.stateLog);
    // Nothing after the 4404, and no other close before it: the server finishes the closing
    // handshake (reads until the viewer's close frame) instead of dropping the TCP connection
    // with the viewer's hello unread, whose reset could hide the code (1006, then a reconnect).
    const i = log.findIndex((s) => s.code === 4404);
    assert.deepEqual(log.slice(i + 1), [], JSON.stringify(log));
    assert.ok(!log.some((s) => s.state === "reconnecting"), `reconnected before the 4404: ${JSON.stringify(log)}`);
    await page.close();
  });
});

describe("framecast viewer: token rejected (4401)", { skip: skip || (!/--token-env/.test(help) && "no --token-env flag") }, () => {
  it("shows 'unauthorized' and does not reconnect", async () => {
    const port = await freePort();
    const server = await startServer(FRAMECAST, serveArgs(port, ["--token-env", "FRAMECAST_TEST_TOKEN"]), port,
      { env: { FRAMECAST_TEST_TOKEN: "s3cret" } });
    const browser = await launchBrowser();
    try {
      const page = await newPage(browser);
      await page.goto(`http://127.0.0.1:${port}/?token=wrong`);
      const st = await waitInPage(page, () => window.__framecast.state === "closed" ? window.__framecast.stateLog.at(-1) : null, null, "closed");
      assert.equal(st.code, 4401);
      assert.match(await page.locator("#status").textContent(), /4401/);
      await sleep(1500); // longer than the first reconnect delay would be
      const log = await page.evaluate(() => window.__framecast.stateLog);
      const i = log.findIndex((s) => s.code === 4401);
      assert.deepEqual(log.slice(i + 1), [], JSON.stringify(log));
      assert.ok(!log.some((s) => s.state === "reconnecting"), `reconnected before the 4401: ${JSON.stringify(log)}`);
      const ok = await newPage(browser);
      await ok.goto(`http://127.0.0.1:${port}/?token=s3cret`);
      await waitFrames(ok, 3);
    } finally {
      await browser.close();
      await server.stop();
    }
  });
});

const PDUM_STATIC = path.join(ROOT, ".peer/lib");
function pdumStaticDir() {
  try {
    return execFileSync(PEER_PY, ["-c", "import pdum.rfb, os; print(os.path.join(os.path.dirname(pdum.rfb.__file__), 'static'))"],
      { encoding: "utf8", timeout: 60000 }).trim();
  } catch {
    return null;
  }
}

/**
 * In a describe block: `framecast <args(port)>`, a static site with pdum.rfb's viewer page and
 * a browser, started before its tests and stopped after; returns them as they start.
 */
function pdumViewerFixture(args) {
  const ctx = {};
  before(async () => {
    ctx.port = await freePort();
    ctx.server = await startServer(FRAMECAST, args(ctx.port), ctx.port);
    ctx.site = await staticServer({ routes: { "/pdum/": pdumStaticDir(), "/pages/": path.join(ROOT, "tests/browser/pages") } });
    ctx.browser = await launchBrowser();
  });
  after(async () => {
    await ctx.browser?.close();
    await ctx.site?.close();
    await ctx.server?.stop();
  });
  return ctx;
}

describe("pdum.rfb 0.3's own viewer against framecast serve", { skip: skip || (!haveFile(PEER_PY) && `no pdum.rfb peer under ${PDUM_STATIC}`) }, () => {
  const ctx = pdumViewerFixture(serveArgs);

  for (const image of [false, true]) {
    it(`displays frames (${image ? "image-only" : "WebCodecs"})`, async () => {
      const page = await newPage(ctx.browser);
      await page.goto(`${ctx.site.url}/pages/pdum-viewer.html?ws=ws://127.0.0.1:${ctx.port}/${image ? "&image=1" : ""}`);
      const s = await waitInPage(page, () => {
        const s = window.__rfb && window.__rfb.stats();
        return s && s.framesDisplayed >= 10 ? s : null;
      }, null, "10 frames displayed by pdum's viewer");
      assert.equal(s.transport, image ? "image" : "webcodecs");
      assert.equal(s.frameWidth ?? W, W);
      assert.equal(s.frameHeight ?? H, H);
      await page.close();
    });
  }
});

describe("congestion control: a throttled viewer gets set_quality, and pdum.rfb's viewer shows it", { skip: skip || (!haveFile(PEER_PY) && `no pdum.rfb peer under ${PDUM_STATIC}`) }, () => {
  const FULL = 3_000_000;
  const ctx = pdumViewerFixture((port) => ["serve", "--pattern", "plasma", "--size", `${W}x${H}`, "--bitrate", "3M",
    "--listen", `127.0.0.1:${port}`]);

  it("lowers the rate for a viewer on a 400 kb/s connection; pdum's viewer reports the new target", async () => {
    const page = await newPage(ctx.browser);
    await page.goto(`${ctx.site.url}/pages/pdum-viewer.html?ws=ws://127.0.0.1:${ctx.port}/`);
    await waitInPage(page, () => window.__rfb && window.__rfb.stats().framesDisplayed >= 10, null, "10 frames at full speed");
    // DevTools network emulation throttles the page's WebSocket: the server sees a slow link.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Network.enable");
    await cdp.send("Network.emulateNetworkConditions", {
      offline: false, latency: 60, downloadThroughput: 50_000, uploadThroughput: 50_000,
    });
    const s = await waitInPage(page, (full) => {
      const s = window.__rfb.stats();
      return typeof s.targetBitrate === "number" && s.targetBitrate < full / 2 ? s : null;
    }, FULL, "a set_quality below half the configured rate");
    // The server says the same: its metrics show the viewer's controller and group below it.
    const m = await (await fetch(`http://127.0.0.1:${ctx.port}/streams/default/metrics`)).json();
    const v = m.viewers[0];
    const g = m.groups.find((g) => g.id === v.group);
    assert.ok(v.congestion && v.congestion.decreases >= 1, JSON.stringify(v));
    assert.ok(g.target_bitrate < FULL / 2, JSON.stringify(g));
    assert.ok(s.targetFps > 0, JSON.stringify(s));
    // Back to an open connection: the rate climbs back to the configured one.
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    await waitInPage(page, (full) => window.__rfb.stats().targetBitrate === full, FULL, "set_quality back at the configured rate");
    await page.close();
  });
});

// --- the demo: paint scene (input lands at the right frame pixel) and live controls ----------

const demoSkip = skip || (!haveFile(FRAMECAST) && "no binary");
const PAINT_BG = [24, 26, 32];

async function demo(port, scene) {
  return startServer(FRAMECAST, ["demo", "--scene", scene, "--size", `${W}x${H}`, "--listen", `127.0.0.1:${port}`], port);
}

/**
 * Waits until the framecast viewer on `page` shows frame pixel (x, y) away from the paint
 * background; fails after WAIT_MS.
 */
async function waitPainted(page, x, y) {
  const deadline = Date.now() + WAIT_MS;
  let p = null;
  while (Date.now() < deadline) {
    p = await within(page.evaluate(async ([x, y]) => Array.from((await window.__framecast.readPixels(x, y, 1, 1)).data), [x, y]),
      5000, `reading frame pixel (${x}, ${y})`);
    if (Math.max(...PAINT_BG.map((v, i) => Math.abs(v - p[i]))) > 40) return p;
    await sleep(100);
  }
  throw new Error(`no paint at (${x}, ${y}) within ${WAIT_MS} ms: the pixel is ${p}`);
}

/** A short drag with the mouse from CSS (x, y): pressed, moved by `dx`, released. */
async function drag(page, x, y, dx) {
  const m = page.mouse;
  await within((async () => {
    await m.move(x, y);
    await m.down();
    await m.move(x + dx, y);
    await m.up();
  })(), 10000, `the page to take a drag at (${x}, ${y})`);
}

describe("framecast demo: input and controls", { skip: demoSkip }, () => {
  let server, port, base, browser;
  before(async () => {
    port = await freePort();
    base = `http://127.0.0.1:${port}`;
    server = await demo(port, "paint");
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it("a click with fit=cover on a 800x600 page paints at frame pixel (480, 90)", async () => {
    const context = await within(browser.newContext({ viewport: { width: 800, height: 600 }, deviceScaleFactor: 2 }), WAIT_MS, "a new context");
    const page = await context.newPage();
    page.logs = [];
    await page.goto(`${base}/?fit=cover`);
    await waitFrames(page, 3);
    // cover: scale 600/360, x offset (800 - 1066.67) / 2: frame (480, 90) is at CSS (666.67, 150).
    const before = await readCanvas(page);
    assert.ok(before.px(480, 90).every((v, i) => Math.abs(v - PAINT_BG[i]) <= 8), `background at the click point first: ${before.px(480, 90)}`);
    await drag(page, 666.6667, 150, 0.8333);
    await waitPainted(page, 480, 90);
    const c = await readCanvas(page);
    // Far from the click the canvas is still background (the click did not land elsewhere).
    for (const [x, y] of [[160, 90], [480, 270], [560, 90], [400, 90], [480, 20], [480, 160]]) {
      assert.ok(c.px(x, y).every((v, i) => Math.abs(v - PAINT_BG[i]) <= 8), `(${x}, ${y}) = ${c.px(x, y)}`);
    }
    await context.close();
  });

  it("pdum.rfb's viewer drives framecast: its click paints at the frame pixel", { skip: !haveFile(PEER_PY) && "no pdum peer" }, async () => {
    const site = await staticServer({ routes: { "/pdum/": pdumStaticDir(), "/pages/": path.join(ROOT, "tests/browser/pages") } });
    const pages = [];
    try {
      const pdumPage = await newPage(browser); // 800x450 viewport, pdum root 800x450: contain, scale 1.25
      pages.push(pdumPage);
      await pdumPage.goto(`${site.url}/pages/pdum-viewer.html?ws=ws://127.0.0.1:${port}/`);
      await waitInPage(pdumPage, () => window.__rfb && window.__rfb.stats().framesDisplayed >= 3, null, "pdum viewer frames");
      const watcher = await newPage(browser);
      pages.push(watcher);
      await watcher.goto(`${base}/`);
      await waitFrames(watcher, 3);
      // Frame (160, 270) is at CSS (200, 337.5) in pdum's 800x450 contain view.
      await drag(pdumPage, 200, 337.5, 1);
      await waitPainted(watcher, 160, 270);
    } finally {
      await Promise.all(pages.map((p) => within(p.close(), 10000, "closing a page").catch(() => {})));
      await site.close();
    }
  });

  it("shows the demo controls and switches the transport live", async () => {
    const page = await newPage(browser);
    await page.goto(`${base}/`);
    await waitFrames(page, 3);
    await waitInPage(page, () => !document.getElementById("controls").hidden, null, "demo controls");
    assert.equal(await page.evaluate(() => window.__framecast.config.transport), "webcodecs");
    await page.selectOption("#controls select[name=transport]", "image");
    await waitInPage(page, () => window.__framecast.config.transport === "image" && window.__framecast.lastFrame.type === "image_frame",
      null, "image frames after switching");
    await page.selectOption("#controls select[name=transport]", "video");
    await waitInPage(page, () => window.__framecast.config.transport === "webcodecs" && window.__framecast.lastFrame.type === "video_chunk",
      null, "video again");
    await page.close();
  });
});
