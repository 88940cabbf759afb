//! The per-stream, per-viewer delivery state machine: sans-IO, time passed in, actions out.
//!
//! [`StreamCore`] holds every viewer of one stream and the *encoder groups* they share. It
//! never touches a socket, a thread or a clock: the shell feeds it what happened
//! ([`StreamCore::publish`], [`StreamCore::add_viewer`], [`StreamCore::handle_text`],
//! [`StreamCore::encode_done`], [`StreamCore::handle_timeout`], ...) with `now` (a
//! [`Duration`] since any fixed origin), then drains [`Action`]s with
//! [`StreamCore::poll_action`] and carries them out (encode a frame, send a message, close a
//! connection, deliver an input event). The tests drive it in simulated time.
//!
//! # Delivery rules (pdum.rfb 0.3, extended to shared encoders)
//!
//! * Viewers that negotiate the same transport share one encoder group: one encode per
//!   published frame, one payload for all of them (each gets its own `seq` header).
//! * **Drop before encode / latest wins.** A viewer is *ready* while it has fewer than
//!   `max_inflight` sent-but-not-displayed frames. A group encodes the latest published frame
//!   for its ready viewers; a viewer that is not ready skips the frame (counted as dropped) and
//!   therefore needs a keyframe, which it gets as soon as it is ready again. If no viewer of a
//!   group is ready, nothing is encoded. One encode runs per group at a time; frames published
//!   meanwhile are superseded by the newest. An ack, a backstop or a decoder reset that frees a
//!   slot re-runs the scheduler, so the newest frame goes out as soon as someone can take it.
//! * **Keyframes**: first payload to each viewer, after any skip or drop, on
//!   `request_keyframe`, after `decoder_reset`, after an encoder rebuild (frame size change or
//!   [`StreamCore::reconfigure`]) and on the encoder's own cadence (GOP = fps). Since all
//!   viewers of a group decode one bitstream, a keyframe for one is a keyframe for all (a join
//!   forces one for the group).
//! * **Acks** mean *displayed*; an ack for `seq` also retires older in-flight entries (display
//!   is in order). RTT = send → displayed ack.
//! * **Backstop**: if a viewer's oldest in-flight frame is older than `inflight_timeout`
//!   (2 s), its in-flight set is cleared and it needs a keyframe.
//! * **Still after settle**: after `still_after` without a publish, the latest frame is sent
//!   once more to the group's ready viewers as a lossless PNG (image groups) or a forced IDR
//!   (video groups).
//! * **Stats**: with `stats_interval`, a `stats` message piggybacks on ack handling.

use crate::protocol::{
    self, close, BinaryHeader, ClientMessage, ImageFrameHeader, ServerMessage, StatsMessage,
    VideoChunkHeader, ViewerEvent, WireColor, WireTransport, CAP_H264_ANNEXB, CAP_JPEG, CAP_PNG,
};
use bytes::Bytes;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// Identifies one connected viewer within a stream.
pub type ViewerId = u64;
/// Identifies one encoder group (unique for the life of the stream; a rebuilt group gets a
/// new id).
pub type GroupId = u64;

/// Image formats of the image transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    /// JPEG (lossy, the default).
    Jpeg,
    /// PNG (lossless).
    Png,
}

impl ImageFormat {
    /// The MIME type on the wire.
    pub fn mime(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => CAP_JPEG,
            ImageFormat::Png => CAP_PNG,
        }
    }

    /// The name used as `config.backend` (`jpeg` or `png`).
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpeg",
            ImageFormat::Png => "png",
        }
    }
}

/// What an encoder group produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupKind {
    /// H.264 Annex B for WebCodecs.
    Video,
    /// One image per frame.
    Image(ImageFormat),
}

/// Which transports a stream offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportPolicy {
    /// H.264 to viewers that advertise WebCodecs H.264, images to the others.
    #[default]
    Auto,
    /// H.264 only; viewers without WebCodecs H.264 are closed with 1003.
    Video,
    /// Images only, even to WebCodecs-capable viewers.
    Image,
}

impl std::str::FromStr for TransportPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "video" | "webcodecs" | "h264" => Ok(Self::Video),
            "image" | "jpeg" => Ok(Self::Image),
            _ => Err(format!("unknown transport {s:?}: use video, image or auto")),
        }
    }
}

/// Pick a group kind for a viewer's capabilities (pdum.rfb `select_transport`, with the
/// server's policy). `None` means no match (close 1003).
pub fn select_transport(
    supported: &[String],
    policy: TransportPolicy,
    video_available: bool,
    preferred_image: ImageFormat,
) -> Option<GroupKind> {
    let has = |cap: &str| supported.iter().any(|s| s == cap);
    if policy != TransportPolicy::Image && video_available && has(CAP_H264_ANNEXB) {
        return Some(GroupKind::Video);
    }
    if policy == TransportPolicy::Video {
        return None;
    }
    [preferred_image, ImageFormat::Png, ImageFormat::Jpeg]
        .into_iter()
        .find(|f| has(f.mime()))
        .map(GroupKind::Image)
}

