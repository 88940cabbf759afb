// Peer test: framecast's viewer against the pdum.rfb 0.3 Python server (its own test-pattern
// demo server, from the PyPI wheel installed by scripts/browser-test.sh into .peer/).
//
// The pattern is pdum's `render_test_pattern`: four flat quadrants whose colours rotate by frame
// (quadrant q shows COLOURS[(q + k) % 4] for the server's frame counter k). Inputs are checked
// through pdum's own `/recorded-events` endpoint.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  launchBrowser, newPage, staticServer, startServer, freePort, waitFrames, waitInPage, readCanvas,
  VIEWER_DIR, PEER_PY, haveFile, sleep,
} from "./lib.js";

const W = 640;
const H = 360;
const QUADRANT_COLOURS = [[220, 40, 40], [40, 200, 40], [40, 40, 220], [220, 200, 40]];

const skip = haveFile(PEER_PY) ? false : `no pdum.rfb peer at ${PEER_PY} (run scripts/browser-test.sh)`;

const dist = (a, b) => Math.max(...a.map((v, i) => Math.abs(v - b[i])));

/** Index of the nearest quadrant colour and its distance. */
function classify(rgb) {
  let best = 0;
  for (let i = 1; i < 4; i++) if (dist(rgb, QUADRANT_COLOURS[i]) < dist(rgb, QUADRANT_COLOURS[best])) best = i;
  return { index: best, d: dist(rgb, QUADRANT_COLOURS[best]) };
}

async function checkQuadrants(page, tolerance) {
  const c = await readCanvas(page);
  assert.equal(c.width, W);
  assert.equal(c.height, H);
  // 40x40 blocks in the middle of each quadrant (away from the edges where chroma bleeds).
  const centres = [[W / 4, H / 4], [(3 * W) / 4, H / 4], [W / 4, (3 * H) / 4], [(3 * W) / 4, (3 * H) / 4]];
  const got = centres.map(([x, y]) => c.mean(x - 20, y - 20, 40, 40).map(Math.round));
  const cls = got.map(classify);
  const k = (cls[0].index + 4) % 4; // quadrant 0 shows COLOURS[k]
  cls.forEach((q, i) => {
    assert.equal(q.index, (i + k) % 4, `quadrant ${i} shows ${got[i]}, expected the rotation of quadrant 0 (${got})`);
    assert.ok(q.d <= tolerance, `quadrant ${i}: ${got[i]} is ${q.d} from ${QUADRANT_COLOURS[q.index]} (tolerance ${tolerance})`);
  });
}

async function recorded(port) {
  const r = await fetch(`http://127.0.0.1:${port}/recorded-events`);
  return r.json();
}

