//! Congestion control for one viewer: sans-IO, fed displayed-acks, skipped frames, the
//! viewer's decode queue and (when the shell can read them) the kernel's view of the TCP
//! connection; it keeps the bitrate, frame rate and in-flight window that this viewer's link
//! and decoder sustain without building a queue.
//!
//! # Signals
//! * **Skips**: the share of the group's encodes in the last second that this viewer could
//!   not take because its window was full. The direct sign that the link delivers fewer
//!   frames than the stream offers. Not counted while a keyframe is in flight (that is the
//!   keyframe's cost, not the rate's), nor while the window is below what the path needs
//!   (then skips measure the window, not the link).
//! * **Frame queueing delay**: send → displayed-ack time of delta frames minus the least seen
//!   in the last 10 s (EMA).
//! * **TCP queueing delay**: `tcpi_rtt - tcpi_min_rtt` and the bytes waiting in the socket,
//!   from the shell ([`TransportSample`]): a bottleneck queue shows here first.
//! * **Delivery rate**: payload bytes displayed per second; on a congested link it measures
//!   the link, and a decrease goes straight to 90% of it.
//! * **Decode queue** above 3: the viewer's decoder, not the link, is behind.
//!
//! # Levers, in order (with hysteresis)
//! Link congestion lowers the bitrate (×0.8, or to 90% of the delivery rate when the link
//! delivers under half of it) down to its floor, then the frame rate (steps of [`FPS_STEPS`]), then the in-flight
//! window down to one frame. A slow decoder lowers the frame rate first. Changes are spaced
//! by a cooldown of 1.5 round trips (at least 300 ms), so each is seen before the next. After
//! [`AdaptiveConfig::hold`] without congestion the controller probes back up: window, frame
//! rate and bitrate (×[`AdaptiveConfig::probe_step`] each [`AdaptiveConfig::probe_interval`],
//! ×1.3 while under half the full rate, ×1.04 around the rate that last congested the link).
//! The window also follows the path: it covers the base round trip (`ceil(min_rtt × fps) +
//! 1`, up to [`AdaptiveConfig::max_window`]), so a long link is not window-limited.

use super::window::{ema, RateWindow};
pub use crate::congestion_report::{CcSnapshot, CcState};
use std::collections::VecDeque;
use std::time::Duration;

/// Frame rates the controller steps through, as fractions of the configured rate.
pub const FPS_STEPS: [f64; 4] = [1.0, 2.0 / 3.0, 0.5, 1.0 / 3.0];

/// Tuning of the adaptive controller. The defaults are what `framecast serve` uses.
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptiveConfig {
    /// Lowest bitrate, as a fraction of the configured one.
    pub min_bitrate_fraction: f64,
    /// Largest in-flight window the controller opens on a long path.
    pub max_window: usize,
    /// Queueing delay (frame or TCP) above which the link counts as congested.
    pub congested_ms: f64,
    /// Queueing delay below which the link counts as healthy.
    pub healthy_ms: f64,
    /// Share of encodes skipped (window full) above which the link is congested.
    pub congested_skips: f64,
    /// Time without congestion before probing up.
    pub hold: Duration,
    /// Multiplier of each upward bitrate step.
    pub probe_step: f64,
    /// Time between upward steps.
    pub probe_interval: Duration,
    /// Multiplier of a downward bitrate step (when the delivery rate is not lower).
    pub decrease: f64,
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        AdaptiveConfig {
            min_bitrate_fraction: 0.1,
            max_window: 6,
            congested_ms: 30.0,
            healthy_ms: 10.0,
            congested_skips: 0.1,
            hold: Duration::from_secs(1),
            probe_step: 1.15,
            probe_interval: Duration::from_millis(500),
            decrease: 0.8,
        }
    }
}

/// What the shell reads from the kernel for one viewer's TCP connection (Linux `TCP_INFO`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TransportSample {
    /// Smoothed round trip (`tcpi_rtt`), ms.
    pub rtt_ms: f64,
    /// Least round trip seen on the connection (`tcpi_min_rtt`), ms.
    pub min_rtt_ms: f64,
    /// Bytes written by the server that TCP has not sent yet (`tcpi_notsent_bytes`).
    pub unsent_bytes: u64,
}

/// Targets for one viewer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Targets {
    /// Bits per second its link sustains.
    pub bitrate: u32,
    /// Frames per second.
    pub fps: f64,
    /// Frames it may have in flight.
    pub window: usize,
}

/// Why the link is congested (which lever moves first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pressure {
    None,
    Link,
    Decoder,
}

