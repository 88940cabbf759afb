// framecast's Jupyter widget (anywidget ESM; no build step).
//
// It runs the embedded viewer's own modules (viewer/framecast.js, worker.js, protocol.js,
// input.js), which the kernel hands over in the `_viewer` trait; they are loaded from blob:
// URLs, with their relative imports pointed at each other's blobs. The stream then travels
//   * directly: a WebSocket from the browser to the framecast server (when it can reach it);
//   * over the widget's comm: the kernel relays the WebSocket (widget.py, class _Relay) and
//     this page sees it through the viewer's `channel` option (frames as binary buffers).
// `transport` picks: "auto" (try direct, fall back to the comm), "direct" or "comm".

const PROBE_MS = 2500;

function blobUrl(text) {
  return URL.createObjectURL(new Blob([text], { type: "text/javascript" }));
}

// One viewer per page for each set of sources (every view of every widget shares it).
const loaded = new Map();
function loadViewer(sources) {
  const key = sources["framecast.js"];
  if (!loaded.has(key)) {
    const protocol = blobUrl(sources["protocol.js"]);
    const input = blobUrl(sources["input.js"]);
    const workerUrl = blobUrl(sources["worker.js"].replaceAll('"./protocol.js"', JSON.stringify(protocol)));
    const main = blobUrl(sources["framecast.js"].replaceAll('"./input.js"', JSON.stringify(input)));
    loaded.set(key, import(main).then((m) => ({ connect: m.connect, debugHooks: m.debugHooks, workerUrl })));
  }
  return loaded.get(key);
}

function streamUrl(model) {
  if (model.get("url")) return model.get("url");
  const host = model.get("host") === "auto" ? location.hostname || "127.0.0.1" : model.get("host");
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const stream = model.get("stream");
  return `${scheme}://${host.includes(":") ? `[${host}]` : host}:${model.get("port")}/${stream === "default" ? "" : stream}`;
}

// Can this page open a WebSocket to the server? (Refused ports, mixed content, a remote
// kernel's loopback address and firewalls all end in onerror/onclose or the timeout.)
function reachable(url) {
  return new Promise((resolve) => {
    let ws;
    const done = (ok) => {
      clearTimeout(timer);
      if (ws) {
        ws.onopen = ws.onerror = ws.onclose = null;
        try {
          ws.close(1000, "probe");
        } catch { /* not open */ }
      }
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), PROBE_MS);
    try {
      ws = new WebSocket(url);
    } catch {
      return done(false);
    }
    ws.onopen = () => done(true);
    ws.onerror = ws.onclose = () => done(false);
  });
}

// The viewer's `channel` over this widget's comm: the kernel opens a WebSocket for us.
function commChannel(model, id) {
  let peer = null;
  const onMessage = (msg, buffers) => {
    if (!msg || msg.id !== id || !peer) return;
    if (msg.type === "relay_open") peer.opened();
    else if (msg.type === "relay_text") peer.message(msg.text);
    else if (msg.type === "relay_binary") {
      const b = buffers[0];
      peer.message(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    } else if (msg.type === "relay_close") {
      const p = peer;
      peer = null;
      p.closed(msg.code || 1006, msg.reason || "");
    }
  };
  model.on("msg:custom", onMessage);
  return {
    open(p) {
      peer = p;
      model.send({ type: "relay_connect", id });
    },
    send(text) {
      model.send({ type: "relay_send", id, text });
    },
    close() {
      peer = null;
      model.send({ type: "relay_disconnect", id });
    },
    dispose() {
      model.off("msg:custom", onMessage);
      if (peer) model.send({ type: "relay_disconnect", id });
      peer = null;
    },
  };
}

function report(model, changes) {
  for (const [k, v] of Object.entries(changes)) model.set(k, v);
  model.save_changes();
}

async function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "framecast-widget";
  Object.assign(root.style, { position: "relative", height: `${model.get("height")}px`, background: "#000" });
  const canvas = document.createElement("canvas");
  Object.assign(canvas.style, { width: "100%", height: "100%", display: "block", outline: "none" });
  root.append(canvas);
  el.append(root);

  const viewer = await loadViewer(model.get("_viewer"));
  const url = streamUrl(model);
  let mode = model.get("transport");
  if (mode === "auto") mode = (await reachable(url)) ? "direct" : "comm";
  const channel = mode === "comm" ? commChannel(model, `${Date.now()}-${Math.random().toString(36).slice(2)}`) : null;
  const view = viewer.connect(canvas, url, {
    fit: model.get("fit") || "contain",
    token: model.get("token") || undefined,
    imageOnly: model.get("image_only"),
    workerUrl: viewer.workerUrl,
    channel,
  });
  report(model, { mode, state: "connecting" });
  let frames = 0;
  let state = "connecting";
  view.on("frame", () => (frames += 1));
  view.on("state", (s) => {
    state = s.state;
    report(model, { state: s.state, last_error: s.message || "" });
  });
  view.on("error", (e) => report(model, { last_error: e.message || String(e) }));
  // For tests and debugging (not an API): the transport, state, frame count and canvas pixels.
  const hooks = viewer.debugHooks(view);
  root.__framecast = {
    mode,
    url,
    get state() {
      return state;
    },
    get frames() {
      return frames;
    },
    readPixels: (x, y, w, h) => hooks.readPixels(x, y, w, h),
  };
  return () => {
    view.close();
    channel?.dispose();
  };
}

export default { render };