describe("framecast viewer against the pdum.rfb 0.3 server", { skip }, () => {
  let pdum, port, site, browser;

  before(async () => {
    port = await freePort();
    pdum = await startServer(PEER_PY, ["-m", "pdum.rfb.server", "--test-pattern", "--record-events",
      "--width", String(W), "--height", String(H), "--port", String(port), "--stats-interval", "0.5"], port);
    site = await staticServer({ routes: { "/viewer/": VIEWER_DIR } });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await site?.close();
    await pdum?.stop();
  });

  const pageUrl = (extra = "") => `${site.url}/?ws=ws://127.0.0.1:${port}/${extra}`;

  it("displays pdum's H.264 test pattern through WebCodecs (when the peer has PyAV) and acks on display", async (t) => {
    const page = await newPage(browser);
    await page.goto(pageUrl());
    await waitFrames(page, 10);
    const cfg = await page.evaluate(() => window.__framecast.config);
    if (cfg.transport !== "webcodecs") t.diagnostic(`peer offered ${cfg.transport} (no PyAV in .peer?)`);
    // Colour conversion differs between pdum's swscale (BT.601 matrix, untagged) and Chromium's
    // decoder (BT.709 for untagged streams): up to ~25 levels on saturated colours. Classification
    // by the nearest of the four quadrant colours is what matters; the bound only rejects garbage.
    await checkQuadrants(page, cfg.transport === "webcodecs" ? 40 : 12);
    const s = await waitInPage(page, () => {
      const s = window.__framecast.stats();
      return s.sent && s.sent.ack >= 10 && s.rtt_ms !== null ? s : null;
    }, null, "acks and a server stats message");
    assert.equal(s.sent.hello, 1);
    assert.ok(s.sent.set_viewport >= 1);
    assert.ok(s.sent.ack <= s.displayed, "acks are sent for displayed frames only");
    await page.close();
  });

  it("displays the image transport when the viewer advertises JPEG/PNG only", async () => {
    const page = await newPage(browser);
    await page.goto(pageUrl("&transport=image"));
    await waitFrames(page, 5);
    const cfg = await page.evaluate(() => window.__framecast.config);
    assert.equal(cfg.transport, "image");
    const f = await page.evaluate(() => window.__framecast.lastFrame);
    assert.equal(f.type, "image_frame");
    assert.equal(f.mime, "image/jpeg");
    await checkQuadrants(page, 12);
    await page.close();
  });

  for (const [fit, viewport, dpr, css] of [
    // 800x450 CSS px, contain: scale 1.25, no bars. Frame (480, 90) is at CSS (600, 112.5).
    ["contain", { width: 800, height: 450 }, 1, [600, 112.5]],
    // 800x600, contain: scale 1.25, bars of 75 px top and bottom. (480, 90) -> (600, 187.5).
    ["contain", { width: 800, height: 600 }, 2, [600, 187.5]],
    // 800x600, cover: scale 600/360, x offset (800 - 1066.67)/2. (480, 90) -> (666.67, 150).
    ["cover", { width: 800, height: 600 }, 1, [666.6667, 150]],
    // 800x600, fill: x scale 1.25, y scale 1.6667. (480, 90) -> (600, 150).
    ["fill", { width: 800, height: 600 }, 1, [600, 150]],
  ]) {
    it(`maps a click to frame pixel (480, 90) with fit=${fit}, ${viewport.width}x${viewport.height} CSS px, dpr ${dpr}`, async () => {
      const context = await browser.newContext({ viewport, deviceScaleFactor: dpr });
      const page = await context.newPage();
      page.logs = [];
      page.on("console", (m) => page.logs.push(`[${m.type()}] ${m.text()}`));
      await fetch(`http://127.0.0.1:${port}/recorded-events/reset`);
      await page.goto(pageUrl(`&fit=${fit}`));
      await waitFrames(page, 2);
      await page.mouse.move(css[0], css[1]);
      await page.mouse.down({ button: "right" });
      await page.mouse.up({ button: "right" });
      await page.mouse.click(css[0], css[1]);
      await page.mouse.wheel(0, 120);
      await page.keyboard.down("Shift");
      await page.keyboard.press("KeyA");
      await page.keyboard.up("Shift");
      let events = [];
      for (let i = 0; i < 100; i++) {
        events = await recorded(port);
        if (events.some((e) => e.type === "key_up" && e.code === "ShiftLeft")) break;
        await sleep(100);
      }
      const resize = events.find((e) => e.type === "resize");
      assert.ok(resize, `a resize (set_viewport) event: ${JSON.stringify(events)}`);
      assert.deepEqual([resize.width, resize.height, resize.ratio], [viewport.width, viewport.height, dpr]);
      assert.deepEqual([resize.pwidth, resize.pheight], [viewport.width * dpr, viewport.height * dpr]);
      const downs = events.filter((e) => e.type === "pointer_down");
      assert.equal(downs.length, 2, JSON.stringify(events));
      for (const d of downs) {
        assert.ok(Math.abs(d.x - 480) < 0.51 && Math.abs(d.y - 90) < 0.51, `pointer_down at (${d.x}, ${d.y})`);
        assert.equal(d.inside, true);
        assert.equal(d.pixel_ratio, dpr);
      }
      assert.deepEqual([downs[0].button, downs[0].buttons], [2, [2]], "right button");
      assert.deepEqual([downs[1].button, downs[1].buttons], [1, [1]], "left button");
      const up = events.filter((e) => e.type === "pointer_up").at(-1);
      assert.deepEqual([up.button, up.buttons], [1, []]);
      const wheel = events.find((e) => e.type === "wheel");
      // WheelEvent client coordinates are whole CSS pixels in Chromium (PointerEvent ones are
      // fractional), and the synthetic wheel's delta is scaled by the DPR: check sign and place.
      assert.ok(wheel && wheel.dy > 0 && wheel.dx === 0, `wheel: ${JSON.stringify(wheel)}`);
      assert.ok(Math.abs(wheel.x - 480) <= 1 && Math.abs(wheel.y - 90) <= 1, `wheel at (${wheel.x}, ${wheel.y})`);
      const keyA = events.find((e) => e.type === "key_down" && e.code === "KeyA");
      assert.ok(keyA, "key_down KeyA");
      assert.equal(keyA.key, "A");
      assert.deepEqual(keyA.modifiers, ["Shift"]);
      assert.ok(typeof keyA.timestamp === "number");
      await context.close();
    });
  }

  it("recovers from a forced decoder reset (decoder_reset + request_keyframe, frames resume)", async () => {
    const page = await newPage(browser);
    await page.goto(pageUrl());
    await waitFrames(page, 5);
    const before = await page.evaluate(() => ({ frames: window.__framecast.frames, seq: window.__framecast.lastFrame.seq }));
    await page.evaluate(() => window.__framecast.forceDecoderReset());
    await waitFrames(page, 10, before.frames);
    // stats() is a snapshot the worker refreshes every 500 ms: wait for one taken after the reset.
    const s = await waitInPage(page, () => {
      const st = window.__framecast.stats();
      return st && st.recoveries >= 1 ? st : null;
    }, null, "a stats snapshot that counts the recovery");
    assert.ok(s.sent.decoder_reset >= 1 && s.sent.request_keyframe >= 1, JSON.stringify(s.sent));
    const last = await page.evaluate(() => window.__framecast.lastFrame.seq);
    assert.ok(last > before.seq);
    await page.close();
  });
  it("stall watchdog: a decoder that holds its output is rebuilt after 1.2 s and frames resume", async () => {
    const page = await newPage(browser);
    await page.goto(pageUrl());
    await waitFrames(page, 5);
    await page.evaluate(() => window.__framecast.simulateStall());
    await waitInPage(page, () => window.__framecast.stats().recoveries >= 1, null, "a watchdog recovery");
    const after = await page.evaluate(() => window.__framecast.frames);
    await waitFrames(page, 5, after);
    const s = await page.evaluate(() => window.__framecast.stats());
    assert.ok(s.sent.decoder_reset >= 1 && s.sent.request_keyframe >= 1, JSON.stringify(s.sent));
    await page.close();
  });

  it("drops work while hidden and asks for a keyframe when visible again", async () => {
    const page = await newPage(browser);
    await page.goto(pageUrl());
    await waitFrames(page, 5);
    await page.evaluate(() => window.__framecast.setHidden(true));
    // Once the hidden notice has reached the worker, nothing more is displayed.
    // (Worker -> page messages are ordered: once a stats snapshot counts a drop, every frame
    // notice posted before the worker saw "hidden" has arrived.)
    await waitInPage(page, () => window.__framecast.stats().dropped > 0, null, "frames dropped while hidden");
    const hiddenFrames = await page.evaluate(() => window.__framecast.frames);
    await sleep(300);
    assert.equal(await page.evaluate(() => window.__framecast.frames), hiddenFrames, "no frame displayed while hidden");
    const sent = await page.evaluate(() => window.__framecast.stats().sent);
    await page.evaluate(() => window.__framecast.setHidden(false));
    await waitFrames(page, 5, hiddenFrames);
    // stats() is refreshed every 500 ms: wait for a snapshot taken after the return.
    const s = await waitInPage(page, (before) => {
      const st = window.__framecast.stats();
      return st && st.sent.request_keyframe > before.request_keyframe ? st : null;
    }, sent, "a stats snapshot taken after the viewer returned");
    assert.ok(s.sent.request_keyframe > sent.request_keyframe, "request_keyframe on return");
    assert.ok(s.sent.decoder_reset > sent.decoder_reset, "decoder_reset on return (in-flight frames were dropped)");
    const f = await page.evaluate(() => window.__framecast.lastFrame);
    await page.close();
    assert.ok(f.seq > 0);
  });
});
