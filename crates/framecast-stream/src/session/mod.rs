//! The per-stream, per-viewer delivery state machine: sans-IO, time passed in, actions out.
//!
//! [`StreamCore`] holds every viewer of one stream and the *encoder groups* they share. It
//! never touches a socket, a thread or a clock: the shell feeds it what happened
//! ([`StreamCore::publish`], [`StreamCore::add_viewer`], [`StreamCore::handle_text`],
//! [`StreamCore::encode_done`], [`StreamCore::handle_timeout`], ...) with `now` (a
//! [`Duration`] since any fixed origin), drains [`Action`]s with [`StreamCore::poll_action`]
//! and carries them out (encode a frame, send a message, close a connection, deliver an input
//! event), then sleeps until [`StreamCore::poll_timeout`] or the next input (str0m's
//! `poll_output` / `Output::Timeout`). The tests drive it in simulated time.
//!
//! # Delivery rules (pdum.rfb 0.3, extended to shared encoders)
//!
//! * Viewers that negotiate the same transport share one encoder group: one encode per
//!   published frame, one payload for all of them (each gets its own `seq` header).
//! * **Drop before encode / latest wins.** A viewer is *ready* while it has fewer than
//!   `max_inflight` sent-but-not-displayed frames. A group encodes the latest published frame
//!   for its ready viewers; if none is ready, nothing is encoded. One encode runs per group at
//!   a time; frames published meanwhile are superseded by the newest. An ack, a backstop or a
//!   decoder reset that frees a slot re-runs the scheduler, so the newest frame goes out as
//!   soon as someone can take it.
//! * **Keyframes follow the reference chain.** A frame that was encoded for nobody breaks
//!   nobody's chain: the next frame is a delta. Only a viewer that *misses a frame its group
//!   encoded* (it was not ready, or its queue was full) loses sync and needs a keyframe; so do
//!   a new viewer, one that sends `request_keyframe` or `decoder_reset`, and one whose
//!   backstop fired. (pdum.rfb 0.3 marks every skipped viewer, so on a link slower than the
//!   stream every frame becomes a keyframe, each keyframe is slower to send, and the stream
//!   collapses; this core does not.)
//! * **A group moves together.** When a viewer that is in sync has its window full, the
//!   group waits for its ack (until that ack is due — its usual round trip, scaled by the
//!   frame's size against the usual frame's — plus `sync_wait`, 100 ms) rather than encode a
//!   frame it would miss: viewers on one link
//!   stay in step instead of knocking each other out of sync in turn. A viewer later than
//!   that is left behind: it loses sync.
//! * **Recovery without a keyframe.** When the encoder backend can (OpenH264's long-term
//!   references; [`SessionConfig::recovery`]), a viewer that lost sync but whose decoder
//!   holds this bitstream's references (it displayed frames of it) is brought back by a
//!   *recovery P-frame*: the core tells the encoder which frames every viewer of the group
//!   has displayed ([`EncodeJob::displayed_by_all`]) and asks for a frame predicted only from
//!   one of them ([`EncodeJob::recover_for`]); the result names its reference
//!   ([`EncodedFrame::recovery_from`]) and goes to every viewer that displayed it. No IDR,
//!   no recovery interval: the others pay a P-frame a little larger than usual. A viewer
//!   that reset its decoder, asked for a keyframe, joined or changed tier has no known
//!   references, and one the encoder could not serve falls back to the keyframe rules below.
//! * **Only the viewer that lost sync pays.** Its keyframe goes out at once when nobody else
//!   in the group would pay for it (every ready viewer needs one: a lone viewer, say). When
//!   other viewers are in sync, recovery keyframes are spaced by `recovery_interval`; the
//!   viewer waits (skipping deltas it cannot decode) until then or the encoder's own cadence
//!   (GOP = fps), even when the publisher is idle. Joins and encoder rebuilds (frame size
//!   change, [`StreamCore::reconfigure`]) force a keyframe for the group at once.
//! * **Acks** mean *displayed*; an ack for `seq` also retires older in-flight entries (display
//!   is in order). RTT = send → displayed ack.
//! * **Backstop**: if a viewer's oldest in-flight frame is older than `inflight_timeout`
//!   (2 s), its in-flight set is cleared and it needs a keyframe.
//! * **Still after settle**: after `still_after` without a publish, the latest frame is sent
//!   once more to the group's ready viewers as a lossless PNG (image groups) or a forced IDR
//!   (video groups).
//! * **Stats**: with `stats_interval`, a `stats` message piggybacks on ack handling. Rates
//!   are kept in fixed-size windows whether stats are on or off.

mod admission;
mod config;
mod congestion;
mod group;
mod ids;
mod metrics;
mod tiers;
mod viewer;
mod window;

pub use admission::{token_matches, Admission, Rejection};
pub use config::{
    select_transport, target_dims, EncoderSettings, GroupKind, ImageFormat, ResizePolicy,
    SessionConfig, TransportPolicy, UnknownTransport,
};
pub use congestion::{AdaptiveConfig, CcSnapshot, CcState, Targets, TransportSample};
pub use ids::{FrameInfo, FrameTags, GroupId, ViewerId};
pub use metrics::{GroupMetrics, StreamMetrics, StreamSnapshot, ViewerMetrics};
pub use window::{RateWindow, SampleRing};

use crate::protocol::{
    self, close, BinaryHeader, ClientMessage, EnvelopeTemplate, ImageFrameHeader, ServerMessage,
    StatsMessage, VideoChunkHeader, ViewerEvent, WireTransport,
};
use bytes::Bytes;
use congestion::Controller;
use group::Group;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use viewer::Viewer;

