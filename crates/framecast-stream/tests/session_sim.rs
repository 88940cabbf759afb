//! The delivery state machine in simulated time: no sockets, no threads, no sleeps.

use bytes::Bytes;
use framecast_stream::protocol::ViewerEvent;
use framecast_stream::protocol::{client, BinaryHeader, CAP_H264_ANNEXB, CAP_JPEG, CAP_PNG};
use framecast_stream::session::{
    Action, EncodeFailure, EncodeJob, EncodedFrame, FrameInfo, GroupKind, ImageFormat,
    ResizePolicy, SessionConfig, StreamCore, TransportPolicy, ViewerId,
};
use std::collections::BTreeMap;
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);

#[derive(Debug, Clone)]
struct Sent {
    seq: u64,
    keyframe: bool,
    frame_ts: u64,
    payload: Bytes,
    mime: Option<String>,
}

struct Sim {
    core: StreamCore,
    now: Duration,
    frame: u64,
    size: (u32, u32),
    /// Encode jobs issued, in order.
    jobs: Vec<EncodeJob>,
    /// Jobs not completed yet (auto-completed by `step` unless `hold` is set).
    pending: Vec<EncodeJob>,
    hold: bool,
    sent: BTreeMap<ViewerId, Vec<Sent>>,
    texts: BTreeMap<ViewerId, Vec<String>>,
    closed: Vec<(ViewerId, u16)>,
    events: Vec<ViewerEvent>,
    closed_groups: Vec<u64>,
    targets: Vec<(u32, u32)>,
    /// Every payload sent, in order (one per viewer and job).
    chunks: Vec<std::sync::Arc<framecast_stream::protocol::EnvelopeTemplate>>,
    /// The fake encoder makes recovery P-frames: asked for one, it predicts from the newest
    /// frame every viewer displayed (`EncodeJob::displayed_by_all`).
    recovery: bool,
    /// Recovery frames made: frame id of the recovery frame -> frame id of its reference.
    recovered: BTreeMap<u64, u64>,
}

fn video() -> Vec<String> {
    vec![CAP_JPEG.into(), CAP_PNG.into(), CAP_H264_ANNEXB.into()]
}
fn images() -> Vec<String> {
    vec![CAP_JPEG.into(), CAP_PNG.into()]
}

impl Sim {
    fn new(config: SessionConfig) -> Self {
        Sim {
            core: StreamCore::new(config),
            now: Duration::ZERO,
            frame: 0,
            size: (64, 48),
            jobs: vec![],
            pending: vec![],
            hold: false,
            sent: BTreeMap::new(),
            texts: BTreeMap::new(),
            closed: vec![],
            events: vec![],
            closed_groups: vec![],
            targets: vec![],
            chunks: vec![],
            recovery: false,
            recovered: BTreeMap::new(),
        }
    }

    /// Two video viewers of an encoder that makes recovery P-frames, at a fixed window.
    fn two_viewers_with_recovery() -> Self {
        let mut s = Self::new(SessionConfig {
            adaptive: None,
            recovery: true,
            ..SessionConfig::default()
        });
        s.recovery = true;
        s.add(1, video());
        s.add(2, video());
        s
    }

    /// The delivery rules at a fixed window and quality: congestion control (on by default)
    /// is off here; `congestion_sim.rs` tests it over a simulated link.
    fn default() -> Self {
        Self::new(SessionConfig {
            adaptive: None,
            ..SessionConfig::default()
        })
    }