/// How `set_viewport` affects the published size.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum ResizePolicy {
    /// The publisher decides the size; `set_viewport` is informational (a `resize` event).
    #[default]
    Publisher,
    /// The viewers' backing size becomes the display's target size, debounced, last writer
    /// wins, clamped to `max_dimension` (aspect preserved), even, at least 2.
    MatchClient {
        /// Debounce (pdum.rfb: 0.12 s).
        debounce: Duration,
        /// Clamp for the larger side.
        max_dimension: Option<u32>,
    },
}

/// Encoder settings shared by the video groups of a stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EncoderSettings {
    /// Backend registry name.
    pub backend: String,
    /// Target bitrate, bits/s.
    pub bitrate: u32,
    /// Frame rate (advisory: GOP length and `duration_us`).
    pub fps: f64,
    /// JPEG quality 1-100.
    pub jpeg_quality: u8,
}

/// Policy knobs of a stream's sessions.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Unacked payloads allowed per viewer before drop-before-encode (default 2).
    pub max_inflight: usize,
    /// Backstop: clear in-flight state when the oldest unacked frame is this old (2 s).
    pub inflight_timeout: Duration,
    /// Send the resting frame once more, losslessly, after this long without a publish.
    pub still_after: Option<Duration>,
    /// Push `stats` at most this often (on ack handling).
    pub stats_interval: Option<Duration>,
    /// Transports offered.
    pub transports: TransportPolicy,
    /// Whether an H.264 encoder is available.
    pub video_available: bool,
    /// Image format preferred for the image transport.
    pub image_format: ImageFormat,
    /// Encoder settings.
    pub encoder: EncoderSettings,
    /// Resize policy.
    pub resize: ResizePolicy,
    /// Input events accepted per viewer per second (excess dropped).
    pub max_events_per_second: u32,
    /// `pixel_ratio` tag for headers and `config`.
    pub pixel_ratio: Option<f64>,
    /// `color` tag for headers and `config`.
    pub color: Option<WireColor>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            max_inflight: 2,
            inflight_timeout: Duration::from_secs(2),
            still_after: None,
            stats_interval: None,
            transports: TransportPolicy::Auto,
            video_available: true,
            image_format: ImageFormat::Jpeg,
            encoder: EncoderSettings {
                backend: "openh264".into(),
                bitrate: 12_000_000,
                fps: 30.0,
                jpeg_quality: 80,
            },
            resize: ResizePolicy::Publisher,
            max_events_per_second: 1000,
            pixel_ratio: None,
            color: None,
        }
    }
}

/// A published frame, as the core sees it (the pixels stay with the shell).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// Increasing publish counter.
    pub id: u64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Publish time, µs since the display started.
    pub timestamp_us: u64,
}

/// What an encoder group returns for one job.
#[derive(Debug, Clone)]
pub struct EncodedFrame {
    /// The payload (Annex B access unit or image file), shared by all recipients.
    pub data: Bytes,
    /// IDR (always true for images).
    pub keyframe: bool,
    /// Codec string (video).
    pub codec: Option<String>,
    /// MIME type (images).
    pub mime: Option<&'static str>,
    /// Encoded size.
    pub width: u32,
    /// Encoded size.
    pub height: u32,
    /// Time spent converting and encoding.
    pub encode_ms: f64,
}

/// An encode request for the shell.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodeJob {
    /// The group (create its encoder on first sight).
    pub group: GroupId,
    /// What the group produces.
    pub kind: GroupKind,
    /// Settings for creating or rebuilding the encoder.
    pub settings: EncoderSettings,
    /// Job number within the group.
    pub job: u64,
    /// The frame to encode (always the latest published).
    pub frame: FrameInfo,
    /// Encode as an IDR.
    pub force_keyframe: bool,
    /// A still: PNG for image groups, forced IDR for video.
    pub still: bool,
}

/// An input event from a viewer, as delivered to the application.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputEvent {
    /// The viewer it came from.
    pub viewer: ViewerId,
    /// What happened (coordinates in frame pixels).
    pub event: ViewerEvent,
    /// When the server received it, µs since the display started.
    pub received_us: u64,
}

/// Something the shell must do.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Action {
    /// Encode `job.frame` in `job.group`'s encoder and report with [`StreamCore::encode_done`].
    Encode(EncodeJob),
    /// The group is gone: stop its encoder (a pending job's result will be ignored).
    CloseGroup(GroupId),
    /// Send a text control message.
    SendText {
        /// To whom.
        viewer: ViewerId,
        /// The JSON.
        text: String,
    },
    /// Send a binary payload (envelope = header JSON + payload).
    SendPayload {
        /// To whom.
        viewer: ViewerId,
        /// The header (with this viewer's seq).
        header: BinaryHeader,
        /// The shared payload bytes.
        payload: Bytes,
    },
    /// Close the connection (the viewer is already forgotten).
    Close {
        /// Whom.
        viewer: ViewerId,
        /// Close code.
        code: u16,
        /// Reason text.
        reason: String,
    },
    /// Deliver an input event to the application.
    Event(InputEvent),
    /// `match_client`: the debounced target size changed.
    TargetSize {
        /// Width (even, ≥ 2).
        width: u32,
        /// Height (even, ≥ 2).
        height: u32,
    },
}

