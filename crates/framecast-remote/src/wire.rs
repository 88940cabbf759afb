//! The VTR1 wire format, sans-IO: message types, encoding, and an incremental decoder
//! ([`Vtr1Codec`]) that takes bytes as they arrive and yields whole messages.
//!
//! Layout (all integers big-endian): a 12-byte header — u32 magic `VTR1`, u16 version 1, u16
//! type, u32 payload length — then the payload. Strings are a u16 byte length and UTF-8 bytes.

pub use crate::codes::{error_code, status, MessageType};
use crate::error::WireError;
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// `"VTR1"` as a big-endian u32.
pub const MAGIC: u32 = 0x5654_5231;
/// The only protocol version.
pub const VERSION: u16 = 1;
/// Header length in bytes.
pub const HEADER_LEN: usize = 12;
/// `AV_NOPTS_VALUE`: a missing timestamp.
pub const NOPTS: i64 = i64::MIN;
/// Side-data records a parser keeps (more are read and discarded).
pub const MAX_SIDE_DATA: usize = 16;
/// FRAME/PACKET flag bit 0: keyframe (forced keyframe on encode input).
pub const FLAG_KEYFRAME: u32 = 1;

/// Default `--max-message-bytes` (256 MiB), the reference's default.
pub const DEFAULT_MAX_MESSAGE_BYTES: u32 = 268_435_456;
/// HELLO (and HELLO_ACK on the client) size cap: 64 KiB.
pub const MAX_HELLO_BYTES: u32 = 64 * 1024;
/// CONFIGURE (and CONFIGURE_ACK on the client) size cap: 4 MiB.
pub const MAX_CONFIGURE_BYTES: u32 = 4 * 1024 * 1024;
/// Other control messages on the client: 64 KiB.
pub const MAX_CONTROL_BYTES: u32 = 64 * 1024;

/// Wire pixel format ids (§6).
pub mod pix_fmt {
    /// NV12: Y plane, then interleaved UV at half height.
    pub const NV12: u8 = 1;
    /// P010: 2 planes of 16-bit samples.
    pub const P010: u8 = 2;
    /// BGRA: one plane, 4 bytes per pixel.
    pub const BGRA: u8 = 3;
    /// AYUV: one plane, 4 bytes per pixel.
    pub const AYUV: u8 = 4;
    /// P210: 2 planes, UV at full height.
    pub const P210: u8 = 5;
    /// Client-side VideoToolbox hardware frame marker.
    pub const VIDEOTOOLBOX: u8 = 6;

    /// A name for messages.
    pub fn name(id: u8) -> &'static str {
        match id {
            NV12 => "nv12",
            P010 => "p010",
            BGRA => "bgra",
            AYUV => "ayuv",
            P210 => "p210",
            VIDEOTOOLBOX => "videotoolbox",
            _ => "unknown",
        }
    }
}

/// The 12-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Message type.
    pub kind: MessageType,
    /// Payload length in bytes (header excluded).
    pub length: u32,
}

impl Header {
    /// Parse and check magic and version.
    pub fn parse(b: &[u8; HEADER_LEN]) -> Result<Header, WireError> {
        let magic = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        if magic != MAGIC {
            return Err(WireError::BadMagic { found: magic });
        }
        let version = u16::from_be_bytes([b[4], b[5]]);
        if version != VERSION {
            return Err(WireError::BadVersion { found: version });
        }
        Ok(Header {
            kind: MessageType(u16::from_be_bytes([b[6], b[7]])),
            length: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        })
    }

    /// The 12 bytes.
    pub fn to_bytes(self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&MAGIC.to_be_bytes());
        b[4..6].copy_from_slice(&VERSION.to_be_bytes());
        b[6..8].copy_from_slice(&self.kind.0.to_be_bytes());
        b[8..12].copy_from_slice(&self.length.to_be_bytes());
        b
    }
}