/// What an encoder group returns for one job.
#[derive(Debug, Clone)]
pub struct EncodedFrame {
    /// The payload (Annex B access unit or image file), shared by all recipients.
    pub data: Bytes,
    /// IDR (always true for images).
    pub keyframe: bool,
    /// Codec string (video).
    pub codec: Option<Arc<str>>,
    /// MIME type (images).
    pub mime: Option<&'static str>,
    /// Encoded size.
    pub width: u32,
    /// Encoded size.
    pub height: u32,
    /// Time spent converting and encoding.
    pub encode_ms: f64,
    /// A recovery P-frame ([`EncodeJob::recover_for`]): predicted only from published frame
    /// this id, so every viewer that displayed that frame decodes it. `None` otherwise.
    pub recovery_from: Option<u64>,
}

/// Why an encode job produced nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeFailure {
    /// The encoder could not be created for this size and backend.
    #[error("cannot create the {backend} encoder at {width}x{height}: {message}")]
    Create {
        /// Backend name.
        backend: String,
        /// Frame size.
        width: u32,
        /// Frame size.
        height: u32,
        /// What the backend said.
        message: String,
    },
    /// The backend failed on this frame.
    #[error("encode failed: {0}")]
    Encode(String),
    /// The backend accepted the frame and returned no packet for it.
    #[error("the encoder returned no packet for the frame")]
    NoPacket,
    /// The image encoder failed.
    #[error("{format} encode of {width}x{height} failed: {message}")]
    Image {
        /// `JPEG` or `PNG`.
        format: &'static str,
        /// Frame size.
        width: u32,
        /// Frame size.
        height: u32,
        /// What the encoder said.
        message: String,
    },
    /// The group's encoder thread could not start or has ended.
    #[error("encoder thread unavailable: {0}")]
    Thread(String),
}

/// An encode request for the shell.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodeJob {
    /// The group (create its encoder on first sight).
    pub group: GroupId,
    /// What the group produces.
    pub kind: GroupKind,
    /// Settings for creating or rebuilding the encoder.
    pub settings: Arc<EncoderSettings>,
    /// Job number within the group.
    pub job: u64,
    /// The frame to encode (always the latest published).
    pub frame: FrameInfo,
    /// Encode as an IDR.
    pub force_keyframe: bool,
    /// A still: PNG for image groups, forced IDR for video.
    pub still: bool,
    /// Every viewer of the group has displayed this frame and all before it (video): the
    /// encoder may rely on references among them (`Encoder::displayed`).
    pub displayed_by_all: Option<u64>,
    /// Viewers that missed frames and displayed up to this one wait for recovery: make this
    /// frame a recovery P-frame if the encoder can (`Encoder::recover`), and report it in
    /// [`EncodedFrame::recovery_from`]; otherwise encode it as usual (the core then sends
    /// them a keyframe).
    pub recover_for: Option<u64>,
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
    /// Send a binary payload: `chunk.envelope(seq)` (one header and payload shared by every
    /// recipient of the encode; only `seq` is this viewer's).
    SendPayload {
        /// To whom.
        viewer: ViewerId,
        /// This viewer's sequence number for the payload.
        seq: u64,
        /// The header template and the shared payload bytes.
        chunk: Arc<EnvelopeTemplate>,
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
}

/// How a job serves viewers waiting for recovery ([`StreamCore::recovery_plan`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recovery {
    /// Nobody ready needs it now (or a keyframe is held back by the interval).
    None,
    /// An IDR.
    Keyframe,
    /// A recovery P-frame for viewers that displayed up to this frame.
    From(u64),
}

/// Why [`StreamCore::schedule`] runs: a publish counts viewers that cannot take the frame as
/// having dropped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Publish,
    Other,
}

/// The sans-IO state of one stream: its viewers and encoder groups.
#[derive(Debug)]
pub struct StreamCore {
    config: SessionConfig,
    initial_size: (u32, u32),
    viewers: BTreeMap<ViewerId, Viewer>,
    groups: BTreeMap<GroupId, Group>,
    next_group: GroupId,
    latest: Option<FrameInfo>,
    latest_tags: FrameTags,
    last_publish_at: Option<Duration>,
    actions: VecDeque<Action>,
    pending_target: Option<((u32, u32), Duration)>,
    target: Option<(u32, u32)>,
}

impl StreamCore {
    /// A stream with no viewers and no frame yet.
    pub fn new(config: SessionConfig) -> Self {
        Self::with_size(config, (0, 0))
    }