const MIN_RTT_WINDOW: Duration = Duration::from_secs(10);
/// Bound on the min-RTT window's samples (about 10 s at 60 fps).
const MIN_RTT_SAMPLES: usize = 640;
const TRANSPORT_FRESH: Duration = Duration::from_secs(1);
/// How long the rate that last congested the link slows probing near it.
const CEILING_MEMORY: Duration = Duration::from_secs(10);
/// How long a queueing delay over the threshold must last to count as congestion.
const PERSIST: Duration = Duration::from_millis(150);

/// One viewer's controller.
#[derive(Debug, Clone)]
pub struct Controller {
    cfg: AdaptiveConfig,
    enabled: bool,
    max: Targets,
    min_bitrate: u32,
    bitrate: f64,
    fps_step: usize,
    /// Cap on the window below the path's need (the last lever).
    window_cap: usize,
    window: usize,
    /// Monotone deque of (time, rtt ms): its front is the window's least.
    min_rtt: VecDeque<(Duration, f64)>,
    queue_ms: Option<f64>,
    srtt_ms: Option<f64>,
    transport: Option<(Duration, TransportSample)>,
    decode_queue: u32,
    delivered: RateWindow,
    offered: RateWindow,
    skipped: RateWindow,
    started: Duration,
    last_decrease: Option<Duration>,
    last_change: Option<Duration>,
    /// The rate at which the link last became congested: probing slows near it.
    ceiling: Option<f64>,
    /// Since when the queueing delay has been over the threshold.
    delayed_since: Option<Duration>,
    decreases: u64,
    increases: u64,
    /// A rate the viewer's own transport reports it can carry (a WebRTC SFU's bandwidth
    /// estimate for a WHIP sink): the target never exceeds it.
    external_cap: Option<u32>,
}

impl Controller {
    /// A controller starting at `max` (the configured quality); `enabled == false` keeps it
    /// there whatever happens.
    pub fn new(cfg: AdaptiveConfig, enabled: bool, max: Targets, now: Duration) -> Self {
        let min_bitrate = ((max.bitrate as f64 * cfg.min_bitrate_fraction) as u32)
            .clamp(100_000.min(max.bitrate), max.bitrate);
        Controller {
            window_cap: cfg.max_window.max(max.window),
            cfg,
            enabled,
            min_bitrate,
            bitrate: max.bitrate as f64,
            fps_step: 0,
            window: max.window.max(1),
            max,
            min_rtt: VecDeque::new(),
            queue_ms: None,
            srtt_ms: None,
            transport: None,
            decode_queue: 0,
            delivered: RateWindow::default(),
            offered: RateWindow::default(),
            skipped: RateWindow::default(),
            started: now,
            last_decrease: None,
            last_change: None,
            ceiling: None,
            delayed_since: None,
            decreases: 0,
            increases: 0,
            external_cap: None,
        }
    }

    /// Cap the bitrate target at a rate the viewer's transport estimates for itself (`None`
    /// lifts it). It applies only while congestion control is on.
    pub fn set_external_cap(&mut self, bps: Option<u32>) {
        self.external_cap = bps;
    }

    /// The targets in force.
    pub fn targets(&self) -> Targets {
        if !self.enabled {
            return self.max;
        }
        let own = self.bitrate.round() as u32;
        Targets {
            bitrate: self.external_cap.map_or(own, |cap| own.min(cap)),
            fps: self.max.fps * FPS_STEPS[self.fps_step],
            window: self.window,
        }
    }

    /// The group encoded a frame: this viewer took it (`taken`) or its window was full
    /// (`behind_keyframe`: with a keyframe among the frames in flight).
    pub fn on_offer(&mut self, taken: bool, behind_keyframe: bool, now: Duration) {
        if !taken && behind_keyframe {
            return;
        }
        self.offered.push(now, 0);
        if !taken {
            self.skipped.push(now, 0);
        }
        self.update(now);
    }

    /// A displayed-ack: `rtt_ms` send → ack of a frame (and older frames it retired,
    /// `retired_bytes` in all). The delay of a keyframe, or of a frame sent behind one
    /// (`keyframe`), does not count as queueing.
    pub fn on_ack(
        &mut self,
        rtt_ms: f64,
        retired_bytes: usize,
        keyframe: bool,
        decode_queue: u32,
        now: Duration,
    ) {
        self.delivered.push(now, retired_bytes);
        self.decode_queue = decode_queue;
        self.srtt_ms = Some(ema(self.srtt_ms, rtt_ms));
        if !keyframe {
            while self.min_rtt.back().is_some_and(|&(_, r)| r >= rtt_ms) {
                self.min_rtt.pop_back();
            }
            self.min_rtt.push_back((now, rtt_ms));
            while self.min_rtt.len() > MIN_RTT_SAMPLES
                || self
                    .min_rtt
                    .front()
                    .is_some_and(|&(t, _)| now.saturating_sub(t) > MIN_RTT_WINDOW)
            {
                self.min_rtt.pop_front();
            }
            let base = self.min_rtt.front().map_or(rtt_ms, |&(_, r)| r);
            self.queue_ms = Some(ema(self.queue_ms, (rtt_ms - base).max(0.0)));
        }
        self.update(now);
    }

