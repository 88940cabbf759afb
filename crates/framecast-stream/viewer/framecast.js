// framecast viewer: the embeddable JS API (plain ES module, no build step).
//
//   import { connect } from "/viewer/framecast.js";
//   const view = connect(document.querySelector("canvas"), "ws://127.0.0.1:8765/default", { fit: "contain" });
//   view.on("frame", (f) => console.log(f.seq));
//   view.stats();   // fps, rtt_ms, decode_ms, dropped, bitrate_bps, transport, backend, ...
//   view.close();
//
// The canvas is handed to a Worker (transferControlToOffscreen); the worker owns the WebSocket,
// the VideoDecoder (H.264 via WebCodecs, optimizeForLatency) and the drawing. The canvas backing
// store is the frame size; CSS `object-fit` (the fit mode) scales it into the element, and input
// is mapped to frame pixels through the same fit mode (input.js). Speaks pdum.rfb 0.3.

import { toRfbEvent } from "./input.js";

const FITS = new Set(["contain", "cover", "fill"]);
const hooks = new WeakMap();

/**
 * Connects `canvas` to a framecast (or pdum.rfb 0.3) stream.
 *
 * @param {HTMLCanvasElement} canvas  a canvas not yet used for drawing; it becomes the viewer
 * @param {string} url                WebSocket URL, e.g. "ws://127.0.0.1:8765/default"
 * @param {object} [options]
 * @param {"contain"|"cover"|"fill"} [options.fit="contain"]
 * @param {string}  [options.token]        sent in `hello` (close 4401 when rejected)
 * @param {boolean} [options.imageOnly=false]  advertise JPEG/PNG only (forces the image transport)
 * @param {boolean} [options.input=true]   forward pointer, wheel and key events
 * @param {string|null} [options.statsKey="s"] key that toggles the stats overlay (not forwarded); null: none
 * @param {boolean} [options.showStats=false]  overlay visible at start
 * @param {number}  [options.statsIntervalMs=500]
 * @param {string|URL} [options.workerUrl]  where worker.js is (default: next to this module);
 *   for pages that load these modules from blob: URLs (the Jupyter widget)
 * @param {object} [options.channel]  carry the protocol over something other than a WebSocket
 *   (the Jupyter widget's comm): `{open(peer), send(text), close()}`. The viewer calls
 *   `open(peer)` for each connection attempt and the channel answers through
 *   `peer.opened()`, `peer.message(data)` (a string or an ArrayBuffer) and
 *   `peer.closed(code, reason)`; `url` is then only a label.
 * @returns {{close(): void, on(event: string, cb: Function): Function, stats(): object}}
 *   events: "state" {state, code, reason, message}, "config" (server config), "frame" (displayed
 *   frame info), "stats" (stats snapshot), "error" {message}. `on` returns an unsubscribe function.
 */