    /// A stream whose size, until the first publish, is `initial_size` (the size the
    /// application announced).
    pub fn with_size(config: SessionConfig, initial_size: (u32, u32)) -> Self {
        StreamCore {
            config,
            initial_size,
            viewers: BTreeMap::new(),
            groups: BTreeMap::new(),
            next_group: 1,
            latest: None,
            latest_tags: FrameTags::default(),
            last_publish_at: None,
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

    /// What other threads may read: size, target, settings, viewer count.
    pub fn snapshot(&self) -> StreamSnapshot {
        let (width, height) = self.frame_size();
        StreamSnapshot {
            width,
            height,
            target: self.target,
            encoder: self.config.encoder.clone(),
            transports: self.config.transports,
            viewers: self.viewers.len(),
            frames_published: self.latest.map_or(0, |f| f.id),
        }
    }

    /// When [`StreamCore::handle_timeout`] has work next, if ever. The shell sleeps until
    /// then (or the next input); calling `handle_timeout` earlier or more often is harmless.
    pub fn poll_timeout(&self) -> Option<Duration> {
        let mut next: Option<Duration> = None;
        let mut at = |t: Duration| next = Some(next.map_or(t, |n| n.min(t)));
        for v in self.viewers.values() {
            if let Some(oldest) = v.inflight.front() {
                at(oldest.sent_at.saturating_add(self.config.inflight_timeout));
            }
        }
        if let (Some(still_after), Some(published), Some(frame)) =
            (self.config.still_after, self.last_publish_at, self.latest)
        {
            if self.groups.values().any(|g| g.resent != Some(frame.id)) {
                at(published.saturating_add(still_after));
            }
        }
        if let (Some((_, since)), ResizePolicy::MatchClient { debounce, .. }) =
            (self.pending_target, self.config.resize)
        {
            at(since.saturating_add(debounce));
        }
        for (&id, g) in &self.groups {
            if self.recovery_waiting(id, g) {
                at(self.idle_recovery_at(id, g));
            }
            let pending =
                g.busy.is_none() && self.latest.is_some_and(|f| g.last_submitted != Some(f.id));
            if pending {
                if let Some(t) = g.next_job_at(self.config.encoder.fps) {
                    at(t);
                }
            }
            if pending && self.members(id).any(|(_, v)| v.ready()) {
                for (_, v) in self.members(id).filter(|(_, v)| !v.ready()) {
                    if let Some(deadline) = self.sync_deadline(v) {
                        at(deadline);
                    }
                }
            }
        }
        next
    }

    fn frame_size(&self) -> (u32, u32) {
        self.latest
            .map(|f| (f.width, f.height))
            .unwrap_or(self.initial_size)
    }

    /// The group a viewer of `kind` joins: the best tier of that kind, or a new group.
    fn group_for(&mut self, kind: GroupKind) -> GroupId {
        let best = self
            .groups
            .iter()
            .filter(|(_, g)| g.kind == kind)
            .max_by_key(|(&id, g)| (g.settings.bitrate, std::cmp::Reverse(id)));
        if let Some((&id, _)) = best {
            return id;
        }
        self.new_group(kind, self.config.encoder.clone())
    }

    fn new_group(&mut self, kind: GroupKind, settings: Arc<EncoderSettings>) -> GroupId {
        let id = self.next_group;
        self.next_group += 1;
        self.groups.insert(id, Group::new(kind, settings));
        id
    }

    /// A congestion controller for a viewer of `kind`: active for video when adaptation is
    /// on, pinned at the configured quality otherwise.
    fn controller(&self, kind: GroupKind, now: Duration) -> Controller {
        let max = Targets {
            bitrate: self.config.encoder.bitrate,
            fps: self.config.encoder.fps,
            window: self.config.max_inflight.max(1),
        };
        let enabled = self.config.adaptive.is_some() && kind == GroupKind::Video;
        let cfg = self.config.adaptive.clone().unwrap_or_default();
        Controller::new(cfg, enabled, max, now)
    }

    fn members(&self, group: GroupId) -> impl Iterator<Item = (ViewerId, &Viewer)> {
        self.viewers
            .iter()
            .filter(move |(_, v)| v.group == group)
            .map(|(&id, v)| (id, v))
    }

    fn config_text(&self, kind: GroupKind, codec: Option<&str>) -> String {
        let (width, height) = self.frame_size();
        let (transport, codec, backend) = match kind {
            GroupKind::Video => (
                WireTransport::Webcodecs,
                Some(codec.unwrap_or(protocol::DEFAULT_H264_CODEC).to_owned()),
                self.config.encoder.backend.clone(),
            ),
            GroupKind::Image(format) => (WireTransport::Image, None, format.name().to_owned()),
        };
        protocol::to_wire_string(&ServerMessage::Config {
            transport,
            width,
            height,
            coords: protocol::COORDS_FRAME_PIXELS.into(),
            codec,
            pixel_ratio: self.pixel_ratio(&self.latest_tags),
            color: self.color(&self.latest_tags),
            backend: Some(backend),
        })
    }

    /// A viewer said `hello` (and passed authentication): negotiate, send `config`, join or
    /// create its encoder group. The first payload it gets is a keyframe. Refused with 1013
    /// when the stream already has `max_viewers`, 1003 when no transport matches.
    pub fn add_viewer(
        &mut self,
        id: ViewerId,
        supported: Vec<String>,
        now: Duration,
    ) -> Result<(), Rejection> {
        if self.viewers.len() >= self.config.max_viewers {
            return Err(Rejection {
                code: close::STREAM_FULL,
                reason: close::STREAM_FULL_REASON.into(),
            });
        }
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
        // Everyone in the group decodes one bitstream: a newcomer's first keyframe is the
        // group's next frame.
        let g = self.groups.get_mut(&group).expect("just found or made");
        g.force_keyframe = true;
        let codec = g.codec.clone();
        let cc = self.controller(kind, now);
        let viewer = Viewer::new(supported, group, self.config.max_events_per_second, cc, now);
        self.viewers.insert(id, viewer);
        let text = self.config_text(kind, codec.as_deref());
        self.actions
            .push_back(Action::SendText { viewer: id, text });
        self.retune(now);
        self.schedule(group, now, Trigger::Other);
        Ok(())
    }

    /// A viewer disconnected. Its group is closed when it was the last one.
    pub fn remove_viewer(&mut self, id: ViewerId, now: Duration) {
        if let Some(v) = self.viewers.remove(&id) {
            self.close_group_if_empty(v.group);
            // The group's rate no longer has to suit the viewer that left.
            self.retune(now);
        }
    }

    fn close_group_if_empty(&mut self, group: GroupId) {
        if self.members(group).next().is_none() && self.groups.remove(&group).is_some() {
            self.actions.push_back(Action::CloseGroup(group));
        }
    }

    /// A frame was published (with the stream's configured tags).
    pub fn publish(&mut self, frame: FrameInfo, now: Duration) {
        self.publish_tagged(frame, FrameTags::default(), now);
    }

    /// A frame was published with its own `pixel_ratio`/`color` tags. A change of tags is
    /// announced to every viewer with a fresh `config` (as a size change is).
    pub fn publish_tagged(&mut self, frame: FrameInfo, tags: FrameTags, now: Duration) {
        if tags != self.latest_tags {
            self.latest_tags = tags;
            let ids: Vec<ViewerId> = self.viewers.keys().copied().collect();
            for viewer in ids {
                let g = &self.groups[&self.viewers[&viewer].group];
                let text = self.config_text(g.kind, g.codec.as_deref());
                self.actions.push_back(Action::SendText { viewer, text });
            }
        }
        self.latest = Some(frame);
        self.last_publish_at = Some(now);
        let groups: Vec<GroupId> = self.groups.keys().copied().collect();
        for g in groups {
            self.schedule(g, now, Trigger::Publish);
        }
    }

    /// Start an encode of the latest frame for `group` if it is idle, has not encoded that
    /// frame yet and has a ready viewer.
    fn schedule(&mut self, group: GroupId, now: Duration, trigger: Trigger) {
        let Some(frame) = self.latest else { return };
        let Some(g) = self.groups.get(&group) else {
            return;
        };
        if g.busy.is_some() || g.last_submitted == Some(frame.id) {
            return;
        }
        // The frame-rate lever: too soon after the last job (poll_timeout wakes us).
        if g.next_job_at(self.config.encoder.fps)
            .is_some_and(|t| now < t)
        {
            return;
        }
        let video = g.kind == GroupKind::Video;
        let mut ready = Vec::new();
        let mut waiting = Vec::new();
        for (id, v) in self.members(group) {
            if v.ready() {
                ready.push(id);
            } else {
                waiting.push(id);
            }
        }
        // Wait for an in-sync viewer that is not late yet rather than break its chain.
        let worth_waiting = video
            && waiting
                .iter()
                .filter_map(|id| self.sync_deadline(&self.viewers[id]))
                .any(|deadline| now < deadline);
        if ready.is_empty() || worth_waiting {
            // Encoded for nobody (yet): nobody's reference chain breaks.
            if trigger == Trigger::Publish {
                for &id in &waiting {
                    let v = self.viewer_mut(id);
                    v.count_drop(frame.id);
                    v.offered(false, now);
                }
            }
            return;
        }
        // The others miss a frame their group's bitstream will reference: they lose sync.
        for &id in &waiting {
            let v = self.viewer_mut(id);
            v.count_drop(frame.id);
            v.offered(false, now);
            if video {
                v.lose_sync();
            }
        }
        for &id in &ready {
            self.viewer_mut(id).offered(true, now);
        }
        let plan = self.recovery_plan(group, &ready, now);
        self.start_job(group, frame, ready, plan, false, now);
    }

    /// How the next job for `ready` serves those of them that need recovery.
    ///
    /// * An IDR when the group says so, or when a viewer that a recovery P-frame cannot
    ///   bring back (it has no known references) needs one and either nobody else would pay
    ///   for it or the recovery interval has passed.
    /// * Otherwise, for viewers whose decoders hold references (they displayed frames of
    ///   this bitstream), a recovery P-frame predicted from a frame every viewer displayed:
    ///   at once, since it costs the others little (the encoder falls back to a plain frame
    ///   when it cannot, and those viewers then take the keyframe path).
    fn recovery_plan(&self, group: GroupId, ready: &[ViewerId], now: Duration) -> Recovery {
        let g = &self.groups[&group];
        if g.force_keyframe {
            return Recovery::Keyframe;
        }
        let needy = || {
            ready
                .iter()
                .map(|id| &self.viewers[id])
                .filter(|v| v.needs_keyframe)
        };
        let in_sync = self.members(group).any(|(_, v)| !v.needs_keyframe);
        let video = g.kind == GroupKind::Video;
        let p_frames = video && self.config.recovery;
        let keyframe_wanted = needy().any(|v| !(p_frames && v.recoverable()));
        if keyframe_wanted && (!in_sync || now >= g.recovery_due_at(self.config.recovery_interval))
        {
            return Recovery::Keyframe;
        }
        match needy()
            .filter(|v| p_frames && v.recoverable())
            .filter_map(|v| v.displayed)
            .min()
        {
            Some(last) => Recovery::From(last),
            None => Recovery::None,
        }
    }

    /// The newest frame every viewer of a video group has displayed.
    fn displayed_by_all(&self, group: GroupId) -> Option<u64> {
        self.members(group)
            .map(|(_, v)| v.displayed)
            .min()
            .flatten()
    }

    /// Until when its group waits for `v`, an in-sync viewer with a full window: when the
    /// ack of its oldest frame in flight is due ([`Viewer::ack_due`]), plus `sync_wait`.
    /// `None` when it is not in sync (then nobody waits for it) or has nothing in flight.
    fn sync_deadline(&self, v: &Viewer) -> Option<Duration> {
        if v.needs_keyframe {
            return None;
        }
        Some(v.ack_due(self.config.inflight_timeout)? + self.config.sync_wait)
    }

    /// A ready viewer is waiting for a recovery keyframe that the interval holds back, and
    /// the latest frame has already been encoded (so no publish will carry it).
    fn recovery_waiting(&self, id: GroupId, g: &Group) -> bool {
        g.kind == GroupKind::Video
            && g.busy.is_none()
            && self.latest.is_some_and(|f| g.last_submitted == Some(f.id))
            && self.members(id).any(|(_, v)| v.needs_keyframe && v.ready())
    }

    /// When a waiting recovery is served by re-sending the latest frame: once the interval
    /// allows it and the publisher has been quiet for two frame times (an active publisher's
    /// next frame carries it sooner, without encoding a picture twice).
    fn idle_recovery_at(&self, id: GroupId, g: &Group) -> Duration {
        let quiet = Duration::from_secs_f64(2.0 / self.config.encoder.fps.max(1.0));
        let idle_since = self
            .last_publish_at
            .unwrap_or_default()
            .saturating_add(quiet);
        // A recovery P-frame is not held back by the keyframe interval.
        let all_recoverable = self.config.recovery
            && self
                .members(id)
                .filter(|(_, v)| v.needs_keyframe && v.ready())
                .all(|(_, v)| v.recoverable());
        if all_recoverable {
            idle_since
        } else {
            g.recovery_due_at(self.config.recovery_interval)
                .max(idle_since)
        }
    }

    fn viewer_mut(&mut self, id: ViewerId) -> &mut Viewer {
        self.viewers
            .get_mut(&id)
            .expect("member ids come from the map")
    }

    fn start_job(
        &mut self,
        group: GroupId,
        frame: FrameInfo,
        recipients: Vec<ViewerId>,
        recovery: Recovery,
        still: bool,
        now: Duration,
    ) {
        let force_keyframe = still || recovery == Recovery::Keyframe;
        let recover_for = match recovery {
            Recovery::From(last) => Some(last),
            _ => None,
        };
        let displayed_by_all = self.displayed_by_all(group);
        let resized = self.groups[&group].size != Some((frame.width, frame.height));
        if resized && self.groups[&group].size.is_some() {
            // Encoder rebuild: everyone learns the new size and gets a keyframe.
            let g = &self.groups[&group];
            let text = self.config_text(g.kind, g.codec.as_deref());
            let members: Vec<ViewerId> = self.members(group).map(|(id, _)| id).collect();
            for viewer in members {
                self.actions.push_back(Action::SendText {
                    viewer,
                    text: text.clone(),
                });
            }
        }
        let g = self.groups.get_mut(&group).expect("caller checked");
        let settings = g.settings.clone();
        g.size = Some((frame.width, frame.height));
        g.force_keyframe = false;
        g.last_submitted = Some(frame.id);
        let job = g.start(
            frame,
            self.latest_tags.clone(),
            recipients,
            recover_for,
            now,
        );
        self.actions.push_back(Action::Encode(EncodeJob {
            group,
            kind: g.kind,
            settings,
            job,
            frame,
            force_keyframe: force_keyframe || resized,
            still,
            displayed_by_all,
            recover_for,
        }));
    }

    /// The shell finished (or failed) a job.
    pub fn encode_done(
        &mut self,
        group: GroupId,
        job: u64,
        result: Result<EncodedFrame, EncodeFailure>,
        now: Duration,
    ) {
        let Some(g) = self.groups.get_mut(&group) else {
            return;
        };
        let Some(done) = g.busy.take_if(|j| j.id == job) else {
            return;
        };
        let encoded = match result {
            Ok(e) => e,
            Err(error) => {
                g.failures += 1;
                g.force_keyframe = true;
                tracing::warn!(group, job, %error, "encode failed; the next frame is a keyframe");
                for id in &done.recipients {
                    if let Some(v) = self.viewers.get_mut(id) {
                        v.count_drop(done.frame.id);
                        v.lose_sync();
                    }
                }
                self.schedule(group, now, Trigger::Other);
                return;
            }
        };
        let kind = g.kind;
        let fps = g.settings.fps;
        let keyframe = encoded.keyframe || matches!(kind, GroupKind::Image(_));
        g.encoded(keyframe, encoded.data.len(), encoded.encode_ms, now);
        let recovery_from = encoded.recovery_from.filter(|_| !keyframe);
        g.recovery_frames += recovery_from.is_some() as u64;
        if encoded.codec.is_some() {
            g.codec.clone_from(&encoded.codec);
        }
        let chunk = Arc::new(EnvelopeTemplate::new(
            self.header(kind, &done.frame, &done.tags, &encoded, keyframe, fps),
            encoded.data,
        ));
        let bytes = chunk.payload.len();
        for &id in &done.recipients {
            let Some(v) = self.viewers.get_mut(&id) else {
                continue;
            };
            if v.group != group {
                continue;
            }
            if v.needs_keyframe && !keyframe {
                // A recovery P-frame brings it back if its decoder holds the reference.
                let recovered = recovery_from.is_some_and(|r| v.displayed.is_some_and(|d| d >= r));
                if !recovered {
                    // It cannot decode a delta: it waits for its recovery keyframe.
                    if done.recover_for.is_some() && v.recoverable() {
                        v.recovery_refused = true;
                    }
                    v.count_drop(done.frame.id);
                    continue;
                }
                v.stats.recovered_without_keyframe += 1;
            }
            let seq = v.sent(done.frame.id, bytes, keyframe, now);
            self.actions.push_back(Action::SendPayload {
                viewer: id,
                seq,
                chunk: chunk.clone(),
            });
        }
        self.schedule(group, now, Trigger::Other);
    }

    fn pixel_ratio(&self, tags: &FrameTags) -> Option<f64> {
        tags.pixel_ratio.or(self.config.pixel_ratio)
    }

    fn color(&self, tags: &FrameTags) -> Option<Arc<crate::protocol::WireColor>> {
        tags.color.clone().or_else(|| self.config.color.clone())
    }

    fn header(
        &self,
        kind: GroupKind,
        frame: &FrameInfo,
        tags: &FrameTags,
        encoded: &EncodedFrame,
        keyframe: bool,
        fps: f64,
    ) -> BinaryHeader {
        match kind {
            GroupKind::Video => BinaryHeader::VideoChunk(VideoChunkHeader {
                seq: 0,
                timestamp_us: frame.timestamp_us,
                width: encoded.width,
                height: encoded.height,
                codec: encoded
                    .codec
                    .clone()
                    .unwrap_or_else(|| protocol::DEFAULT_H264_CODEC.into()),
                bitstream: "annexb".into(),
                keyframe,
                duration_us: Some((1e6 / fps) as u64),
                pixel_ratio: self.pixel_ratio(tags),
                color: self.color(tags),
            }),
            GroupKind::Image(fmt) => BinaryHeader::ImageFrame(ImageFrameHeader {
                seq: 0,
                timestamp_us: frame.timestamp_us,
                width: encoded.width,
                height: encoded.height,
                mime: encoded.mime.unwrap_or(fmt.mime()).into(),
                pixel_ratio: self.pixel_ratio(tags),
                color: self.color(tags),
            }),
        }
    }

    /// The shell could not hand a message to this viewer's connection (its queue is full: a
    /// stalled socket). The viewer missed a frame its group got, so it needs a keyframe.
    /// Its link is far behind: congestion control halves its rate.
    pub fn send_failed(&mut self, viewer: ViewerId, seq: Option<u64>, now: Duration) {
        let latest = self.latest.map_or(0, |f| f.id);
        if let Some(v) = self.viewers.get_mut(&viewer) {
            if let Some(seq) = seq {
                v.inflight.retain(|i| i.seq != seq);
            }
            v.count_drop(latest);
            v.lose_sync();
            v.cc.on_loss(now);
            self.retune(now);
        }
    }

    /// The viewer's own transport estimates what it can carry (a WebRTC SFU's REMB/TWCC
    /// estimate for a WHIP sink): its bitrate target stays at or below `bps` (`None` lifts
    /// the cap). Congestion control then treats it like any slow viewer: its group follows,
    /// or it moves to a tier of its own when it is far below the others.
    pub fn rate_cap(&mut self, viewer: ViewerId, bps: Option<u32>, now: Duration) {
        let Some(v) = self.viewers.get_mut(&viewer) else {
            return;
        };
        v.cc.set_external_cap(bps);
        self.retune(now);
    }

    /// What the kernel says about a viewer's TCP connection (the shell reads `TCP_INFO`
    /// after sends). Feeds its congestion controller.
    pub fn transport_sample(&mut self, viewer: ViewerId, sample: TransportSample, now: Duration) {
        let Some(v) = self.viewers.get_mut(&viewer) else {
            return;
        };
        v.transport(sample, now);
        self.retune(now);
    }

    /// Apply congestion control's targets: move viewers between tiers where a wish to move
    /// has held for [`tiers::TIER_HOLD`], then set each video group's rate and frame rate to
    /// its slowest member's, telling its viewers with `set_quality` when they change.
    fn retune(&mut self, now: Duration) {
        if self.config.adaptive.is_none() {
            return;
        }
        let views: Vec<tiers::GroupView> = self
            .groups
            .iter()
            .filter(|(_, g)| g.kind == GroupKind::Video)
            .map(|(&id, g)| tiers::GroupView {
                used: g.sent.bits_per_second(now).min(u32::MAX as u64) as u32,
                id,
                rate: g.settings.bitrate,
                peak: self
                    .members(id)
                    .map(|(_, v)| v.cc.targets().bitrate)
                    .max()
                    .unwrap_or(0),
                members: self.members(id).count(),
            })
            .collect();
        let mut moves = Vec::new();
        for (&id, v) in self.viewers.iter_mut() {
            if !views.iter().any(|g| g.id == v.group) {
                continue;
            }
            let wish = tiers::desired(v.group, v.cc.targets().bitrate, &views);
            let key = wish.map(|d| match d {
                tiers::Dest::Join(g) => g,
                tiers::Dest::New => 0,
            });
            match (key, v.tier_pressure) {
                (None, _) => v.tier_pressure = None,
                (Some(k), Some((since, held))) if held == k => {
                    if now.saturating_sub(since) >= tiers::TIER_HOLD {
                        moves.push((id, wish.expect("some")));
                    }
                }
                (Some(k), _) => v.tier_pressure = Some((now, k)),
            }
        }
        // One move per retune: the view above changes with each.
        if let Some((id, dest)) = moves.into_iter().next() {
            self.move_viewer(id, dest, now);
        }
        let ids: Vec<GroupId> = self
            .groups
            .iter()
            .filter(|(_, g)| g.kind == GroupKind::Video)
            .map(|(&id, _)| id)
            .collect();
        for group in ids {
            let (mut bitrate, mut fps) = (u32::MAX, f64::INFINITY);
            for (_, v) in self.members(group) {
                let t = v.cc.targets();
                bitrate = bitrate.min(t.bitrate);
                fps = fps.min(t.fps);
            }
            if bitrate == u32::MAX {
                continue;
            }
            let g = self.groups.get_mut(&group).expect("listed");
            let old = &g.settings;
            // 3% dead band: rate control cannot follow finer steps, and each is a message.
            let moved = (bitrate as f64 - old.bitrate as f64).abs() > 0.03 * old.bitrate as f64
                || (bitrate == self.config.encoder.bitrate && old.bitrate != bitrate)
                || (fps - old.fps).abs() > 1e-6;
            if !moved {
                continue;
            }
            g.settings = Arc::new(EncoderSettings {
                bitrate,
                fps,
                ..(*self.config.encoder).clone()
            });
            self.announce_quality(group);
        }
    }

    /// `set_quality` (pdum.rfb's message after each adaptive change) to a group's viewers.
    fn announce_quality(&mut self, group: GroupId) {
        let text = set_quality_text(&self.groups[&group].settings);
        let members: Vec<ViewerId> = self.members(group).map(|(id, _)| id).collect();
        for viewer in members {
            self.actions.push_back(Action::SendText {
                viewer,
                text: text.clone(),
            });
        }
    }

    /// Move a video viewer to another tier. It needs a keyframe of its new group's bitstream
    /// (a new group's first frame is one; an existing group sends it as a recovery).
    fn move_viewer(&mut self, id: ViewerId, dest: tiers::Dest, now: Duration) {
        let target = self.viewers[&id].cc.targets();
        let group = match dest {
            tiers::Dest::Join(g) => g,
            tiers::Dest::New => {
                let settings = Arc::new(EncoderSettings {
                    bitrate: target.bitrate,
                    fps: target.fps,
                    ..(*self.config.encoder).clone()
                });
                self.new_group(GroupKind::Video, settings)
            }
        };
        let v = self.viewer_mut(id);
        let from = std::mem::replace(&mut v.group, group);
        v.tier_pressure = None;
        v.forget_references();
        v.stats.tier_moves += 1;
        tracing::info!(
            viewer = id,
            from,
            to = group,
            bitrate = target.bitrate,
            "congestion control: viewer moves to another encoder tier"
        );
        self.close_group_if_empty(from);
        let text = set_quality_text(&self.groups[&group].settings);
        self.actions
            .push_back(Action::SendText { viewer: id, text });
        self.schedule(group, now, Trigger::Other);
    }

    /// Tier of a group: its rank by bitrate among the groups of its kind (0 = best).
    fn tier(&self, group: GroupId) -> usize {
        let Some(g) = self.groups.get(&group) else {
            return 0;
        };
        self.groups
            .values()
            .filter(|o| o.kind == g.kind && o.settings.bitrate > g.settings.bitrate)
            .count()
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
                self.close_viewer(viewer, close::MALFORMED, "malformed control message", now);
            }
        }
    }

