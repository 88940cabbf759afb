//! The media side of one server session, synchronous and free of sockets: the encoder and/or
//! decoder of a configured session, FRAME/PACKET in, messages out. The server shell runs a
//! [`MediaSession`] on a dedicated thread per connection, so encoding never blocks the async
//! runtime.

use crate::compress::Compression;
use crate::error::{ConfigureError, SessionFailure};
use crate::planes::{
    plane_layouts, resize_plane, validate_and_decompress, FramePlanes, PlaneBuildError, PlaneLayout,
};
use crate::settings::{Mode, SessionSettings, NO_B_FRAMES};
use crate::timing::TimingStats;
use crate::wire::{
    pix_fmt, ConfigureAck, FrameMsg, Message, PacketMsg, SideData, FLAG_KEYFRAME, NOPTS,
};
use bytes::Bytes;
use framecast_core::{ColorSpace, Frame, Yuv420Image};
use framecast_encode::{
    BackpressurePolicy, EncodeMode, EncodedPacket, Encoder, EncoderConfig, EncoderEvent, FrameMeta,
    OutputFormat,
};
use framecast_h264::avcc::AvcDecoderConfig;
use std::collections::{BTreeMap, HashMap, VecDeque};

use framecast_encode::decode::{Picture, VideoDecoder};

/// Server timestamp rules (the reference's `TimestampTracker`): a frame whose PTS duplicates a
/// recent one is dropped; output DTS is kept ≤ PTS and made strictly increasing.
#[derive(Debug, Default, Clone)]
pub struct TimestampTracker {
    recent: VecDeque<i64>,
    last_dts: Option<i64>,
    last_pts: Option<i64>,
}

const RECENT_PTS: usize = 32;

impl TimestampTracker {
    /// A fresh tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Input side: `Some(pts)` to accept (a missing PTS becomes previous + `duration`), `None`
    /// when the PTS duplicates one of the recent inputs and the frame must be dropped.
    pub fn admit(&mut self, pts: i64, duration: i64) -> Option<i64> {
        let pts = if pts == NOPTS {
            self.last_pts
                .map_or(0, |p| p.saturating_add(duration.max(1)))
        } else {
            pts
        };
        if self.recent.contains(&pts) {
            return None;
        }
        if self.recent.len() == RECENT_PTS {
            self.recent.pop_front();
        }
        self.recent.push_back(pts);
        self.last_pts = Some(pts);
        Some(pts)
    }

    /// Output side: `(pts, dts)` for a packet of `pts` with no reordering: DTS = PTS, pushed to
    /// last DTS + 1 if needed, and PTS raised to DTS if that pushed it past PTS.
    pub fn stamp(&mut self, pts: i64) -> (i64, i64) {
        self.stamp_reordered(pts, pts)
    }

    /// Output side for an encoder with B-frames, whose packets come in decode order with their
    /// own `dts`: the same rules (DTS strictly increasing, PTS no earlier than DTS).
    pub fn stamp_reordered(&mut self, pts: i64, dts: i64) -> (i64, i64) {
        let mut dts = dts;
        if let Some(last) = self.last_dts {
            if dts <= last {
                dts = last.saturating_add(1);
            }
        }
        self.last_dts = Some(dts);
        (pts.max(dts), dts)
    }
}

/// Encode a frame through a throw-away encoder with the same configuration and return its
/// avcC. The framecast `Encoder` only knows its parameter sets after the first packet, but
/// CONFIGURE_ACK must carry them before any frame arrives; OpenH264's SPS/PPS depend only on
/// the configuration, so they equal what the session's own encoder will emit (the loopback
/// tests check this). This is the reference's older "warm-up" approach, done on a separate
/// encoder so the session's first frame is still a natural IDR.
pub fn prime_avcc(config: &EncoderConfig) -> Result<Vec<u8>, ConfigureError> {
    let codec = |e: framecast_encode::EncodeError| ConfigureError::Codec(e.to_string());
    let mut cfg = config.clone();
    cfg.mode = EncodeMode::Sync;
    cfg.output = OutputFormat::AnnexB;
    let mut enc = Encoder::new(cfg).map_err(codec)?;
    let (w, h) = (config.width as usize, config.height as usize);
    let y = vec![16u8; w * h];
    let uv = vec![128u8; 2 * w.div_ceil(2) * h.div_ceil(2)];
    let frame = Frame::nv12(&y, w, &uv, 2 * w.div_ceil(2), config.width, config.height)
        .map_err(|e| ConfigureError::Codec(e.to_string()))?;
    let _ = enc
        .send_frame(
            &frame,
            FrameMeta {
                token: 0,
                pts_ns: 0,
                force_keyframe: true,
            },
        )
        .map_err(codec)?;
    let _ = enc.flush().map_err(codec)?;
    let avcc = enc
        .avcc()
        .ok_or_else(|| ConfigureError::Codec("the encoder produced no parameter sets".into()))?;
    fits_configure_ack(avcc)
}