    /// The kernel's view of the connection (read by the shell after a send).
    pub fn on_transport(&mut self, sample: TransportSample, now: Duration) {
        self.transport = Some((now, sample));
        self.update(now);
    }

    /// A frame was lost to this viewer (no ack before the backstop, or its queue was full):
    /// halve the bitrate at once.
    pub fn on_loss(&mut self, now: Duration) {
        if !self.enabled {
            return;
        }
        let floor = self.min_bitrate as f64;
        if self.bitrate > floor {
            self.bitrate = (self.bitrate * 0.5).max(floor);
        } else {
            self.fps_step = (self.fps_step + 1).min(FPS_STEPS.len() - 1);
        }
        self.decreased(now);
    }

    fn delivery_bps(&mut self, now: Duration) -> u64 {
        let span = now.saturating_sub(self.started);
        self.delivered.rates(now, span).1
    }

    fn skip_share(&mut self, now: Duration) -> f64 {
        let span = now.saturating_sub(self.started);
        let (offered, _) = self.offered.rates(now, span);
        let (skipped, _) = self.skipped.rates(now, span);
        if offered < 3.0 {
            0.0
        } else {
            skipped / offered
        }
    }

    fn tcp_queue(&self, now: Duration) -> Option<(f64, u64)> {
        let (at, s) = self.transport?;
        (now.saturating_sub(at) <= TRANSPORT_FRESH)
            .then_some(((s.rtt_ms - s.min_rtt_ms).max(0.0), s.unsent_bytes))
    }

    fn pressure(&mut self, now: Duration) -> (Pressure, bool) {
        // Skips say the link is slow only while it delivers something: a viewer whose acks
        // stopped altogether is stalled (the in-flight backstop deals with that).
        let skips = if self.window < self.path_window() || self.delivery_bps(now) == 0 {
            0.0
        } else {
            self.skip_share(now)
        };
        let queue = self.queue_ms.unwrap_or(0.0);
        let delivery = self.delivery_bps(now).max(1) as f64;
        let (tcp_ms, unsent_ms) = self.tcp_queue(now).map_or((0.0, 0.0), |(q, unsent)| {
            (q, unsent as f64 * 8e3 / delivery)
        });
        let delay = queue.max(tcp_ms).max(unsent_ms);
        // A delay counts once it persists (a keyframe's queue or a jitter spike passes).
        let delayed = if delay > self.cfg.congested_ms {
            let since = *self.delayed_since.get_or_insert(now);
            now.saturating_sub(since) >= PERSIST
        } else {
            self.delayed_since = None;
            false
        };
        let pressure = if skips > self.cfg.congested_skips || delayed {
            Pressure::Link
        } else if self.decode_queue > 3 {
            Pressure::Decoder
        } else {
            Pressure::None
        };
        let healthy = pressure == Pressure::None
            && delay < self.cfg.healthy_ms
            && skips <= self.cfg.congested_skips / 2.0
            && self.decode_queue <= 1;
        (pressure, healthy)
    }

    /// Least send → ack time in the window, ms.
    fn base_rtt(&self) -> Option<f64> {
        self.min_rtt.front().map(|&(_, r)| r)
    }

    fn cooldown(&self) -> Duration {
        let rtt = self.srtt_ms.unwrap_or(0.0) * 1.5 / 1e3;
        Duration::from_secs_f64(rtt.max(0.3))
    }

    fn decreased(&mut self, now: Duration) {
        // The next step needs fresh evidence: skips and delays seen at the old rate go.
        self.offered = RateWindow::default();
        self.skipped = RateWindow::default();
        self.delayed_since = None;
        self.decreases += 1;
        self.last_decrease = Some(now);
        self.last_change = Some(now);
        self.refresh_window();
    }

    /// The window the path needs: the base round trip's worth of frames plus one (at least
    /// the configured window, at most [`AdaptiveConfig::max_window`]).
    fn path_window(&self) -> usize {
        let fps = self.max.fps * FPS_STEPS[self.fps_step];
        let need = self
            .base_rtt()
            .map_or(self.max.window, |rtt| (rtt * fps / 1e3).ceil() as usize + 1);
        need.max(self.max.window)
            .min(self.cfg.max_window.max(self.max.window))
    }

    fn refresh_window(&mut self) {
        self.window = self.path_window().min(self.window_cap).max(1);
    }