/// HELLO (1), client → server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hello {
    /// Shared secret, empty when none.
    pub token: String,
    /// `h264` or `hevc`.
    pub codec: String,
    /// Client name (FFmpeg sends `ffmpeg-vtremote`).
    pub client_name: String,
    /// Client build (FFmpeg sends its version).
    pub build: String,
}

/// HELLO_ACK (2), server → client. An older server's "legacy" layout (status, two u16 zeros, a
/// codec list, u16 4, u16 1) parses as this with empty name and version.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HelloAck {
    /// [`status`] value.
    pub status: u8,
    /// Server name.
    pub server_name: String,
    /// Server version.
    pub server_version: String,
    /// Capability strings (at most 255).
    pub capabilities: Vec<String>,
    /// Session limit.
    pub max_sessions: u16,
    /// Sessions active (including this one when accepted).
    pub active_sessions: u16,
}

impl HelloAck {
    /// Whether the server advertised `cap`.
    pub fn has(&self, cap: &str) -> bool {
        self.capabilities.iter().any(|c| c == cap)
    }
}

/// CONFIGURE (3), client → server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Configure {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// [`pix_fmt`] id.
    pub pix_fmt: u8,
    /// Time base numerator.
    pub tb_num: u32,
    /// Time base denominator.
    pub tb_den: u32,
    /// Frame rate numerator.
    pub fr_num: u32,
    /// Frame rate denominator.
    pub fr_den: u32,
    /// Options map, in wire order (keys and values are strings; unknown keys are ignored).
    pub options: Vec<(String, String)>,
    /// avcC/hvcC or Annex B parameter sets (required in decode mode); empty when none.
    pub extradata: Bytes,
}

impl Configure {
    /// The last value given for `key`.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Set (replace or append) an option.
    pub fn set_option(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        if let Some(slot) = self.options.iter_mut().find(|(k, _)| k == key) {
            slot.1 = value;
        } else {
            self.options.push((key.to_string(), value));
        }
    }
}

/// CONFIGURE_ACK (4), server → client.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigureAck {
    /// 0 = ok.
    pub status: u8,
    /// avcC (H.264) or hvcC; at most 65535 bytes.
    pub extradata: Bytes,
    /// Pixel format the server reports.
    pub pix_fmt: u8,
    /// Warnings (the reference always sends none).
    pub warnings: Vec<String>,
}

/// One side-data record of the FRAME/PACKET trailer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideData {
    /// `AVFrameSideDataType` (FRAME) or `AVPacketSideDataType` (PACKET) value.
    pub kind: u32,
    /// Payload.
    pub data: Bytes,
}

/// One plane of a FRAME.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plane {
    /// Bytes per row (of the decompressed plane).
    pub stride: u32,
    /// Rows.
    pub height: u32,
    /// Bytes as carried: raw, or LZ4/Zstd-compressed when wire compression is on.
    pub data: Bytes,
}

/// FRAME (5): raw picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameMsg {
    /// Presentation time in the CONFIGURE time base ([`NOPTS`] if unknown).
    pub pts: i64,
    /// Duration in the time base.
    pub duration: i64,
    /// Bit 0: force keyframe (encode input) / is keyframe (decode output).
    pub flags: u32,
    /// Planes (count must match the pixel format).
    pub planes: Vec<Plane>,
    /// Optional trailer (at most [`MAX_SIDE_DATA`] kept).
    pub side_data: Vec<SideData>,
}

/// PACKET (6): Annex B bitstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketMsg {
    /// Presentation time.
    pub pts: i64,
    /// Decode time.
    pub dts: i64,
    /// Duration.
    pub duration: i64,
    /// Bit 0: keyframe.
    pub flags: u32,
    /// Annex B data.
    pub data: Bytes,
    /// Optional trailer.
    pub side_data: Vec<SideData>,
}

impl PacketMsg {
    /// Whether the keyframe flag is set.
    pub fn is_keyframe(&self) -> bool {
        self.flags & FLAG_KEYFRAME != 0
    }
}

/// ERROR (9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorMsg {
    /// [`error_code`] value.
    pub code: u32,
    /// Human-readable text.
    pub message: String,
}

