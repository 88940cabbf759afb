//! Congestion control in simulated time: the sans-IO core driven over a modelled bottleneck
//! link (a FIFO at the link rate plus a fixed round trip, as `tc tbf` on a veth gives the
//! real server), with encoded frames as large as the group's bitrate asks. Deterministic:
//! no sockets, no threads, no sleeps.

use bytes::Bytes;
use framecast_stream::protocol::{client, CAP_H264_ANNEXB, CAP_JPEG, CAP_PNG};
use framecast_stream::session::{
    Action, EncodeJob, EncodedFrame, EncoderSettings, FrameInfo, GroupKind, SessionConfig,
    StreamCore, TransportSample, ViewerId,
};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);
const FRAME: Duration = Duration::from_micros(33_333);
const FULL: u32 = 8_000_000;

/// One viewer's path: the bottleneck queue drains at `rate_bps`; a frame is displayed half a
/// round trip after its last byte leaves the queue, and its ack is back half a trip later.
struct Path {
    rate_bps: f64,
    rtt: Duration,
    busy_until: Duration,
    /// (ack arrives at, seq, frame publish time)
    acks: VecDeque<(Duration, u64, Duration)>,
    decode_queue: u32,
    /// Acks are lost (a stalled viewer).
    silent: bool,
}

#[derive(Debug, Clone, Copy)]
struct Shown {
    at: Duration,
    latency: Duration,
    keyframe: bool,
}

struct Sim {
    core: StreamCore,
    now: Duration,
    next_publish: Duration,
    frame: u64,
    published_at: BTreeMap<u64, Duration>,
    encoding: Vec<(Duration, EncodeJob)>,
    paths: BTreeMap<ViewerId, Path>,
    shown: BTreeMap<ViewerId, Vec<Shown>>,
    quality: BTreeMap<ViewerId, Vec<(Duration, u64, f64)>>,
    keyframes: usize,
}

fn video() -> Vec<String> {
    vec![CAP_JPEG.into(), CAP_PNG.into(), CAP_H264_ANNEXB.into()]
}

impl Sim {
    fn new(adaptive: bool) -> Self {
        let defaults = SessionConfig::default();
        let config = SessionConfig {
            encoder: Arc::new(EncoderSettings {
                bitrate: FULL,
                ..(*defaults.encoder).clone()
            }),
            adaptive: if adaptive {
                defaults.adaptive.clone()
            } else {
                None
            },
            ..defaults
        };
        Sim {
            core: StreamCore::new(config),
            now: Duration::ZERO,
            next_publish: Duration::ZERO,
            frame: 0,
            published_at: BTreeMap::new(),
            encoding: Vec::new(),
            paths: BTreeMap::new(),
            shown: BTreeMap::new(),
            quality: BTreeMap::new(),
            keyframes: 0,
        }
    }

    fn add(&mut self, id: ViewerId, mbps: f64, rtt_ms: u64) {
        self.paths.insert(
            id,
            Path {
                rate_bps: mbps * 1e6,
                rtt: Duration::from_millis(rtt_ms),
                busy_until: self.now,
                acks: VecDeque::new(),
                decode_queue: 0,
                silent: false,
            },
        );
        self.core.add_viewer(id, video(), self.now).unwrap();
        self.drain();
    }

    fn path(&mut self, id: ViewerId) -> &mut Path {
        self.paths.get_mut(&id).unwrap()
    }

    /// A frame as large as its group's bitrate and frame rate ask (an IDR four times that).
    fn finish(&mut self, job: EncodeJob) {
        let per_frame = job.settings.bitrate as f64 / job.settings.fps / 8.0;
        let key = job.force_keyframe;
        let bytes = (per_frame * if key { 4.0 } else { 1.0 }) as usize;
        self.keyframes += key as usize;
        self.core.encode_done(
            job.group,
            job.job,
            Ok(EncodedFrame {
                data: Bytes::from(vec![0u8; bytes.max(1)]),
                keyframe: key,
                codec: Some("avc1.42E01F".into()),
                mime: None,
                width: job.frame.width,
                height: job.frame.height,
                encode_ms: 5.0,
                recovery_from: None,
            }),
            self.now,
        );
    }

