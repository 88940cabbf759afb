// framecast viewer worker: owns the WebSocket, the VideoDecoder and the OffscreenCanvas.
//
// The main thread (framecast.js) only forwards DOM input, resizes and visibility, and receives
// state, config, per-frame and stats notices. Protocol: pdum.rfb 0.3 (see protocol.js).
//
// Main -> worker messages:
//   {type:"init", canvas, url, token, imageOnly, statsIntervalMs, channel}   (canvas transferred)
//   {type:"channel", kind:"open"|"message"|"close", attempt, data?, code?, reason?}
//   {type:"viewport", width, height, pwidth, pheight, ratio}
//   {type:"event", event}            pdum event object, already in frame pixels
//   {type:"visibility", hidden}
//   {type:"close"}
//   test hooks: {type:"force_reset"}, {type:"simulate_stall"}, {type:"hold_acks", ms},
//               {type:"read_pixels", id, x, y, w, h}
// Worker -> main messages:
//   {type:"state", state, code?, reason?, message?}   state: connecting|open|live|reconnecting|closed
//   {type:"config", config}
//   {type:"frame", info}     after each displayed frame
//   {type:"stats", stats}    every statsIntervalMs and on server `stats`
//   {type:"error", message}
//   {type:"pixels", id, width, height, data}
//   {type:"channel_open"|"channel_send"|"channel_close", attempt, text?}   (options.channel)

import { unpack, CAP_JPEG, CAP_PNG, CAP_H264, PROBE_CODEC, CLOSE_CODES } from "./protocol.js";

const STALL_MS = 1200; // no decoder output for this long while chunks wait -> rebuild
const WATCHDOG_PERIOD_MS = 500;
const BACKLOG_KEYFRAME = 6; // decodeQueueSize above this -> request_keyframe
const KEYFRAME_REQUEST_GAP_MS = 250; // at most one request_keyframe per this many ms
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 10000;

const nowMs = () => performance.now();
const unixMs = () => performance.timeOrigin + performance.now();

let opts = null;
let canvas = null;
let ctx = null;
let ws = null;
let closing = false;
let attempt = 0;
let reconnectTimer = 0;
let watchdogTimer = 0;
let statsTimer = 0;
let viewport = null;
let hidden = false;
let live = false; // a frame was displayed on the current connection
let droppedWhileHidden = false;
let supported = null;

let config = null; // last server `config`
let serverStats = null; // last server `stats`

// Video path.
let decoder = null;
let decoderKey = ""; // codec|width|height the decoder is configured for
let waitingForKey = true;
let pending = []; // FIFO of {seq, ts, t0, keyframe, width, height, recvUnixMs, header}
let lastOutputMs = 0;
let lastKeyRequestMs = -1e9;
let stallSimulated = false;

// Image path: decode one at a time, in order (never skip: every sent seq must be acked).
let imageChain = Promise.resolve();

const counters = {
  received: 0, // payloads received
  displayed: 0,
  keyframes: 0, // keyframes displayed
  dropped: 0, // payloads not displayed (keyframe gate, hidden tab, decoder lost them)
  decode_errors: 0,
  recoveries: 0, // stall watchdog / forced rebuilds
  reconnects: 0,
  sent: { hello: 0, set_viewport: 0, ack: 0, request_keyframe: 0, event: 0, decoder_reset: 0 },
};
let decodeMsEma = 0;
let lastDecodeMs = 0;
let lastFrame = null;
const recentDisplays = []; // unix ms of displays in the last second
const recentBytes = []; // [unix ms, bytes] received in the last second

self.onmessage = (ev) => {
  const m = ev.data;
  switch (m.type) {
    case "init":
      init(m);
      break;
    case "viewport":
      viewport = { width: m.width, height: m.height, pwidth: m.pwidth, pheight: m.pheight, ratio: m.ratio };
      if (ws && ws.readyState === 1 && counters.sent.hello > 0) sendViewport();
      break;
    case "event":
      send({ type: "event", event: m.event });
      break;
    case "visibility":
      setHidden(m.hidden);
      break;
    case "close":
      shutdown();
      break;
    case "force_reset":
      recover("forced by test hook");
      break;
    case "simulate_stall":
      stallSimulated = true;
      break;
    case "hold_acks":
      holdAcks(m.ms);
      break;
    case "channel":
      if (ws instanceof ChannelSocket) ws.deliver(m);
      break;
    case "read_pixels":
      readPixels(m);
      break;
  }
};

