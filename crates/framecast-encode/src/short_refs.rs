//! Short-term reference bookkeeping for recovery without a keyframe in encoders that recover
//! by invalidating references (x264's `x264_encoder_invalidate_reference`), read from the
//! encoder's own output (sans-IO: access units and "displayed" reports in, decisions out).
//!
//! The encoder keeps the last `dpb` reference frames. To bring back a decoder that missed
//! frames, the caller picks the newest of them that every decoder displayed, tells the encoder
//! that every later reference is unusable, and the next frame is predicted only from frames up
//! to the chosen one. [`RefBook`] keeps the window of reference frames as the decoder's sliding
//! window holds them, picks the reference, remembers which frames were given up (the encoder
//! never uses them again), and checks from the recovery frame's slice header that its whole
//! active list-0 really is frames no later than the chosen one before reporting it: nothing
//! here trusts the encoder's intent.

use framecast_h264::slice::PictureRefs;
use std::collections::VecDeque;

/// One reference frame in the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    token: u64,
    /// The encoder's own timestamp of the frame (what invalidation is expressed in).
    pts: i64,
    frame_num: u16,
    /// Given up by an earlier recovery: the encoder never predicts from it again.
    invalid: bool,
}

/// A recovery the caller asked for: predict the next frame from frames up to `token` only,
/// after invalidating every reference from encoder timestamp `invalidate_from` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recovery {
    /// Token of the newest frame the recovery frame may predict from.
    pub token: u64,
    /// The encoder timestamp to invalidate from (the chosen frame's plus one).
    pub invalidate_from: i64,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct RefBook {
    dpb: usize,
    held: VecDeque<Held>,
    max_frame_num: u32,
    /// Every decoder displayed up to this token.
    displayed: Option<u64>,
    promised: Option<Recovery>,
}

impl RefBook {
    /// A book for an encoder that keeps `dpb` reference frames (the SPS's max_num_ref_frames).
    pub(crate) fn new(dpb: usize) -> Self {
        RefBook {
            dpb: dpb.max(1),
            held: VecDeque::new(),
            max_frame_num: 1 << 16,
            displayed: None,
            promised: None,
        }
    }

    /// Every decoder displayed the frame of `token` and everything before it.
    pub(crate) fn displayed(&mut self, token: u64) {
        self.displayed = Some(self.displayed.map_or(token, |d| d.max(token)));
    }

    /// Choose the reference for a recovery frame for a decoder that displayed up to
    /// `last_displayed`: the newest held, still valid frame no later than that which every
    /// decoder displayed. Frames after it are given up.
    pub(crate) fn recover(&mut self, last_displayed: u64) -> Option<Recovery> {
        let limit = last_displayed.min(self.displayed?);
        let chosen = *self
            .held
            .iter()
            .rev()
            .find(|h| !h.invalid && h.token <= limit)?;
        for h in self.held.iter_mut().filter(|h| h.pts > chosen.pts) {
            h.invalid = true;
        }
        let recovery = Recovery {
            token: chosen.token,
            invalidate_from: chosen.pts + 1,
        };
        self.promised = Some(recovery);
        Some(recovery)
    }

    /// Read the reference facts of one output access unit (encoder timestamp `pts`). Returns
    /// the token the unit recovers from when it is the promised recovery frame and its slice
    /// header shows it predicts only from frames up to that one.
    pub(crate) fn output(&mut self, token: u64, pts: i64, refs: &PictureRefs) -> Option<u64> {
        let promised = self.promised.take();
        self.max_frame_num = refs.max_frame_num;
        if refs.clears_references {
            self.held.clear();
        }
        let recovered = promised
            .filter(|p| !refs.intra && self.active_list_up_to(refs, p.token))
            .map(|p| p.token);
        if refs.is_reference {
            if self.held.len() == self.dpb {
                self.held.pop_front();
            }
            self.held.push_back(Held {
                token,
                pts,
                frame_num: refs.frame_num,
                invalid: false,
            });
        }
        recovered
    }

