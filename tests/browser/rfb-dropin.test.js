// framecast.rfb as a drop-in for pdum.rfb 0.3: the programs in python/examples/rfb/ are
// written as pdum.rfb's documentation shows (its quick start, the async events() iterator, the
// add_stream hub). Each runs twice: as written (`import framecast.rfb as rfb`, framecast's
// Python package from .venv/) and with that import changed to `import pdum.rfb as rfb` and
// nothing else (the pdum.rfb 0.3 peer in .peer/). Both times two viewers watch it, framecast's
// viewer and pdum.rfb's own viewer bundle (from its PyPI wheel), and each must show the frame's
// colour quadrants and send a click that the program prints as the right pdum event.
//
// Needs FRAMECAST_PYTHON (default .venv/bin/python) with framecast installed and the pdum
// peer (scripts/browser-test.sh installs it). FRAMECAST_REQUIRE_PYTHON=1 (scripts/test.sh)
// turns a missing framecast package into a failure instead of a skip.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, readdir, readFile, writeFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  launchBrowser, newPage, staticServer, startServer, freePort, waitFrames, waitInPage, readCanvas,
  VIEWER_DIR, PEER_PY, ROOT, haveFile, sleep,
} from "./lib.js";

const FC_PY = process.env.FRAMECAST_PYTHON || path.join(ROOT, ".venv/bin/python");
const EXAMPLES = path.join(ROOT, "python/examples/rfb");
const W = 640;
const H = 360;
const QUADRANTS = [[220, 40, 40], [40, 200, 40], [40, 40, 220], [230, 230, 230]];