/// Every VTR1 message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// 1
    Hello(Hello),
    /// 2
    HelloAck(HelloAck),
    /// 3
    Configure(Configure),
    /// 4
    ConfigureAck(ConfigureAck),
    /// 5
    Frame(FrameMsg),
    /// 6
    Packet(PacketMsg),
    /// 7
    Flush,
    /// 8
    Done,
    /// 9
    Error(ErrorMsg),
    /// 10
    Ping,
    /// 11
    Pong,
    /// 12
    PacketAck,
    /// A type this implementation does not know; its body was skipped.
    Unknown {
        /// The type id.
        kind: MessageType,
        /// Payload bytes skipped.
        length: u32,
    },
}

impl Message {
    /// The message's type id.
    pub fn kind(&self) -> MessageType {
        match self {
            Message::Hello(_) => MessageType::HELLO,
            Message::HelloAck(_) => MessageType::HELLO_ACK,
            Message::Configure(_) => MessageType::CONFIGURE,
            Message::ConfigureAck(_) => MessageType::CONFIGURE_ACK,
            Message::Frame(_) => MessageType::FRAME,
            Message::Packet(_) => MessageType::PACKET,
            Message::Flush => MessageType::FLUSH,
            Message::Done => MessageType::DONE,
            Message::Error(_) => MessageType::ERROR,
            Message::Ping => MessageType::PING,
            Message::Pong => MessageType::PONG,
            Message::PacketAck => MessageType::PACKET_ACK,
            Message::Unknown { kind, .. } => *kind,
        }
    }

