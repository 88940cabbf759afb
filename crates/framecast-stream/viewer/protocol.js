// framecast viewer: the pdum.rfb 0.3 wire format, browser side.
//
// Text WebSocket frames carry JSON control messages. Each binary frame carries one payload:
//   u32 little-endian header length | compact UTF-8 JSON header | raw payload
// (one JPEG/PNG image for `image_frame`, one H.264 Annex B access unit for `video_chunk`).

/** Capability strings of the pdum.rfb 0.3 `hello`. */
export const CAP_JPEG = "image/jpeg";
export const CAP_PNG = "image/png";
export const CAP_H264 = "webcodecs/h264-annexb";

/** The codec the stock pdum.rfb client probes before advertising H.264. */
export const PROBE_CODEC = "avc1.42E01F";

const utf8 = new TextDecoder("utf-8", { fatal: true });
const utf8enc = new TextEncoder();

/**
 * Splits one binary message into its JSON header and payload (a view, not a copy).
 * Throws on a buffer shorter than 4 bytes or than 4 + header length ("buffer truncated"),
 * and on a header that is not a JSON object.
 * @param {ArrayBuffer} buf
 * @returns {{header: object, payload: Uint8Array}}
 */
export function unpack(buf) {
  if (buf.byteLength < 4) throw new Error(`binary message of ${buf.byteLength} bytes: buffer truncated`);
  const len = new DataView(buf).getUint32(0, true);
  if (buf.byteLength < 4 + len) {
    throw new Error(`header length ${len} but only ${buf.byteLength - 4} bytes follow: buffer truncated`);
  }
  const header = JSON.parse(utf8.decode(new Uint8Array(buf, 4, len)));
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    throw new Error("binary message header is not a JSON object");
  }
  return { header, payload: new Uint8Array(buf, 4 + len) };
}

/**
 * Builds one binary message (used by tests and tools; the viewer only receives binary frames).
 * @param {object} header
 * @param {Uint8Array} payload
 * @returns {Uint8Array}
 */
export function pack(header, payload) {
  const h = utf8enc.encode(JSON.stringify(header));
  const out = new Uint8Array(4 + h.length + payload.length);
  new DataView(out.buffer).setUint32(0, h.length, true);
  out.set(h, 4);
  out.set(payload, 4 + h.length);
  return out;
}

/** Close codes with a meaning to the viewer, and whether to reconnect after them. */
export const CLOSE_CODES = {
  4401: { text: "unauthorized: the server rejected the token", reconnect: false },
  4404: { text: "unknown stream", reconnect: false },
  1003: { text: "no supported transport: this browser and the server share no format", reconnect: true },
};