function post(msg, transfer) {
  self.postMessage(msg, transfer || []);
}

function init(m) {
  opts = m;
  canvas = m.canvas;
  ctx = canvas.getContext("2d", { alpha: false, desynchronized: true });
  watchdogTimer = setInterval(watchdog, WATCHDOG_PERIOD_MS);
  statsTimer = setInterval(() => post({ type: "stats", stats: snapshot() }), m.statsIntervalMs || 500);
  probe().then((caps) => {
    supported = caps;
    open();
  });
}

async function probe() {
  const caps = [CAP_JPEG, CAP_PNG];
  if (opts.imageOnly || typeof VideoDecoder === "undefined") return caps;
  try {
    const r = await VideoDecoder.isConfigSupported({
      codec: PROBE_CODEC,
      codedWidth: viewport?.pwidth || 1280,
      codedHeight: viewport?.pheight || 720,
      optimizeForLatency: true,
    });
    if (r.supported) caps.push(CAP_H264);
  } catch (e) {
    post({ type: "error", message: `VideoDecoder probe failed: ${e}` });
  }
  return caps;
}

// A WebSocket look-alike whose bytes travel through the main thread's `options.channel`
// (framecast.js), e.g. a Jupyter comm. Only what open() below uses: readyState, send, close
// and the four handlers.
let channelAttempts = 0;
class ChannelSocket {
  constructor() {
    this.attempt = ++channelAttempts;
    this.readyState = 0;
    this.binaryType = "arraybuffer";
    this.onopen = this.onmessage = this.onclose = null;
    post({ type: "channel_open", attempt: this.attempt });
  }
  deliver(m) {
    if (m.attempt !== this.attempt || this.readyState === 3) return;
    if (m.kind === "open" && this.readyState === 0) {
      this.readyState = 1;
      this.onopen?.();
    } else if (m.kind === "message" && this.readyState === 1) {
      this.onmessage?.({ data: m.data });
    } else if (m.kind === "close") {
      this.readyState = 3;
      this.onclose?.({ code: m.code || 1006, reason: m.reason || "" });
    }
  }
  send(text) {
    if (this.readyState === 1) post({ type: "channel_send", attempt: this.attempt, text });
  }
  close(code = 1000, reason = "") {
    if (this.readyState === 3) return;
    this.readyState = 3;
    post({ type: "channel_close", attempt: this.attempt });
    this.onclose?.({ code, reason });
  }
}

function open() {
  if (closing) return;
  post({ type: "state", state: attempt === 0 ? "connecting" : "reconnecting" });
  let sock;
  try {
    sock = opts.channel ? new ChannelSocket() : new WebSocket(opts.url);
  } catch (e) {
    post({ type: "state", state: "closed", message: `bad URL ${opts.url}: ${e.message}` });
    return;
  }
  ws = sock;
  sock.binaryType = "arraybuffer";
  sock.onopen = () => {
    if (sock !== ws) return;
    live = false;
    post({ type: "state", state: "open" });
    const hello = { type: "hello", supported, device_pixel_ratio: viewport?.ratio || 1 };
    if (opts.token) hello.token = opts.token;
    send(hello);
    if (viewport) sendViewport();
  };
  sock.onmessage = (ev) => {
    if (sock !== ws) return;
    if (typeof ev.data === "string") onControl(ev.data);
    else onBinary(ev.data);
  };
  sock.onclose = (ev) => {
    if (sock !== ws) return;
    ws = null;
    resetVideo();
    const known = CLOSE_CODES[ev.code];
    const reason = ev.reason || (known ? known.text : "");
    if (closing) {
      post({ type: "state", state: "closed", code: ev.code, reason });
      return;
    }
    const reconnect = known ? known.reconnect : true;
    if (!reconnect) {
      post({ type: "state", state: "closed", code: ev.code, reason,
        message: `closed by the server (${ev.code}${reason ? ": " + reason : ""}); not reconnecting` });
      return;
    }
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** attempt) * (0.5 + Math.random() * 0.5);
    attempt += 1;
    counters.reconnects += 1;
    post({ type: "state", state: "reconnecting", code: ev.code, reason,
      message: `connection closed (${ev.code}${reason ? ": " + reason : ""}); retrying in ${Math.round(delay)} ms` });
    reconnectTimer = setTimeout(open, delay);
  };
}