/// Why a viewer could not be added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Close code.
    pub code: u16,
    /// Reason text.
    pub reason: String,
}

#[derive(Debug, Clone, Copy)]
struct Inflight {
    seq: u64,
    sent_at: Duration,
}

#[derive(Debug, Default, Clone)]
struct ViewerStats {
    frames_sent: u64,
    frames_acked: u64,
    keyframes_sent: u64,
    dropped: u64,
    bytes_sent: u64,
    rtt_ms: Option<f64>,
    decode_queue_size: u32,
    sent_window: VecDeque<(Duration, usize)>,
    acked_window: VecDeque<Duration>,
    events_dropped: u64,
    decoder_resets: u64,
    backstops: u64,
    keyframe_requests: u64,
}

#[derive(Debug)]
struct Viewer {
    supported: Vec<String>,
    group: GroupId,
    next_seq: u64,
    inflight: VecDeque<Inflight>,
    needs_keyframe: bool,
    joined_at: Duration,
    last_stats: Option<Duration>,
    event_tokens: f64,
    event_refill_at: Duration,
    stats: ViewerStats,
}

#[derive(Debug)]
struct Job {
    id: u64,
    frame: FrameInfo,
    recipients: Vec<ViewerId>,
    still: bool,
}

#[derive(Debug)]
struct Group {
    kind: GroupKind,
    job_counter: u64,
    busy: Option<Job>,
    /// Last frame id submitted for encoding.
    last_submitted: Option<u64>,
    still_for: Option<u64>,
    force_keyframe: bool,
    size: Option<(u32, u32)>,
    codec: Option<String>,
    frames_encoded: u64,
    encode_ms: Option<f64>,
    encode_ms_samples: VecDeque<f64>,
    failures: u64,
}

/// Snapshot of one viewer's counters (for `/streams/<name>/metrics`).
#[derive(Debug, Clone, Serialize)]
pub struct ViewerMetrics {
    /// Viewer id.
    pub id: ViewerId,
    /// Its group's transport.
    pub transport: GroupKind,
    /// Frames sent.
    pub frames_sent: u64,
    /// Frames acked (displayed).
    pub frames_acked: u64,
    /// Keyframes sent.
    pub keyframes_sent: u64,
    /// Frames dropped or skipped for this viewer.
    pub frames_dropped: u64,
    /// Payload bytes sent.
    pub bytes_sent: u64,
    /// Frames in flight.
    pub inflight: usize,
    /// EMA of send → displayed ack.
    pub rtt_ms: f64,
    /// Sent fps over the last second.
    pub fps_sent: f64,
    /// Acked fps over the last second.
    pub fps_acked: f64,
    /// Bitrate over the last second.
    pub bitrate_bps: u64,
    /// Last reported decode queue.
    pub decode_queue_size: u32,
    /// Input events dropped by the rate cap.
    pub events_dropped: u64,
    /// `decoder_reset` messages received.
    pub decoder_resets: u64,
    /// Backstop trips.
    pub backstops: u64,
    /// `request_keyframe` messages received.
    pub keyframe_requests: u64,
}

/// Snapshot of one encoder group.
#[derive(Debug, Clone, Serialize)]
pub struct GroupMetrics {
    /// Group id.
    pub id: GroupId,
    /// What it produces.
    pub kind: GroupKind,
    /// Viewers in it.
    pub viewers: usize,
    /// Frames encoded.
    pub frames_encoded: u64,
    /// EMA of encode time.
    pub encode_ms: f64,
    /// Median encode time of the last 256 frames.
    pub encode_ms_p50: f64,
    /// 95th percentile encode time of the last 256 frames.
    pub encode_ms_p95: f64,
    /// Codec string in force.
    pub codec: Option<String>,
    /// Failed encodes.
    pub failures: u64,
}

/// Snapshot of a stream.
#[derive(Debug, Clone, Serialize)]
pub struct StreamMetrics {
    /// Frames published.
    pub frames_published: u64,
    /// Frames published that no group encoded (superseded or no ready viewer).
    pub frames_not_encoded: u64,
    /// Current frame size.
    pub width: u32,
    /// Current frame size.
    pub height: u32,
    /// Encoder settings in force.
    pub encoder: EncoderSettings,
    /// Transport policy in force.
    pub transports: TransportPolicy,
    /// Groups.
    pub groups: Vec<GroupMetrics>,
    /// Viewers.
    pub viewers: Vec<ViewerMetrics>,
}

/// The sans-IO state of one stream: its viewers and encoder groups.
#[derive(Debug)]
pub struct StreamCore {
    config: SessionConfig,
    viewers: BTreeMap<ViewerId, Viewer>,
    groups: BTreeMap<GroupId, Group>,
    next_group: GroupId,
    latest: Option<FrameInfo>,
    last_publish_at: Option<Duration>,
    frames_published: u64,
    actions: VecDeque<Action>,
    pending_target: Option<((u32, u32), Duration)>,
    target: Option<(u32, u32)>,
}

