//! Slice headers, read for what they say about references: which picture an access unit is
//! (`frame_num`, IDR id), which long-term references it predicts from, and which pictures it
//! marks as long-term. An encoder shell uses this to know, from its own output, which frames
//! a decoder must hold to decode the next one — the basis of recovering a decoder that missed
//! frames with a P-frame instead of an IDR (H.264 8.2.4.3 and 8.2.5.4).
//!
//! Parsing is h264-reader's; this module keeps the parameter sets seen in band and reduces a
//! header to the reference facts.

use h264_reader::nal::pps::PicParameterSet;
use h264_reader::nal::slice::{
    DecRefPicMarking, MemoryManagementControlOperation, ModificationOfPicNums, NumRefIdxActive,
    RefPicListModifications, SliceFamily, SliceHeader,
};
use h264_reader::nal::sps::SeqParameterSet;
use h264_reader::nal::NalHeader;
use h264_reader::rbsp::BitReader;
use h264_reader::Context;

use crate::nal::{annexb_nals, nal_type, NalType};
use crate::rbsp::ebsp_to_rbsp;
use crate::H264Error;

/// Bytes of a slice NAL unescaped for its header (see [`RefReader::read_annexb`]).
const HEADER_PREFIX: usize = 512;

/// A picture this access unit marks as a long-term reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongTermMark {
    /// `frame_num` of the marked picture (this one, or an earlier short-term reference).
    pub frame_num: u16,
    /// `LongTermFrameIdx` it gets.
    pub long_term_frame_idx: u32,
}

/// The reference facts of one coded picture (its first slice; framecast's encoders code one
/// picture per access unit and give every slice the same reference syntax).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PictureRefs {
    /// `frame_num`.
    pub frame_num: u16,
    /// `MaxFrameNum` of the SPS in force (`frame_num` wraps at it).
    pub max_frame_num: u32,
    /// `idr_pic_id` for IDR pictures.
    pub idr_pic_id: Option<u32>,
    /// `nal_ref_idc != 0`: later pictures may reference this one.
    pub is_reference: bool,
    /// Intra only (I or SI slice).
    pub intra: bool,
    /// Number of list-0 entries a P slice uses.
    pub num_ref_idx_l0_active: u32,
    /// `long_term_pic_num`s the list-0 modification moves to the front, in order. A P slice
    /// whose active list holds only these predicts from long-term references alone.
    pub long_term_refs: Vec<u32>,
    /// `frame_num`s of the short-term pictures the list-0 modification moves to the front, in
    /// order (its leading run of short-term entries; 8.2.4.3.1). The rest of the active list is
    /// the default order: the remaining short-term references, newest `frame_num` first.
    pub short_term_refs: Vec<u16>,
    /// Pictures this one marks as long-term (IDR with `long_term_reference_flag`, MMCO 3, 6).
    pub long_term_marks: Vec<LongTermMark>,
    /// MMCO 5 or an IDR: every earlier reference is gone.
    pub clears_references: bool,
}

impl PictureRefs {
    /// A P picture predicted only from long-term references (its whole active list-0 is moved
    /// there by the modification): a decoder that holds those decodes it, whatever
    /// short-term frames it missed.
    pub fn predicts_only_from_long_term(&self) -> bool {
        !self.intra
            && !self.long_term_refs.is_empty()
            && self.long_term_refs.len() as u32 >= self.num_ref_idx_l0_active
    }
}

/// Reads [`PictureRefs`] from access units, keeping the SPS and PPS seen in band.
#[derive(Debug, Default)]
pub struct RefReader {
    ctx: Context,
}

impl RefReader {
    /// No parameter sets yet: the first access unit must carry them (framecast's keyframes do).
    pub fn new() -> Self {
        Self::default()
    }

    /// Read an Annex B access unit. `Ok(None)`: it has no slice.
    pub fn read_annexb(&mut self, access_unit: &[u8]) -> Result<Option<PictureRefs>, H264Error> {
        let mut first = None;
        for nal in annexb_nals(access_unit) {
            match nal_type(nal) {
                Some(NalType::Sps) => {
                    let rbsp = ebsp_to_rbsp(&nal[1..]);
                    let sps = SeqParameterSet::from_bits(BitReader::new(&rbsp[..]))
                        .map_err(|e| H264Error::InvalidSps(format!("{e:?}")))?;
                    self.ctx.put_seq_param_set(sps);
                }
                Some(NalType::Pps) => {
                    let rbsp = ebsp_to_rbsp(&nal[1..]);
                    let pps = PicParameterSet::from_bits(&self.ctx, BitReader::new(&rbsp[..]))
                        .map_err(|e| H264Error::Unsupported(format!("PPS: {e:?}")))?;
                    self.ctx.put_pic_param_set(pps);
                }
                Some(NalType::IdrSlice | NalType::NonIdrSlice) if first.is_none() => {
                    first = Some(self.read_slice(nal)?);
                }
                _ => {}
            }
        }
        Ok(first)
    }