/// CONFIGURE_ACK carries the avcC with a 16-bit length: a longer one is refused, never cut.
fn fits_configure_ack(avcc: Vec<u8>) -> Result<Vec<u8>, ConfigureError> {
    if avcc.len() > u16::MAX as usize {
        return Err(ConfigureError::AvccTooLong { len: avcc.len() });
    }
    Ok(avcc)
}

struct Pending {
    pts: i64,
    duration: i64,
    side_data: Vec<SideData>,
}

/// The encoder half shared by encode and transcode.
struct EncodeHalf {
    encoder: Encoder,
    pending: HashMap<u64, Pending>,
    next_token: u64,
    ts: TimestampTracker,
    frame_duration: i64,
    timing: TimingStats,
}

impl EncodeHalf {
    fn new(config: &EncoderConfig, frame_duration: i64) -> Result<Self, ConfigureError> {
        let mut cfg = config.clone();
        // Conversion/decompression on the session thread overlaps encoding on the encoder's.
        cfg.mode = EncodeMode::Pipelined {
            max_in_flight: 2,
            policy: BackpressurePolicy::Block,
        };
        Ok(EncodeHalf {
            encoder: Encoder::new(cfg).map_err(|e| ConfigureError::Codec(e.to_string()))?,
            pending: HashMap::new(),
            next_token: 0,
            ts: TimestampTracker::new(),
            frame_duration,
            timing: TimingStats::default(),
        })
    }

    fn send(
        &mut self,
        frame: &Frame<'_>,
        pts: i64,
        duration: i64,
        force: bool,
        side_data: Vec<SideData>,
        out: &mut Vec<Message>,
    ) -> Result<(), SessionFailure> {
        let token = self.next_token;
        self.next_token += 1;
        self.pending.insert(
            token,
            Pending {
                pts,
                duration: if duration > 0 {
                    duration
                } else {
                    self.frame_duration
                },
                side_data,
            },
        );
        let _ = self
            .encoder
            .send_frame(
                frame,
                FrameMeta {
                    token,
                    pts_ns: pts,
                    force_keyframe: force,
                },
            )
            .map_err(|e| SessionFailure::Encode(e.to_string()))?;
        self.drain(out)
    }

    fn drain(&mut self, out: &mut Vec<Message>) -> Result<(), SessionFailure> {
        while let Some(ev) = self
            .encoder
            .receive()
            .map_err(|e| SessionFailure::Encode(e.to_string()))?
        {
            self.event(ev, out);
        }
        Ok(())
    }

    fn event(&mut self, ev: EncoderEvent, out: &mut Vec<Message>) {
        match ev {
            EncoderEvent::Packet(p) => {
                let msg = self.packet(p);
                out.push(msg);
            }
            EncoderEvent::Dropped(d) => {
                self.pending.remove(&d.token);
            }
        }
    }

    fn packet(&mut self, p: EncodedPacket) -> Message {
        let info = self.pending.remove(&p.token).unwrap_or(Pending {
            pts: p.pts_ns,
            duration: self.frame_duration,
            side_data: Vec::new(),
        });
        self.timing
            .record(p.timings.encode_ms + p.timings.convert_ms);
        // The encoder's dts is in the caller's units (pts went in as the client's); without
        // B-frames it equals the pts.
        let (pts, dts) = self.ts.stamp_reordered(info.pts, p.dts_ns);
        Message::Packet(PacketMsg {
            pts,
            dts,
            duration: info.duration,
            flags: if p.keyframe { FLAG_KEYFRAME } else { 0 },
            data: p.data,
            side_data: info.side_data,
        })
    }

