// framecast viewer: DOM input -> pdum.rfb 0.3 event vocabulary, in FRAME pixels.
//
// Geometry: the canvas element's CSS box (width x height CSS px) is backed by
// round(width * dpr) x round(height * dpr) device pixels. The frame (frameW x frameH) is placed in
// that backing box by the fit mode, centred:
//   contain: uniform scale min(bw/fw, bh/fh) (letterboxed)
//   cover:   uniform scale max(bw/fw, bh/fh) (cropped)
//   fill:    independent x/y scales (stretched)
// A pointer at CSS (cx, cy) is at backing (cx*dpr, cy*dpr) and at frame
//   x = (bx - dx) / dw * fw,  y = (by - dy) / dh * fh
// where (dx, dy, dw, dh) is the frame's rectangle in the backing box. `inside` says whether the
// point falls on the frame. This is pdum.rfb's `backingToFrame` without zoom/pan; the canvas shows
// the frame with CSS `object-fit` set to the same mode, so what is drawn and what is mapped agree.

/** The frame's rectangle inside a box, for a fit mode. */
export function fitRect(fit, boxW, boxH, frameW, frameH) {
  let sx = frameW > 0 ? boxW / frameW : 1;
  let sy = frameH > 0 ? boxH / frameH : 1;
  if (fit === "contain") sx = sy = Math.min(sx, sy);
  else if (fit === "cover") sx = sy = Math.max(sx, sy);
  const w = frameW * sx;
  const h = frameH * sy;
  return { x: (boxW - w) / 2, y: (boxH - h) / 2, w, h };
}

/**
 * Maps a point in CSS pixels relative to the canvas content box to frame pixels.
 * @returns {{x: number, y: number, inside: boolean}}
 */
export function cssToFrame(fit, cssX, cssY, cssW, cssH, dpr, frameW, frameH) {
  const bw = Math.max(1, Math.round(cssW * dpr));
  const bh = Math.max(1, Math.round(cssH * dpr));
  // CSS -> backing uses the exact backing/CSS ratio (what the rounding made of dpr).
  const bx = cssW > 0 ? (cssX * bw) / cssW : 0;
  const by = cssH > 0 ? (cssY * bh) / cssH : 0;
  const r = fitRect(fit, bw, bh, frameW, frameH);
  const x = r.w > 0 ? ((bx - r.x) / r.w) * frameW : 0;
  const y = r.h > 0 ? ((by - r.y) / r.h) * frameH : 0;
  return { x, y, inside: x >= 0 && x < frameW && y >= 0 && y < frameH };
}

/** The inverse of cssToFrame: where frame pixel (x, y) appears, in CSS px of the content box. */
export function frameToCss(fit, x, y, cssW, cssH, dpr, frameW, frameH) {
  const bw = Math.max(1, Math.round(cssW * dpr));
  const bh = Math.max(1, Math.round(cssH * dpr));
  const r = fitRect(fit, bw, bh, frameW, frameH);
  const bx = r.x + (x / frameW) * r.w;
  const by = r.y + (y / frameH) * r.h;
  return { x: (bx * cssW) / bw, y: (by * cssH) / bh };
}

/** DOM `button` -> pdum button: 0 none, 1 left, 2 right, 3 middle, 4 back, 5 forward. */
export function mapButton(domButton) {
  switch (domButton) {
    case 0: return 1;
    case 1: return 3;
    case 2: return 2;
    case 3: return 4;
    case 4: return 5;
    default: return 0;
  }
}

/** DOM `buttons` bitmask -> list of pdum buttons. */
export function mapButtons(mask) {
  const out = [];
  if (mask & 1) out.push(1);
  if (mask & 2) out.push(2);
  if (mask & 4) out.push(3);
  if (mask & 8) out.push(4);
  if (mask & 16) out.push(5);
  return out;
}

/** Modifier keys held, as pdum names them. */
export function mapModifiers(e) {
  const m = [];
  if (e.shiftKey) m.push("Shift");
  if (e.ctrlKey) m.push("Control");
  if (e.altKey) m.push("Alt");
  if (e.metaKey) m.push("Meta");
  return m;
}

/** Wheel delta in pixels: lines x16, pages x the canvas size (CSS px). */
export function wheelDelta(delta, mode, pageSize) {
  return mode === 1 ? delta * 16 : mode === 2 ? delta * pageSize : delta;
}

const POINTER_TYPES = { pointerdown: "pointer_down", pointerup: "pointer_up", pointermove: "pointer_move" };

/**
 * Builds a pdum event from a DOM pointer/wheel/key event.
 * @param {Event} e DOM event
 * @param {{left:number, top:number, width:number, height:number}} box canvas content box, CSS px
 * @param {{fit:string, dpr:number, frameW:number, frameH:number}} view
 * @returns {object|null} null for a pointer/wheel event while no frame size is known
 */
export function toRfbEvent(e, box, view) {
  const timestamp = e.timeStamp / 1000;
  if (e.type === "keydown" || e.type === "keyup") {
    return {
      type: e.type === "keydown" ? "key_down" : "key_up",
      key: e.key,
      code: e.code,
      modifiers: mapModifiers(e),
      timestamp,
    };
  }
  if (!(view.frameW > 0 && view.frameH > 0)) return null;
  const p = cssToFrame(view.fit, e.clientX - box.left, e.clientY - box.top, box.width, box.height,
    view.dpr, view.frameW, view.frameH);
  const common = { x: p.x, y: p.y, inside: p.inside, pixel_ratio: view.dpr };
  if (e.type === "wheel") {
    return {
      type: "wheel",
      ...common,
      dx: wheelDelta(e.deltaX, e.deltaMode, box.width),
      dy: wheelDelta(e.deltaY, e.deltaMode, box.height),
      buttons: mapButtons(e.buttons),
      modifiers: mapModifiers(e),
      timestamp,
    };
  }
  const type = POINTER_TYPES[e.type];
  if (!type) return null;
  return {
    type,
    ...common,
    button: mapButton(e.button),
    buttons: mapButtons(e.buttons),
    modifiers: mapModifiers(e),
    timestamp,
  };
}