    /// Re-evaluate: at most one step per cooldown (down) or probe interval (up).
    pub fn update(&mut self, now: Duration) {
        if !self.enabled {
            return;
        }
        self.refresh_window();
        let (pressure, healthy) = self.pressure(now);
        let since_change = self.last_change.map(|t| now.saturating_sub(t));
        match pressure {
            Pressure::Link | Pressure::Decoder => {
                if since_change.is_some_and(|d| d < self.cooldown()) {
                    return;
                }
                let floor = self.min_bitrate as f64;
                let last_fps = FPS_STEPS.len() - 1;
                if pressure == Pressure::Decoder {
                    // Fewer pictures help a slow decoder; fewer bits do not.
                    if self.fps_step == last_fps {
                        return;
                    }
                    self.fps_step += 1;
                } else if self.bitrate > floor {
                    // Where the link gave out last: probing goes slowly around it.
                    self.ceiling = Some(self.bitrate);
                    let mut next = self.bitrate * self.cfg.decrease;
                    // While frames are skipped the window is full, so the delivery rate
                    // measures the link (not an encoder that had little to say): go there.
                    let delivery = self.delivery_bps(now) as f64;
                    let measured = now.saturating_sub(self.started) >= Duration::from_secs(1);
                    // A link that delivers under half the rate (a sudden drop) is followed
                    // at once rather than in several steps.
                    let skipping = self.skip_share(now) > self.cfg.congested_skips;
                    if measured && skipping && delivery > 0.0 && delivery < self.bitrate * 0.5 {
                        next = delivery * 0.9;
                    }
                    self.bitrate = next.max(floor);
                } else if self.fps_step < last_fps {
                    self.fps_step += 1;
                } else if self.window_cap > 1 {
                    self.window_cap = self.window.min(self.window_cap) - 1;
                } else {
                    return;
                }
                self.decreased(now);
            }
            Pressure::None if healthy => {
                let held = self
                    .last_decrease
                    .is_none_or(|t| now.saturating_sub(t) >= self.cfg.hold);
                let spaced = since_change.is_none_or(|d| d >= self.cfg.probe_interval);
                if !held || !spaced || self.at_full() {
                    return;
                }
                self.window_cap =
                    (self.window_cap + 1).min(self.cfg.max_window.max(self.max.window));
                self.fps_step = self.fps_step.saturating_sub(1);
                // Far below full quality (after a loss burst or a long drop) climb faster;
                // near the rate that last congested the link, slowly (it is forgotten after
                // 10 s without congestion: the link may have grown).
                if self
                    .last_decrease
                    .is_some_and(|t| now.saturating_sub(t) > CEILING_MEMORY)
                {
                    self.ceiling = None;
                }
                let fast = if self.bitrate < self.max.bitrate as f64 * 0.5 {
                    self.cfg.probe_step.max(1.3)
                } else {
                    self.cfg.probe_step
                };
                let near = self
                    .ceiling
                    .is_some_and(|c| self.bitrate >= c * 0.9 && self.bitrate <= c * 1.05);
                let step = if near { 1.04 } else { fast };
                self.bitrate = (self.bitrate * step).min(self.max.bitrate as f64);
                self.increases += 1;
                self.last_change = Some(now);
                self.refresh_window();
            }
            Pressure::None => {}
        }
    }

    fn at_full(&self) -> bool {
        self.fps_step == 0
            && self.bitrate >= self.max.bitrate as f64
            && self.window_cap >= self.cfg.max_window.max(self.max.window)
    }

    /// The phase now.
    pub fn state(&self, now: Duration) -> CcState {
        if !self.enabled {
            return CcState::Off;
        }
        if self.at_full() {
            return CcState::Full;
        }
        match self.last_decrease {
            Some(t) if now.saturating_sub(t) < self.cooldown() => CcState::BackingOff,
            Some(t) if now.saturating_sub(t) < self.cfg.hold => CcState::Holding,
            _ => CcState::Probing,
        }
    }

    /// For stats and metrics.
    pub fn snapshot(&mut self, now: Duration) -> CcSnapshot {
        let t = self.targets();
        let round1 = |x: f64| (x * 10.0).round() / 10.0;
        CcSnapshot {
            state: self.state(now),
            target_bitrate: t.bitrate,
            target_fps: round1(t.fps),
            window: t.window,
            delivery_bps: self.delivery_bps(now),
            queue_ms: round1(self.queue_ms.unwrap_or(0.0)),
            tcp_queue_ms: round1(self.tcp_queue(now).map_or(0.0, |(q, _)| q)),
            min_rtt_ms: round1(self.base_rtt().unwrap_or(0.0)),
            skipped: (self.skip_share(now) * 100.0).round() / 100.0,
            decreases: self.decreases,
            increases: self.increases,
        }
    }
}
