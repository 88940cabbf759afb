// Chromium's <video> plays framecast's fast-start MP4 and shows the test card's colours.
//
// The page seeks into the file, draws the frame into a canvas and reports the size, duration and
// the colour at the centre of every test-card patch. Observed with Chromium 156 headless
// (--disable-gpu): its software path converts BT.709 video with BT.601 coefficients, for
// libx264's BT.709 files as much as for ours (75% blue, 191, shows as ~181). So BT.601 streams
// are checked against the patch colours, and BT.709 streams against what the same browser shows
// for a libx264 encode of the same picture.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { launchBrowser, newPage, staticServer, waitInPage, testCardPatches, FRAMECAST } from "./lib.js";

const W = 640;
const H = 360;
const PATCHES = testCardPatches(W, H);
const POINTS = PATCHES.map((p) => [p.x + Math.floor(p.w / 2), p.y + Math.floor(p.h / 2)]);

const PAGE = `<!doctype html><html><body><video id=v muted playsinline></video><pre id=out>pending</pre>
<script>
const v = document.getElementById('v'), out = document.getElementById('out');
const q = new URLSearchParams(location.search);
const points = JSON.parse(q.get('points'));
v.addEventListener('error', () => { out.textContent = 'ERROR ' + (v.error && v.error.message); });
v.addEventListener('loadeddata', () => { v.currentTime = Number(q.get('at')); });
v.addEventListener('seeked', () => {
  const c = document.createElement('canvas'); c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext('2d'); g.drawImage(v, 0, 0);
  const px = points.map(([x, y]) => Array.from(g.getImageData(x, y, 1, 1).data.slice(0, 3)));
  out.textContent = JSON.stringify({ w: v.videoWidth, h: v.videoHeight, d: v.duration, px });
});
v.src = '/media/' + q.get('file');
</script></body></html>`;

function framecast(args) {
  execFileSync(FRAMECAST, args, { stdio: ["ignore", "ignore", "inherit"] });
}

function ffmpeg(args) {
  execFileSync("ffmpeg", ["-v", "error", "-y", ...args], { stdio: ["ignore", "ignore", "inherit"] });
}

function compare(got, want, tolerance) {
  const lines = PATCHES.map((p, i) => `${p.name}: Chromium shows ${JSON.stringify(got[i])}, expected ${JSON.stringify(want[i])}`);
  const worst = Math.max(...got.map((g, i) => Math.max(...g.map((v, c) => Math.abs(v - want[i][c])))));
  assert.ok(worst <= tolerance, `a patch is off by ${worst}:\n${lines.join("\n")}`);
}

describe("MP4 in <video>", () => {
  let dir, server, browser;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "framecast-mp4-"));
    const card = ["encode", "--pattern", "testcard", "--size", `${W}x${H}`, "--frames", "30", "-q"];
    framecast([...card, "--color", "bt601", "-o", path.join(dir, "bt601.mp4")]);
    framecast([...card, "-o", path.join(dir, "bt709.mp4")]);
    // libx264 with BT.709 limited signalling, from the same RGB pictures (our BT.709 stream
    // decoded by ffmpeg, which honours the VUI), 30 frames.
    framecast([...card, "-o", path.join(dir, "bt709.h264")]);
    ffmpeg(["-i", path.join(dir, "bt709.h264"), "-f", "rawvideo", "-pix_fmt", "rgb24", path.join(dir, "card.rgb")]);
    ffmpeg([
      "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", `${W}x${H}`, "-r", "30", "-i", path.join(dir, "card.rgb"),
      "-vf", "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p", "-c:v", "libx264",
      "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv",
      path.join(dir, "x264.mp4"),
    ]);
    server = await staticServer({ routes: { "/media/": dir }, extra: { "/page.html": ["text/html", PAGE] } });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function sample(file) {
    const page = await newPage(browser);
    const q = new URLSearchParams({ file, at: "0.5", points: JSON.stringify(POINTS) });
    await page.goto(`${server.url}/page.html?${q}`);
    const text = await waitInPage(page, () => {
      const t = document.getElementById("out").textContent;
      return t !== "pending" && t;
    }, undefined, `${file} to play`);
    await page.close();
    assert.ok(!text.startsWith("ERROR"), `${file}: ${text}`);
    return JSON.parse(text);
  }

  it("plays a BT.601 MP4 with the test card's patch colours", async () => {
    const v = await sample("bt601.mp4");
    assert.deepEqual([v.w, v.h], [W, H]);
    assert.ok(Math.abs(v.d - 1.0) < 0.01, `duration ${v.d}`);
    compare(v.px, PATCHES.map((p) => p.rgb), 6);
  });

  it("shows a BT.709 MP4 as it shows libx264's BT.709 encode of the same picture", async () => {
    const ours = await sample("bt709.mp4");
    const peer = await sample("x264.mp4");
    assert.deepEqual([ours.w, ours.h], [W, H]);
    compare(ours.px, peer.px, 4);
  });
});
