//! What it takes to resume an encode session on another server after its connection died:
//! the frames sent whose packets have not come back (sans-IO; the pool's shell in
//! [`crate::failover`] re-sends them).
//!
//! An encode session answers each FRAME with a PACKET carrying the frame's pts. When packets
//! come back in pts order (no B-frames: the low-latency default) the frames still owed are
//! exactly those after the last pts answered, so a new session that is sent them again,
//! starting with a forced keyframe, continues the stream with nothing lost and nothing twice.
//! With B-frames packets come back in decode order, some of what was answered depends on
//! frames that were not, and there is no clean point to resume from: such a session is not
//! resumed (its error is reported as it is).

use crate::wire::{Message, FLAG_KEYFRAME, NOPTS};
use std::collections::VecDeque;

/// The frames of an encode session that the server has not answered yet.
#[derive(Debug, Default)]
pub struct Journal {
    unanswered: VecDeque<Message>,
    last_answered: Option<i64>,
    not_resumable: Option<&'static str>,
    answered_since_resume: u64,
}

impl Journal {
    /// An input went to the server: keep a copy until its packet comes back. (A FRAME's
    /// planes are reference-counted: the copy shares them.)
    pub fn sent(&mut self, m: &Message) {
        match m {
            Message::Frame(f) if f.pts != NOPTS => self.unanswered.push_back(m.clone()),
            Message::Frame(_) => self.refuse("a frame has no pts"),
            _ => self.refuse("only encode sessions (FRAME in, PACKET out) are resumed"),
        }
    }

    /// An output came back: every frame up to its pts is answered. (A frame the encoder
    /// dropped has no packet of its own; a later packet answers it.)
    pub fn answered(&mut self, m: &Message) {
        let Message::Packet(p) = m else {
            self.refuse("the server answered with something other than a PACKET");
            return;
        };
        if self.last_answered.is_some_and(|last| p.pts < last) {
            self.refuse("packets come back out of pts order (B-frames)");
        }
        self.last_answered = Some(self.last_answered.map_or(p.pts, |l| l.max(p.pts)));
        while self
            .unanswered
            .front()
            .is_some_and(|f| frame_pts(f) <= p.pts)
        {
            self.unanswered.pop_front();
        }
        self.answered_since_resume += 1;
    }

    /// Why this session cannot be resumed elsewhere, if it cannot.
    pub fn not_resumable(&self) -> Option<&'static str> {
        self.not_resumable
    }

    /// Whether a packet came back since the last [`Journal::take_for_resume`] (the last
    /// resume made progress).
    pub fn progressed(&self) -> bool {
        self.answered_since_resume > 0
    }

    /// What a new session must be sent before anything new: the frames sent and not
    /// answered, then `not_yet_resent` (what an earlier resume had still to send again when
    /// it failed too), in order. The first is marked as a forced keyframe (a new session
    /// starts with an IDR anyway: this says so).
    pub fn take_for_resume(&mut self, not_yet_resent: VecDeque<Message>) -> VecDeque<Message> {
        self.answered_since_resume = 0;
        let mut frames = std::mem::take(&mut self.unanswered);
        frames.extend(not_yet_resent);
        if let Some(Message::Frame(f)) = frames.front_mut() {
            f.flags |= FLAG_KEYFRAME;
        }
        frames
    }

    /// How many frames are owed.
    pub fn unanswered(&self) -> usize {
        self.unanswered.len()
    }

    fn refuse(&mut self, why: &'static str) {
        self.not_resumable.get_or_insert(why);
        self.unanswered.clear();
    }
}

fn frame_pts(m: &Message) -> i64 {
    match m {
        Message::Frame(f) => f.pts,
        _ => NOPTS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{FrameMsg, PacketMsg};
    use bytes::Bytes;

    fn frame(pts: i64) -> Message {
        Message::Frame(FrameMsg {
            pts,
            duration: 1,
            flags: 0,
            planes: vec![],
            side_data: vec![],
        })
    }

    fn packet(pts: i64) -> Message {
        Message::Packet(PacketMsg {
            pts,
            dts: pts,
            duration: 1,
            flags: 0,
            data: Bytes::from_static(&[0, 0, 0, 1, 0x41]),
            side_data: vec![],
        })
    }

    /// A journal that has sent the frames with pts `0..n`.
    fn sent_frames(n: i64) -> Journal {
        let mut j = Journal::default();
        for pts in 0..n {
            j.sent(&frame(pts));
        }
        j
    }

    fn pts_of(frames: &VecDeque<Message>) -> Vec<(i64, bool)> {
        frames
            .iter()
            .map(|m| match m {
                Message::Frame(f) => (f.pts, f.flags & FLAG_KEYFRAME != 0),
                _ => panic!("not a frame"),
            })
            .collect()
    }

    #[test]
    fn owes_the_frames_after_the_last_packet_and_forces_a_keyframe_first() {
        let mut j = sent_frames(5);
        j.answered(&packet(0));
        j.answered(&packet(1));
        assert_eq!(j.unanswered(), 3);
        assert!(j.progressed());
        assert_eq!(j.not_resumable(), None);
        let again = j.take_for_resume(VecDeque::new());
        assert_eq!(again.len(), 3);
        assert_eq!(pts_of(&again), vec![(2, true), (3, false), (4, false)]);
        assert!(!j.progressed());
        assert_eq!(j.unanswered(), 0);
    }

    #[test]
    fn a_dropped_frame_is_answered_by_the_next_packet() {
        let mut j = sent_frames(4);
        j.answered(&packet(0));
        j.answered(&packet(2)); // the encoder skipped frame 1
        assert_eq!(pts_of(&j.take_for_resume(VecDeque::new())), vec![(3, true)]);
    }

    #[test]
    fn a_resume_that_fails_while_resending_keeps_what_it_had_not_resent() {
        let mut j = sent_frames(6);
        j.answered(&packet(1));
        // Owed: 2, 3, 4, 5. The new session takes 2 and 3, answers 2, and dies before 4 and 5
        // went out.
        let mut again = j.take_for_resume(VecDeque::new());
        for _ in 0..2 {
            j.sent(&again.pop_front().unwrap());
        }
        j.answered(&packet(2));
        let owed = j.take_for_resume(again);
        assert_eq!(
            pts_of(&owed),
            vec![(3, true), (4, false), (5, false)],
            "nothing lost, nothing twice"
        );
    }

    #[test]
    fn reordered_packets_make_the_session_unresumable() {
        let mut j = sent_frames(4);
        j.answered(&packet(0));
        j.answered(&packet(2));
        j.answered(&packet(1));
        assert!(j.not_resumable().unwrap().contains("B-frames"));
        assert_eq!(j.unanswered(), 0);
    }

    #[test]
    fn decode_sessions_and_frames_without_pts_are_not_resumed() {
        let mut j = Journal::default();
        j.sent(&packet(0));
        assert!(j.not_resumable().is_some());
        let mut j = Journal::default();
        j.sent(&frame(NOPTS));
        assert_eq!(j.not_resumable(), Some("a frame has no pts"));
    }
}
