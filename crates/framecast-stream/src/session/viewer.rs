//! One viewer's delivery state inside [`super::StreamCore`]: its in-flight window, whether it
//! can decode the next delta, and its counters.

use super::congestion::Controller;
use super::ids::GroupId;
use super::window::{ema, RateWindow, WINDOW};
use std::collections::VecDeque;
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub(super) struct Inflight {
    pub seq: u64,
    /// The published frame it carries (the encoder's token for it).
    pub frame: u64,
    pub sent_at: Duration,
    pub bytes: usize,
    pub keyframe: bool,
    /// Sent while a keyframe was in flight: its delay is the keyframe's, not the link's.
    pub behind_keyframe: bool,
}

#[derive(Debug, Default, Clone)]
pub(super) struct ViewerStats {
    pub frames_sent: u64,
    pub frames_acked: u64,
    pub keyframes_sent: u64,
    pub dropped: u64,
    pub recoveries: u64,
    pub bytes_sent: u64,
    pub rtt_ms: Option<f64>,
    /// EMA of acknowledged payload sizes (the size `rtt_ms` goes with).
    pub acked_bytes: Option<f64>,
    pub decode_queue_size: u32,
    pub sent: RateWindow,
    pub acked: RateWindow,
    pub events_dropped: u64,
    pub decoder_resets: u64,
    pub backstops: u64,
    pub keyframe_requests: u64,
    /// Moves between encoder tiers.
    pub tier_moves: u64,
    /// Times it was brought back in sync by a recovery P-frame instead of a keyframe.
    pub recovered_without_keyframe: u64,
}

/// A token bucket: `rate` tokens a second, a burst of one second's worth.
#[derive(Debug, Clone)]
pub(super) struct TokenBucket {
    tokens: f64,
    refilled_at: Duration,
}

impl TokenBucket {
    pub fn full(rate: u32, now: Duration) -> Self {
        TokenBucket {
            tokens: rate as f64,
            refilled_at: now,
        }
    }