const EMA: f64 = 0.3;
const WINDOW: Duration = Duration::from_secs(1);

fn ema(old: Option<f64>, sample: f64) -> f64 {
    match old {
        None => sample,
        Some(o) => o + EMA * (sample - o),
    }
}

impl StreamCore {
    /// A stream with no viewers and no frame yet.
    pub fn new(config: SessionConfig) -> Self {
        StreamCore {
            config,
            viewers: BTreeMap::new(),
            groups: BTreeMap::new(),
            next_group: 1,
            latest: None,
            last_publish_at: None,
            frames_published: 0,
            actions: VecDeque::new(),
            pending_target: None,
            target: None,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Number of connected viewers.
    pub fn viewer_count(&self) -> usize {
        self.viewers.len()
    }

    /// The next thing to do, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The latest published frame.
    pub fn latest(&self) -> Option<FrameInfo> {
        self.latest
    }

    /// `match_client` target size, once known.
    pub fn target_size(&self) -> Option<(u32, u32)> {
        self.target
    }

    fn frame_size(&self) -> (u32, u32) {
        self.latest.map(|f| (f.width, f.height)).unwrap_or((0, 0))
    }

    fn group_for(&mut self, kind: GroupKind) -> GroupId {
        if let Some((&id, _)) = self.groups.iter().find(|(_, g)| g.kind == kind) {
            return id;
        }
        let id = self.next_group;
        self.next_group += 1;
        self.groups.insert(
            id,
            Group {
                kind,
                job_counter: 0,
                busy: None,
                last_submitted: None,
                still_for: None,
                force_keyframe: true,
                size: None,
                codec: None,
                frames_encoded: 0,
                encode_ms: None,
                encode_ms_samples: VecDeque::new(),
                failures: 0,
            },
        );
        id
    }

    fn config_text(&self, kind: GroupKind, codec: Option<&str>) -> String {
        let (width, height) = self.frame_size();
        let msg = match kind {
            GroupKind::Video => ServerMessage::Config {
                transport: WireTransport::Webcodecs,
                width,
                height,
                coords: protocol::COORDS_FRAME_PIXELS.into(),
                codec: Some(codec.unwrap_or(protocol::DEFAULT_H264_CODEC).to_owned()),
                pixel_ratio: self.config.pixel_ratio,
                color: self.config.color.clone(),
                backend: Some(self.config.encoder.backend.clone()),
            },
            GroupKind::Image(format) => ServerMessage::Config {
                transport: WireTransport::Image,
                width,
                height,
                coords: protocol::COORDS_FRAME_PIXELS.into(),
                codec: None,
                pixel_ratio: self.config.pixel_ratio,
                color: self.config.color.clone(),
                backend: Some(format.name().into()),
            },
        };
        protocol::to_wire_string(&msg)
    }

    /// A viewer said `hello` (and passed authentication): negotiate, send `config`, join or
    /// create its encoder group. The first payload it gets is a keyframe.
    pub fn add_viewer(
        &mut self,
        id: ViewerId,
        supported: Vec<String>,
        now: Duration,
    ) -> Result<(), Rejection> {
        let Some(kind) = select_transport(
            &supported,
            self.config.transports,
            self.config.video_available,
            self.config.image_format,
        ) else {
            return Err(Rejection {
                code: close::NO_TRANSPORT,
                reason: close::NO_TRANSPORT_REASON.into(),
            });
        };
        let group = self.group_for(kind);
        let codec = self.groups[&group].codec.clone();
        self.viewers.insert(
            id,
            Viewer {
                supported,
                group,
                next_seq: 0,
                inflight: VecDeque::new(),
                needs_keyframe: true,
                joined_at: now,
                last_stats: None,
                event_tokens: self.config.max_events_per_second as f64,
                event_refill_at: now,
                stats: ViewerStats::default(),
            },
        );
        let text = self.config_text(kind, codec.as_deref());
        self.actions
            .push_back(Action::SendText { viewer: id, text });
        self.schedule(group, now, false);
        Ok(())
    }

    /// A viewer disconnected. Its group is closed when it was the last one.
    pub fn remove_viewer(&mut self, id: ViewerId) {
        if let Some(v) = self.viewers.remove(&id) {
            self.close_group_if_empty(v.group);
        }
    }

    fn close_group_if_empty(&mut self, group: GroupId) {
        if !self.viewers.values().any(|v| v.group == group) && self.groups.remove(&group).is_some()
        {
            self.actions.push_back(Action::CloseGroup(group));
        }
    }

    /// A frame was published.
    pub fn publish(&mut self, frame: FrameInfo, now: Duration) {
        self.latest = Some(frame);
        self.last_publish_at = Some(now);
        self.frames_published += 1;
        let groups: Vec<GroupId> = self.groups.keys().copied().collect();
        for g in groups {
            self.schedule(g, now, true);
        }
    }

    fn ready(&self, v: &Viewer) -> bool {
        v.inflight.len() < self.config.max_inflight.max(1)
    }

    /// Start an encode of the latest frame for `group` if it is idle, has not encoded that
    /// frame yet and has a ready viewer. `from_publish` counts skips as drops.
    fn schedule(&mut self, group: GroupId, now: Duration, from_publish: bool) {
        let Some(frame) = self.latest else { return };
        let Some(g) = self.groups.get(&group) else {
            return;
        };
        if g.busy.is_some() || g.last_submitted == Some(frame.id) {
            return;
        }
        let mut recipients = Vec::new();
        let mut any_needs_key = false;
        let max = self.config.max_inflight.max(1);
        for (&id, v) in self.viewers.iter_mut().filter(|(_, v)| v.group == group) {
            if v.inflight.len() < max {
                recipients.push(id);
                any_needs_key |= v.needs_keyframe;
            } else if from_publish {
                v.stats.dropped += 1;
                v.needs_keyframe = true;
            } else {
                v.needs_keyframe = true;
            }
        }
        if recipients.is_empty() {
            return;
        }
        let settings = self.config.encoder.clone();
        let g = self.groups.get_mut(&group).expect("checked above");
        let resized = g.size != Some((frame.width, frame.height));
        if resized && g.size.is_some() {
            // Encoder rebuild: everyone learns the new size and gets a keyframe.
            let kind = g.kind;
            let codec = g.codec.clone();
            let text = self.config_text(kind, codec.as_deref());
            let members: Vec<ViewerId> = self
                .viewers
                .iter()
                .filter(|(_, v)| v.group == group)
                .map(|(&id, _)| id)
                .collect();
            for viewer in members {
                self.actions.push_back(Action::SendText {
                    viewer,
                    text: text.clone(),
                });
            }
        }
        let g = self.groups.get_mut(&group).expect("checked above");
        g.size = Some((frame.width, frame.height));
        let force = g.force_keyframe || any_needs_key || resized;
        g.force_keyframe = false;
        g.job_counter += 1;
        g.last_submitted = Some(frame.id);
        let job = g.job_counter;
        g.busy = Some(Job {
            id: job,
            frame,
            recipients,
            still: false,
        });
        self.actions.push_back(Action::Encode(EncodeJob {
            group,
            kind: g.kind,
            settings,
            job,
            frame,
            force_keyframe: force,
            still: false,
        }));
        let _ = now;
    }

    /// The shell finished (or failed) a job.
    pub fn encode_done(
        &mut self,
        group: GroupId,
        job: u64,
        result: Result<EncodedFrame, String>,
        now: Duration,
    ) {
        let Some(g) = self.groups.get_mut(&group) else {
            return;
        };
        let Some(done) = g.busy.take_if(|j| j.id == job) else {
            return;
        };
        let kind = g.kind;
        let encoded = match result {
            Ok(e) => e,
            Err(message) => {
                g.failures += 1;
                g.force_keyframe = true;
                tracing::warn!(group, job, %message, "encode failed; the next frame is a keyframe");
                for id in &done.recipients {
                    if let Some(v) = self.viewers.get_mut(id) {
                        v.needs_keyframe = true;
                        v.stats.dropped += 1;
                    }
                }
                self.schedule(group, now, false);
                return;
            }
        };
        g.frames_encoded += 1;
        g.encode_ms = Some(ema(g.encode_ms, encoded.encode_ms));
        if g.encode_ms_samples.len() == 256 {
            g.encode_ms_samples.pop_front();
        }
        g.encode_ms_samples.push_back(encoded.encode_ms);
        if encoded.codec.is_some() {
            g.codec.clone_from(&encoded.codec);
        }
        let keyframe = encoded.keyframe || matches!(kind, GroupKind::Image(_));
        let duration_us = (1e6 / self.config.encoder.fps) as u64;
        for id in &done.recipients {
            let Some(v) = self.viewers.get_mut(id) else {
                continue;
            };
            if v.group != group {
                continue;
            }
            if v.needs_keyframe && !keyframe {
                // Cannot decode a delta: wait for the next keyframe (forced next time).
                v.stats.dropped += 1;
                self.groups.get_mut(&group).expect("present").force_keyframe = true;
                continue;
            }
            let seq = v.next_seq;
            v.next_seq += 1;
            v.inflight.push_back(Inflight { seq, sent_at: now });
            v.needs_keyframe = false;
            v.stats.frames_sent += 1;
            v.stats.keyframes_sent += keyframe as u64;
            v.stats.bytes_sent += encoded.data.len() as u64;
            v.stats.sent_window.push_back((now, encoded.data.len()));
            let header = match kind {
                GroupKind::Video => BinaryHeader::VideoChunk(VideoChunkHeader {
                    seq,
                    timestamp_us: done.frame.timestamp_us,
                    width: encoded.width,
                    height: encoded.height,
                    codec: encoded
                        .codec
                        .clone()
                        .unwrap_or_else(|| protocol::DEFAULT_H264_CODEC.into()),
                    bitstream: "annexb".into(),
                    keyframe,
                    duration_us: Some(duration_us),
                    pixel_ratio: self.config.pixel_ratio,
                    color: self.config.color.clone(),
                }),
                GroupKind::Image(fmt) => BinaryHeader::ImageFrame(ImageFrameHeader {
                    seq,
                    timestamp_us: done.frame.timestamp_us,
                    width: encoded.width,
                    height: encoded.height,
                    mime: encoded.mime.unwrap_or(fmt.mime()).into(),
                    pixel_ratio: self.config.pixel_ratio,
                    color: self.config.color.clone(),
                }),
            };
            self.actions.push_back(Action::SendPayload {
                viewer: *id,
                header,
                payload: encoded.data.clone(),
            });
        }
        let _ = done.still;
        self.schedule(group, now, false);
    }

    /// The shell could not hand a message to this viewer's connection (its queue is full: a
    /// stalled socket). The viewer misses that frame and needs a keyframe.
    pub fn send_failed(&mut self, viewer: ViewerId, seq: Option<u64>) {
        if let Some(v) = self.viewers.get_mut(&viewer) {
            if let Some(seq) = seq {
                v.inflight.retain(|i| i.seq != seq);
            }
            v.needs_keyframe = true;
            v.stats.dropped += 1;
        }
    }

    /// A text message from a viewer (after `hello`). Malformed messages close that viewer
    /// (code 1008) and nothing else.
    pub fn handle_text(&mut self, viewer: ViewerId, text: &str, now: Duration) {
        if !self.viewers.contains_key(&viewer) {
            return;
        }
        match protocol::parse_client_message(text) {
            Ok(msg) => self.handle_message(viewer, msg, now),
            Err(e) => {
                tracing::warn!(viewer, error = %e, "closing viewer: malformed control message");
                self.close_viewer(viewer, close::MALFORMED, "malformed control message");
            }
        }
    }

    /// Forget a viewer and ask the shell to close its connection.
    pub fn close_viewer(&mut self, viewer: ViewerId, code: u16, reason: &str) {
        self.remove_viewer(viewer);
        self.actions.push_back(Action::Close {
            viewer,
            code,
            reason: reason.into(),
        });
    }

    /// A parsed control message from a viewer.
    pub fn handle_message(&mut self, viewer: ViewerId, msg: ClientMessage, now: Duration) {
        let stats_interval = self.config.stats_interval;
        let Some(v) = self.viewers.get_mut(&viewer) else {
            return;
        };
        let group = v.group;
        let received_us = now.as_micros() as u64;
        match msg {
            ClientMessage::Ack {
                seq,
                decode_queue_size,
            } => {
                if let Some(pos) = v.inflight.iter().position(|i| i.seq == seq) {
                    let sent = v.inflight[pos].sent_at;
                    v.inflight.drain(..=pos);
                    let rtt = now.saturating_sub(sent).as_secs_f64() * 1e3;
                    v.stats.rtt_ms = Some(ema(v.stats.rtt_ms, rtt));
                    v.stats.frames_acked += 1;
                    v.stats.acked_window.push_back(now);
                }
                v.stats.decode_queue_size = decode_queue_size;
                if let Some(interval) = stats_interval {
                    if v.last_stats
                        .is_none_or(|t| now.saturating_sub(t) >= interval)
                    {
                        v.last_stats = Some(now);
                        let stats = self.stats_message(viewer, now);
                        self.actions.push_back(Action::SendText {
                            viewer,
                            text: protocol::to_wire_string(&ServerMessage::Stats(stats)),
                        });
                    }
                }
                self.schedule(group, now, false);
            }
            ClientMessage::RequestKeyframe { reason } => {
                tracing::debug!(viewer, ?reason, "keyframe requested");
                v.needs_keyframe = true;
                v.stats.keyframe_requests += 1;
            }
            ClientMessage::DecoderReset => {
                tracing::info!(
                    viewer,
                    "viewer rebuilt its decoder: clearing in-flight, keyframe next"
                );
                v.inflight.clear();
                v.needs_keyframe = true;
                v.stats.decoder_resets += 1;
                self.schedule(group, now, false);
            }
            ClientMessage::Event(event) => {
                // Token bucket: max_events_per_second, burst of one second's worth.
                let rate = self.config.max_events_per_second as f64;
                let elapsed = now.saturating_sub(v.event_refill_at).as_secs_f64();
                v.event_refill_at = now;
                v.event_tokens = (v.event_tokens + elapsed * rate).min(rate);
                if v.event_tokens < 1.0 {
                    v.stats.events_dropped += 1;
                    if v.stats.events_dropped.is_power_of_two() {
                        tracing::warn!(
                            viewer,
                            dropped = v.stats.events_dropped,
                            "input events over the rate cap dropped"
                        );
                    }
                    return;
                }
                v.event_tokens -= 1.0;
                self.actions.push_back(Action::Event(InputEvent {
                    viewer,
                    event,
                    received_us,
                }));
            }
            ClientMessage::SetViewport(vp) => {
                let resize = protocol::ResizeEvent::from(vp);
                if let ResizePolicy::MatchClient { max_dimension, .. } = self.config.resize {
                    let size = target_dims(resize.pwidth, resize.pheight, max_dimension);
                    self.pending_target = Some((size, now));
                }
                self.actions.push_back(Action::Event(InputEvent {
                    viewer,
                    event: ViewerEvent::Resize(resize),
                    received_us,
                }));
            }
            ClientMessage::Hello { .. } => {
                tracing::debug!(viewer, "second hello ignored");
            }
            ClientMessage::Unknown { kind } => {
                tracing::debug!(viewer, %kind, "unknown control message ignored");
            }
        }
    }

    fn prune_windows(s: &mut ViewerStats, now: Duration) {
        while s
            .sent_window
            .front()
            .is_some_and(|(t, _)| now.saturating_sub(*t) > WINDOW)
        {
            s.sent_window.pop_front();
        }
        while s
            .acked_window
            .front()
            .is_some_and(|t| now.saturating_sub(*t) > WINDOW)
        {
            s.acked_window.pop_front();
        }
    }

    fn rates(v: &mut Viewer, now: Duration) -> (f64, f64, u64) {
        Self::prune_windows(&mut v.stats, now);
        let span = now
            .saturating_sub(v.joined_at)
            .min(WINDOW)
            .as_secs_f64()
            .max(1e-3);
        let bytes: usize = v.stats.sent_window.iter().map(|(_, b)| b).sum();
        (
            (v.stats.sent_window.len() as f64 / span * 100.0).round() / 100.0,
            (v.stats.acked_window.len() as f64 / span * 100.0).round() / 100.0,
            (bytes as f64 * 8.0 / span).round() as u64,
        )
    }

    /// The `stats` message for a viewer now.
    pub fn stats_message(&mut self, viewer: ViewerId, now: Duration) -> StatsMessage {
        let settings = self.config.encoder.clone();
        let Some(v) = self.viewers.get_mut(&viewer) else {
            return StatsMessage::default();
        };
        let (fps_sent, fps_acked, bitrate_bps) = Self::rates(v, now);
        let encode_ms = self
            .groups
            .get(&v.group)
            .and_then(|g| g.encode_ms)
            .unwrap_or(0.0);
        let round2 = |x: f64| (x * 100.0).round() / 100.0;
        StatsMessage {
            rtt_ms: round2(v.stats.rtt_ms.unwrap_or(0.0)),
            fps_sent,
            fps_acked,
            bitrate_bps,
            encode_ms: round2(encode_ms),
            decode_queue_size: v.stats.decode_queue_size,
            dropped: v.stats.dropped,
            target_bitrate: settings.bitrate as u64,
            target_fps: settings.fps,
        }
    }

    /// Time-driven work: the in-flight backstop, still-after-settle and the `match_client`
    /// debounce. Call it regularly (every few tens of ms).
    pub fn handle_timeout(&mut self, now: Duration) {
        let timeout = self.config.inflight_timeout;
        let mut regroup = Vec::new();
        for (&id, v) in self.viewers.iter_mut() {
            if let Some(oldest) = v.inflight.front() {
                if now.saturating_sub(oldest.sent_at) >= timeout {
                    tracing::info!(viewer = id, inflight = v.inflight.len(), "in-flight backstop: no ack for {timeout:?}; clearing and forcing a keyframe");
                    v.inflight.clear();
                    v.needs_keyframe = true;
                    v.stats.backstops += 1;
                    regroup.push(v.group);
                }
            }
        }
        for g in regroup {
            self.schedule(g, now, false);
        }
        if let (Some(still_after), Some(at), Some(frame)) =
            (self.config.still_after, self.last_publish_at, self.latest)
        {
            if now.saturating_sub(at) >= still_after {
                let ids: Vec<GroupId> = self.groups.keys().copied().collect();
                for g in ids {
                    self.schedule_still(g, frame);
                }
            }
        }
        if let (Some((size, at)), ResizePolicy::MatchClient { debounce, .. }) =
            (self.pending_target, self.config.resize)
        {
            if now.saturating_sub(at) >= debounce {
                self.pending_target = None;
                if self.target != Some(size) {
                    self.target = Some(size);
                    self.actions.push_back(Action::TargetSize {
                        width: size.0,
                        height: size.1,
                    });
                }
            }
        }
    }

    fn schedule_still(&mut self, group: GroupId, frame: FrameInfo) {
        let Some(g) = self.groups.get(&group) else {
            return;
        };
        if g.busy.is_some() || g.still_for == Some(frame.id) || g.last_submitted != Some(frame.id) {
            return;
        }
        let recipients: Vec<ViewerId> = self
            .viewers
            .iter()
            .filter(|(_, v)| v.group == group && self.ready(v))
            .map(|(&id, _)| id)
            .collect();
        if recipients.is_empty() {
            return; // skipped while in-flight is full; tried again on the next tick
        }
        let settings = self.config.encoder.clone();
        let g = self.groups.get_mut(&group).expect("checked");
        g.still_for = Some(frame.id);
        g.job_counter += 1;
        let job = g.job_counter;
        g.busy = Some(Job {
            id: job,
            frame,
            recipients,
            still: true,
        });
        self.actions.push_back(Action::Encode(EncodeJob {
            group,
            kind: g.kind,
            settings,
            job,
            frame,
            force_keyframe: true,
            still: true,
        }));
    }

    /// Change encoder settings and/or the transport policy live: every group is rebuilt,
    /// viewers are regrouped, `config` is re-sent and everyone gets a keyframe. Viewers that
    /// no longer match any transport are closed with 1003.
    pub fn reconfigure(
        &mut self,
        encoder: EncoderSettings,
        transports: TransportPolicy,
        now: Duration,
    ) {
        let quality_changed = (encoder.bitrate, encoder.fps)
            != (self.config.encoder.bitrate, self.config.encoder.fps);
        self.config.encoder = encoder;
        self.config.transports = transports;
        for id in std::mem::take(&mut self.groups).into_keys() {
            self.actions.push_back(Action::CloseGroup(id));
        }
        let ids: Vec<ViewerId> = self.viewers.keys().copied().collect();
        for id in ids {
            let supported = self.viewers[&id].supported.clone();
            match select_transport(
                &supported,
                transports,
                self.config.video_available,
                self.config.image_format,
            ) {
                None => {
                    self.viewers.remove(&id);
                    self.actions.push_back(Action::Close {
                        viewer: id,
                        code: close::NO_TRANSPORT,
                        reason: close::NO_TRANSPORT_REASON.into(),
                    });
                }
                Some(kind) => {
                    let group = self.group_for(kind);
                    let v = self.viewers.get_mut(&id).expect("present");
                    v.group = group;
                    v.needs_keyframe = true;
                    let text = self.config_text(kind, None);
                    self.actions
                        .push_back(Action::SendText { viewer: id, text });
                    // As pdum.rfb does after each quality change: tell video viewers the new
                    // target bitrate and frame rate.
                    if quality_changed && kind == GroupKind::Video {
                        let text = protocol::to_wire_string(&ServerMessage::SetQuality {
                            bitrate: self.config.encoder.bitrate as u64,
                            fps: self.config.encoder.fps,
                        });
                        self.actions
                            .push_back(Action::SendText { viewer: id, text });
                    }
                }
            }
        }
        let groups: Vec<GroupId> = self.groups.keys().copied().collect();
        for g in groups {
            self.schedule(g, now, false);
        }
    }

    /// Counters for the metrics endpoint.
    pub fn metrics(&mut self, now: Duration) -> StreamMetrics {
        let mut viewers = Vec::new();
        let kinds: BTreeMap<GroupId, GroupKind> =
            self.groups.iter().map(|(&id, g)| (id, g.kind)).collect();
        for (&id, v) in self.viewers.iter_mut() {
            let (fps_sent, fps_acked, bitrate_bps) = Self::rates(v, now);
            viewers.push(ViewerMetrics {
                id,
                transport: kinds.get(&v.group).copied().unwrap_or(GroupKind::Video),
                frames_sent: v.stats.frames_sent,
                frames_acked: v.stats.frames_acked,
                keyframes_sent: v.stats.keyframes_sent,
                frames_dropped: v.stats.dropped,
                bytes_sent: v.stats.bytes_sent,
                inflight: v.inflight.len(),
                rtt_ms: v.stats.rtt_ms.unwrap_or(0.0),
                fps_sent,
                fps_acked,
                bitrate_bps,
                decode_queue_size: v.stats.decode_queue_size,
                events_dropped: v.stats.events_dropped,
                decoder_resets: v.stats.decoder_resets,
                backstops: v.stats.backstops,
                keyframe_requests: v.stats.keyframe_requests,
            });
        }
        let groups = self
            .groups
            .iter()
            .map(|(&id, g)| {
                let mut s: Vec<f64> = g.encode_ms_samples.iter().copied().collect();
                s.sort_by(f64::total_cmp);
                let pct = |p: f64| {
                    if s.is_empty() {
                        0.0
                    } else {
                        s[((s.len() - 1) as f64 * p).round() as usize]
                    }
                };
                GroupMetrics {
                    id,
                    kind: g.kind,
                    viewers: self.viewers.values().filter(|v| v.group == id).count(),
                    frames_encoded: g.frames_encoded,
                    encode_ms: g.encode_ms.unwrap_or(0.0),
                    encode_ms_p50: pct(0.5),
                    encode_ms_p95: pct(0.95),
                    codec: g.codec.clone(),
                    failures: g.failures,
                }
            })
            .collect();
        let (width, height) = self.frame_size();
        StreamMetrics {
            frames_published: self.frames_published,
            frames_not_encoded: self.frames_published.saturating_sub(
                self.groups
                    .values()
                    .map(|g| g.frames_encoded)
                    .max()
                    .unwrap_or(0),
            ),
            width,
            height,
            encoder: self.config.encoder.clone(),
            transports: self.config.transports,
            groups,
            viewers,
        }
    }
}

/// `match_client` target: clamp the larger side to `max`, keep the aspect, even, ≥ 2.
pub fn target_dims(w: f64, h: f64, max: Option<u32>) -> (u32, u32) {
    let (mut w, mut h) = (w.max(2.0), h.max(2.0));
    if let Some(m) = max {
        let m = m.max(2) as f64;
        let scale = (m / w.max(h)).min(1.0);
        w *= scale;
        h *= scale;
    }
    let even = |x: f64| ((x.round() as u32) & !1).max(2);
    (even(w), even(h))
}