function shutdown() {
  closing = true;
  clearTimeout(reconnectTimer);
  clearInterval(watchdogTimer);
  clearInterval(statsTimer);
  if (ws) ws.close(1000, "viewer closed");
  else post({ type: "state", state: "closed", code: 1000, reason: "viewer closed" });
  resetVideo();
}

function send(msg) {
  if (!ws || ws.readyState !== 1) return false;
  ws.send(JSON.stringify(msg));
  if (msg.type in counters.sent) counters.sent[msg.type] += 1;
  return true;
}

function sendViewport() {
  send({ type: "set_viewport", ...viewport });
}

function requestKeyframe(reason, force) {
  const t = nowMs();
  if (!force && t - lastKeyRequestMs < KEYFRAME_REQUEST_GAP_MS) return;
  lastKeyRequestMs = t;
  send({ type: "request_keyframe", reason });
}

function onControl(text) {
  let msg;
  try {
    msg = JSON.parse(text);
  } catch {
    post({ type: "error", message: "server sent a text message that is not JSON" });
    return;
  }
  if (msg.type === "config") {
    config = msg;
    post({ type: "config", config: msg });
  } else if (msg.type === "stats") {
    serverStats = msg;
    post({ type: "stats", stats: snapshot() });
  } else if (msg.type === "set_quality") {
    serverStats = { ...(serverStats || {}), target_bitrate: msg.bitrate, target_fps: msg.fps };
  }
}

function onBinary(buf) {
  let header, payload;
  try {
    ({ header, payload } = unpack(buf));
  } catch (e) {
    post({ type: "error", message: `bad binary message: ${e.message}` });
    return;
  }
  const recvUnixMs = unixMs();
  counters.received += 1;
  recentBytes.push([recvUnixMs, buf.byteLength]);
  if (hidden) {
    // Stale work: nothing is shown while hidden. Drop it; on return we reset and ask for a keyframe.
    counters.dropped += 1;
    droppedWhileHidden = true;
    return;
  }
  if (header.type === "video_chunk") onChunk(header, payload, recvUnixMs);
  else if (header.type === "image_frame") onImage(header, payload, recvUnixMs);
}

// ---------------------------------------------------------------- video

function configureFor(header) {
  const key = `${header.codec}|${header.width}|${header.height}`;
  if (decoder && decoder.state === "configured" && key === decoderKey) return true;
  closeDecoder();
  try {
    decoder = new VideoDecoder({ output: onOutput, error: onDecodeError });
    decoder.configure({
      codec: header.codec,
      codedWidth: header.width,
      codedHeight: header.height,
      optimizeForLatency: true,
    });
  } catch (e) {
    post({ type: "error", message: `VideoDecoder.configure(${header.codec} ${header.width}x${header.height}) failed: ${e.message}` });
    decoder = null;
    decoderKey = "";
    return false;
  }
  decoderKey = key;
  waitingForKey = true;
  pending = [];
  return true;
}

function closeDecoder() {
  if (decoder) {
    // Outputs of a closed decoder never come; their seqs will not be acked.
    counters.dropped += pending.length;
    try {
      if (decoder.state !== "closed") decoder.close();
    } catch { /* already closed */ }
  }
  decoder = null;
  decoderKey = "";
  pending = [];
  waitingForKey = true;
}

