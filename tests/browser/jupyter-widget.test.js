// framecast's Jupyter widget in a real JupyterLab (from PyPI, in .venv/) driven in headless
// Chromium: a notebook serves two streams and shows `display.widget()` for each.
//
//   * stream A listens on a free port: the page reaches it, the widget goes direct;
//   * stream B listens on a port Chromium refuses to open (6665-6669 are on its list of
//     unsafe ports), so the page can reach only the Jupyter server: the widget must fall back
//     to the comm relay through the kernel.
//
// For both, the canvas must show the frame's four colour quadrants and a click must arrive in
// the stream's `poll_events()` at the frame pixel clicked.
//
// Needs JUPYTER_PYTHON (default .venv/bin/python) with jupyterlab, anywidget, websockets and
// framecast installed (scripts/test.sh does that). Without them the test is skipped, unless
// FRAMECAST_REQUIRE_JUPYTER=1 (as in scripts/test.sh), when it fails.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, writeFile, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { launchBrowser, newPage, startServer, freePort, waitInPage, ROOT, sleep } from "./lib.js";

const PY = process.env.JUPYTER_PYTHON || path.join(ROOT, ".venv/bin/python");
const W = 320;
const H = 240;
// Quadrants: top-left, top-right, bottom-left, bottom-right (RGB).
const QUADRANTS = [[220, 40, 40], [40, 200, 40], [40, 40, 220], [230, 230, 230]];

function jupyterMissing() {
  try {
    execFileSync(PY, ["-c", "import jupyterlab, anywidget, websockets, framecast.widget"], { stdio: "ignore" });
    return false;
  } catch {
    return `no JupyterLab + framecast[jupyter] at ${PY}`;
  }
}
const missing = jupyterMissing();
if (missing && process.env.FRAMECAST_REQUIRE_JUPYTER === "1") {
  throw new Error(`${missing}; scripts/test.sh installs them`);
}

const code = (lines) => ({ cell_type: "code", metadata: {}, execution_count: null, outputs: [], source: lines.join("\n") });

function notebook(portA, outFile) {
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: { name: "python3", display_name: "Python 3", language: "python" } },
    cells: [
      code([
        "import json, numpy as np, framecast",
        "from framecast.widget import publish_loop",
        `W, H = ${W}, ${H}`,
        "frame = np.zeros((H, W, 3), np.uint8)",
        `for i, rgb in enumerate(${JSON.stringify(QUADRANTS)}):`,
        "    frame[(i // 2) * H // 2:(i // 2 + 1) * H // 2, (i % 2) * W // 2:(i % 2 + 1) * W // 2] = rgb",
        `display_a = framecast.serve(W, H, port=${portA})`,
        // The first of Chromium's unsafe ports that is free here.
        "for port in (6666, 6665, 6667, 6668, 6669):",
        "    try:",
        "        display_b = framecast.serve(W, H, port=port)",
        "        break",
        "    except OSError:",
        "        pass",
        "tasks = [publish_loop(d, lambda: frame, fps=10) for d in (display_a, display_b)]",
        "display_a.widget(height=H)",
      ]),
      code(["display_b.widget(height=H)"]),
      code([
        "import time",
        "got = {}",
        "for name, d in (('a', display_a), ('b', display_b)):",
        "    evs, deadline = [], time.time() + 20",
        "    while time.time() < deadline and not any(e['type'] == 'pointer_down' for e in evs):",
        "        e = d.next_event(0.2)",
        "        if e is not None:",
        "            evs.append(e)",
        "    got[name] = evs",
        `open(${JSON.stringify(outFile)}, 'w').write(json.dumps(got))`,
      ]),
    ],
  };
}

/** Runs cell `index` of the open notebook and returns its outputs (fails on an error output). */
async function runCell(page, index) {
  const outputs = await page.evaluate(async (index) => {
    const app = window.jupyterapp;
    const panel = app.shell.currentWidget;
    await panel.sessionContext.ready;
    panel.content.activeCellIndex = index;
    await app.commands.execute("notebook:run-cell");
    return panel.content.widgets[index].model.outputs.toJSON();
  }, index);
  const err = outputs.find((o) => o.output_type === "error");
  assert.ok(!err, `cell ${index} raised: ${err && err.ename}: ${err && err.evalue}\n${err && err.traceback.join("\n")}`);
  return outputs;
}

const dist = (a, b) => Math.max(...a.map((v, i) => Math.abs(v - b[i])));