    /// Wait for one event while frames are inside the encoder; `false` when none are.
    fn wait_one(&mut self, out: &mut Vec<Message>) -> Result<bool, SessionFailure> {
        if self.encoder.in_flight() == 0 {
            return Ok(false);
        }
        match self
            .encoder
            .receive_blocking()
            .map_err(|e| SessionFailure::Encode(e.to_string()))?
        {
            Some(ev) => {
                self.event(ev, out);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn flush(&mut self, out: &mut Vec<Message>) -> Result<(), SessionFailure> {
        let events = self
            .encoder
            .flush()
            .map_err(|e| SessionFailure::Encode(format!("flush: {e}")))?;
        for ev in events {
            self.event(ev, out);
        }
        Ok(())
    }
}

/// A decoded picture with its PTS, flags, duration and side data.
type Decoded = (Yuv420Image, i64, u32, i64, Vec<SideData>);

/// The decoder half shared by decode and transcode.
struct DecodeHalf {
    decoder: Box<dyn VideoDecoder>,
    /// Length size when the extradata was avcC and packets may be length-prefixed.
    avcc_length: Option<u8>,
    /// Flags, duration and side data of packets fed but not yet output, by PTS.
    pending: BTreeMap<i64, (u32, i64, Vec<SideData>)>,
    /// Pictures held to restore presentation order (`decode_reorder_depth`).
    reorder: ReorderWindow,
    frame_duration: i64,
    last_pts: Option<i64>,
}

/// Packets whose pictures may still be inside a decoder: H.264's DPB holds at most 16.
const MAX_PENDING: usize = 64;

fn is_annexb(d: &[u8]) -> bool {
    d.starts_with(&[0, 0, 1]) || d.starts_with(&[0, 0, 0, 1])
}

/// Holds up to `depth` decoded pictures and releases the earliest PTS first (vtremoted's
/// `DecodeReorderBuffer`): a safety net for pictures a decoder emits out of order, e.g. while
/// libavcodec is still learning a stream's reorder depth from a stream whose SPS does not say.
struct ReorderWindow {
    depth: usize,
    held: BTreeMap<(i64, u64), Decoded>,
    seq: u64,
}

impl ReorderWindow {
    fn push(&mut self, d: Decoded, out: &mut Vec<Decoded>) {
        self.seq += 1;
        self.held.insert((d.1, self.seq), d);
        while self.held.len() > self.depth {
            out.extend(self.held.pop_first().map(|(_, d)| d));
        }
    }

    fn drain(&mut self, out: &mut Vec<Decoded>) {
        out.extend(std::mem::take(&mut self.held).into_values());
    }
}

impl DecodeHalf {
    fn new(
        extradata: &[u8],
        frame_duration: i64,
        reorder_depth: usize,
    ) -> Result<Self, ConfigureError> {
        let mut decoder =
            framecast_encode::decode::best().map_err(|e| ConfigureError::Codec(e.to_string()))?;
        let mut avcc_length = None;
        if !extradata.is_empty() {
            let annexb = if is_annexb(extradata) {
                extradata.to_vec()
            } else {
                let rec = AvcDecoderConfig::parse(extradata).map_err(|e| {
                    ConfigureError::Extradata(format!("is neither Annex B nor a valid avcC: {e}"))
                })?;
                avcc_length = Some(rec.length_size);
                rec.parameter_sets_annexb()
            };
            decoder
                .send(&annexb, None)
                .map_err(|e| ConfigureError::Extradata(format!("rejected by the decoder: {e}")))?;
        }
        Ok(DecodeHalf {
            decoder,
            avcc_length,
            pending: BTreeMap::new(),
            reorder: ReorderWindow {
                depth: reorder_depth,
                held: BTreeMap::new(),
                seq: 0,
            },
            frame_duration,
            last_pts: None,
        })
    }

    /// Feed one packet; returns decoded pictures with (pts, flags, duration, side data), in
    /// presentation order.
    fn feed(&mut self, p: PacketMsg) -> Result<Vec<Decoded>, SessionFailure> {
        let data: std::borrow::Cow<'_, [u8]> = match self.avcc_length {
            Some(n) if !is_annexb(&p.data) => framecast_h264::nal::avcc_to_annexb(&p.data, n)
                .map(Into::into)
                .map_err(|e| SessionFailure::Decode(format!("bad length-prefixed packet: {e}")))?,
            _ => (&p.data[..]).into(),
        };
        let mut pts = p.pts;
        if pts == NOPTS {
            pts = if p.dts != NOPTS {
                p.dts
            } else {
                self.last_pts.map_or(0, |l| l + self.frame_duration)
            };
        }
        self.last_pts = Some(pts);
        let duration = if p.duration > 0 {
            p.duration
        } else {
            self.frame_duration
        };
        self.pending
            .entry(pts)
            .or_insert((p.flags & FLAG_KEYFRAME, duration, p.side_data));
        // Packets that never yield a picture (a decoder that drops a broken one) leave their
        // entry behind; the oldest go once more are waiting than any decoder holds back.
        while self.pending.len() > MAX_PENDING {
            self.pending.pop_first();
        }
        let pictures = self
            .decoder
            .send(&data, Some(pts))
            .map_err(|e| self.decode_failure(e))?;
        Ok(self.order(pictures, false))
    }

    fn decode_failure(&self, e: framecast_encode::EncodeError) -> SessionFailure {
        if self.decoder.reorders() {
            SessionFailure::Decode(e.to_string())
        } else {
            SessionFailure::Decode(format!("{e} ({}: {NO_B_FRAMES})", self.decoder.name()))
        }
    }

    /// Stamp pictures with their packet's PTS, flags and side data, and pass them through the
    /// reorder window (`flush`: release everything).
    fn order(&mut self, pictures: Vec<Picture>, flush: bool) -> Vec<Decoded> {
        let mut out = Vec::new();
        for pic in pictures {
            let stamped = self.stamp(pic);
            self.reorder.push(stamped, &mut out);
        }
        if flush {
            self.reorder.drain(&mut out);
        }
        out
    }

    fn stamp(&mut self, pic: Picture) -> Decoded {
        let entry = match pic.pts {
            // A decoder that carries timestamps: this picture's own packet.
            Some(pts) => self.pending.remove(&pts).map(|e| (pts, e)),
            // In decode order without B-frames, the earliest pending PTS is this picture's.
            None => self.pending.pop_first(),
        };
        match entry {
            Some((pts, (flags, dur, sd))) => (pic.image, pts, flags, dur, sd),
            None => {
                let pts = pic
                    .pts
                    .unwrap_or_else(|| self.last_pts.map_or(0, |l| l + self.frame_duration));
                (pic.image, pts, 0, self.frame_duration, Vec::new())
            }
        }
    }

    fn flush(&mut self) -> Result<Vec<Decoded>, SessionFailure> {
        let pics = self
            .decoder
            .drain()
            .map_err(|e| SessionFailure::Decode(format!("flush: {e}")))?;
        let out = self.order(pics, true);
        self.pending.clear();
        Ok(out)
    }
}

enum Kind {
    Encode {
        enc: EncodeHalf,
        layouts: Vec<PlaneLayout>,
        pix_fmt: u8,
        width: u32,
        height: u32,
        max_frame_bytes: u64,
    },
    Decode {
        dec: DecodeHalf,
        ts: TimestampTracker,
    },
    Transcode {
        dec: DecodeHalf,
        enc: EncodeHalf,
        out: (u32, u32),
    },
}

/// Counters of one session for the SUMMARY line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaStats {
    /// FRAMEs (encode) or PACKETs (decode/transcode) accepted.
    pub inputs: u64,
    /// Inputs dropped for a duplicate PTS.
    pub dropped: u64,
    /// PACKETs or FRAMEs produced.
    pub outputs: u64,
}

/// One configured session.
pub struct MediaSession {
    kind: Kind,
    compression: Compression,
    planes: FramePlanes,
    packet_ack: bool,
    stats: MediaStats,
}

impl std::fmt::Debug for MediaSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaSession")
            .field("compression", &self.compression)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl MediaSession {
    /// Build the encoder and/or decoder and the CONFIGURE_ACK (with the avcC of the output
    /// stream in encode and transcode modes). Errors are ERROR code 1 "configure failed: ...".
    pub fn new(
        s: &SessionSettings,
        max_message_bytes: u32,
    ) -> Result<(MediaSession, ConfigureAck), SessionFailure> {
        let dur = s.frame_duration();
        let mut extradata = Bytes::new();
        let encoder = || s.encoder.as_ref().ok_or(ConfigureError::NoBackend);
        let kind = match s.mode {
            Mode::Encode => {
                let cfg = encoder()?;
                extradata = Bytes::from(prime_avcc(cfg)?);
                Kind::Encode {
                    enc: EncodeHalf::new(cfg, dur)?,
                    layouts: plane_layouts(s.pix_fmt, s.width, s.height).ok_or_else(|| {
                        ConfigureError::Unsupported {
                            what: format!("pixel format {}", s.pix_fmt),
                            supported: "nv12 (1) and bgra (3)".into(),
                        }
                    })?,
                    pix_fmt: s.pix_fmt,
                    width: s.width,
                    height: s.height,
                    max_frame_bytes: max_message_bytes as u64,
                }
            }
            Mode::Decode => Kind::Decode {
                dec: DecodeHalf::new(&s.extradata, dur, s.decode_reorder_depth)?,
                ts: TimestampTracker::new(),
            },
            Mode::Transcode => {
                let cfg = encoder()?;
                extradata = Bytes::from(prime_avcc(cfg)?);
                Kind::Transcode {
                    dec: DecodeHalf::new(&s.extradata, dur, s.decode_reorder_depth)?,
                    enc: EncodeHalf::new(cfg, dur)?,
                    out: (cfg.width, cfg.height),
                }
            }
        };
        let ack = ConfigureAck {
            status: 0,
            extradata,
            pix_fmt: s.pix_fmt,
            warnings: s.warnings.clone(),
        };
        Ok((
            MediaSession {
                kind,
                compression: s.compression,
                planes: FramePlanes::new(s.compression),
                packet_ack: s.packet_ack,
                stats: MediaStats::default(),
            },
            ack,
        ))
    }

    /// Counters so far.
    pub fn stats(&self) -> &MediaStats {
        &self.stats
    }

    /// Per-frame encode times in ms (convert + encode), for the SUMMARY line (`None` in
    /// decode mode).
    pub fn encode_timing(&self) -> Option<&TimingStats> {
        match &self.kind {
            Kind::Encode { enc, .. } | Kind::Transcode { enc, .. } => Some(&enc.timing),
            Kind::Decode { .. } => None,
        }
    }

    /// Process one FRAME or PACKET; outputs are appended to `out`. A message of the wrong
    /// kind for the mode is a bad request (code 4).
    pub fn handle(&mut self, msg: Message, out: &mut Vec<Message>) -> Result<(), SessionFailure> {
        let before = out.len();
        let r = self.handle_inner(msg, out);
        self.stats.outputs += out[before..]
            .iter()
            .filter(|m| matches!(m, Message::Packet(_) | Message::Frame(_)))
            .count() as u64;
        r
    }

    fn handle_inner(&mut self, msg: Message, out: &mut Vec<Message>) -> Result<(), SessionFailure> {
        let compression = self.compression;
        let planes_out = &mut self.planes;
        match (&mut self.kind, msg) {
            (
                Kind::Encode {
                    enc,
                    layouts,
                    pix_fmt: fmt,
                    width,
                    height,
                    max_frame_bytes,
                },
                Message::Frame(f),
            ) => {
                let planes =
                    validate_and_decompress(&f.planes, layouts, compression, *max_frame_bytes)?;
                let duration = if f.duration > 0 {
                    f.duration
                } else {
                    enc.frame_duration
                };
                let Some(pts) = enc.ts.admit(f.pts, duration) else {
                    self.stats.dropped += 1;
                    tracing::debug!(pts = f.pts, "duplicate PTS: frame dropped");
                    return Ok(());
                };
                self.stats.inputs += 1;
                let frame = match *fmt {
                    pix_fmt::NV12 => Frame::nv12(
                        &planes[0],
                        f.planes[0].stride as usize,
                        &planes[1],
                        f.planes[1].stride as usize,
                        *width,
                        *height,
                    ),
                    _ => Frame::bgra8(&planes[0], *width, *height, f.planes[0].stride as usize),
                }?;
                enc.send(
                    &frame,
                    pts,
                    duration,
                    f.flags & FLAG_KEYFRAME != 0,
                    f.side_data,
                    out,
                )
            }
            (Kind::Decode { dec, ts }, Message::Packet(p)) => {
                self.stats.inputs += 1;
                for picture in dec.feed(p)? {
                    out.push(decoded_frame(planes_out, ts, picture)?);
                }
                Ok(())
            }
            (
                Kind::Transcode {
                    dec,
                    enc,
                    out: size,
                },
                Message::Packet(p),
            ) => {
                self.stats.inputs += 1;
                for (img, pts, _flags, dur, sd) in dec.feed(p)? {
                    transcode_picture(enc, *size, &img, pts, dur, sd, out)?;
                }
                if self.packet_ack {
                    out.push(Message::PacketAck);
                }
                Ok(())
            }
            (kind, m) => {
                let mode = match kind {
                    Kind::Encode { .. } => "encode",
                    Kind::Decode { .. } => "decode",
                    Kind::Transcode { .. } => "transcode",
                };
                Err(SessionFailure::Unexpected {
                    got: m.kind(),
                    mode,
                })
            }
        }
    }

    /// Block until the encoder hands out one more packet, if it holds any frame; returns
    /// whether it did. Lets the shell emit packets as soon as they are ready when no input is
    /// waiting (a client with a small in-flight window waits for them).
    pub fn wait_output(&mut self, out: &mut Vec<Message>) -> Result<bool, SessionFailure> {
        let before = out.len();
        let r = match &mut self.kind {
            Kind::Encode { enc, .. } | Kind::Transcode { enc, .. } => enc.wait_one(out),
            Kind::Decode { .. } => Ok(false),
        };
        self.stats.outputs += (out.len() - before) as u64;
        r
    }

    /// FLUSH: everything still inside the codecs, in order (DONE is the caller's to send).
    pub fn flush(&mut self, out: &mut Vec<Message>) -> Result<(), SessionFailure> {
        let before = out.len();
        let planes_out = &mut self.planes;
        let r = match &mut self.kind {
            Kind::Encode { enc, .. } => enc.flush(out),
            Kind::Decode { dec, ts } => (|| {
                for picture in dec.flush()? {
                    out.push(decoded_frame(planes_out, ts, picture)?);
                }
                Ok(())
            })(),
            Kind::Transcode {
                dec,
                enc,
                out: size,
            } => (|| {
                for (img, pts, _f, dur, sd) in dec.flush()? {
                    transcode_picture(enc, *size, &img, pts, dur, sd, out)?;
                }
                enc.flush(out)
            })(),
        };
        self.stats.outputs += out[before..]
            .iter()
            .filter(|m| matches!(m, Message::Packet(_) | Message::Frame(_)))
            .count() as u64;
        r
    }
}

/// A decoded picture as an output FRAME (NV12 planes, compressed as negotiated).
fn decoded_frame(
    planes: &mut FramePlanes,
    ts: &mut TimestampTracker,
    (img, pts, flags, duration, side_data): Decoded,
) -> Result<Message, SessionFailure> {
    let (pts, _) = ts.stamp(pts);
    let planes = planes
        .nv12(&img.as_frame(), ColorSpace::default())
        .map_err(|e| match e {
            PlaneBuildError::Compression(c) => SessionFailure::Output(c),
            other => SessionFailure::Decode(other.to_string()),
        })?;
    Ok(Message::Frame(FrameMsg {
        pts,
        duration,
        flags,
        planes,
        side_data,
    }))
}

fn transcode_picture(
    enc: &mut EncodeHalf,
    (ow, oh): (u32, u32),
    img: &Yuv420Image,
    pts: i64,
    dur: i64,
    side_data: Vec<SideData>,
    out: &mut Vec<Message>,
) -> Result<(), SessionFailure> {
    let bad = SessionFailure::Frame;
    let (w, h) = (img.width(), img.height());
    let (y, u, v) = img.planes();
    if (w, h) == (ow, oh) {
        let cs = img.chroma_stride();
        let frame = Frame::i420(y, img.y_stride(), u, cs, v, cs, w, h).map_err(bad)?;
        return enc.send(&frame, pts, dur, false, side_data, out);
    }
    let (ow_, oh_) = (ow as usize, oh as usize);
    let (ocw, och) = (ow_.div_ceil(2), oh_.div_ceil(2));
    let (cw, ch) = ((w as usize).div_ceil(2), (h as usize).div_ceil(2));
    let ry = resize_plane(y, w as usize, h as usize, img.y_stride(), ow_, oh_);
    let ru = resize_plane(u, cw, ch, img.chroma_stride(), ocw, och);
    let rv = resize_plane(v, cw, ch, img.chroma_stride(), ocw, och);
    let frame = Frame::i420(&ry, ow_, &ru, ocw, &rv, ocw, ow, oh).map_err(bad)?;
    enc.send(&frame, pts, dur, false, side_data, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(pts: i64) -> Decoded {
        let img = Yuv420Image::new(2, 2, framecast_core::YuvLayout::I420).unwrap();
        (img, pts, 0, 1, Vec::new())
    }

    fn window_order(depth: usize, arrivals: &[i64]) -> Vec<i64> {
        let mut w = ReorderWindow {
            depth,
            held: BTreeMap::new(),
            seq: 0,
        };
        let mut out = Vec::new();
        for &pts in arrivals {
            w.push(decoded(pts), &mut out);
        }
        w.drain(&mut out);
        out.iter().map(|d| d.1).collect()
    }

    #[test]
    fn decode_reorder_depth_restores_presentation_order_within_its_window() {
        // Decode order of a B-pyramid: I0 P4 B2 b1 b3, pictures out in decode order (as
        // VideoToolbox hands them out).
        let arrivals = [0, 4, 2, 1, 3];
        assert_eq!(
            window_order(0, &arrivals),
            arrivals,
            "depth 0 passes through"
        );
        assert_eq!(window_order(2, &arrivals), [0, 1, 2, 3, 4]);
        // A window too small for the stream's reordering cannot fix it.
        assert_eq!(window_order(1, &arrivals), [0, 2, 1, 3, 4]);
        // Equal PTS keep their arrival order.
        assert_eq!(window_order(4, &[2, 2, 1]), [1, 2, 2]);
    }

    #[test]
    fn an_avcc_too_long_for_configure_ack_is_an_error_not_a_cut() {
        assert_eq!(fits_configure_ack(vec![1; 65_535]).unwrap().len(), 65_535);
        let e = fits_configure_ack(vec![1; 70_000]).unwrap_err();
        assert_eq!(e, ConfigureError::AvccTooLong { len: 70_000 });
        let f = SessionFailure::from(e);
        assert_eq!(f.code(), crate::wire::error_code::CONFIGURE_FAILED);
        assert!(
            f.to_string()
                .starts_with("configure failed: the output stream's avcC is 70000 bytes"),
            "{f}"
        );
    }

    #[test]
    fn a_failed_output_compression_is_error_2() {
        let f = SessionFailure::Output(crate::CompressionError::Compress {
            codec: "zstd",
            plane: 1,
            detail: "out of memory".into(),
        });
        assert_eq!(f.code(), crate::wire::error_code::PROCESSING_FAILED);
        assert_eq!(
            f.to_string(),
            "output: zstd compression of plane 1 failed: out of memory"
        );
    }

    #[test]
    fn timestamp_rules() {
        let mut t = TimestampTracker::new();
        assert_eq!(t.admit(0, 1), Some(0));
        assert_eq!(t.admit(1, 1), Some(1));
        assert_eq!(t.admit(1, 1), None, "duplicate PTS dropped");
        assert_eq!(
            t.admit(NOPTS, 1),
            Some(2),
            "missing PTS follows the previous"
        );
        assert_eq!(t.stamp(0), (0, 0));
        assert_eq!(t.stamp(5), (5, 5));
        // A PTS that went backwards: DTS stays strictly increasing and PTS ≥ DTS.
        assert_eq!(t.stamp(3), (6, 6));
        assert_eq!(t.stamp(10), (10, 10));
    }
}
