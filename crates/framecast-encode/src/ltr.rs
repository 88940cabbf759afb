//! Long-term reference bookkeeping for recovery without a keyframe, read from the encoder's
//! own output (sans-IO: access units and "displayed" reports in, decisions out).
//!
//! A backend with long-term references (OpenH264) marks a picture as long-term now and then
//! and waits to hear that decoders hold it before relying on it. [`LtrBook`] reads each access
//! unit's slice header to learn which picture was marked and by which access unit, turns
//! [`crate::Encoder::displayed`] reports into "this mark is confirmed" (the feedback the
//! backend needs), and checks that a recovery frame really predicts only from the confirmed
//! reference before it is reported as one. Nothing here trusts the backend's intent: a
//! recovery is reported only when the bitstream says so.

use framecast_h264::slice::{PictureRefs, RefReader};
use std::collections::VecDeque;

/// A long-term mark: the access unit that made it (decoders hold the reference once they
/// have decoded that one) and the marked picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    /// Token of the access unit carrying the mark.
    pub token: u64,
    /// `frame_num` of the marked picture.
    pub frame_num: u16,
    /// Its `LongTermFrameIdx` (= `LongTermPicNum` for frames).
    pub idx: u32,
    /// The IDR's own mark: the backend confirms it by itself, no feedback is sent.
    pub idr: bool,
}

/// Marking feedback for the backend: a mark every decoder holds, or one a decoder missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Feedback {
    /// `idr_pic_id` of the IDR period the mark belongs to.
    pub idr_pic_id: u32,
    /// `frame_num` of the long-term picture.
    pub frame_num: u16,
    /// Every decoder holds it (`true`), or some decoder may not (`false`: drop it).
    pub success: bool,
}

/// What [`LtrBook::output`] found in an access unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Output {
    /// It is the promised recovery frame, predicted only from the frame of this token.
    pub recovery_from: Option<u64>,
    /// A mark made before this recovery frame that a decoder which missed frames may lack:
    /// tell the backend it failed, so it neither relies on it nor waits for it.
    pub failed: Option<Feedback>,
}

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct LtrBook {
    reader: RefReader,
    idr_pic_id: Option<u32>,
    /// Marks made since the last IDR and not yet displayed by every decoder, oldest first.
    pending: VecDeque<Mark>,
    /// Confirmed by the caller, feedback sent; the backend applies it after its next encode.
    confirming: Option<Mark>,
    /// The reference the backend will use for a recovery frame.
    confirmed: Option<Mark>,
    /// A recovery frame was requested from `confirmed` for the next access unit.
    promised: Option<Mark>,
}

impl LtrBook {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Every decoder displayed the access unit of `token` and all before it. Returns the
    /// marking feedback to give the backend, if this confirms a mark that needs one.
    pub(crate) fn displayed(&mut self, token: u64) -> Option<Feedback> {
        let mut feedback = None;
        while let Some(mark) = self.pending.front().copied() {
            if mark.token > token {
                break;
            }
            self.pending.pop_front();
            if mark.idr {
                self.confirmed = Some(mark);
            } else {
                self.confirming = Some(mark);
                feedback = self.idr_pic_id.map(|idr_pic_id| Feedback {
                    idr_pic_id,
                    frame_num: mark.frame_num,
                    success: true,
                });
            }
        }
        feedback
    }

    /// A recovery frame is wanted for a decoder that displayed up to `last_displayed`:
    /// the confirmed reference, if it is no later than that. The caller asks the backend for
    /// it and then encodes the next frame.
    pub(crate) fn recover(&mut self, last_displayed: u64) -> Option<Mark> {
        let mark = self.confirmed.filter(|m| m.token <= last_displayed)?;
        self.promised = Some(mark);
        Some(mark)
    }

    /// `idr_pic_id` of the current IDR period.
    pub(crate) fn idr_pic_id(&self) -> Option<u32> {
        self.idr_pic_id
    }

    /// Read one output access unit (Annex B): whether it is the promised recovery frame
    /// (predicting only from that reference), and what the backend must be told.
    ///
    /// After a recovery frame, "every decoder displayed up to token t" no longer means every
    /// decoder saw every frame up to t: the one that was recovered skipped some. So the marks
    /// still waiting for confirmation, all made before the recovery frame, are dropped (the
    /// backend is told they failed) rather than confirmed later by displays that skipped them.
    pub(crate) fn output(
        &mut self,
        token: u64,
        access_unit: &[u8],
    ) -> Result<Output, framecast_h264::H264Error> {
        let promised = self.promised.take();
        let Some(refs) = self.reader.read_annexb(access_unit)? else {
            return Ok(Output::default());
        };
        if let Some(id) = refs.idr_pic_id {
            self.idr_pic_id = Some(id);
            self.pending.clear();
            self.confirming = None;
            self.confirmed = None;
        } else if let Some(mark) = self.confirming.take() {
            // The backend applies marking feedback while it updates its references after a
            // P-frame: from the next frame on, this is the reference it recovers from.
            self.confirmed = Some(mark);
        }
        let recovery_from = promised
            .filter(|m| refs.predicts_only_from_long_term() && refs.long_term_refs == [m.idx])
            .map(|m| m.token);
        let mut failed = None;
        if recovery_from.is_some() {
            // Only a mark that needed feedback is one the backend waits for.
            let missed = self.pending.drain(..).rfind(|m| !m.idr);
            failed = missed.zip(self.idr_pic_id).map(|(m, idr_pic_id)| Feedback {
                idr_pic_id,
                frame_num: m.frame_num,
                success: false,
            });
        }
        self.record_marks(token, &refs);
        Ok(Output {
            recovery_from,
            failed,
        })
    }

    fn record_marks(&mut self, token: u64, refs: &PictureRefs) {
        let idr = refs.idr_pic_id.is_some();
        for m in &refs.long_term_marks {
            // A new mark at an index replaces whatever held that index.
            self.pending.retain(|p| p.idx != m.long_term_frame_idx);
            self.pending.push_back(Mark {
                token,
                frame_num: m.frame_num,
                idx: m.long_term_frame_idx,
                idr,
            });
        }
    }
}