function onChunk(header, payload, recvUnixMs) {
  if (typeof VideoDecoder === "undefined") return;
  if (!configureFor(header)) return;
  if (waitingForKey && !header.keyframe) {
    counters.dropped += 1;
    requestKeyframe("keyframe gate: waiting for a keyframe");
    return;
  }
  waitingForKey = false;
  const t0 = nowMs();
  if (pending.length === 0) lastOutputMs = t0; // the stall clock starts with the backlog
  pending.push({ seq: header.seq, ts: header.timestamp_us, t0, recvUnixMs, header });
  try {
    decoder.decode(new EncodedVideoChunk({
      type: header.keyframe ? "key" : "delta",
      timestamp: header.timestamp_us,
      duration: header.duration_us,
      data: payload,
    }));
  } catch (e) {
    onDecodeError(e);
    return;
  }
  if (decoder.decodeQueueSize > BACKLOG_KEYFRAME) requestKeyframe("decode backlog");
}

function onOutput(frame) {
  if (stallSimulated) {
    // Test hook: behave like a decoder that holds its output; the watchdog must notice.
    frame.close();
    return;
  }
  // FIFO mapping (no B-frames); match by timestamp so a lost output cannot shift every later ack.
  let entry = pending.shift();
  while (entry && entry.ts !== frame.timestamp && pending.length > 0) {
    counters.dropped += 1;
    entry = pending.shift();
  }
  const t = nowMs();
  lastOutputMs = t;
  if (!entry || hidden) {
    frame.close();
    return;
  }
  const w = frame.displayWidth;
  const h = frame.displayHeight;
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  ctx.drawImage(frame, 0, 0, w, h);
  frame.close();
  displayed(entry, t - entry.t0, decoder ? decoder.decodeQueueSize : 0, nowMs() - t);
}

function onDecodeError(e) {
  counters.decode_errors += 1;
  post({ type: "error", message: `decode error: ${e && e.message ? e.message : e}` });
  recover("decode error");
}

/** Rebuild the decoder, tell the server (it clears its in-flight set) and ask for a keyframe. */
function recover(reason) {
  counters.recoveries += 1;
  stallSimulated = false;
  closeDecoder();
  send({ type: "decoder_reset" });
  requestKeyframe(reason, true);
}

function resetVideo() {
  closeDecoder();
  stallSimulated = false;
}

function watchdog() {
  if (!decoder || pending.length === 0 || hidden) return;
  if (nowMs() - lastOutputMs > STALL_MS) recover("stall watchdog: no decoder output for 1.2 s");
}

// ---------------------------------------------------------------- image

function onImage(header, payload, recvUnixMs) {
  if (decoder) closeDecoder(); // transport switched to images
  const t0 = nowMs();
  const entry = { seq: header.seq, ts: header.timestamp_us, t0, recvUnixMs, header };
  const blob = new Blob([payload], { type: header.mime || "image/jpeg" });
  imageChain = imageChain.then(async () => {
    let bitmap;
    try {
      bitmap = await createImageBitmap(blob);
    } catch (e) {
      counters.decode_errors += 1;
      counters.dropped += 1;
      post({ type: "error", message: `image decode failed (${header.mime}): ${e.message}` });
      return;
    }
    if (hidden) {
      bitmap.close();
      counters.dropped += 1;
      droppedWhileHidden = true;
      return;
    }
    const t = nowMs();
    if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
      canvas.width = bitmap.width;
      canvas.height = bitmap.height;
    }
    ctx.drawImage(bitmap, 0, 0);
    bitmap.close();
    displayed(entry, t - t0, 0, nowMs() - t);
  });
}

// ---------------------------------------------------------------- display, ack, stats

// Test hook: a viewer that keeps displaying but stops acknowledging for a while (a busy tab, a
// stalled uplink). The server then leaves it behind; the held ack goes out when the hold ends.
let acksHeldUntil = 0;
let heldAck = null;
function holdAcks(ms) {
  acksHeldUntil = nowMs() + ms;
  setTimeout(() => {
    if (heldAck) send(heldAck);
    heldAck = null;
  }, ms);
}