export function connect(canvas, url, options = {}) {
  const fit = FITS.has(options.fit) ? options.fit : "contain";
  const statsKey = options.statsKey === undefined ? "s" : options.statsKey;
  const listeners = new Map();
  const emit = (name, value) => {
    for (const cb of listeners.get(name) || []) {
      try {
        cb(value);
      } catch (e) {
        console.error(`framecast: "${name}" listener threw`, e);
      }
    }
  };
  let lastStats = {};
  let config = null;
  let frameW = 0;
  let frameH = 0;
  let closed = false;
  const cleanups = [];
  const listen = (target, name, fn, opt) => {
    target.addEventListener(name, fn, opt);
    cleanups.push(() => target.removeEventListener(name, fn, opt));
  };

  canvas.style.objectFit = fit;
  canvas.style.touchAction = "none";
  if (canvas.tabIndex < 0) canvas.tabIndex = 0;
  const offscreen = canvas.transferControlToOffscreen();
  const workerUrl = options.workerUrl || new URL("./worker.js", import.meta.url);
  const worker = new Worker(workerUrl, { type: "module", name: "framecast" });
  const channel = options.channel || null;
  let channelAttempt = 0;
  const channelPeer = (attempt) => {
    const live = () => attempt === channelAttempt;
    const post = (kind, extra, transfer) =>
      live() && worker.postMessage({ type: "channel", kind, attempt, ...extra }, transfer || []);
    return {
      opened: () => post("open"),
      message: (data) => post("message", { data }),
      closed: (code = 1006, reason = "") => post("close", { code, reason }),
    };
  };

  const overlay = createOverlay(canvas, !!options.showStats);
  const pixelRequests = new Map();
  let nextPixelId = 1;

  worker.onmessage = (ev) => {
    const m = ev.data;
    switch (m.type) {
      case "state":
        emit("state", m);
        break;
      case "config":
        config = m.config;
        if (config.width && config.height) {
          frameW = config.width;
          frameH = config.height;
        }
        emit("config", config);
        break;
      case "frame":
        frameW = m.info.width;
        frameH = m.info.height;
        emit("frame", m.info);
        break;
      case "stats":
        lastStats = m.stats;
        overlay.update(m.stats);
        emit("stats", m.stats);
        break;
      case "error":
        emit("error", m);
        break;
      case "channel_open":
        channelAttempt = m.attempt;
        channel.open(channelPeer(m.attempt));
        break;
      case "channel_send":
        if (m.attempt === channelAttempt) channel.send(m.text);
        break;
      case "channel_close":
        if (m.attempt === channelAttempt) channel.close();
        break;
      case "pixels": {
        const resolve = pixelRequests.get(m.id);
        pixelRequests.delete(m.id);
        if (resolve) resolve({ ...m, data: m.data ? new Uint8ClampedArray(m.data) : null });
        break;
      }
    }
  };
  worker.onerror = (e) => emit("error", { message: `viewer worker failed: ${e.message}` });

  const viewport = () => {
    const r = canvas.getBoundingClientRect();
    const ratio = window.devicePixelRatio || 1;
    const width = Math.round(canvas.clientWidth || r.width);
    const height = Math.round(canvas.clientHeight || r.height);
    return {
      type: "viewport",
      width,
      height,
      pwidth: Math.max(1, Math.round(width * ratio)),
      pheight: Math.max(1, Math.round(height * ratio)),
      ratio,
    };
  };
  let lastViewport = "";
  const sendViewport = () => {
    const v = viewport();
    const key = JSON.stringify(v);
    if (key === lastViewport || v.width === 0 || v.height === 0) return;
    lastViewport = key;
    worker.postMessage(v);
  };

  worker.postMessage({
    type: "init",
    canvas: offscreen,
    url,
    token: options.token,
    imageOnly: !!options.imageOnly,
    statsIntervalMs: options.statsIntervalMs || 500,
    channel: !!channel,
  }, [offscreen]);
  sendViewport();

  const ro = new ResizeObserver(sendViewport);
  ro.observe(canvas);
  cleanups.push(() => ro.disconnect());
  listen(window, "resize", sendViewport);
  const onVisibility = () => worker.postMessage({ type: "visibility", hidden: document.visibilityState === "hidden" });
  listen(document, "visibilitychange", onVisibility);
  if (document.visibilityState === "hidden") onVisibility();

  // Input. Coordinates are relative to the canvas content box (inside border and padding).
  const box = () => {
    const r = canvas.getBoundingClientRect();
    const left = r.left + canvas.clientLeft + (parseFloat(getComputedStyle(canvas).paddingLeft) || 0);
    const top = r.top + canvas.clientTop + (parseFloat(getComputedStyle(canvas).paddingTop) || 0);
    return { left, top, width: canvas.clientWidth ? contentWidth(canvas) : r.width,
      height: canvas.clientHeight ? contentHeight(canvas) : r.height };
  };
  const forward = (e) => {
    const evt = toRfbEvent(e, box(), { fit, dpr: window.devicePixelRatio || 1, frameW, frameH });
    if (evt) worker.postMessage({ type: "event", event: evt });
  };
  if (options.input !== false) {
    listen(canvas, "pointerdown", (e) => {
      canvas.focus({ preventScroll: true });
      try {
        canvas.setPointerCapture(e.pointerId);
      } catch { /* synthetic pointer */ }
      forward(e);
    });
    listen(canvas, "pointermove", forward);
    listen(canvas, "pointerup", forward);
    listen(canvas, "wheel", (e) => {
      e.preventDefault();
      forward(e);
    }, { passive: false });
    listen(canvas, "contextmenu", (e) => e.preventDefault());
  }
  const isStatsKey = (e) => statsKey && e.key === statsKey && !e.ctrlKey && !e.altKey && !e.metaKey;
  listen(canvas, "keydown", (e) => {
    if (isStatsKey(e)) {
      if (!e.repeat) overlay.toggle();
      return;
    }
    if (options.input !== false) forward(e);
  });
  listen(canvas, "keyup", (e) => {
    if (isStatsKey(e)) return;
    if (options.input !== false) forward(e);
  });

  const handle = {
    /** Closes the connection and stops the worker; the canvas keeps its last picture. */
    close() {
      if (closed) return;
      closed = true;
      for (const c of cleanups) c();
      worker.postMessage({ type: "close" });
      setTimeout(() => worker.terminate(), 1000);
      overlay.remove();
    },
    /** Subscribes to an event; returns the unsubscribe function. */
    on(event, cb) {
      if (!listeners.has(event)) listeners.set(event, new Set());
      listeners.get(event).add(cb);
      return () => listeners.get(event).delete(cb);
    },
    /** The latest stats snapshot (refreshed every statsIntervalMs and on each server `stats`). */
    stats() {
      return { ...lastStats, fit, config };
    },
  };
  hooks.set(handle, {
    worker,
    overlay,
    forceDecoderReset: () => worker.postMessage({ type: "force_reset" }),
    simulateStall: () => worker.postMessage({ type: "simulate_stall" }),
    holdAcks: (ms) => worker.postMessage({ type: "hold_acks", ms }),
    readPixels: (x, y, w, h) => new Promise((resolve) => {
      const id = nextPixelId++;
      pixelRequests.set(id, resolve);
      worker.postMessage({ type: "read_pixels", id, x, y, w, h });
    }),
    setHidden: (hidden) => worker.postMessage({ type: "visibility", hidden }),
  });
  return handle;
}

