//! An encoder group: the viewers that share one encoder and one bitstream, and the one job
//! that may be running for them.

use super::config::{EncoderSettings, GroupKind};
use super::ids::{FrameInfo, FrameTags, ViewerId};
use super::window::{ema, RateWindow, SampleRing};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug)]
pub(super) struct Job {
    pub id: u64,
    pub frame: FrameInfo,
    pub tags: FrameTags,
    pub recipients: Vec<ViewerId>,
    /// A recovery P-frame was asked for viewers that displayed up to this frame.
    pub recover_for: Option<u64>,
}

#[derive(Debug)]
pub(super) struct Group {
    pub kind: GroupKind,
    /// What this group's encoder runs at: the stream's settings, or (video, with congestion
    /// control) the bitrate and frame rate its slowest member sustains.
    pub settings: Arc<EncoderSettings>,
    /// When its last job started (the frame-rate lever spaces jobs).
    pub last_job_at: Option<Duration>,
    pub job_counter: u64,
    pub busy: Option<Job>,
    /// Last frame id submitted for encoding.
    pub last_submitted: Option<u64>,
    /// The frame the last still (or recovery re-send) was made of.
    pub resent: Option<u64>,
    /// The next job must be an IDR whatever the viewers need (a join, a rebuild, a failure).
    pub force_keyframe: bool,
    pub size: Option<(u32, u32)>,
    pub codec: Option<Arc<str>>,
    pub frames_encoded: u64,
    pub keyframes_encoded: u64,
    pub last_keyframe_at: Option<Duration>,
    pub encode_ms: Option<f64>,
    pub encode_ms_recent: SampleRing,
    pub failures: u64,
    /// Recovery P-frames encoded (viewers brought back without a keyframe).
    pub recovery_frames: u64,
    /// Encoded bytes over the last second (what its frames actually take).
    pub sent: RateWindow,
}

impl Group {
    pub fn new(kind: GroupKind, settings: Arc<EncoderSettings>) -> Self {
        Group {
            kind,
            settings,
            last_job_at: None,
            job_counter: 0,
            busy: None,
            last_submitted: None,
            resent: None,
            force_keyframe: true,
            size: None,
            codec: None,
            frames_encoded: 0,
            keyframes_encoded: 0,
            last_keyframe_at: None,
            encode_ms: None,
            encode_ms_recent: SampleRing::default(),
            failures: 0,
            recovery_frames: 0,
            sent: RateWindow::default(),
        }
    }

    /// The earliest a job may start when the frame-rate lever has lowered this group's rate
    /// below `full_fps` (10% early is allowed, so a publisher at exactly that rate is never
    /// held back by jitter). `None`: no limit now.
    pub fn next_job_at(&self, full_fps: f64) -> Option<Duration> {
        let fps = self.settings.fps;
        if fps <= 0.0 || fps >= full_fps - 1e-6 {
            return None;
        }
        Some(self.last_job_at? + Duration::from_secs_f64(0.9 / fps))
    }

    /// Start a job: returns its number.
    pub fn start(
        &mut self,
        frame: FrameInfo,
        tags: FrameTags,
        recipients: Vec<ViewerId>,
        recover_for: Option<u64>,
        now: Duration,
    ) -> u64 {
        self.last_job_at = Some(now);
        self.job_counter += 1;
        self.busy = Some(Job {
            id: self.job_counter,
            frame,
            tags,
            recipients,
            recover_for,
        });
        self.job_counter
    }

    /// When a keyframe forced to recover one viewer may go out next (see
    /// [`super::SessionConfig::recovery_interval`]).
    pub fn recovery_due_at(&self, interval: Duration) -> Duration {
        self.last_keyframe_at
            .map_or(Duration::ZERO, |t| t.saturating_add(interval))
    }

    /// Account for one finished encode of `bytes`.
    pub fn encoded(&mut self, keyframe: bool, bytes: usize, encode_ms: f64, now: Duration) {
        self.frames_encoded += 1;
        self.sent.push(now, bytes);
        self.encode_ms = Some(ema(self.encode_ms, encode_ms));
        self.encode_ms_recent.push(encode_ms);
        if keyframe {
            self.keyframes_encoded += 1;
            self.last_keyframe_at = Some(now);
        }
    }
}