    fn drain(&mut self) {
        while let Some(a) = self.core.poll_action() {
            match a {
                Action::Encode(job) => self.encoding.push((self.now + 5 * MS, job)),
                Action::SendPayload { viewer, seq, chunk } => {
                    let now = self.now;
                    let ts = Duration::from_micros(match &chunk.header {
                        framecast_stream::protocol::BinaryHeader::VideoChunk(h) => h.timestamp_us,
                        framecast_stream::protocol::BinaryHeader::ImageFrame(h) => h.timestamp_us,
                    });
                    let keyframe = matches!(&chunk.header,
                        framecast_stream::protocol::BinaryHeader::VideoChunk(h) if h.keyframe);
                    let p = self.path(viewer);
                    let start = p.busy_until.max(now);
                    let tx = Duration::from_secs_f64(chunk.payload.len() as f64 * 8.0 / p.rate_bps);
                    p.busy_until = start + tx;
                    let shown_at = p.busy_until + p.rtt / 2;
                    p.acks.push_back((shown_at + p.rtt / 2, seq, ts));
                    // What TCP_INFO would say: the queue this frame waits behind.
                    let sample = TransportSample {
                        rtt_ms: (p.rtt + (start - now)).as_secs_f64() * 1e3,
                        min_rtt_ms: p.rtt.as_secs_f64() * 1e3,
                        unsent_bytes: 0,
                    };
                    let silent = p.silent;
                    if !silent {
                        self.shown.entry(viewer).or_default().push(Shown {
                            at: shown_at,
                            latency: shown_at - ts,
                            keyframe,
                        });
                    }
                    self.core.transport_sample(viewer, sample, now);
                }
                Action::SendText { viewer, text } => {
                    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                    if v["type"] == "set_quality" {
                        self.quality.entry(viewer).or_default().push((
                            self.now,
                            v["bitrate"].as_u64().unwrap(),
                            v["fps"].as_f64().unwrap(),
                        ));
                    }
                }
                _ => {}
            }
        }
    }

    fn step(&mut self) {
        self.now += MS;
        if self.now >= self.next_publish {
            self.next_publish += FRAME;
            self.frame += 1;
            self.published_at.insert(self.frame, self.now);
            self.core.publish(
                FrameInfo {
                    id: self.frame,
                    width: 1920,
                    height: 1080,
                    timestamp_us: self.now.as_micros() as u64,
                },
                self.now,
            );
        }
        let (done, busy): (Vec<_>, Vec<_>) = std::mem::take(&mut self.encoding)
            .into_iter()
            .partition(|(at, _)| *at <= self.now);
        self.encoding = busy;
        for (_, job) in done {
            self.finish(job);
        }
        let ids: Vec<ViewerId> = self.paths.keys().copied().collect();
        for id in ids {
            let now = self.now;
            let p = self.path(id);
            let mut due = Vec::new();
            while p.acks.front().is_some_and(|&(at, _, _)| at <= now) {
                due.push(p.acks.pop_front().unwrap().1);
            }
            let (silent, decode_queue) = (p.silent, p.decode_queue);
            for seq in due.into_iter().filter(|_| !silent) {
                self.core
                    .handle_text(id, &client::ack(seq, decode_queue), now);
                self.drain();
            }
        }
        if self.core.poll_timeout().is_some_and(|t| t <= self.now) {
            self.core.handle_timeout(self.now);
        }
        self.drain();
    }

    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.step();
        }
    }

    /// What `viewer` saw between `from` and `to`: (p95 latency, longest gap between
    /// displayed frames, frames displayed, keyframes displayed).
    fn seen(
        &self,
        viewer: ViewerId,
        from: Duration,
        to: Duration,
    ) -> (Duration, Duration, usize, usize) {
        let shown: Vec<Shown> = self.shown[&viewer]
            .iter()
            .copied()
            .filter(|s| s.at >= from && s.at < to)
            .collect();
        let mut lat: Vec<Duration> = shown.iter().map(|s| s.latency).collect();
        lat.sort();
        let p95 = lat
            .get((lat.len() * 95 / 100).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default();
        let mut gap = Duration::ZERO;
        let mut last = from;
        for s in &shown {
            gap = gap.max(s.at - last);
            last = s.at;
        }
        gap = gap.max(to - last);
        let keys = shown.iter().filter(|s| s.keyframe).count();
        (p95, gap, shown.len(), keys)
    }

    fn group_rate(&mut self, viewer: ViewerId) -> (u32, f64) {
        let m = self.core.metrics(self.now);
        let v = m.viewers.iter().find(|v| v.id == viewer).unwrap();
        let g = m.groups.iter().find(|g| g.id == v.group).unwrap();
        (g.target_bitrate, g.target_fps)
    }

    fn video_groups(&mut self) -> usize {
        let m = self.core.metrics(self.now);
        m.groups
            .iter()
            .filter(|g| g.kind == GroupKind::Video)
            .count()
    }
}