function displayed(entry, decodeMs, queueSize, drawMs) {
  const h = entry.header;
  const ack = { type: "ack", seq: h.seq, decode_queue_size: queueSize, displayed: true };
  if (nowMs() < acksHeldUntil) heldAck = ack;
  else send(ack);
  attempt = 0;
  const displayedUnixMs = unixMs();
  counters.displayed += 1;
  if (h.keyframe) counters.keyframes += 1;
  lastDecodeMs = decodeMs;
  decodeMsEma = counters.displayed === 1 ? decodeMs : decodeMsEma * 0.7 + decodeMs * 0.3;
  recentDisplays.push(displayedUnixMs);
  if (!live) {
    live = true;
    post({ type: "state", state: "live" });
  }
  lastFrame = {
    seq: h.seq,
    timestamp_us: h.timestamp_us,
    width: h.width,
    height: h.height,
    type: h.type,
    keyframe: !!h.keyframe,
    codec: h.codec,
    mime: h.mime,
    received_unix_ms: entry.recvUnixMs,
    displayed_unix_ms: displayedUnixMs,
    decode_ms: decodeMs,
    draw_ms: drawMs,
    header: h,
  };
  post({ type: "frame", info: lastFrame });
}

function trimWindow(now) {
  while (recentDisplays.length && recentDisplays[0] < now - 1000) recentDisplays.shift();
  while (recentBytes.length && recentBytes[0][0] < now - 1000) recentBytes.shift();
}

function snapshot() {
  const now = unixMs();
  trimWindow(now);
  let bytes = 0;
  for (const [, b] of recentBytes) bytes += b;
  const s = serverStats || {};
  return {
    state: ws ? (ws.readyState === 1 ? "open" : "connecting") : "closed",
    transport: config ? config.transport : null,
    codec: lastFrame?.codec || config?.codec || null,
    backend: config ? (config.backend ?? config.encoder ?? null) : null,
    width: lastFrame?.width ?? config?.width ?? null,
    height: lastFrame?.height ?? config?.height ?? null,
    fps: recentDisplays.length,
    bitrate_bps: bytes * 8,
    decode_ms: decodeMsEma,
    last_decode_ms: lastDecodeMs,
    rtt_ms: typeof s.rtt_ms === "number" ? s.rtt_ms : null,
    server_dropped: typeof s.dropped === "number" ? s.dropped : null,
    server_fps_sent: s.fps_sent ?? null,
    server_bitrate_bps: s.bitrate_bps ?? null,
    encode_ms: s.encode_ms ?? null,
    // The server's congestion control (framecast's stats extension) and its latest
    // set_quality target.
    target_bitrate: s.target_bitrate ?? null,
    target_fps: s.target_fps ?? null,
    congestion: s.congestion ?? null,
    decode_queue_size: decoder ? decoder.decodeQueueSize : 0,
    received: counters.received,
    displayed: counters.displayed,
    keyframes: counters.keyframes,
    dropped: counters.dropped,
    decode_errors: counters.decode_errors,
    recoveries: counters.recoveries,
    reconnects: counters.reconnects,
    sent: { ...counters.sent },
    last_frame: lastFrame ? { ...lastFrame, header: undefined } : null,
  };
}

// ---------------------------------------------------------------- visibility

function setHidden(h) {
  if (h === hidden) return;
  hidden = h;
  if (hidden) {
    // Drop queued decode work now; nothing decoded while hidden would be seen.
    if (decoder) closeDecoder();
    return;
  }
  // Back: whatever was dropped will never be acked, so let the server clear its in-flight set,
  // and start from a keyframe.
  if (droppedWhileHidden || counters.displayed > 0) send({ type: "decoder_reset" });
  droppedWhileHidden = false;
  requestKeyframe("tab visible again", true);
}

// ---------------------------------------------------------------- test hook

function readPixels(m) {
  if (!ctx || canvas.width === 0) {
    post({ type: "pixels", id: m.id, width: 0, height: 0, data: null });
    return;
  }
  const x = m.x ?? 0, y = m.y ?? 0;
  const w = m.w ?? canvas.width, h = m.h ?? canvas.height;
  const img = ctx.getImageData(x, y, w, h);
  post({ type: "pixels", id: m.id, width: w, height: h, canvasWidth: canvas.width,
    canvasHeight: canvas.height, data: img.data.buffer }, [img.data.buffer]);
}