    fn drain(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(a) = self.core.poll_action() {
                progressed = true;
                match a {
                    Action::Encode(job) => {
                        self.jobs.push(job.clone());
                        self.pending.push(job);
                    }
                    Action::SendPayload { viewer, seq, chunk } => {
                        self.chunks.push(chunk.clone());
                        let payload = chunk.payload.clone();
                        let s = match chunk.header.clone() {
                            BinaryHeader::VideoChunk(h) => Sent {
                                seq,
                                keyframe: h.keyframe,
                                frame_ts: h.timestamp_us,
                                payload,
                                mime: None,
                            },
                            BinaryHeader::ImageFrame(h) => Sent {
                                seq,
                                keyframe: true,
                                frame_ts: h.timestamp_us,
                                payload,
                                mime: Some(h.mime.into_owned()),
                            },
                        };
                        self.sent.entry(viewer).or_default().push(s);
                    }
                    Action::SendText { viewer, text } => {
                        self.texts.entry(viewer).or_default().push(text)
                    }
                    Action::Close { viewer, code, .. } => self.closed.push((viewer, code)),
                    Action::Event(e) => self.events.push(e.event),
                    Action::CloseGroup(g) => self.closed_groups.push(g),
                    _ => {}
                }
            }
            if !self.hold && !self.pending.is_empty() {
                for job in std::mem::take(&mut self.pending) {
                    self.complete(job);
                }
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
    }

    fn complete(&mut self, job: EncodeJob) {
        let recovery_from = job
            .recover_for
            .and(job.displayed_by_all)
            .filter(|_| self.recovery && !job.force_keyframe);
        if let Some(r) = recovery_from {
            self.recovered.insert(job.frame.id, r);
        }
        let (data, mime, keyframe) = match job.kind {
            GroupKind::Video => (
                format!("h264 frame {} key {}", job.frame.id, job.force_keyframe),
                None,
                job.force_keyframe,
            ),
            GroupKind::Image(f) => {
                let f = if job.still { ImageFormat::Png } else { f };
                (format!("image {}", job.frame.id), Some(f.mime()), true)
            }
        };
        self.core.encode_done(
            job.group,
            job.job,
            Ok(EncodedFrame {
                data: Bytes::from(data),
                keyframe,
                codec: Some("avc1.42E01F".into()),
                mime,
                width: job.frame.width,
                height: job.frame.height,
                encode_ms: 5.0,
                recovery_from,
            }),
            self.now,
        );
    }

    fn finish_pending(&mut self) {
        for job in std::mem::take(&mut self.pending) {
            self.complete(job);
        }
        self.drain();
    }

    fn add(&mut self, id: ViewerId, caps: Vec<String>) {
        self.core.add_viewer(id, caps, self.now).unwrap();
        self.drain();
    }

    fn publish(&mut self) {
        self.frame += 1;
        self.core.publish(
            FrameInfo {
                id: self.frame,
                width: self.size.0,
                height: self.size.1,
                timestamp_us: self.now.as_micros() as u64,
            },
            self.now,
        );
        self.drain();
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.core.handle_timeout(self.now);
        self.drain();
        if let Some(t) = self.core.target_size() {
            if self.targets.last() != Some(&t) {
                self.targets.push(t);
            }
        }
    }

    fn text(&mut self, id: ViewerId, t: &str) {
        self.core.handle_text(id, t, self.now);
        self.drain();
    }

    fn ack_all(&mut self, id: ViewerId) {
        let seqs: Vec<u64> = self
            .sent
            .get(&id)
            .map(|v| v.iter().map(|s| s.seq).collect())
            .unwrap_or_default();
        if let Some(&last) = seqs.last() {
            self.text(id, &client::ack(last, 0));
        }
    }

    fn sent(&self, id: ViewerId) -> &[Sent] {
        self.sent.get(&id).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every delta `id` received directly follows, in its group's encode order, the frame it
    /// received before: it never missed a picture its next delta refers to. A recovery frame
    /// may follow a gap; its reference must be a frame this viewer received.
    fn assert_decodable(&self, id: ViewerId) {
        let encoded: Vec<u64> = self.jobs.iter().map(|j| j.frame.timestamp_us).collect();
        let mut previous: Option<usize> = None;
        let mut received = Vec::new();
        for f in self.sent(id) {
            let at = encoded
                .iter()
                .rposition(|&t| t == f.frame_ts)
                .expect("a sent frame was encoded");
            let frame = self.jobs[at].frame.id;
            let reference = self.recovered.get(&frame);
            received.push(frame);
            if let Some(r) = reference.filter(|_| !f.keyframe) {
                assert!(
                    received.contains(r),
                    "viewer {id}: recovery frame {frame} refers to frame {r}, which it never got"
                );
            } else if !f.keyframe {
                assert_eq!(
                    previous.map(|p| p + 1),
                    Some(at),
                    "viewer {id}: a delta that does not follow the frame it refers to"
                );
            }
            previous = Some(at);
        }
    }
}

#[test]
fn config_then_keyframe_first() {
    let mut s = Sim::default();
    s.add(1, video());
    let texts = &s.texts[&1];
    assert!(
        texts[0].starts_with(r#"{"type":"config","transport":"webcodecs""#),
        "{texts:?}"
    );
    // framecast's extension field, after pdum's fields.
    assert!(texts[0].ends_with(r#","backend":"openh264"}"#), "{texts:?}");
    assert!(s.sent(1).is_empty(), "nothing before the first publish");
    s.publish();
    assert_eq!(s.jobs.len(), 1);
    assert!(s.jobs[0].force_keyframe);
    assert_eq!(s.sent(1).len(), 1);
    assert!(s.sent(1)[0].keyframe);
    assert_eq!(s.sent(1)[0].seq, 0);
    s.ack_all(1);
    s.advance(33 * MS);
    s.publish();
    assert!(!s.jobs[1].force_keyframe, "second frame is a delta");
    assert_eq!(s.sent(1)[1].seq, 1);
}

#[test]
fn inflight_limit_drops_before_encode_and_latest_wins() {
    let mut s = Sim::default();
    s.add(1, video());
    for _ in 0..5 {
        s.publish();
        s.advance(33 * MS);
    }
    // max_inflight = 2: frames 3, 4, 5 are dropped without being encoded.
    assert_eq!(s.jobs.len(), 2, "{:?}", s.jobs);
    assert_eq!(s.sent(1).len(), 2);
    let m = s.core.metrics(s.now);
    assert_eq!(m.viewers[0].frames_dropped, 3);
    assert_eq!(m.viewers[0].inflight, 2);
    // An ack frees a slot: the newest frame (5) goes out at once. Frames 3 and 4 were
    // encoded for nobody, so nothing the viewer decodes refers to them: a delta will do.
    s.text(1, &client::ack(0, 0));
    assert_eq!(s.jobs.len(), 3);
    assert_eq!(s.jobs[2].frame.id, 5, "latest frame wins");
    assert!(
        !s.jobs[2].force_keyframe,
        "no keyframe for frames nobody got"
    );
    assert!(!s.sent(1)[2].keyframe);
    assert_eq!(s.core.metrics(s.now).viewers[0].recoveries, 0);
}

/// The keyframe spiral (hardening issue, item 0): a lone viewer on a link slower than the
/// stream. Its acks come back late, so most frames find its in-flight window full; none of
/// them was encoded for anyone, so after the first keyframe every frame is a delta.
#[test]
fn a_lone_viewer_on_a_slow_link_gets_deltas_not_keyframes() {
    let mut s = Sim::default();
    s.add(1, video());
    // 10 s at 30 fps; each frame takes 90 ms to reach the viewer and be displayed.
    let mut in_transit: Vec<(Duration, u64)> = Vec::new();
    for _ in 0..300 {
        s.publish();
        let sent = s.sent(1).len();
        if let Some(last) = s.sent(1).last() {
            if in_transit.last().is_none_or(|&(_, seq)| seq != last.seq) && sent > 0 {
                in_transit.push((s.now + 90 * MS, last.seq));
            }
        }
        for _ in 0..33 {
            s.advance(MS);
            while in_transit.first().is_some_and(|&(at, _)| at <= s.now) {
                let (_, seq) = in_transit.remove(0);
                s.text(1, &client::ack(seq, 0));
                if let Some(last) = s.sent(1).last() {
                    if last.seq > seq && in_transit.iter().all(|&(_, q)| q != last.seq) {
                        in_transit.push((s.now + 90 * MS, last.seq));
                    }
                }
            }
        }
    }
    let sent = s.sent(1);
    let keyframes = sent.iter().filter(|f| f.keyframe).count();
    assert!(sent.len() > 150, "the viewer got {} frames", sent.len());
    assert_eq!(keyframes, 1, "only the first frame is a keyframe");
    let m = s.core.metrics(s.now);
    assert!(m.viewers[0].frames_dropped > 50, "{:?}", m.viewers[0]);
    assert_eq!(m.viewers[0].recoveries, 0);
    s.assert_decodable(1);
}

/// Two viewers share an encoder and a slow link: their acks come back at slightly different
/// times. The group waits for the later one instead of knocking it out of sync, so both get
/// every frame as a delta (before `sync_wait`, each would in turn miss a frame the other got,
/// and every frame became a recovery keyframe).
#[test]
fn viewers_on_one_link_stay_in_step_without_recovery_keyframes() {
    let mut s = Sim::default();
    s.add(1, video());
    s.add(2, video());
    for i in 0..90u64 {
        s.publish();
        // Each frame takes 40 ms to reach viewer 1 and 40-70 ms to reach viewer 2.
        s.advance(40 * MS);
        s.ack_all(1);
        s.advance(Duration::from_millis(i % 4 * 10));
        s.ack_all(2);
        s.advance(Duration::from_millis(60 - i % 4 * 10));
    }
    let m = s.core.metrics(s.now);
    assert_eq!((m.viewers[0].recoveries, m.viewers[1].recoveries), (0, 0));
    s.assert_decodable(1);
    s.assert_decodable(2);
    for v in [1, 2] {
        let keys = s.sent(v).iter().filter(|f| f.keyframe).count();
        assert_eq!(keys, 1, "viewer {v}: only the join keyframe");
        assert!(s.sent(v).len() >= 85, "viewer {v} got {}", s.sent(v).len());
    }
}

/// One viewer stalls for 300 ms every second (longer than `sync_wait`): it is left behind
/// each time and recovered with a keyframe; the other keeps its frame rate, and pays at most
/// one recovery keyframe per `recovery_interval`.
#[test]
fn a_stalling_viewer_is_left_behind_and_costs_the_group_little() {
    let mut s = Sim::default(); // sync_wait 100 ms, recovery_interval 500 ms
    s.add(1, video());
    s.add(2, video());
    for i in 0..90u64 {
        s.publish();
        s.ack_all(1);
        if i % 30 < 21 {
            s.ack_all(2);
        }
        s.advance(33 * MS);
    }
    let keys1 = s.sent(1).iter().filter(|f| f.keyframe).count();
    assert!(keys1 <= 1 + 6, "viewer 1 got {keys1} keyframes");
    // Viewer 1 loses at most the frames published during the waits (100 ms per stall).
    assert!(
        s.sent(1).len() >= 80,
        "viewer 1 got {} frames",
        s.sent(1).len()
    );
    let m = s.core.metrics(s.now);
    assert_eq!(m.viewers[0].recoveries, 0, "viewer 1 never lost sync");
    assert!(m.viewers[1].recoveries >= 2, "{:?}", m.viewers[1]);
    // Both only ever got what they could decode.
    s.assert_decodable(1);
    s.assert_decodable(2);
}

/// A viewer that lost sync while the publisher went idle is still recovered (the latest
/// frame goes again as a keyframe once the interval allows it).
#[test]
fn recovery_happens_even_when_the_publisher_is_idle() {
    let mut s = Sim::default();
    s.add(1, video());
    s.add(2, video());
    s.publish();
    s.ack_all(1);
    s.ack_all(2);
    s.advance(100 * MS);
    s.publish();
    s.ack_all(1);
    s.text(2, &client::request_keyframe("decode error"));
    let jobs = s.jobs.len();
    assert!(!s.jobs.last().unwrap().force_keyframe);
    assert_eq!(
        s.core.poll_timeout(),
        Some(500 * MS),
        "due 500 ms after the last keyframe"
    );
    s.advance(300 * MS);
    assert_eq!(s.jobs.len(), jobs, "held back by the recovery interval");
    s.advance(100 * MS);
    assert_eq!(s.jobs.len(), jobs + 1);
    let job = s.jobs.last().unwrap();
    assert!(job.force_keyframe && job.frame.id == 2, "{job:?}");
    assert!(s.sent(2).last().unwrap().keyframe);
    s.ack_all(1);
    s.ack_all(2);
    assert_eq!(s.core.poll_timeout(), None, "nothing left to do");
}

#[test]
fn one_encode_at_a_time_newest_frame_supersedes() {
    let mut s = Sim::default();
    s.hold = true;
    s.add(1, video());
    s.publish(); // job 1 running
    s.publish(); // superseded...
    s.publish(); // ...by this one
    assert_eq!(s.jobs.len(), 1);
    s.finish_pending();
    assert_eq!(s.jobs.len(), 2, "the newest frame is encoded next");
    assert_eq!(s.jobs[1].frame.id, 3);
}

#[test]
fn request_keyframe_and_decoder_reset_force_keyframes() {
    let mut s = Sim::default();
    s.add(1, video());
    s.publish();
    s.ack_all(1);
    s.publish();
    s.ack_all(1);
    assert!(!s.jobs[1].force_keyframe);
    s.text(1, &client::request_keyframe("decode error"));
    s.publish();
    assert!(s.jobs[2].force_keyframe, "request_keyframe");
    // decoder_reset with frames in flight: cleared and keyframe next.
    s.publish();
    assert!(!s.jobs[3].force_keyframe);
    assert_eq!(s.core.metrics(s.now).viewers[0].inflight, 2);
    s.text(1, r#"{"type":"decoder_reset"}"#);
    let m = s.core.metrics(s.now);
    assert_eq!(m.viewers[0].inflight, 0);
    assert_eq!(m.viewers[0].decoder_resets, 1);
    s.publish();
    assert!(s.jobs.last().unwrap().force_keyframe, "decoder_reset");
}

#[test]
fn backstop_clears_inflight_after_two_seconds() {
    let mut s = Sim::default();
    s.add(1, video());
    s.publish();
    s.publish();
    s.publish(); // dropped
    assert_eq!(s.jobs.len(), 2);
    s.advance(1999 * MS);
    assert_eq!(s.core.metrics(s.now).viewers[0].inflight, 2);
    s.advance(MS);
    let m = s.core.metrics(s.now);
    assert_eq!(m.viewers[0].backstops, 1);
    // The newest (not yet delivered) frame went out as a keyframe right away.
    assert_eq!(s.jobs.len(), 3);
    assert_eq!(s.jobs[2].frame.id, 3);
    assert!(s.jobs[2].force_keyframe);
}

#[test]
fn encoder_rebuild_on_resize_and_reconfigure() {
    let mut s = Sim::default();
    s.add(1, video());
    s.publish();
    s.ack_all(1);
    s.size = (128, 96);
    s.publish();
    assert!(s.jobs[1].force_keyframe, "size change = rebuild = keyframe");
    assert!(s.texts[&1]
        .last()
        .unwrap()
        .contains(r#""width":128,"height":96"#));
    s.ack_all(1);
    s.publish();
    assert!(!s.jobs[2].force_keyframe);
    s.ack_all(1);
    let mut settings = (*s.core.config().encoder).clone();
    settings.bitrate = 2_000_000;
    let n_texts = s.texts[&1].len();
    s.core.reconfigure(settings, TransportPolicy::Auto, s.now);
    s.drain();
    assert_eq!(s.closed_groups.len(), 1, "old encoder closed");
    assert_eq!(
        s.texts[&1].len(),
        n_texts + 2,
        "config re-sent, then set_quality"
    );
    assert!(s.texts[&1][n_texts].contains(r#""type":"config""#));
    assert_eq!(
        s.texts[&1][n_texts + 1],
        r#"{"type":"set_quality","bitrate":2000000,"fps":30.0}"#
    );
    // The new encoder starts at once with a keyframe of the latest frame.
    let job = s.jobs.last().unwrap();
    assert_eq!(job.frame.id, 3);
    assert!(job.force_keyframe);
    assert_eq!(job.settings.bitrate, 2_000_000);
    // Live transport switch: video viewer → image transport.
    s.ack_all(1);
    let settings = (*s.core.config().encoder).clone();
    let n_texts = s.texts[&1].len();
    s.core.reconfigure(settings, TransportPolicy::Image, s.now);
    s.drain();
    assert_eq!(
        s.texts[&1].len(),
        n_texts + 1,
        "same quality: config only, no set_quality"
    );
    assert!(s.texts[&1]
        .last()
        .unwrap()
        .contains(r#""transport":"image""#));
    assert_eq!(
        s.sent(1).last().unwrap().mime.as_deref(),
        Some("image/jpeg")
    );
}

#[test]
fn still_after_settle_once() {
    let mut s = Sim::new(SessionConfig {
        still_after: Some(Duration::from_millis(500)),
        ..SessionConfig::default()
    });
    s.add(1, video());
    s.add(2, images());
    s.publish();
    s.ack_all(1);
    s.ack_all(2);
    s.advance(400 * MS);
    assert_eq!(s.jobs.len(), 2);
    s.advance(100 * MS);
    assert_eq!(s.jobs.len(), 4, "one still per group");
    assert!(s.jobs[2..].iter().all(|j| j.still && j.force_keyframe));
    assert!(s.sent(1).last().unwrap().keyframe, "video still is an IDR");
    assert_eq!(
        s.sent(2).last().unwrap().mime.as_deref(),
        Some("image/png"),
        "image still is PNG"
    );
    s.ack_all(1);
    s.ack_all(2);
    s.advance(2000 * MS);
    assert_eq!(s.jobs.len(), 4, "only once per settle");
    // Not during motion.
    for _ in 0..10 {
        s.publish();
        s.ack_all(1);
        s.ack_all(2);
        s.advance(100 * MS);
    }
    assert!(s.jobs[4..].iter().all(|j| !j.still));
}

#[test]
fn shared_encoder_join_forces_keyframe_for_the_group() {
    let mut s = Sim::default();
    s.add(1, video());
    for _ in 0..3 {
        s.publish();
        s.ack_all(1);
    }
    assert!(!s.jobs[2].force_keyframe);
    s.add(2, video());
    assert!(s.texts[&2][0].contains("webcodecs"));
    s.publish();
    assert_eq!(s.jobs.len(), 4, "one encode for both viewers");
    assert!(s.jobs[3].force_keyframe, "join = keyframe");
    let (a, b) = (s.sent(1).last().unwrap(), s.sent(2).last().unwrap());
    assert!(a.keyframe && b.keyframe);
    assert_eq!(
        a.payload.as_ptr(),
        b.payload.as_ptr(),
        "one payload, shared"
    );
    assert_eq!((a.seq, b.seq), (3, 0), "per-viewer seq");
    assert_eq!(a.frame_ts, b.frame_ts, "shared timestamp");
    // Image viewers get their own group; PNG-only viewers another.
    s.add(3, images());
    s.add(4, vec![CAP_PNG.into()]);
    s.ack_all(1);
    s.ack_all(2);
    s.publish();
    assert_eq!(s.core.metrics(s.now).groups.len(), 3);
    assert_eq!(
        s.sent(3).last().unwrap().mime.as_deref(),
        Some("image/jpeg")
    );
    assert_eq!(s.sent(4).last().unwrap().mime.as_deref(), Some("image/png"));
}

#[test]
fn slow_viewer_does_not_slow_the_others() {
    let mut s = Sim::default();
    s.add(1, video());
    s.add(2, video()); // never acks
    for _ in 0..90 {
        s.publish();
        s.ack_all(1);
        s.advance(33 * MS);
    }
    // The fast viewer waits up to sync_wait (100 ms) each time the other falls behind in
    // sync: at the start, and after each backstop recovery (every 2 s).
    assert!(s.jobs.len() >= 82, "{} frames encoded", s.jobs.len());
    assert!(
        s.sent(1).len() >= 82,
        "the fast viewer got {}",
        s.sent(1).len()
    );
    assert_eq!(s.core.metrics(s.now).viewers[0].recoveries, 0);
    let slow = s.sent(2).len();
    assert!((2..=6).contains(&slow), "slow viewer got {slow}");
    // The slow viewer's return costs it a keyframe; with it, a keyframe for the group.
    s.ack_all(2);
    s.publish();
    assert!(s.jobs.last().unwrap().force_keyframe);
    assert!(s.sent(2).last().unwrap().keyframe);
    let m = s.core.metrics(s.now);
    assert_eq!(m.viewers[0].frames_dropped, 0);
    s.assert_decodable(1);
    s.assert_decodable(2);
}

#[test]
fn viewer_that_needs_a_keyframe_skips_deltas() {
    let mut s = Sim::default();
    s.hold = true;
    s.add(1, video());
    s.publish();
    s.finish_pending();
    s.ack_all(1);
    s.publish(); // delta encoding...
    s.text(1, &client::request_keyframe("gate"));
    s.finish_pending(); // ...arrives after the request: not sent
    assert_eq!(s.sent(1).len(), 1);
    s.publish();
    s.finish_pending();
    assert!(s.jobs.last().unwrap().force_keyframe);
    assert!(s.sent(1).last().unwrap().keyframe);
}

#[test]
fn malformed_message_closes_only_that_viewer() {
    let mut s = Sim::default();
    s.add(1, video());
    s.add(2, video());
    s.text(1, "{not json");
    assert_eq!(s.closed, vec![(1, 1008)]);
    s.text(2, r#"{"type":"whatever_new"}"#);
    assert_eq!(
        s.closed.len(),
        1,
        "unknown types are ignored, as pdum.rfb does"
    );
    s.publish();
    assert_eq!(s.sent(2).len(), 1);
    assert!(s.sent(1).is_empty());
    assert_eq!(s.core.viewer_count(), 1);
}

#[test]
fn events_and_viewport_reach_the_app_with_a_rate_cap() {
    let mut s = Sim::new(SessionConfig {
        max_events_per_second: 10,
        ..SessionConfig::default()
    });
    s.add(1, video());
    s.text(
        1,
        r#"{"type":"event","event":{"type":"pointer_down","x":320,"y":240,"inside":true,"pixel_ratio":2,"button":1,"buttons":[1],"modifiers":[],"timestamp":1.0}}"#,
    );
    s.text(1, &client::set_viewport(800.0, 600.0, 2.0));
    match &s.events[..] {
        [ViewerEvent::PointerDown(p), ViewerEvent::Resize(r)] => {
            assert_eq!((p.x, p.y, p.button), (320.0, 240.0, 1));
            assert_eq!((r.pwidth, r.pheight, r.ratio), (1600.0, 1200.0, 2.0));
        }
        other => panic!("{other:?}"),
    }
    for i in 0..30 {
        s.text(1, &format!(r#"{{"type":"event","event":{{"type":"key_down","key":"a","code":"KeyA","modifiers":[],"timestamp":{i}}}}}"#));
    }
    let keys = s
        .events
        .iter()
        .filter(|e| matches!(e, ViewerEvent::KeyDown(_)))
        .count();
    assert_eq!(
        keys, 9,
        "burst of one second's worth (10), one already spent"
    );
    s.advance(Duration::from_secs(1));
    s.text(
        1,
        r#"{"type":"event","event":{"type":"key_up","key":"a","code":"KeyA"}}"#,
    );
    assert!(matches!(s.events.last(), Some(ViewerEvent::KeyUp(_))));
}

#[test]
fn match_client_debounces_and_clamps() {
    let mut s = Sim::new(SessionConfig {
        resize: ResizePolicy::MatchClient {
            debounce: Duration::from_millis(120),
            max_dimension: Some(1000),
        },
        ..SessionConfig::default()
    });
    s.add(1, video());
    s.text(1, &client::set_viewport(1000.0, 500.0, 2.0)); // 2000x1000 backing
    s.advance(50 * MS);
    s.text(1, &client::set_viewport(801.0, 601.0, 1.0));
    s.advance(100 * MS);
    assert!(s.targets.is_empty(), "debounced");
    s.advance(30 * MS);
    assert_eq!(s.targets, vec![(800, 600)], "last writer wins, even dims");
    s.text(1, &client::set_viewport(1000.0, 500.0, 2.0));
    s.advance(200 * MS);
    assert_eq!(s.targets.last(), Some(&(1000, 500)), "clamped, aspect kept");
}

#[test]
fn stats_piggyback_on_acks_at_the_interval() {
    let mut s = Sim::new(SessionConfig {
        stats_interval: Some(Duration::from_secs(1)),
        ..SessionConfig::default()
    });
    s.add(1, video());
    for _ in 0..60 {
        s.publish();
        s.advance(10 * MS);
        s.ack_all(1);
        s.advance(23 * MS);
    }
    let stats: Vec<&String> = s.texts[&1]
        .iter()
        .filter(|t| t.contains(r#""type":"stats""#))
        .collect();
    assert_eq!(stats.len(), 2, "{stats:?}");
    let v: serde_json::Value = serde_json::from_str(stats[1]).unwrap();
    assert!((v["rtt_ms"].as_f64().unwrap() - 10.0).abs() < 0.5, "{v}");
    assert!(v["fps_sent"].as_f64().unwrap() > 25.0, "{v}");
    assert_eq!(v["dropped"], 0);
    assert_eq!(v["target_fps"], 30.0);
    for k in [
        "fps_acked",
        "bitrate_bps",
        "encode_ms",
        "decode_queue_size",
        "target_bitrate",
    ] {
        assert!(v.get(k).is_some(), "{k}");
    }
}

#[test]
fn transport_negotiation() {
    let mut s = Sim::new(SessionConfig {
        transports: TransportPolicy::Video,
        ..SessionConfig::default()
    });
    let r = s.core.add_viewer(1, images(), s.now).unwrap_err();
    assert_eq!(r.code, 1003);
    assert_eq!(r.reason, "no supported transport");
    let mut s = Sim::default();
    assert_eq!(
        s.core
            .add_viewer(1, vec!["image/webp".into()], s.now)
            .unwrap_err()
            .code,
        1003
    );
    let mut s = Sim::new(SessionConfig {
        video_available: false,
        ..SessionConfig::default()
    });
    s.add(1, video());
    assert!(s.texts[&1][0].contains(r#""transport":"image""#));
}

#[test]
fn encode_failure_forces_a_keyframe_next() {
    let mut s = Sim::default();
    s.hold = true;
    s.add(1, video());
    s.publish();
    let job = s.pending.pop().unwrap();
    s.core.encode_done(
        job.group,
        job.job,
        Err(EncodeFailure::Encode("boom".into())),
        s.now,
    );
    s.drain();
    assert!(s.sent(1).is_empty());
    s.publish();
    assert!(s.jobs.last().unwrap().force_keyframe);
    assert_eq!(s.core.metrics(s.now).groups[0].failures, 1);
}

/// pdum.rfb's `publish(frame, pixel_ratio=, color=)`: a frame's own tags go on its header, a
/// change of tags re-sends `config`, and untagged frames fall back to the stream's.
#[test]
fn per_frame_tags_reach_headers_and_config() {
    use framecast_stream::protocol::{client, WireColor};
    use framecast_stream::session::FrameTags;
    use std::sync::Arc;
    let mut s = Sim::default();
    s.add(1, video());
    s.publish();
    s.ack_all(1);
    let texts = s.texts[&1].len();
    s.frame += 1;
    let tags = FrameTags {
        pixel_ratio: Some(2.0),
        color: Some(Arc::new(WireColor::display_p3())),
    };
    let info = FrameInfo {
        id: s.frame,
        width: s.size.0,
        height: s.size.1,
        timestamp_us: 1,
    };
    s.core.publish_tagged(info, tags, s.now);
    s.drain();
    let config: serde_json::Value = serde_json::from_str(&s.texts[&1][texts]).unwrap();
    assert_eq!(config["type"], "config");
    assert_eq!(config["pixel_ratio"], 2.0);
    assert_eq!(config["color"]["primaries"], "display-p3");
    let job = s.jobs.last().unwrap();
    assert_eq!(job.frame.id, s.frame);
    // The header of the tagged frame carries the tags (checked on the envelope bytes).
    let last = s.chunks.last().unwrap().clone();
    let header = String::from_utf8_lossy(&last.envelope(0)).to_string();
    assert!(header.contains(r#""pixel_ratio":2.0"#), "{header}");
    assert!(header.contains(r#""primaries":"display-p3""#), "{header}");
    // Back to untagged: config again, and no tags in the header.
    s.text(1, &client::ack(s.sent(1).last().unwrap().seq, 0));
    let texts = s.texts[&1].len();
    s.publish();
    assert!(s.texts[&1][texts].contains(r#""type":"config""#));
    assert!(!s.texts[&1][texts].contains("pixel_ratio"));
    let header = String::from_utf8_lossy(&s.chunks.last().unwrap().envelope(0)).to_string();
    assert!(
        !header.contains("pixel_ratio") && !header.contains("color"),
        "{header}"
    );
}

/// Recovery without a keyframe: in a two-viewer group, one viewer stops acking, misses frames
/// and loses sync; once it acks again the next frame is a recovery P-frame predicted from a
/// frame both displayed — no IDR, nobody else pays — and both keep decoding.
#[test]
fn missed_frames_are_recovered_with_a_p_frame() {
    let mut s = Sim::two_viewers_with_recovery();
    for _ in 0..10 {
        s.publish();
        s.ack_all(1);
        s.ack_all(2);
        s.advance(33 * MS);
    }
    // Viewer 2 stalls: its window fills, the group waits sync_wait, then leaves it behind.
    for _ in 0..10 {
        s.publish();
        s.ack_all(1);
        s.advance(33 * MS);
    }
    let m = s.core.metrics(s.now);
    assert_eq!(m.viewers[1].recoveries, 1, "viewer 2 lost sync once");
    // Every job so far was a delta except the join.
    assert_eq!(s.jobs.iter().filter(|j| j.force_keyframe).count(), 1);
    s.ack_all(2);
    s.publish();
    let job = s.jobs.last().unwrap();
    assert!(!job.force_keyframe, "no IDR for the recovery");
    let last = job.recover_for.expect("a recovery P-frame was asked for");
    let reference = s.recovered[&job.frame.id];
    assert!(reference <= last);
    let got = s.sent(2).last().unwrap();
    assert!(!got.keyframe);
    assert_eq!(
        got.frame_ts, job.frame.timestamp_us,
        "viewer 2 got the recovery frame"
    );
    s.advance(33 * MS);
    for _ in 0..10 {
        s.ack_all(1);
        s.ack_all(2);
        s.publish();
        s.advance(33 * MS);
    }
    let m = s.core.metrics(s.now);
    assert_eq!(m.groups[0].keyframes_encoded, 1, "only the join's IDR");
    assert_eq!(m.groups[0].recovery_frames, 1);
    assert_eq!(m.viewers[1].recovered_without_keyframe, 1);
    assert_eq!(m.viewers[0].recoveries, 0);
    assert!(s.sent(2).len() > 20);
    s.assert_decodable(1);
    s.assert_decodable(2);
}

/// A decoder reset leaves the viewer's references unknown: only an IDR brings it back. And an
/// encoder that cannot make a recovery frame (no reference every viewer displayed) costs one
/// frame, then the keyframe path.
#[test]
fn recovery_falls_back_to_a_keyframe() {
    let mut s = Sim::two_viewers_with_recovery();
    let tick = |s: &mut Sim, acks: &[ViewerId]| {
        s.publish();
        for &v in acks {
            s.ack_all(v);
        }
        s.advance(33 * MS);
    };
    for _ in 0..5 {
        tick(&mut s, &[1, 2]);
    }
    let (jobs, got) = (s.jobs.len(), s.sent(2).len());
    s.text(2, r#"{"type":"decoder_reset"}"#);
    for _ in 0..20 {
        tick(&mut s, &[1, 2]);
    }
    assert!(
        s.jobs[jobs..].iter().all(|j| j.recover_for.is_none()),
        "no recovery P-frame for a reset decoder"
    );
    assert!(
        s.sent(2)[got].keyframe,
        "a reset decoder restarts at a keyframe"
    );

    // Viewer 2 stalls and returns; the encoder refuses the recovery frame.
    s.recovery = false;
    for _ in 0..8 {
        tick(&mut s, &[1]);
    }
    assert!(s.core.metrics(s.now).viewers[1].recoveries >= 1);
    let (jobs, got) = (s.jobs.len(), s.sent(2).len());
    s.ack_all(2);
    for _ in 0..30 {
        tick(&mut s, &[1, 2]);
    }
    let asked = &s.jobs[jobs];
    assert!(asked.recover_for.is_some() && !asked.force_keyframe);
    assert!(s.sent(2).len() > got, "viewer 2 is back");
    assert!(
        s.sent(2)[got].keyframe,
        "refused: it came back with a keyframe"
    );
    assert_eq!(
        s.core.metrics(s.now).viewers[1].recovered_without_keyframe,
        0
    );
    s.assert_decodable(1);
    s.assert_decodable(2);
}