/**
 * Test and diagnostics hooks of a connection (not part of the embedding API):
 * forceDecoderReset(), simulateStall(), holdAcks(ms), readPixels(x, y, w, h) -> Promise<{width, height, data}>
 * in frame pixels, setHidden(bool), overlay {toggle(), visible()}.
 */
export function debugHooks(handle) {
  return hooks.get(handle);
}

function contentWidth(el) {
  const cs = getComputedStyle(el);
  return el.clientWidth - (parseFloat(cs.paddingLeft) || 0) - (parseFloat(cs.paddingRight) || 0);
}

function contentHeight(el) {
  const cs = getComputedStyle(el);
  return el.clientHeight - (parseFloat(cs.paddingTop) || 0) - (parseFloat(cs.paddingBottom) || 0);
}

const fmt = (v, digits = 0, unit = "") => (typeof v === "number" && Number.isFinite(v) ? v.toFixed(digits) + unit : "–");
const fmtRate = (bps) => (typeof bps === "number" ? (bps >= 1e6 ? (bps / 1e6).toFixed(2) + " Mb/s" : (bps / 1e3).toFixed(0) + " kb/s") : "–");

function createOverlay(canvas, visible) {
  const parent = canvas.parentElement;
  const el = document.createElement("pre");
  el.className = "framecast-stats";
  Object.assign(el.style, {
    position: "absolute",
    margin: "0",
    padding: "6px 8px",
    font: "12px/1.35 ui-monospace, SFMono-Regular, Menlo, monospace",
    color: "#e8e8e8",
    background: "rgba(0,0,0,0.65)",
    borderRadius: "4px",
    pointerEvents: "none",
    zIndex: "10",
    display: visible ? "block" : "none",
  });
  const place = () => {
    el.style.left = `${canvas.offsetLeft + 8}px`;
    el.style.top = `${canvas.offsetTop + 8}px`;
  };
  if (parent) {
    if (getComputedStyle(parent).position === "static") parent.style.position = "relative";
    parent.appendChild(el);
    place();
  }
  let last = {};
  return {
    update(s) {
      last = s;
      if (el.style.display === "none") return;
      place();
      el.textContent = [
        `transport ${s.transport ?? "–"}${s.codec ? "  " + s.codec : ""}`,
        `backend   ${s.backend ?? "–"}`,
        `size      ${s.width ?? "–"}x${s.height ?? "–"}`,
        `fps       ${fmt(s.fps)}`,
        `rtt       ${fmt(s.rtt_ms, 1, " ms")}`,
        `decode    ${fmt(s.decode_ms, 2, " ms")}`,
        `encode    ${fmt(s.encode_ms, 2, " ms")}`,
        `bitrate   ${fmtRate(s.bitrate_bps)}`,
        `dropped   ${s.dropped ?? 0} here, ${s.server_dropped ?? "–"} at server`,
        `recovered ${s.recoveries ?? 0}`,
        `adaptive  ${adaptiveLine(s)}`,
      ].join("\n");
    },
    toggle() {
      el.style.display = el.style.display === "none" ? "block" : "none";
      this.update(last);
    },
    visible: () => el.style.display !== "none",
    remove: () => el.remove(),
  };
}

/** The overlay's congestion-control line: state, target rate and frame rate, tier, queue. */
function adaptiveLine(s) {
  const c = s.congestion;
  if (!c) return s.target_bitrate ? `target ${fmtRate(s.target_bitrate)} ${fmt(s.target_fps)} fps` : "off";
  return `${c.state} ${fmtRate(s.target_bitrate ?? c.target_bitrate)} ${fmt(s.target_fps ?? c.target_fps)} fps` +
    ` tier ${c.tier} queue ${fmt(c.queue_ms, 0, " ms")}`;
}