/// The issue's `drop` scenario: 20 Mb/s, cut to 4 Mb/s for 20 s, restored. Once adapted
/// (3 s after the cut) p95 latency stays within 150 ms with no freeze over 500 ms, the rate
/// comes back to full within 10 s of the restore, and no keyframe is spent on any of it.
#[test]
fn a_rate_drop_is_followed_down_and_back_up() {
    let mut s = Sim::new(true);
    s.add(1, 20.0, 20);
    s.run(Duration::from_secs(10));
    assert_eq!(
        s.group_rate(1),
        (FULL, 30.0),
        "full quality on a 20 Mb/s link"
    );
    let (p95, gap, n, _) = s.seen(1, Duration::from_secs(2), s.now);
    assert!(
        p95 <= 80 * MS && gap <= 100 * MS && n >= 230,
        "before: {p95:?} {gap:?} {n}"
    );

    s.path(1).rate_bps = 4e6;
    let cut = s.now;
    s.run(Duration::from_secs(20));
    let (p95, gap, n, keys) = s.seen(1, cut + 3 * 1000 * MS, s.now);
    assert!(p95 <= 150 * MS, "p95 {p95:?} once adapted to 4 Mb/s");
    assert!(gap <= 500 * MS, "a freeze of {gap:?} during the drop");
    assert!(n >= 17 * 20, "{n} frames in 17 s at 4 Mb/s");
    assert_eq!(keys, 0, "no keyframe during the drop");
    let (rate, fps) = s.group_rate(1);
    // Around the link: it probes a few percent above it now and then.
    assert!(
        rate <= 4_200_000 && fps == 30.0,
        "rate {rate}, {fps} fps on a 4 Mb/s link"
    );
    let (_, gap, _, _) = s.seen(1, cut, cut + 3 * 1000 * MS);
    assert!(gap <= 500 * MS, "a freeze of {gap:?} right after the cut");

    s.path(1).rate_bps = 20e6;
    let back = s.now;
    let mut full_at = None;
    while s.now < back + Duration::from_secs(15) {
        s.run(100 * MS);
        if full_at.is_none() && s.group_rate(1).0 == FULL {
            full_at = Some(s.now - back);
        }
    }
    let full_at = full_at.expect("back to full quality");
    assert!(
        full_at <= Duration::from_secs(10),
        "full again after {full_at:?}"
    );
    assert_eq!(s.keyframes, 1, "the join keyframe only");
    // pdum.rfb's viewer learns each change from set_quality.
    let q = &s.quality[&1];
    assert!(q.iter().any(|&(_, b, _)| b < 4_000_000), "{q:?}");
    assert_eq!(q.last().map(|&(_, b, f)| (b, f)), Some((FULL as u64, 30.0)));
}

/// The same drop with adaptation off: the queue builds and latency climbs (what the issue
/// measured), which is what the controller exists to prevent.
#[test]
fn without_adaptation_the_same_drop_builds_a_queue() {
    let mut s = Sim::new(false);
    s.add(1, 20.0, 20);
    s.run(Duration::from_secs(5));
    s.path(1).rate_bps = 4e6;
    let cut = s.now;
    s.run(Duration::from_secs(10));
    let (p95, _, n, _) = s.seen(1, cut + 3 * 1000 * MS, s.now);
    assert!(p95 > 100 * MS, "p95 {p95:?}");
    assert!(n < 7 * 20, "{n} frames in 7 s: under 20 fps");
    assert_eq!(s.group_rate(1), (FULL, 30.0));
    assert!(
        !s.quality.contains_key(&1),
        "no set_quality without adaptation"
    );
}

/// A fast link keeps full quality: adaptation costs nothing on a LAN.
#[test]
fn a_lan_keeps_full_quality() {
    let mut s = Sim::new(true);
    s.add(1, 1000.0, 1);
    s.run(Duration::from_secs(20));
    assert_eq!(s.group_rate(1), (FULL, 30.0));
    let m = s.core.metrics(s.now);
    let cc = m.viewers[0].congestion.clone().unwrap();
    assert_eq!(cc.decreases, 0, "{cc:?}");
    let (_, gap, n, _) = s.seen(1, Duration::from_secs(1), s.now);
    assert!(
        n >= 19 * 30 - 5 && gap <= 50 * MS,
        "{n} frames, gap {gap:?}"
    );
}