    /// Header plus payload. Errors when a field does not fit its wire width (a string over
    /// 65535 bytes, more than 255 planes or capabilities, ...). `Unknown` encodes as an empty
    /// payload of its type.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.payload_hint());
        self.encode_into(&mut out)?;
        Ok(out)
    }

    fn payload_hint(&self) -> usize {
        match self {
            Message::Frame(f) => 32 + f.planes.iter().map(|p| 12 + p.data.len()).sum::<usize>(),
            Message::Packet(p) => 40 + p.data.len(),
            _ => 64,
        }
    }

    /// Append header plus payload to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        let start = out.len();
        out.extend_from_slice(&[0u8; HEADER_LEN]);
        let kind = self.kind();
        {
            let mut w = Writer { out, kind };
            match self {
                Message::Hello(h) => {
                    w.str("token", &h.token)?;
                    w.str("codec", &h.codec)?;
                    w.str("client_name", &h.client_name)?;
                    w.str("build", &h.build)?;
                }
                Message::HelloAck(a) => {
                    w.u8(a.status);
                    w.str("server_name", &a.server_name)?;
                    w.str("server_version", &a.server_version)?;
                    w.count_u8("cap_count", a.capabilities.len())?;
                    for c in &a.capabilities {
                        w.str("capability", c)?;
                    }
                    w.u16(a.max_sessions);
                    w.u16(a.active_sessions);
                }
                Message::Configure(c) => {
                    w.u32(c.width);
                    w.u32(c.height);
                    w.u8(c.pix_fmt);
                    w.u32(c.tb_num);
                    w.u32(c.tb_den);
                    w.u32(c.fr_num);
                    w.u32(c.fr_den);
                    w.count_u16("opt_count", c.options.len())?;
                    for (k, v) in &c.options {
                        w.str("option key", k)?;
                        w.str("option value", v)?;
                    }
                    w.count_u32("extradata_len", c.extradata.len())?;
                    w.bytes(&c.extradata);
                }
                Message::ConfigureAck(a) => {
                    w.u8(a.status);
                    w.count_u16("extradata_len", a.extradata.len())?;
                    w.bytes(&a.extradata);
                    w.u8(a.pix_fmt);
                    w.count_u8("warn_count", a.warnings.len())?;
                    for s in &a.warnings {
                        w.str("warning", s)?;
                    }
                }
                Message::Frame(f) => {
                    w.i64(f.pts);
                    w.i64(f.duration);
                    w.u32(f.flags);
                    w.count_u8("plane_count", f.planes.len())?;
                    for p in &f.planes {
                        w.u32(p.stride);
                        w.u32(p.height);
                        w.count_u32("plane data_len", p.data.len())?;
                        w.bytes(&p.data);
                    }
                    w.side_data(&f.side_data)?;
                }
                Message::Packet(p) => {
                    w.i64(p.pts);
                    w.i64(p.dts);
                    w.i64(p.duration);
                    w.u32(p.flags);
                    w.count_u32("data_len", p.data.len())?;
                    w.bytes(&p.data);
                    w.side_data(&p.side_data)?;
                }
                Message::Error(e) => {
                    w.u32(e.code);
                    w.str("message", &e.message)?;
                }
                Message::Flush
                | Message::Done
                | Message::Ping
                | Message::Pong
                | Message::PacketAck
                | Message::Unknown { .. } => {}
            }
        }
        let len = out.len() - start - HEADER_LEN;
        let length = u32::try_from(len).map_err(|_| WireError::FieldOverflow {
            kind,
            field: "payload length",
            value: len as u64,
            max: u32::MAX as u64,
        })?;
        out[start..start + HEADER_LEN].copy_from_slice(&Header { kind, length }.to_bytes());
        Ok(())
    }

    /// Parse a payload whose header said `kind`. Unknown kinds give [`Message::Unknown`].
    pub fn decode_payload(kind: MessageType, payload: Bytes) -> Result<Message, WireError> {
        let length = payload.len() as u32;
        let mut r = Reader { b: payload, kind };
        Ok(match kind {
            MessageType::HELLO => Message::Hello(Hello {
                token: r.str("token")?,
                codec: r.str("codec")?,
                client_name: r.str("client_name")?,
                build: r.str("build")?,
            }),
            MessageType::HELLO_ACK => {
                let status = r.u8("status")?;
                let server_name = r.str("server_name")?;
                let server_version = r.str("server_version")?;
                let n = r.u8("cap_count")?;
                let mut capabilities = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    capabilities.push(r.str("capability")?);
                }
                HelloAck {
                    status,
                    server_name,
                    server_version,
                    capabilities,
                    max_sessions: r.u16("max_sessions")?,
                    active_sessions: r.u16("active_sessions")?,
                }
                .into()
            }
            MessageType::CONFIGURE => {
                let mut c = Configure {
                    width: r.u32("width")?,
                    height: r.u32("height")?,
                    pix_fmt: r.u8("pix_fmt")?,
                    tb_num: r.u32("tb_num")?,
                    tb_den: r.u32("tb_den")?,
                    fr_num: r.u32("fr_num")?,
                    fr_den: r.u32("fr_den")?,
                    ..Configure::default()
                };
                // Like the reference, the options map and the extradata are optional tails.
                if r.b.remaining() >= 2 {
                    let n = r.u16("opt_count")?;
                    for _ in 0..n {
                        let k = r.raw_str("option key")?;
                        let v = r.raw_str("option value")?;
                        // The reference drops pairs that are not UTF-8.
                        if let (Ok(k), Ok(v)) = (String::from_utf8(k), String::from_utf8(v)) {
                            c.options.push((k, v));
                        }
                    }
                }
                if r.b.remaining() >= 4 {
                    let n = r.u32("extradata_len")? as usize;
                    c.extradata = r.take("extradata", n)?;
                }
                Message::Configure(c)
            }
            MessageType::CONFIGURE_ACK => {
                let status = r.u8("status")?;
                let n = r.u16("extradata_len")? as usize;
                let extradata = r.take("extradata", n)?;
                // FFmpeg reads the tail leniently; so do we.
                let pix_fmt = if r.b.has_remaining() {
                    r.u8("pix_fmt")?
                } else {
                    0
                };
                let mut warnings = Vec::new();
                if r.b.has_remaining() {
                    let n = r.u8("warn_count")?;
                    for _ in 0..n {
                        warnings.push(r.str("warning")?);
                    }
                }
                Message::ConfigureAck(ConfigureAck {
                    status,
                    extradata,
                    pix_fmt,
                    warnings,
                })
            }
            MessageType::FRAME => {
                let pts = r.i64("pts")?;
                let duration = r.i64("duration")?;
                let flags = r.u32("flags")?;
                let n = r.u8("plane_count")?;
                let mut planes = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    let stride = r.u32("plane stride")?;
                    let height = r.u32("plane height")?;
                    let len = r.u32("plane data_len")? as usize;
                    let data = r.take("plane data", len)?;
                    planes.push(Plane {
                        stride,
                        height,
                        data,
                    });
                }
                let side_data = r.side_data()?;
                Message::Frame(FrameMsg {
                    pts,
                    duration,
                    flags,
                    planes,
                    side_data,
                })
            }
            MessageType::PACKET => {
                let pts = r.i64("pts")?;
                let dts = r.i64("dts")?;
                let duration = r.i64("duration")?;
                let flags = r.u32("flags")?;
                let len = r.u32("data_len")? as usize;
                let data = r.take("data", len)?;
                let side_data = r.side_data()?;
                Message::Packet(PacketMsg {
                    pts,
                    dts,
                    duration,
                    flags,
                    data,
                    side_data,
                })
            }
            MessageType::ERROR => {
                let code = r.u32("code")?;
                // The older mock server omitted the string length: take the rest as text.
                let message = match r.clone_str("message") {
                    Ok(s) => s,
                    Err(_) => String::from_utf8_lossy(&r.b).into_owned(),
                };
                Message::Error(ErrorMsg { code, message })
            }
            MessageType::FLUSH => Message::Flush,
            MessageType::DONE => Message::Done,
            MessageType::PING => Message::Ping,
            MessageType::PONG => Message::Pong,
            MessageType::PACKET_ACK => Message::PacketAck,
            _ => Message::Unknown { kind, length },
        })
    }
}