describe("framecast's Jupyter widget in JupyterLab", { skip: missing }, () => {
  let dir, lab, browser, page, labPort, portA;
  const token = "framecast-test";

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "framecast-jupyter-"));
    labPort = await freePort();
    portA = await freePort();
    await writeFile(path.join(dir, "widget.ipynb"), JSON.stringify(notebook(portA, path.join(dir, "events.json"))));
    // Everything Jupyter writes goes to the temporary directory.
    const env = {
      JUPYTER_RUNTIME_DIR: path.join(dir, "runtime"),
      JUPYTER_CONFIG_DIR: path.join(dir, "config"),
      IPYTHONDIR: path.join(dir, "ipython"),
      PYTHONUNBUFFERED: "1",
    };
    lab = await startServer(PY, ["-m", "jupyterlab", "--no-browser", `--port=${labPort}`, "--ip=127.0.0.1",
      `--IdentityProvider.token=${token}`, "--allow-root", `--ServerApp.root_dir=${dir}`, "--LabApp.expose_app_in_browser=True",
      `--LabApp.workspaces_dir=${path.join(dir, "workspaces")}`, "--ServerApp.open_browser=False"], labPort, { env });
    browser = await launchBrowser();
    page = await newPage(browser, { width: 1000, height: 900 });
    await page.goto(`http://127.0.0.1:${labPort}/lab/tree/widget.ipynb?token=${token}`);
    await waitInPage(page, () => {
      const app = window.jupyterapp;
      const panel = app && app.shell.currentWidget;
      return !!(panel && panel.sessionContext && panel.sessionContext.session?.kernel?.status === "idle");
    }, null, "JupyterLab with the notebook open and its kernel idle");
  });
  after(async () => {
    await browser?.close();
    await lab?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("shows both streams (direct and through the kernel) and sends clicks back to poll_events()", async () => {
    await runCell(page, 0);
    await runCell(page, 1);
    // Both views live: the transport each chose, then frames.
    const modes = await waitInPage(page, () => {
      const roots = [...document.querySelectorAll(".framecast-widget")];
      if (roots.length !== 2 || roots.some((r) => !r.__framecast || r.__framecast.frames < 3)) return null;
      return roots.map((r) => r.__framecast.mode);
    }, null, "two widgets each displaying 3 frames");
    assert.deepEqual(modes, ["direct", "comm"], "stream A reachable, stream B only through the kernel");

    const boxes = [];
    for (let w = 0; w < 2; w++) {
      const px = await page.evaluate(async (w) => {
        const root = document.querySelectorAll(".framecast-widget")[w];
        const p = await root.__framecast.readPixels();
        return { width: p.width, height: p.height, data: Array.from(p.data) };
      }, w);
      assert.deepEqual([px.width, px.height], [W, H]);
      QUADRANTS.forEach((want, q) => {
        const x = (q % 2) * (W / 2) + W / 4;
        const y = Math.floor(q / 2) * (H / 2) + H / 4;
        const i = 4 * (y * W + x);
        const got = [px.data[i], px.data[i + 1], px.data[i + 2]];
        assert.ok(dist(got, want) <= 12, `widget ${w} (${modes[w]}) quadrant ${q}: ${got} vs ${want}`);
      });
      boxes.push(await page.evaluate((w) => {
        const c = document.querySelectorAll(".framecast-widget canvas")[w];
        c.scrollIntoView({ block: "center" });
        const r = c.getBoundingClientRect();
        return { x: r.left, y: r.top, width: r.width, height: r.height };
      }, w));
      // Click frame pixel (W/4, H/4): fit "contain" scales by min(width/W, height/H), centred.
      const b = boxes[w];
      const s = Math.min(b.width / W, b.height / H);
      const cx = b.x + (b.width - W * s) / 2 + (W / 4 + 0.5) * s;
      const cy = b.y + (b.height - H * s) / 2 + (H / 4 + 0.5) * s;
      await page.mouse.click(cx, cy);
      await sleep(300);
    }
    await runCell(page, 2);
    const got = JSON.parse(await readFile(path.join(dir, "events.json"), "utf8"));
    for (const name of ["a", "b"]) {
      const down = got[name].find((e) => e.type === "pointer_down");
      assert.ok(down, `stream ${name}: no pointer_down in ${JSON.stringify(got[name])}`);
      assert.ok(Math.abs(down.x - W / 4) <= 1.5 && Math.abs(down.y - H / 4) <= 1.5,
        `stream ${name}: click at (${down.x}, ${down.y}), expected (${W / 4}, ${H / 4})`);
      assert.equal(down.button, 1);
    }
  });
});