    /// Take one token if there is one.
    pub fn take(&mut self, rate: u32, now: Duration) -> bool {
        let rate = rate as f64;
        let elapsed = now.saturating_sub(self.refilled_at).as_secs_f64();
        self.refilled_at = now;
        self.tokens = (self.tokens + elapsed * rate).min(rate);
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

#[derive(Debug)]
pub(super) struct Viewer {
    pub supported: Vec<String>,
    pub group: GroupId,
    pub next_seq: u64,
    pub inflight: VecDeque<Inflight>,
    /// It cannot decode the group's next delta: it has not had its first keyframe yet, missed
    /// a frame the group encoded, asked for a keyframe, or reset its decoder.
    pub needs_keyframe: bool,
    /// The newest frame of its group's bitstream it has displayed (acked) since its decoder
    /// last started from a keyframe; `None` after a join, a tier move, a decoder reset or a
    /// keyframe request (its decoder's references are then unknown). A recovery P-frame can
    /// bring it back only from a reference no later than this.
    pub displayed: Option<u64>,
    /// A recovery P-frame was asked for it and the encoder could not make one: it takes the
    /// keyframe path until it is back in sync.
    pub recovery_refused: bool,
    /// Acks of payloads before this `seq` say nothing about its decoder's references (they
    /// were sent before it forgot them, or in another group's bitstream).
    pub references_from_seq: u64,
    pub joined_at: Duration,
    pub last_stats: Option<Duration>,
    pub events: TokenBucket,
    /// The newest frame id counted in `stats.dropped` (a frame is counted once however many
    /// times it is passed over).
    pub last_dropped: Option<u64>,
    pub stats: ViewerStats,
    /// Congestion control: this viewer's bitrate, frame rate and window.
    pub cc: Controller,
    /// Since when its link has sustained much less than its group's rate (a move to a
    /// lower tier once that lasts), or at least a higher group's rate (a move up).
    pub tier_pressure: Option<(Duration, GroupId)>,
}

impl Viewer {
    pub fn new(
        supported: Vec<String>,
        group: GroupId,
        events_per_second: u32,
        cc: Controller,
        now: Duration,
    ) -> Self {
        Viewer {
            supported,
            group,
            next_seq: 0,
            inflight: VecDeque::new(),
            needs_keyframe: true,
            displayed: None,
            recovery_refused: false,
            references_from_seq: 0,
            joined_at: now,
            last_stats: None,
            events: TokenBucket::full(events_per_second, now),
            last_dropped: None,
            stats: ViewerStats::default(),
            cc,
            tier_pressure: None,
        }
    }

    /// Fewer frames unacknowledged than its window (the configured `max_inflight`, or what
    /// congestion control chose).
    pub fn ready(&self) -> bool {
        self.inflight.len() < self.cc.targets().window.max(1)
    }

    /// The group encoded a frame: this viewer took it or (its window full) skipped it.
    pub fn offered(&mut self, taken: bool, now: Duration) {
        let behind_keyframe = self.inflight.iter().any(|i| i.keyframe);
        self.cc.on_offer(taken, behind_keyframe, now);
    }

    /// A `TCP_INFO` sample of its connection; ignored while a keyframe is in flight (the
    /// queue then is the keyframe's).
    pub fn transport(&mut self, sample: super::congestion::TransportSample, now: Duration) {
        if !self.inflight.iter().any(|i| i.keyframe) {
            self.cc.on_transport(sample, now);
        }
    }

    /// It needs recovery and its decoder holds references a recovery P-frame can use.
    pub fn recoverable(&self) -> bool {
        self.displayed.is_some() && !self.recovery_refused
    }

    /// Its decoder's references are unknown (it reset, asked for a keyframe or changed
    /// bitstream): only a keyframe brings it back.
    pub fn forget_references(&mut self) {
        self.displayed = None;
        self.references_from_seq = self.next_seq;
        self.needs_keyframe = true;
    }

    /// The viewer did not get published frame `frame`.
    pub fn count_drop(&mut self, frame: u64) {
        if self.last_dropped != Some(frame) {
            self.last_dropped = Some(frame);
            self.stats.dropped += 1;
        }
    }

    /// The viewer missed a frame its group encoded: it needs a keyframe to decode again.
    pub fn lose_sync(&mut self) {
        if !self.needs_keyframe {
            self.needs_keyframe = true;
            self.stats.recoveries += 1;
        }
    }

    /// Record a payload of `bytes` carrying published frame `frame` sent now; returns its
    /// sequence number.
    pub fn sent(&mut self, frame: u64, bytes: usize, keyframe: bool, now: Duration) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        let behind_keyframe = self.inflight.iter().any(|i| i.keyframe);
        self.inflight.push_back(Inflight {
            seq,
            frame,
            sent_at: now,
            bytes,
            keyframe,
            behind_keyframe,
        });
        self.needs_keyframe = false;
        self.recovery_refused = false;
        self.stats.frames_sent += 1;
        self.stats.keyframes_sent += keyframe as u64;
        self.stats.bytes_sent += bytes as u64;
        self.stats.sent.push(now, bytes);
        seq
    }

    /// A displayed-ack for `seq`: retires it and everything older (display is in order).
    /// Returns whether `seq` was in flight.
    pub fn acked(&mut self, seq: u64, decode_queue: u32, now: Duration) -> bool {
        self.stats.decode_queue_size = decode_queue;
        let Some(pos) = self.inflight.iter().position(|i| i.seq == seq) else {
            return false;
        };
        let Inflight {
            sent_at,
            frame,
            bytes,
            keyframe,
            behind_keyframe,
            ..
        } = self.inflight[pos];
        if seq >= self.references_from_seq {
            self.displayed = Some(frame);
        }
        let retired: usize = self.inflight.drain(..=pos).map(|i| i.bytes).sum();
        let rtt = now.saturating_sub(sent_at).as_secs_f64() * 1e3;
        self.cc
            .on_ack(rtt, retired, keyframe || behind_keyframe, decode_queue, now);
        self.stats.rtt_ms = Some(ema(self.stats.rtt_ms, rtt));
        self.stats.acked_bytes = Some(ema(self.stats.acked_bytes, bytes as f64));
        self.stats.frames_acked += 1;
        self.stats.acked.push(now, 0);
        true
    }

    /// When the ack of the oldest frame in flight is due: its send time plus the usual round
    /// trip, scaled by how much larger it is than the usual frame (on a slow link a keyframe
    /// takes several deltas' time), at most `cap`. `None` with nothing in flight.
    pub fn ack_due(&self, cap: Duration) -> Option<Duration> {
        let oldest = self.inflight.front()?;
        let rtt = self.stats.rtt_ms.unwrap_or(0.0) / 1e3;
        let usual = self
            .stats
            .acked_bytes
            .unwrap_or(oldest.bytes as f64)
            .max(1.0);
        let scale = (oldest.bytes as f64 / usual).max(1.0);
        let expected = Duration::from_secs_f64((rtt * scale).min(cap.as_secs_f64()));
        Some(oldest.sent_at + expected)
    }

    /// `(fps sent, fps acked, bits/s sent)` over the last second.
    pub fn rates(&mut self, now: Duration) -> (f64, f64, u64) {
        let span = now.saturating_sub(self.joined_at).min(WINDOW);
        let (fps_sent, bps) = self.stats.sent.rates(now, span);
        let (fps_acked, _) = self.stats.acked.rates(now, span);
        (fps_sent, fps_acked, bps)
    }
}