impl From<HelloAck> for Message {
    fn from(a: HelloAck) -> Self {
        Message::HelloAck(a)
    }
}

struct Writer<'a> {
    out: &'a mut Vec<u8>,
    kind: MessageType,
}

impl Writer<'_> {
    fn u8(&mut self, v: u8) {
        self.out.put_u8(v);
    }
    fn u16(&mut self, v: u16) {
        self.out.put_u16(v);
    }
    fn u32(&mut self, v: u32) {
        self.out.put_u32(v);
    }
    fn i64(&mut self, v: i64) {
        self.out.put_i64(v);
    }
    fn bytes(&mut self, b: &[u8]) {
        self.out.extend_from_slice(b);
    }
    fn overflow(&self, field: &'static str, value: usize, max: u64) -> WireError {
        WireError::FieldOverflow {
            kind: self.kind,
            field,
            value: value as u64,
            max,
        }
    }
    fn count_u8(&mut self, field: &'static str, n: usize) -> Result<(), WireError> {
        let v = u8::try_from(n).map_err(|_| self.overflow(field, n, u8::MAX as u64))?;
        self.u8(v);
        Ok(())
    }
    fn count_u16(&mut self, field: &'static str, n: usize) -> Result<(), WireError> {
        let v = u16::try_from(n).map_err(|_| self.overflow(field, n, u16::MAX as u64))?;
        self.u16(v);
        Ok(())
    }
    fn count_u32(&mut self, field: &'static str, n: usize) -> Result<(), WireError> {
        let v = u32::try_from(n).map_err(|_| self.overflow(field, n, u32::MAX as u64))?;
        self.u32(v);
        Ok(())
    }
    fn str(&mut self, field: &'static str, s: &str) -> Result<(), WireError> {
        self.count_u16(field, s.len())?;
        self.bytes(s.as_bytes());
        Ok(())
    }
    fn side_data(&mut self, records: &[SideData]) -> Result<(), WireError> {
        // No records: leave the optional trailer out (receivers must accept that).
        if records.is_empty() {
            return Ok(());
        }
        self.count_u8("side_data count", records.len())?;
        for rec in records {
            self.u32(rec.kind);
            self.count_u32("side_data size", rec.data.len())?;
            self.bytes(&rec.data);
        }
        Ok(())
    }
}

