// framecast's MoQ broadcast in a browser: `framecast serve --publish-moq` publishes the test card
// to one moq-relay, a second relay is clustered to it, and headless Chromium plays the broadcast
// from the second relay with the MoQ project's own web player (`<moq-watch>` of @moq/watch,
// bundled here with esbuild) over WebTransport, the relay's self-signed certificate pinned by its
// SHA-256 (`serverCertificateHashes`, which the player reads from the relay's
// /certificate.sha256). The canvas must show the test card's colour patches.
//
// This test starts its own Chromium without `--disable-quic`: WebTransport is HTTP/3, over QUIC.
// moq-relay: $MOQ_RELAY or .tools/moq-relay/bin/moq-relay (./scripts/test.sh installs it); the
// test is skipped without it unless FRAMECAST_REQUIRE_MOQ_RELAY=1.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { createServer as netServer } from "node:net";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import * as esbuild from "esbuild";
import {
  CHROMIUM, CHROMIUM_ARGS, FRAMECAST, ROOT, WAIT_MS, newPage, staticServer, startServer, freePort,
  testCardPatches,
} from "./lib.js";

const RELAY = process.env.MOQ_RELAY || path.join(ROOT, ".tools/moq-relay/bin/moq-relay");
const HAVE_RELAY = existsSync(RELAY);
if (!HAVE_RELAY && process.env.FRAMECAST_REQUIRE_MOQ_RELAY === "1") {
  throw new Error(`FRAMECAST_REQUIRE_MOQ_RELAY=1 but there is no moq-relay at ${RELAY}`);
}

/** A port free on both UDP (QUIC) and TCP (the relay's HTTP) on 127.0.0.1. */
async function relayPort() {
  for (;;) {
    const udp = createSocket("udp4");
    const port = await new Promise((resolve) => udp.bind(0, "127.0.0.1", () => resolve(udp.address().port)));
    const tcpFree = await new Promise((resolve) => {
      const s = netServer();
      s.once("error", () => resolve(false));
      s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
    });
    udp.close();
    if (tcpFree) return port;
  }
}

/** A moq-relay on 127.0.0.1 (self-signed certificate, anonymous access), optionally clustered. */
async function startRelay(peer) {
  const port = await relayPort();
  const addr = `127.0.0.1:${port}`;
  const args = ["--listen", addr, "--listen-tls-generate", "localhost", "--web-http-listen", addr,
    "--auth-public", "**", "--log-level", "warn"];
  if (peer) args.push("--cluster-connect", `https://127.0.0.1:${peer.port}/`, "--connect-tls-fingerprint", peer.fingerprint);
  const proc = await startServer(RELAY, args, port);
  const fingerprint = (await (await fetch(`http://${addr}/certificate.sha256`)).text()).trim();
  return { proc, port, fingerprint };
}

describe("framecast's MoQ broadcast in Chromium through two clustered moq-relays", { skip: !HAVE_RELAY && "no moq-relay" }, () => {
  let first, second, framecast, site, browser;

  before(async () => {
    first = await startRelay();
    second = await startRelay(first);
    const port = await freePort();
    framecast = await startServer(FRAMECAST, ["serve", "--pattern", "testcard", "--size", "320x240",
      "--listen", `127.0.0.1:${port}`, "--publish-moq", `https://127.0.0.1:${first.port}/card`,
      "--moq-fingerprint", first.fingerprint], port);
    // The player, bundled from node_modules (not committed).
    const dir = mkdtempSync(path.join(tmpdir(), "moq-watch-"));
    await esbuild.build({
      stdin: { contents: 'import "@moq/watch/element";', resolveDir: path.dirname(new URL(import.meta.url).pathname) },
      bundle: true, format: "esm", outfile: path.join(dir, "moq-watch.js"), logLevel: "warning",
    });
    const page = `<!doctype html><meta charset="utf-8"><script type="module" src="/player/moq-watch.js"></script>
<moq-watch url="http://127.0.0.1:${second.port}/" name="card"><canvas id="c"></canvas></moq-watch>`;
    site = await staticServer({ routes: { "/player/": dir }, extra: { "/watch": ["text/html; charset=utf-8", page] } });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true,
      args: CHROMIUM_ARGS.filter((a) => a !== "--disable-quic") });
  });

  after(async () => {
    await browser?.close();
    await site?.close();
    for (const p of [framecast, second?.proc, first?.proc]) await p?.stop();
  });

  it("plays the test card over WebTransport with the relay's certificate pinned by hash", async () => {
    const page = await newPage(browser);
    // Count WebTransport sessions that became ready (the player also knows a WebSocket fallback).
    await page.addInitScript(() => {
      const Real = window.WebTransport;
      window.__wt = { created: 0, ready: 0, hashes: 0 };
      window.WebTransport = class extends Real {
        constructor(url, options) {
          super(url, options);
          window.__wt.created++;
          window.__wt.hashes += (options?.serverCertificateHashes || []).length;
          this.ready.then(() => window.__wt.ready++, () => {});
        }
      };
    });
    await page.goto(`${site.url}/watch`);
    const patches = testCardPatches(320, 240).filter((p) => p.w >= 8 && p.h >= 8);
    let seen;
    try {
      const h = await page.waitForFunction((patches) => {
        const c = document.getElementById("c");
        if (!c || c.width < 32 || c.height < 32) return null;
        const probe = document.createElement("canvas");
        probe.width = 320;
        probe.height = 240;
        const ctx = probe.getContext("2d");
        ctx.drawImage(c, 0, 0, 320, 240);
        const got = patches.map((p) => Array.from(ctx.getImageData(p.x + (p.w >> 1), p.y + (p.h >> 1), 1, 1).data.slice(0, 3)));
        const ok = patches.every((p, i) => p.rgb.every((v, k) => Math.abs(got[i][k] - v) <= 12));
        return ok ? { got, size: [c.width, c.height], wt: window.__wt } : null;
      }, patches, { timeout: WAIT_MS, polling: 200 });
      seen = await h.jsonValue();
    } catch (e) {
      const wt = await page.evaluate(() => window.__wt).catch(() => null);
      throw new Error(`the canvas never showed the test card (WebTransport ${JSON.stringify(wt)})\n${page.logs.join("\n")}\nframecast:\n${framecast.output()}`);
    }
    assert.ok(seen.wt.ready >= 1, `a WebTransport session was ready: ${JSON.stringify(seen.wt)}`);
    assert.ok(seen.wt.hashes >= 1, `the relay's certificate was pinned by hash: ${JSON.stringify(seen.wt)}`);
    await page.close();
  });
});