function importable(py, module) {
  try {
    execFileSync(py, ["-c", `import ${module}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
const noFramecast = !importable(FC_PY, "framecast.rfb") && `no framecast package at ${FC_PY}`;
if (noFramecast && process.env.FRAMECAST_REQUIRE_PYTHON === "1") throw new Error(`${noFramecast}; scripts/test.sh installs it`);
const noPdum = !(haveFile(PEER_PY) && importable(PEER_PY, "pdum.rfb")) && `no pdum.rfb peer at ${PEER_PY}`;

function pdumStaticDir() {
  return execFileSync(PEER_PY, ["-c", "import pdum.rfb, os; print(os.path.join(os.path.dirname(pdum.rfb.__file__), 'static'))"],
    { encoding: "utf8" }).trim();
}

/** The programs with `framecast.rfb` replaced by `pdum.rfb` (the only change), in `dir`. */
async function pdumCopies(dir) {
  for (const f of await readdir(EXAMPLES)) {
    if (!f.endsWith(".py")) continue;
    const text = await readFile(path.join(EXAMPLES, f), "utf8");
    await writeFile(path.join(dir, f), text.replaceAll("framecast.rfb", "pdum.rfb"));
  }
}

const dist = (a, b) => Math.max(...a.map((v, i) => Math.abs(v - b[i])));

/** Mean RGB of a 20x20 block at the centre of each quadrant of a `fw` x `fh` RGBA buffer. */
function quadrantMeans(data, fw, fh) {
  return [0, 1, 2, 3].map((q) => {
    const cx = Math.round(((q % 2) * 2 + 1) * fw / 4);
    const cy = Math.round((Math.floor(q / 2) * 2 + 1) * fh / 4);
    const s = [0, 0, 0];
    for (let y = cy - 10; y < cy + 10; y++) for (let x = cx - 10; x < cx + 10; x++) {
      const k = 4 * (y * fw + x);
      s[0] += data[k]; s[1] += data[k + 1]; s[2] += data[k + 2];
    }
    return s.map((v) => Math.round(v / 400));
  });
}

function assertQuadrants(means, tolerance, what) {
  means.forEach((got, q) => assert.ok(dist(got, QUADRANTS[q]) <= tolerance,
    `${what}: quadrant ${q} is ${got}, expected ${QUADRANTS[q]} (±${tolerance})`));
}

/** Clicks CSS (x, y) of an 800x450 page (frame scaled by 800/frame width, contain). */
async function click(page, x, y) {
  await page.mouse.move(x, y);
  await page.mouse.down();
  await page.mouse.up();
}

/** Waits until the program printed a pointer_down near frame pixel (fx, fy) of `stream`. */
async function waitClick(proc, fx, fy, stream) {
  const deadline = Date.now() + 20000;
  for (;;) {
    const events = proc.output().split("\n").filter((l) => l.startsWith("{")).map((l) => {
      try {
        return JSON.parse(l);
      } catch {
        return null;
      }
    }).filter(Boolean);
    const down = events.find((e) => e.type === "pointer_down" && (!stream || e.stream === stream) &&
      Math.abs(e.x - fx) <= 1.5 && Math.abs(e.y - fy) <= 1.5);
    if (down) return down;
    if (Date.now() > deadline) {
      throw new Error(`no pointer_down at (${fx}, ${fy})${stream ? ` on ${stream}` : ""}; program printed:\n${proc.output()}`);
    }
    await sleep(100);
  }
}

const PROGRAMS = [
  // [file, path of the stream the framecast viewer watches, of the one pdum's viewer watches, frame sizes]
  ["quickstart.py", "", "", [W, H], [W, H]],
  ["events.py", "", "", [W, H], [W, H]],
  ["hub.py", "camera", "depth", [W, H], [W / 2, H / 2]],
];

for (const runtime of ["framecast", "pdum"]) {
  const skip = noFramecast || noPdum;
  describe(`pdum.rfb 0.3 programs on ${runtime === "framecast" ? "framecast.rfb" : "pdum.rfb (the peer)"}`, { skip }, () => {
    let dir, site, browser;
    before(async () => {
      dir = await mkdtemp(path.join(tmpdir(), "framecast-rfb-"));
      if (runtime === "pdum") await pdumCopies(dir);
      site = await staticServer({
        routes: { "/viewer/": VIEWER_DIR, "/pdum/": pdumStaticDir(), "/pages/": path.join(ROOT, "tests/browser/pages") },
      });
      browser = await launchBrowser();
    });
    after(async () => {
      await browser?.close();
      await site?.close();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    for (const [file, fcPath, pdumPath, fcSize, pdumSize] of PROGRAMS) {
      it(`${file}: framecast's and pdum's viewers show it and their clicks arrive`, async () => {
        // pdum.rfb's libx264 path converts with the BT.601 matrix and leaves the stream
        // untagged, which Chromium decodes as BT.709: saturated colours move by up to ~25
        // levels, so its bound only rejects wrong pictures. framecast tags BT.709.
        const tolerance = runtime === "framecast" ? [12, 20] : [40, 40];
        const port = await freePort();
        const py = runtime === "framecast" ? FC_PY : PEER_PY;
        const cwd = runtime === "framecast" ? EXAMPLES : dir;
        const prog = await startServer(py, [path.join(cwd, file), "--port", String(port)], port,
          { env: { PYTHONUNBUFFERED: "1", PYTHONPATH: cwd } });
        try {
          // framecast's viewer (800x450 page, the canvas fills it).
          const fc = await newPage(browser);
          await fc.goto(`${site.url}/?ws=ws://127.0.0.1:${port}/${fcPath}`);
          await waitFrames(fc, 3);
          const c = await readCanvas(fc);
          assert.deepEqual([c.width, c.height], fcSize);
          const fcMeans = [0, 1, 2, 3].map((q) => c.mean(((q % 2) * 2 + 1) * fcSize[0] / 4 - 10,
            (Math.floor(q / 2) * 2 + 1) * fcSize[1] / 4 - 10, 20, 20).map(Math.round));
          assertQuadrants(fcMeans, tolerance[0], `framecast viewer on ${runtime}`);

          // pdum.rfb's own viewer (its anywidget bundle in an 800x450 root).
          const pd = await newPage(browser);
          await pd.goto(`${site.url}/pages/pdum-viewer.html?ws=ws://127.0.0.1:${port}/${pdumPath}`);
          await waitInPage(pd, () => window.__rfb && window.__rfb.stats().framesDisplayed >= 3, null, "pdum viewer frames");
          const img = await pd.evaluate(async () => {
            const d = await window.__rfb.capture("imagedata");
            return { width: d.width, height: d.height, data: Array.from(d.data) };
          });
          assertQuadrants(quadrantMeans(img.data, img.width, img.height), tolerance[1], `pdum viewer on ${runtime}`);

          // Clicks: frame (w/4, h/4) in framecast's viewer, (3w/4, 3h/4) in pdum's; both pages
          // show the frame at 800 CSS px wide, so CSS = frame * 800 / width.
          await click(fc, 200, 112.5);
          await waitClick(prog, fcSize[0] / 4, fcSize[1] / 4, fcPath || undefined);
          await click(pd, 600, 337.5);
          await waitClick(prog, (3 * pdumSize[0]) / 4, (3 * pdumSize[1]) / 4, pdumPath || undefined);
          await fc.close();
          await pd.close();
        } finally {
          await prog.stop();
        }
      });
    }
  });
}