struct Reader {
    b: Bytes,
    kind: MessageType,
}

impl Reader {
    fn need(&self, field: &'static str, n: usize) -> Result<(), WireError> {
        if self.b.remaining() < n {
            return Err(WireError::Truncated {
                kind: self.kind,
                field,
                needed: n,
                remaining: self.b.remaining(),
            });
        }
        Ok(())
    }
    fn u8(&mut self, field: &'static str) -> Result<u8, WireError> {
        self.need(field, 1)?;
        Ok(self.b.get_u8())
    }
    fn u16(&mut self, field: &'static str) -> Result<u16, WireError> {
        self.need(field, 2)?;
        Ok(self.b.get_u16())
    }
    fn u32(&mut self, field: &'static str) -> Result<u32, WireError> {
        self.need(field, 4)?;
        Ok(self.b.get_u32())
    }
    fn i64(&mut self, field: &'static str) -> Result<i64, WireError> {
        self.need(field, 8)?;
        Ok(self.b.get_i64())
    }
    fn take(&mut self, field: &'static str, n: usize) -> Result<Bytes, WireError> {
        self.need(field, n)?;
        Ok(self.b.split_to(n))
    }
    fn raw_str(&mut self, field: &'static str) -> Result<Vec<u8>, WireError> {
        let n = self.u16(field)? as usize;
        Ok(self.take(field, n)?.to_vec())
    }
    fn str(&mut self, field: &'static str) -> Result<String, WireError> {
        let raw = self.raw_str(field)?;
        String::from_utf8(raw).map_err(|_| WireError::InvalidUtf8 {
            kind: self.kind,
            field,
        })
    }
    /// Like `str`, but leaves the reader untouched on failure.
    fn clone_str(&mut self, field: &'static str) -> Result<String, WireError> {
        let saved = self.b.clone();
        let r = self.str(field);
        if r.is_err() {
            self.b = saved;
        }
        r
    }
    fn side_data(&mut self) -> Result<Vec<SideData>, WireError> {
        if !self.b.has_remaining() {
            return Ok(Vec::new());
        }
        let n = self.u8("side_data count")?;
        let mut out = Vec::with_capacity((n as usize).min(MAX_SIDE_DATA));
        for _ in 0..n {
            let kind = self.u32("side_data type")?;
            let size = self.u32("side_data size")? as usize;
            let data = self.take("side_data", size)?;
            if out.len() < MAX_SIDE_DATA {
                out.push(SideData { kind, data });
            }
        }
        Ok(out)
    }
}

/// Payload size caps per message type, checked on the header before anything is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// HELLO and HELLO_ACK.
    pub hello: u32,
    /// CONFIGURE and CONFIGURE_ACK.
    pub configure: u32,
    /// FRAME and PACKET.
    pub media: u32,
    /// Everything else, unknown types included.
    pub control: u32,
}

impl Limits {
    /// The server's caps: HELLO 64 KiB, CONFIGURE 4 MiB, any other message `max_message_bytes`.
    pub fn server(max_message_bytes: u32) -> Self {
        Limits {
            hello: MAX_HELLO_BYTES,
            configure: MAX_CONFIGURE_BYTES,
            media: max_message_bytes,
            control: max_message_bytes,
        }
    }

    /// The FFmpeg client's caps: HELLO_ACK 64 KiB, CONFIGURE_ACK 4 MiB, media `max_media`,
    /// other control messages 64 KiB.
    pub fn client(max_media: u32) -> Self {
        Limits {
            hello: MAX_HELLO_BYTES,
            configure: MAX_CONFIGURE_BYTES,
            media: max_media,
            control: MAX_CONTROL_BYTES,
        }
    }