/// Two viewers share an encoder, one on a slow link: it moves to a lower tier, the other
/// keeps full quality; when its link recovers it comes back, and the tiers merge.
#[test]
fn a_slow_viewer_moves_to_a_lower_tier_and_back() {
    let mut s = Sim::new(true);
    s.add(1, 50.0, 10);
    s.add(2, 50.0, 10);
    s.run(Duration::from_secs(3));
    assert_eq!(s.video_groups(), 1);
    s.path(2).rate_bps = 3e6;
    let cut = s.now;
    s.run(Duration::from_secs(12));
    assert_eq!(s.video_groups(), 2, "the slow viewer has a tier of its own");
    assert_eq!(
        s.group_rate(1),
        (FULL, 30.0),
        "the fast viewer is at full quality"
    );
    assert!(s.group_rate(2).0 < 3_000_000);
    let (p95, gap, n, _) = s.seen(1, cut + 8 * 1000 * MS, s.now);
    assert!(
        p95 <= 60 * MS && gap <= 200 * MS && n >= 4 * 30 - 5,
        "fast viewer: {p95:?} {gap:?} {n}"
    );
    let (p95, gap, _, _) = s.seen(2, cut + 8 * 1000 * MS, s.now);
    assert!(
        p95 <= 150 * MS && gap <= 500 * MS,
        "slow viewer: {p95:?} {gap:?}"
    );

    s.path(2).rate_bps = 50e6;
    s.run(Duration::from_secs(20));
    assert_eq!(s.video_groups(), 1, "back in one group");
    assert_eq!(s.group_rate(2), (FULL, 30.0));
}

/// A viewer whose decoder falls behind (decode queue > 3) gets fewer frames, not fewer bits;
/// when it catches up the frame rate returns.
#[test]
fn a_slow_decoder_lowers_the_frame_rate_first() {
    let mut s = Sim::new(true);
    s.add(1, 100.0, 5);
    s.run(Duration::from_secs(2));
    s.path(1).decode_queue = 5;
    s.run(Duration::from_secs(2));
    let (rate, fps) = s.group_rate(1);
    assert_eq!(rate, FULL, "the bitrate is left alone");
    assert!(fps < 30.0, "{fps} fps");
    let since = s.now;
    s.run(Duration::from_secs(1));
    let (_, _, n, _) = s.seen(1, since, s.now);
    assert!(
        (n as f64) < 30.0 * 0.75,
        "{n} frames in a second at {fps} fps"
    );
    s.path(1).decode_queue = 0;
    s.run(Duration::from_secs(6));
    assert_eq!(s.group_rate(1), (FULL, 30.0));
}

/// A burst of lost acks (the viewer stalls for 2.5 s: the backstop fires) halves the rate at
/// once; the viewer is recovered and the rate climbs back.
#[test]
fn a_loss_burst_halves_the_rate_and_it_recovers() {
    let mut s = Sim::new(true);
    s.add(1, 30.0, 20);
    s.run(Duration::from_secs(3));
    s.path(1).silent = true;
    s.run(Duration::from_millis(2500));
    let m = s.core.metrics(s.now);
    assert!(m.viewers[0].backstops >= 1);
    assert!(s.group_rate(1).0 <= FULL / 2, "{:?}", s.group_rate(1));
    s.path(1).silent = false;
    s.path(1).acks.clear();
    s.run(Duration::from_secs(10));
    assert_eq!(s.group_rate(1), (FULL, 30.0));
}

/// A sink whose own transport reports a low estimate (a WHIP tap under an SFU's REMB/TWCC)
/// on a fast local path: the cap holds its target down, it gets a tier of its own, and the
/// local viewer stays at full quality; lifting the cap brings it back.
#[test]
fn an_external_rate_cap_moves_the_sink_to_its_own_tier_not_the_viewers() {
    let mut s = Sim::new(true);
    s.add(1, 50.0, 10);
    s.add(2, 50.0, 10);
    s.run(Duration::from_secs(3));
    assert_eq!(s.video_groups(), 1);
    let now = s.now;
    s.core.rate_cap(2, Some(1_000_000), now);
    s.drain();
    s.run(Duration::from_secs(8));
    assert_eq!(s.video_groups(), 2, "the capped sink has a tier of its own");
    assert_eq!(
        s.group_rate(1),
        (FULL, 30.0),
        "the local viewer keeps full quality"
    );
    assert!(s.group_rate(2).0 <= 1_000_000, "{:?}", s.group_rate(2));
    let now = s.now;
    s.core.rate_cap(2, None, now);
    s.drain();
    s.run(Duration::from_secs(20));
    assert_eq!(s.video_groups(), 1, "back in one group");
}
