//! What encoders hand out.

use crate::OutputFormat;
use bytes::Bytes;
use std::sync::Arc;

/// Where the time went for one frame, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PacketTimings {
    /// RGB→YUV conversion (or plane copy) on the submitting thread.
    pub convert_ms: f64,
    /// Time inside the backend, from submission to the access unit coming out.
    pub encode_ms: f64,
    /// Time the converted frame waited for the encoder (pipelined mode; 0 when synchronous).
    pub queue_ms: f64,
}

/// One encoded access unit: every NAL unit of one frame.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedPacket {
    /// The NAL units, in [`Self::format`]. Keyframes start with SPS and PPS.
    pub data: Bytes,
    /// Byte format of `data`.
    pub format: OutputFormat,
    /// Presentation time in nanoseconds, as submitted.
    pub pts_ns: i64,
    /// Decode time in nanoseconds: equal to `pts_ns` without B-frames; with them, packets come
    /// in decode order and `dts_ns` is monotonic and never later than `pts_ns`.
    pub dts_ns: i64,
    /// Nominal duration (one frame at the configured rate).
    pub duration_ns: i64,
    /// True for IDR access units.
    pub keyframe: bool,
    /// A recovery frame ([`crate::Encoder::recover`]): a P-frame predicted only from the frame
    /// of this token, so a decoder that displayed that frame decodes this one whatever it
    /// missed in between. `None` for every other packet.
    pub recovery_from: Option<u64>,
    /// The caller's token of the frame this packet encodes.
    pub token: u64,
    /// 0-based index of this frame among the frames actually encoded.
    pub frame_index: u64,
    /// RFC 6381 codec string of the SPS in force (e.g. `avc1.42C01F`).
    pub codec: Arc<str>,
    /// Per-stage timings.
    pub timings: PacketTimings,
}

/// Why a frame was not encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// [`crate::BackpressurePolicy::DropNew`]: the encoder was full when it arrived.
    EncoderFull,
    /// [`crate::BackpressurePolicy::DropOld`]: a newer frame took its place before it was encoded.
    Superseded,
}

/// A frame the encoder accepted responsibility for but did not encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DroppedFrame {
    /// The caller's token.
    pub token: u64,
    /// Its presentation time.
    pub pts_ns: i64,
    /// Why.
    pub reason: DropReason,
}

/// What [`crate::Encoder::receive`] yields, in submission order.
#[derive(Debug, Clone, PartialEq)]
pub enum EncoderEvent {
    /// An encoded frame.
    Packet(EncodedPacket),
    /// A frame that was dropped by the backpressure policy.
    Dropped(DroppedFrame),
}

/// What happened to a frame passed to [`crate::Encoder::send_frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum SendOutcome {
    /// The frame was queued or encoded; its packet comes out of `receive`.
    Accepted,
    /// Dropped under [`crate::BackpressurePolicy::DropNew`]; an [`EncoderEvent::Dropped`] is queued too.
    Dropped,
    /// Refused under [`crate::BackpressurePolicy::FailFast`]; nothing was queued, try again later.
    Busy,
}
