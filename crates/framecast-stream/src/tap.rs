//! [`PacketTap`]: the stream's encoded H.264, in process, for fan-out sinks (a MoQ relay, a
//! WHIP SFU, a recorder).
//!
//! A tap is a viewer without a socket: it joins the stream like a browser that can decode
//! H.264, so it shares the encoder of the local viewers of that transport (no second
//! encode), and it acknowledges every access unit the moment it takes it. It therefore never
//! holds back the local viewers: the stream's task hands it frames with a non-blocking send,
//! and when its consumer lags and its queue is full the frame is counted as missed for the
//! tap alone, which the stream then repairs the way it repairs any viewer's loss (a
//! recovery P-frame or an IDR).
//!
//! Fan-out engines let late subscribers start at a keyframe, so a tap can ask for an IDR at
//! a steady interval ([`TapOptions::keyframe_interval`]); the local viewers receive the
//! same IDRs (they share one bitstream).

use crate::error::StreamError;
use crate::protocol::{BinaryHeader, ClientMessage, CAP_H264_ANNEXB};
use crate::session::ViewerId;
use crate::stream::{Cmd, Outbound, StreamShared};
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Settings of a [`PacketTap`].
#[derive(Debug, Clone)]
pub struct TapOptions {
    /// Ask for an IDR when the last keyframe is older than this (`None`: only the join's).
    pub keyframe_interval: Option<Duration>,
    /// Access units queued for a slow consumer before the stream counts them as missed.
    pub queue: usize,
}

impl Default for TapOptions {
    fn default() -> Self {
        TapOptions {
            keyframe_interval: Some(Duration::from_secs(2)),
            queue: 32,
        }
    }
}

/// One H.264 access unit of the stream.
#[derive(Debug, Clone)]
pub struct TappedFrame {
    /// Annex B, SPS/PPS in band on every IDR.
    pub data: Bytes,
    /// An IDR.
    pub keyframe: bool,
    /// The frame's publish time, µs on the stream clock (as in the viewers' frame headers).
    pub timestamp_us: u64,
    /// RFC 6381 codec string of the SPS in force (`avc1.42E01F`).
    pub codec: Arc<str>,
    /// Encoded width.
    pub width: u32,
    /// Encoded height.
    pub height: u32,
}

/// The stream's encoded H.264, in process. Leaves the stream when dropped.
#[derive(Debug)]
pub struct PacketTap {
    id: ViewerId,
    stream: Arc<str>,
    cmd: mpsc::Sender<Cmd>,
    rx: mpsc::Receiver<Outbound>,
    keyframe_interval: Option<Duration>,
    last_keyframe: Option<Instant>,
    requested: Option<Instant>,
}

impl PacketTap {
    pub(crate) async fn join(
        shared: &StreamShared,
        id: ViewerId,
        opts: TapOptions,
    ) -> Result<PacketTap, StreamError> {
        let closed = || StreamError::Closed(shared.name.to_string());
        let (tx, rx) = mpsc::channel(opts.queue.max(2));
        let (reply_tx, reply_rx) = oneshot::channel();
        let join = Cmd::Join {
            id,
            supported: vec![CAP_H264_ANNEXB.to_string()],
            tx,
            reply: reply_tx,
        };
        shared.cmd.send(join).await.map_err(|_| closed())?;
        match reply_rx.await.map_err(|_| closed())? {
            Ok(()) => {}
            Err(rejection) => {
                return Err(StreamError::InvalidConfig(format!(
                    "the stream {:?} refused the tap: {} ({})",
                    shared.name, rejection.reason, rejection.code
                )))
            }
        }
        tracing::debug!(stream = %shared.name, viewer = id, "packet tap joined");
        Ok(PacketTap {
            id,
            stream: shared.name.clone(),
            cmd: shared.cmd.clone(),
            rx,
            keyframe_interval: opts.keyframe_interval,
            last_keyframe: None,
            requested: None,
        })
    }

    /// The tap's viewer id (it appears in the stream's metrics under it).
    pub fn viewer_id(&self) -> ViewerId {
        self.id
    }

    /// The next access unit, acknowledged as it is taken; `None` once the stream is closed.
    /// The first one is an IDR.
    pub async fn recv(&mut self) -> Option<TappedFrame> {
        loop {
            match self.rx.recv().await? {
                Outbound::Payload { chunk, seq } => {
                    let BinaryHeader::VideoChunk(h) = &chunk.header else {
                        continue;
                    };
                    self.send(ClientMessage::Ack {
                        seq,
                        decode_queue_size: 0,
                    });
                    let now = Instant::now();
                    if h.keyframe {
                        self.last_keyframe = Some(now);
                        self.requested = None;
                    }
                    self.keep_keyframes_coming(now);
                    return Some(TappedFrame {
                        data: chunk.payload.clone(),
                        keyframe: h.keyframe,
                        timestamp_us: h.timestamp_us,
                        codec: h.codec.clone(),
                        width: h.width,
                        height: h.height,
                    });
                }
                Outbound::Text(_) => {} // config and stats: the frames say what they are
                Outbound::Close(code, reason) => {
                    tracing::debug!(stream = %self.stream, code, %reason, "packet tap closed by the stream");
                    return None;
                }
            }
        }
    }

    /// Cap the bitrate the stream sends this tap at what its sink's transport estimates it
    /// can carry (a WebRTC SFU's REMB/TWCC estimate); `None` lifts it. With congestion
    /// control on (the default), the tap's encoder group follows it, or the tap moves to a
    /// lower tier of its own, so the local viewers are not pulled down with it.
    pub fn set_rate_cap(&self, bps: Option<u32>) {
        let _ = self.cmd.try_send(Cmd::RateCap { id: self.id, bps });
    }

    /// Ask the stream for an IDR now (a new subscriber far away, a consumer that lost data).
    pub fn request_keyframe(&mut self, reason: &str) {
        self.requested = Some(Instant::now());
        self.send(ClientMessage::RequestKeyframe {
            reason: Some(reason.to_string()),
        });
    }

    fn keep_keyframes_coming(&mut self, now: Instant) {
        let Some(every) = self.keyframe_interval else {
            return;
        };
        let due = self
            .last_keyframe
            .is_some_and(|t| now.duration_since(t) >= every);
        // One request per interval: the stream may answer a little later.
        let pending = self
            .requested
            .is_some_and(|t| now.duration_since(t) < every);
        if due && !pending {
            self.request_keyframe("keyframe interval");
        }
    }

    fn send(&self, msg: ClientMessage) {
        // The stream's task reads commands promptly; a full queue means it is shutting down.
        let _ = self.cmd.try_send(Cmd::Message { id: self.id, msg });
    }
}

impl Drop for PacketTap {
    fn drop(&mut self) {
        let _ = self.cmd.try_send(Cmd::Leave { id: self.id });
    }
}