    /// The cap for one type.
    pub fn for_kind(&self, kind: MessageType) -> u32 {
        match kind {
            MessageType::HELLO | MessageType::HELLO_ACK => self.hello,
            MessageType::CONFIGURE | MessageType::CONFIGURE_ACK => self.configure,
            MessageType::FRAME | MessageType::PACKET => self.media,
            _ => self.control,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::server(DEFAULT_MAX_MESSAGE_BYTES)
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    Header,
    Body(Header),
    Skip { header: Header, left: u32 },
}

/// Incremental VTR1 decoder: feed it bytes as they arrive (any split), take whole messages out.
///
/// The header is checked (magic, version, size cap for its type) as soon as its 12 bytes are
/// in, before any room for the body is reserved. Unknown types are skipped without buffering
/// their bodies. After an error the stream is out of sync; drop the codec and the connection.
///
/// ```
/// use framecast_remote::wire::{Limits, Message, Vtr1Codec};
/// let bytes = Message::Ping.encode().unwrap();
/// let mut codec = Vtr1Codec::new(Limits::default());
/// codec.feed(&bytes[..5]);
/// assert_eq!(codec.poll().unwrap(), None);
/// codec.feed(&bytes[5..]);
/// assert_eq!(codec.poll().unwrap(), Some(Message::Ping));
/// ```
#[derive(Debug)]
pub struct Vtr1Codec {
    buf: BytesMut,
    limits: Limits,
    state: State,
    failed: Option<WireError>,
}

impl Vtr1Codec {
    /// A decoder with these size caps.
    pub fn new(limits: Limits) -> Self {
        Vtr1Codec {
            buf: BytesMut::with_capacity(64 * 1024),
            limits,
            state: State::Header,
            failed: None,
        }
    }

    /// Append received bytes.
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The receive buffer, for reading straight into it (`AsyncReadExt::read_buf`). Room for a
    /// whole body is reserved once its header has been accepted.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        if self.buf.capacity() - self.buf.len() < 16 * 1024 {
            self.buf.reserve(64 * 1024);
        }
        &mut self.buf
    }

    /// Bytes received but not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether a message has started arriving but is not complete.
    pub fn mid_message(&self) -> bool {
        !self.buf.is_empty() || !matches!(self.state, State::Header)
    }

    /// The next whole message, `Ok(None)` when more bytes are needed.
    pub fn poll(&mut self) -> Result<Option<Message>, WireError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = self.poll_inner();
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }

    fn poll_inner(&mut self) -> Result<Option<Message>, WireError> {
        loop {
            match self.state {
                State::Header => {
                    if self.buf.len() < HEADER_LEN {
                        return Ok(None);
                    }
                    let mut hb = [0u8; HEADER_LEN];
                    hb.copy_from_slice(&self.buf[..HEADER_LEN]);
                    let header = Header::parse(&hb)?;
                    let limit = self.limits.for_kind(header.kind);
                    if header.length > limit {
                        return Err(WireError::TooLarge {
                            kind: header.kind,
                            length: header.length,
                            limit,
                        });
                    }
                    self.buf.advance(HEADER_LEN);
                    if header.kind.is_known() {
                        let want = header.length as usize;
                        if self.buf.capacity() < want {
                            self.buf.reserve(want - self.buf.len());
                        }
                        self.state = State::Body(header);
                    } else {
                        self.state = State::Skip {
                            header,
                            left: header.length,
                        };
                    }
                }
                State::Body(header) => {
                    let n = header.length as usize;
                    if self.buf.len() < n {
                        return Ok(None);
                    }
                    let payload = self.buf.split_to(n).freeze();
                    self.state = State::Header;
                    return Message::decode_payload(header.kind, payload).map(Some);
                }
                State::Skip { header, left } => {
                    let n = (left as usize).min(self.buf.len());
                    self.buf.advance(n);
                    let left = left - n as u32;
                    if left > 0 {
                        self.state = State::Skip { header, left };
                        return Ok(None);
                    }
                    self.state = State::Header;
                    return Ok(Some(Message::Unknown {
                        kind: header.kind,
                        length: header.length,
                    }));
                }
            }
        }
    }
}