    fn read_slice(&self, nal: &[u8]) -> Result<PictureRefs, H264Error> {
        let header = NalHeader::new(nal[0])
            .map_err(|e| H264Error::Unsupported(format!("NAL header: {e:?}")))?;
        // The header is a few dozen bytes at the front of a slice that can be tens of
        // kilobytes: unescape only a prefix (this runs on every encoded frame), and the whole
        // NAL only if a header were ever longer than that.
        let parse = |body: &[u8]| {
            let rbsp = ebsp_to_rbsp(body);
            SliceHeader::from_bits(&self.ctx, &mut BitReader::new(&rbsp[..]), header, None).map(
                |(slice, sps, pps)| {
                    (
                        slice,
                        sps.log2_max_frame_num(),
                        pps.num_ref_idx_l0_default_active_minus1,
                    )
                },
            )
        };
        let body = &nal[1..];
        let (slice, log2_max_frame_num, default_l0_minus1) =
            parse(&body[..body.len().min(HEADER_PREFIX)])
                .or_else(|_| parse(body))
                .map_err(|e| H264Error::Unsupported(format!("slice header: {e:?}")))?;
        let max_frame_num = 1u32 << log2_max_frame_num;
        let intra = matches!(slice.slice_type.family, SliceFamily::I | SliceFamily::SI);
        let num_ref_idx_l0_active = match &slice.num_ref_idx_active {
            Some(NumRefIdxActive::P {
                num_ref_idx_l0_active_minus1,
            }) => num_ref_idx_l0_active_minus1 + 1,
            Some(NumRefIdxActive::B {
                num_ref_idx_l0_active_minus1,
                ..
            }) => num_ref_idx_l0_active_minus1 + 1,
            None if intra => 0,
            None => default_l0_minus1 + 1,
        };
        let long_term_refs = match &slice.ref_pic_list_modification {
            Some(
                RefPicListModifications::P {
                    ref_pic_list_modification_l0,
                }
                | RefPicListModifications::B {
                    ref_pic_list_modification_l0,
                    ..
                },
            ) => ref_pic_list_modification_l0
                .iter()
                // Only a leading run of long-term entries counts: anything before them puts a
                // short-term picture first.
                .map_while(|m| match m {
                    ModificationOfPicNums::LongTermRef(n) => Some(*n),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        let frame_num = slice.frame_num;
        let short_term_refs = match &slice.ref_pic_list_modification {
            Some(
                RefPicListModifications::P {
                    ref_pic_list_modification_l0,
                }
                | RefPicListModifications::B {
                    ref_pic_list_modification_l0,
                    ..
                },
            ) => {
                // picNumLXPred starts at CurrPicNum (= frame_num for frames) and follows each
                // entry; for frames a short-term picture's frame_num is its picNumLXNoWrap.
                let max = i64::from(max_frame_num);
                let mut pred = i64::from(frame_num);
                ref_pic_list_modification_l0
                    .iter()
                    .map_while(|m| {
                        let step = match m {
                            ModificationOfPicNums::Subtract(n) => -(i64::from(*n) + 1),
                            ModificationOfPicNums::Add(n) => i64::from(*n) + 1,
                            _ => return None,
                        };
                        pred = (pred + step).rem_euclid(max);
                        Some(pred as u16)
                    })
                    .collect()
            }
            _ => Vec::new(),
        };
        let wrap = |back: u32| {
            ((frame_num as u32 + max_frame_num - back % max_frame_num) % max_frame_num) as u16
        };
        let mut long_term_marks = Vec::new();
        let mut clears_references = slice.idr_pic_id.is_some();
        match &slice.dec_ref_pic_marking {
            Some(DecRefPicMarking::Idr {
                long_term_reference_flag: true,
                ..
            }) => long_term_marks.push(LongTermMark {
                frame_num,
                long_term_frame_idx: 0,
            }),
            Some(DecRefPicMarking::Adaptive(ops)) => {
                for op in ops {
                    match op {
                        MemoryManagementControlOperation::ShortTermUsedForLongTerm {
                            difference_of_pic_nums_minus1,
                            long_term_frame_idx,
                        } => long_term_marks.push(LongTermMark {
                            // Frames (not fields): picNumX = CurrPicNum - (diff + 1), and a
                            // frame's PicNum is its FrameNumWrap (8.2.4.1, 8.2.5.4.3).
                            frame_num: wrap(difference_of_pic_nums_minus1 + 1),
                            long_term_frame_idx: *long_term_frame_idx,
                        }),
                        MemoryManagementControlOperation::CurrentUsedForLongTerm {
                            long_term_frame_idx,
                        } => long_term_marks.push(LongTermMark {
                            frame_num,
                            long_term_frame_idx: *long_term_frame_idx,
                        }),
                        MemoryManagementControlOperation::AllRefPicturesUnused => {
                            clears_references = true;
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        Ok(PictureRefs {
            frame_num,
            max_frame_num,
            idr_pic_id: slice.idr_pic_id,
            is_reference: header.nal_ref_idc() != 0,
            intra,
            num_ref_idx_l0_active,
            long_term_refs,
            short_term_refs,
            long_term_marks,
            clears_references,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbsp::{rbsp_to_ebsp, BitWriter};

    // x264, baseline, 1280x720: pic_order_cnt_type 2, MaxFrameNum 16; its PPS has
    // deblocking_filter_control_present_flag set and num_ref_idx_l0_default_active 3.
    const SPS: [u8; 25] = [
        0x67, 0x42, 0xc0, 0x1f, 0xd9, 0x00, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00,
        0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x24, 0x80,
    ];
    const PPS: [u8; 6] = [0x68, 0xcb, 0x80, 0x65, 0x2c, 0x80];

    fn access_unit(header: u8, body: impl FnOnce(&mut BitWriter)) -> Vec<u8> {
        let mut w = BitWriter::new();
        body(&mut w);
        w.write_se(0); // slice_qp_delta
        w.write_ue(0); // disable_deblocking_filter_idc
        w.write_se(0);
        w.write_se(0);
        w.write_bits(0xff, 8); // a little slice data
        w.write_rbsp_trailing_bits();
        let mut nal = vec![header];
        nal.extend(rbsp_to_ebsp(&w.into_bytes()));
        let mut au = Vec::new();
        for n in [&SPS[..], &PPS[..], &nal[..]] {
            au.extend([0, 0, 0, 1]);
            au.extend(n);
        }
        au
    }

    #[test]
    fn idr_with_long_term_flag_marks_itself() {
        let au = access_unit(0x65, |w| {
            w.write_ue(0); // first_mb_in_slice
            w.write_ue(7); // I, all slices
            w.write_ue(0); // pps
            w.write_bits(0, 4); // frame_num
            w.write_ue(3); // idr_pic_id
            w.write_flag(false); // no_output_of_prior_pics
            w.write_flag(true); // long_term_reference_flag
        });
        let refs = RefReader::new().read_annexb(&au).unwrap().unwrap();
        assert_eq!(refs.idr_pic_id, Some(3));
        assert!(refs.intra && refs.clears_references && refs.is_reference);
        assert_eq!(
            refs.long_term_marks,
            [LongTermMark {
                frame_num: 0,
                long_term_frame_idx: 0
            }]
        );
        assert!(!refs.predicts_only_from_long_term());
    }

    #[test]
    fn p_slice_from_a_long_term_reference_marking_an_earlier_frame() {
        let au = access_unit(0x41, |w| {
            w.write_ue(0);
            w.write_ue(5); // P, all slices
            w.write_ue(0);
            w.write_bits(2, 4); // frame_num 2
            w.write_flag(true); // num_ref_idx_active_override_flag
            w.write_ue(0); // one reference
            w.write_flag(true); // ref_pic_list_modification_flag_l0
            w.write_ue(2); // long_term_pic_num follows
            w.write_ue(1);
            w.write_ue(3); // end
            w.write_flag(true); // adaptive_ref_pic_marking_mode_flag
            w.write_ue(3); // MMCO 3: short-term -> long-term
            w.write_ue(4); // difference_of_pic_nums_minus1: 2 - 5 wraps to 13
            w.write_ue(0); // long_term_frame_idx
            w.write_ue(0); // end
        });
        let refs = RefReader::new().read_annexb(&au).unwrap().unwrap();
        assert_eq!((refs.frame_num, refs.max_frame_num), (2, 16));
        assert_eq!(refs.idr_pic_id, None);
        assert_eq!(refs.num_ref_idx_l0_active, 1);
        assert_eq!(refs.long_term_refs, [1]);
        assert!(refs.predicts_only_from_long_term());
        assert_eq!(
            refs.long_term_marks,
            [LongTermMark {
                frame_num: 13,
                long_term_frame_idx: 0
            }]
        );
    }

    #[test]
    fn plain_p_slice_uses_the_default_list_and_short_term_references() {
        let au = access_unit(0x41, |w| {
            w.write_ue(0);
            w.write_ue(5);
            w.write_ue(0);
            w.write_bits(7, 4);
            w.write_flag(false); // no override: the PPS default (3)
            w.write_flag(false); // no list modification
            w.write_flag(false); // sliding window
        });
        let refs = RefReader::new().read_annexb(&au).unwrap().unwrap();
        assert_eq!(refs.num_ref_idx_l0_active, 3);
        assert!(refs.long_term_refs.is_empty() && refs.long_term_marks.is_empty());
        assert!(!refs.predicts_only_from_long_term() && !refs.clears_references);
    }

    #[test]
    fn a_slice_before_its_parameter_sets_is_an_error_not_a_panic() {
        // pps 0 is unknown to a fresh reader.
        let r = RefReader::new().read_annexb(&[0, 0, 0, 1, 0x41, 0x9a, 0x00, 0x80]);
        assert!(r.is_err(), "{r:?}");
        // No slice at all: nothing to report.
        let only_sets = [&[0u8, 0, 0, 1][..], &SPS, &[0, 0, 0, 1], &PPS].concat();
        assert_eq!(RefReader::new().read_annexb(&only_sets).unwrap(), None);
    }
}