    /// Whether every entry of the picture's active list-0 is a held frame no later than
    /// `token`: the modification's entries first, then the other held frames, newest first
    /// (8.2.4.2.1: descending FrameNumWrap).
    fn active_list_up_to(&self, refs: &PictureRefs, token: u64) -> bool {
        if !refs.long_term_refs.is_empty() {
            return false;
        }
        let by_frame_num = |n: u16| self.held.iter().find(|h| h.frame_num == n);
        let wrap = |n: u16| {
            let n = i64::from(n);
            if n > i64::from(refs.frame_num) {
                n - i64::from(self.max_frame_num)
            } else {
                n
            }
        };
        let mut rest: Vec<&Held> = self
            .held
            .iter()
            .filter(|h| !refs.short_term_refs.contains(&h.frame_num))
            .collect();
        rest.sort_by_key(|h| std::cmp::Reverse(wrap(h.frame_num)));
        let modified: Option<Vec<&Held>> = refs
            .short_term_refs
            .iter()
            .map(|&n| by_frame_num(n))
            .collect();
        let Some(mut list) = modified else {
            return false; // names a frame the decoder does not hold
        };
        list.extend(rest);
        let active = refs.num_ref_idx_l0_active as usize;
        active > 0 && list.len() >= active && list[..active].iter().all(|h| h.token <= token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(frame_num: u16, idr: bool, modification: &[u16], active: u32) -> PictureRefs {
        PictureRefs {
            frame_num,
            max_frame_num: 16,
            idr_pic_id: idr.then_some(0),
            is_reference: true,
            intra: idr,
            num_ref_idx_l0_active: active,
            long_term_refs: Vec::new(),
            short_term_refs: modification.to_vec(),
            long_term_marks: Vec::new(),
            clears_references: idr,
        }
    }

    /// IDR (token 0, frame_num 0), then P-frames 1..=4 with frame_num = token.
    fn book_with_five() -> RefBook {
        let mut b = RefBook::new(4);
        assert_eq!(b.output(0, 0, &refs(0, true, &[], 0)), None);
        for t in 1..=4u16 {
            assert_eq!(b.output(t.into(), t.into(), &refs(t, false, &[], 1)), None);
        }
        b
    }

    #[test]
    fn recovers_from_the_newest_frame_everyone_displayed_and_checks_the_header() {
        let mut b = book_with_five();
        // No display report yet: nothing is known to be held by every decoder.
        assert_eq!(b.recover(3), None);
        b.displayed(2);
        let r = b.recover(3).unwrap();
        assert_eq!(
            r,
            Recovery {
                token: 2,
                invalidate_from: 3
            }
        );
        // The recovery frame (frame_num 5) moves frame_num 2 to the front, one active entry.
        assert_eq!(b.output(5, 5, &refs(5, false, &[2], 1)), Some(2));
        // Frames 3 and 4 were given up: a later recovery never chooses them.
        b.displayed(5);
        assert_eq!(b.recover(4).map(|r| r.token), Some(2));
    }

    #[test]
    fn a_header_predicting_from_a_later_frame_is_not_a_recovery() {
        let mut b = book_with_five();
        b.displayed(2);
        b.recover(2).unwrap();
        // Default order (no modification): newest first = frame 4, later than 2.
        assert_eq!(b.output(5, 5, &refs(5, false, &[], 1)), None);
        b.recover(2).unwrap();
        // Two active entries: frame 2 first, then the newest other (5): not only up to 2.
        assert_eq!(b.output(6, 6, &refs(6, false, &[2], 2)), None);
    }

    #[test]
    fn frames_beyond_the_window_or_before_an_idr_cannot_be_chosen() {
        let mut b = book_with_five();
        // The window holds frames 1..=4 (dpb 4): the IDR slid out.
        b.displayed(0);
        assert_eq!(b.recover(0), None);
        assert_eq!(b.output(5, 5, &refs(0, true, &[], 0)), None);
        b.displayed(4);
        assert_eq!(b.recover(4), None);
        b.displayed(5);
        assert_eq!(b.recover(5).map(|r| r.token), Some(5));
    }
}