    /// Forget a viewer and ask the shell to close its connection.
    pub fn close_viewer(&mut self, viewer: ViewerId, code: u16, reason: &str, now: Duration) {
        self.remove_viewer(viewer, now);
        self.actions.push_back(Action::Close {
            viewer,
            code,
            reason: reason.into(),
        });
    }

    /// A parsed control message from a viewer.
    pub fn handle_message(&mut self, viewer: ViewerId, msg: ClientMessage, now: Duration) {
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
                v.acked(seq, decode_queue_size, now);
                self.retune(now);
                let interval = self.config.stats_interval;
                let v = self.viewer_mut(viewer);
                if let Some(interval) = interval {
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
                // Its group (which a tier move may have changed) and any whose rate moved.
                let groups: Vec<GroupId> = self.groups.keys().copied().collect();
                for g in groups {
                    self.schedule(g, now, Trigger::Other);
                }
            }
            ClientMessage::RequestKeyframe { reason } => {
                tracing::debug!(viewer, ?reason, "keyframe requested");
                v.forget_references();
                v.stats.keyframe_requests += 1;
                self.schedule(group, now, Trigger::Other);
            }
            ClientMessage::DecoderReset => {
                tracing::info!(
                    viewer,
                    "viewer rebuilt its decoder: clearing in-flight, keyframe next"
                );
                v.inflight.clear();
                v.forget_references();
                v.stats.decoder_resets += 1;
                self.schedule(group, now, Trigger::Other);
            }
            ClientMessage::Event(event) => {
                if !v.events.take(self.config.max_events_per_second, now) {
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

    /// The `stats` message for a viewer now.
    pub fn stats_message(&mut self, viewer: ViewerId, now: Duration) -> StatsMessage {
        let Some(group) = self.viewers.get(&viewer).map(|v| v.group) else {
            return StatsMessage::default();
        };
        let tier = self.tier(group);
        let settings = self
            .groups
            .get(&group)
            .map_or_else(|| self.config.encoder.clone(), |g| g.settings.clone());
        let encode_ms = self
            .groups
            .get(&group)
            .and_then(|g| g.encode_ms)
            .unwrap_or(0.0);
        let adaptive = self.config.adaptive.is_some();
        let v = self.viewer_mut(viewer);
        let (fps_sent, fps_acked, bitrate_bps) = v.rates(now);
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
            congestion: adaptive.then(|| protocol::CongestionStats {
                tier,
                cc: v.cc.snapshot(now),
            }),
        }
    }

    /// Time-driven work: the in-flight backstop, recovery keyframes the interval held back,
    /// still-after-settle and the `match_client` debounce. See [`StreamCore::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Duration) {
        let timeout = self.config.inflight_timeout;
        let mut regroup = Vec::new();
        for (&id, v) in self.viewers.iter_mut() {
            if let Some(oldest) = v.inflight.front() {
                if now.saturating_sub(oldest.sent_at) >= timeout {
                    tracing::info!(
                        viewer = id,
                        inflight = v.inflight.len(),
                        "in-flight backstop: no ack for {timeout:?}; clearing, recovery next"
                    );
                    v.inflight.clear();
                    v.needs_keyframe = true;
                    v.stats.backstops += 1;
                    v.cc.on_loss(now);
                    regroup.push(v.group);
                }
            }
        }
        if !regroup.is_empty() {
            self.retune(now);
        }
        // Groups waiting for a late viewer move on once it is too late.
        regroup.extend(self.groups.keys().copied());
        for g in regroup {
            self.schedule(g, now, Trigger::Other);
        }
        let due: Vec<GroupId> = self
            .groups
            .iter()
            .filter(|(&id, g)| self.recovery_waiting(id, g) && now >= self.idle_recovery_at(id, g))
            .map(|(&id, _)| id)
            .collect();
        for g in due {
            // The publisher is idle: re-send the latest frame as the recovery keyframe.
            self.resend_latest(g, false, now);
        }
        if let (Some(still_after), Some(at), Some(frame)) =
            (self.config.still_after, self.last_publish_at, self.latest)
        {
            if now.saturating_sub(at) >= still_after {
                let ids: Vec<GroupId> = self.groups.keys().copied().collect();
                for g in ids {
                    if self.groups[&g].resent != Some(frame.id) {
                        self.resend_latest(g, true, now);
                    }
                }
            }
        }
        if let (Some((size, at)), ResizePolicy::MatchClient { debounce, .. }) =
            (self.pending_target, self.config.resize)
        {
            if now.saturating_sub(at) >= debounce {
                self.pending_target = None;
                self.target = Some(size);
            }
        }
    }

    /// Encode the latest frame again as a keyframe for the group's ready viewers: a still
    /// (PNG for image groups) or a recovery keyframe. Skipped while the group is busy, before
    /// the frame was first encoded, or when nobody is ready (tried again on the next timeout).
    fn resend_latest(&mut self, group: GroupId, still: bool, now: Duration) {
        let Some(frame) = self.latest else { return };
        let Some(g) = self.groups.get(&group) else {
            return;
        };
        if g.busy.is_some() || g.last_submitted != Some(frame.id) {
            return;
        }
        let recipients: Vec<ViewerId> = self
            .members(group)
            .filter(|(_, v)| v.ready())
            .map(|(id, _)| id)
            .collect();
        if recipients.is_empty() {
            return;
        }
        self.groups.get_mut(&group).expect("checked").resent = Some(frame.id);
        let plan = if still {
            Recovery::Keyframe
        } else {
            match self.recovery_plan(group, &recipients, now) {
                Recovery::None => Recovery::Keyframe,
                plan => plan,
            }
        };
        self.start_job(group, frame, recipients, plan, still, now);
    }

    /// Whether the encoder backend makes recovery P-frames ([`SessionConfig::recovery`]);
    /// the shell says so again when [`Self::reconfigure`] changes the backend.
    pub fn set_recovery(&mut self, on: bool) {
        self.config.recovery = on;
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
        self.config.encoder = Arc::new(encoder);
        self.config.transports = transports;
        for id in std::mem::take(&mut self.groups).into_keys() {
            self.actions.push_back(Action::CloseGroup(id));
        }
        let ids: Vec<ViewerId> = self.viewers.keys().copied().collect();
        for id in ids {
            let kind = select_transport(
                &self.viewers[&id].supported,
                transports,
                self.config.video_available,
                self.config.image_format,
            );
            let Some(kind) = kind else {
                self.viewers.remove(&id);
                self.actions.push_back(Action::Close {
                    viewer: id,
                    code: close::NO_TRANSPORT,
                    reason: close::NO_TRANSPORT_REASON.into(),
                });
                continue;
            };
            let group = self.group_for(kind);
            let cc = self.controller(kind, now);
            let v = self.viewer_mut(id);
            v.group = group;
            v.cc = cc;
            v.tier_pressure = None;
            v.forget_references();
            let text = self.config_text(kind, None);
            self.actions
                .push_back(Action::SendText { viewer: id, text });
            // As pdum.rfb does after each quality change: tell video viewers the new target
            // bitrate and frame rate.
            if quality_changed && kind == GroupKind::Video {
                let text = set_quality_text(&self.config.encoder);
                self.actions
                    .push_back(Action::SendText { viewer: id, text });
            }
        }
        let groups: Vec<GroupId> = self.groups.keys().copied().collect();
        for g in groups {
            self.schedule(g, now, Trigger::Other);
        }
    }

    /// Counters for the metrics endpoint.
    pub fn metrics(&mut self, now: Duration) -> StreamMetrics {
        let kinds: BTreeMap<GroupId, GroupKind> =
            self.groups.iter().map(|(&id, g)| (id, g.kind)).collect();
        let adaptive = self.config.adaptive.is_some();
        let viewers = self
            .viewers
            .iter_mut()
            .map(|(&id, v)| {
                let (fps_sent, fps_acked, bitrate_bps) = v.rates(now);
                let s = &v.stats;
                ViewerMetrics {
                    id,
                    transport: kinds.get(&v.group).copied().unwrap_or(GroupKind::Video),
                    frames_sent: s.frames_sent,
                    frames_acked: s.frames_acked,
                    keyframes_sent: s.keyframes_sent,
                    frames_dropped: s.dropped,
                    recoveries: s.recoveries,
                    bytes_sent: s.bytes_sent,
                    inflight: v.inflight.len(),
                    rtt_ms: s.rtt_ms.unwrap_or(0.0),
                    fps_sent,
                    fps_acked,
                    bitrate_bps,
                    decode_queue_size: s.decode_queue_size,
                    events_dropped: s.events_dropped,
                    decoder_resets: s.decoder_resets,
                    backstops: s.backstops,
                    keyframe_requests: s.keyframe_requests,
                    group: v.group,
                    tier_moves: s.tier_moves,
                    recovered_without_keyframe: s.recovered_without_keyframe,
                    congestion: adaptive.then(|| v.cc.snapshot(now)),
                }
            })
            .collect();
        let groups = self
            .groups
            .iter()
            .map(|(&id, g)| GroupMetrics {
                id,
                kind: g.kind,
                viewers: self.members(id).count(),
                frames_encoded: g.frames_encoded,
                keyframes_encoded: g.keyframes_encoded,
                encode_ms: g.encode_ms.unwrap_or(0.0),
                encode_ms_p50: g.encode_ms_recent.quantile(0.5),
                encode_ms_p95: g.encode_ms_recent.quantile(0.95),
                codec: g.codec.clone(),
                failures: g.failures,
                recovery_frames: g.recovery_frames,
                tier: self.tier(id),
                target_bitrate: g.settings.bitrate,
                target_fps: g.settings.fps,
            })
            .collect();
        let (width, height) = self.frame_size();
        let published = self.latest.map_or(0, |f| f.id);
        let encoded = self.groups.values().map(|g| g.frames_encoded).max();
        StreamMetrics {
            frames_published: published,
            frames_not_encoded: published.saturating_sub(encoded.unwrap_or(0)),
            width,
            height,
            encoder: self.config.encoder.clone(),
            transports: self.config.transports,
            groups,
            viewers,
        }
    }
}

/// pdum.rfb's `set_quality` for an encoder running at `s`.
fn set_quality_text(s: &EncoderSettings) -> String {
    protocol::to_wire_string(&ServerMessage::SetQuality {
        bitrate: s.bitrate as u64,
        fps: s.fps,
    })
}
