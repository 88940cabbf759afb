//! Sequence parameter sets: parsing into a summary ([`SpsInfo`]) and rewriting the VUI
//! (colour, no reordering, DPB size) and cropping while preserving every other field bit-exactly.
//!
//! # Cropping and odd display sizes
//!
//! H.264 crops in *crop units* (7.4.2.1.1, equations 7-19..7-22): with `ChromaArrayType` 0
//! (monochrome or separate colour planes) `CropUnitX = 1` and `CropUnitY = 2 - frame_mbs_only_flag`;
//! otherwise `CropUnitX = SubWidthC` and `CropUnitY = SubHeightC * (2 - frame_mbs_only_flag)`
//! (Table 6-1: 4:2:0 has SubWidthC = SubHeightC = 2, 4:2:2 has 2 and 1, 4:4:4 has 1 and 1).
//! A 4:2:0 progressive stream can therefore only display even widths and heights: a 33x17
//! picture cannot be signalled exactly. [`representable_display_size`] gives the smallest size
//! the SPS can express that is at least the requested one (34x18 for 33x17), and
//! [`rewrite_sps`] crops to that size.

use h264_reader::nal::sps::{
    BitstreamRestrictions, ChromaFormat, ColourDescription as ReaderColour, FrameCropping,
    FrameMbsFlags, HrdParameters, PicOrderCntType, ScalingLists8x8, SeqParameterSet, VideoFormat,
    VideoSignalType, VuiParameters,
};

use crate::nal::{nal_type, NalType};
use crate::rbsp::{ebsp_to_rbsp, rbsp_to_ebsp, BitWriter};
use crate::H264Error;

/// Frame cropping offsets, in crop units as coded (`frame_crop_*_offset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Crop {
    /// frame_crop_left_offset.
    pub left: u32,
    /// frame_crop_right_offset.
    pub right: u32,
    /// frame_crop_top_offset.
    pub top: u32,
    /// frame_crop_bottom_offset.
    pub bottom: u32,
}

/// VUI colour description (H.264 E.2.1, codes of ITU-T H.273).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ColourDescription {
    /// colour_primaries (1 = BT.709, 2 = unspecified, 6 = SMPTE 170M, ...).
    pub colour_primaries: u8,
    /// transfer_characteristics (1 = BT.709, 13 = sRGB, ...).
    pub transfer_characteristics: u8,
    /// matrix_coefficients (0 = identity/RGB, 1 = BT.709, 5/6 = BT.601, ...).
    pub matrix_coefficients: u8,
}

/// VUI timing information.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timing {
    /// num_units_in_tick.
    pub num_units_in_tick: u32,
    /// time_scale.
    pub time_scale: u32,
    /// fixed_frame_rate_flag.
    pub fixed_frame_rate_flag: bool,
}

/// VUI bitstream restriction fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BitstreamRestriction {
    /// motion_vectors_over_pic_boundaries_flag.
    pub motion_vectors_over_pic_boundaries_flag: bool,
    /// max_bytes_per_pic_denom.
    pub max_bytes_per_pic_denom: u32,
    /// max_bits_per_mb_denom.
    pub max_bits_per_mb_denom: u32,
    /// log2_max_mv_length_horizontal.
    pub log2_max_mv_length_horizontal: u32,
    /// log2_max_mv_length_vertical.
    pub log2_max_mv_length_vertical: u32,
    /// max_num_reorder_frames: 0 means a decoder may output every frame at once.
    pub max_num_reorder_frames: u32,
    /// max_dec_frame_buffering (DPB size in frames).
    pub max_dec_frame_buffering: u32,
}

/// The VUI fields framecast cares about.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VuiInfo {
    /// video_signal_type_present_flag.
    pub video_signal_type_present: bool,
    /// video_format (5 = unspecified, also the value when absent).
    pub video_format: u8,
    /// video_full_range_flag (false when absent).
    pub video_full_range_flag: bool,
    /// Colour description, when present.
    pub colour: Option<ColourDescription>,
    /// Timing information, when present.
    pub timing: Option<Timing>,
    /// Bitstream restrictions, when present.
    pub bitstream_restriction: Option<BitstreamRestriction>,
}

/// A summary of a sequence parameter set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpsInfo {
    /// profile_idc (66 baseline, 77 main, 100 high, ...).
    pub profile_idc: u8,
    /// The byte of constraint_set0..5 flags and reserved_zero_2bits.
    pub constraint_flags: u8,
    /// level_idc (e.g. 31 for level 3.1).
    pub level_idc: u8,
    /// seq_parameter_set_id.
    pub sps_id: u32,
    /// chroma_format_idc (0 mono, 1 4:2:0, 2 4:2:2, 3 4:4:4; 1 when not coded).
    pub chroma_format_idc: u32,
    /// Luma bit depth.
    pub bit_depth_luma: u8,
    /// Chroma bit depth.
    pub bit_depth_chroma: u8,
    /// max_num_ref_frames.
    pub max_num_ref_frames: u32,
    /// gaps_in_frame_num_value_allowed_flag: a decoder meeting a frame_num gap infers the
    /// missing frames (8.2.5.2) rather than reporting loss.
    pub gaps_in_frame_num_allowed: bool,
    /// frame_mbs_only_flag (false: the stream may contain field pictures or MBAFF).
    pub frame_mbs_only: bool,
    /// pic_order_cnt_type (0, 1 or 2).
    pub pic_order_cnt_type: u32,
    /// Width after frame cropping (what a decoder displays).
    pub width: u32,
    /// Height after frame cropping (what a decoder displays).
    pub height: u32,
    /// Width in macroblocks * 16 (before cropping).
    pub coded_width: u32,
    /// Height in macroblocks * 16, frame height for field-coded streams (before cropping).
    pub coded_height: u32,
    /// Frame cropping, when frame_cropping_flag is set.
    pub crop: Option<Crop>,
    /// VUI, when vui_parameters_present_flag is set.
    pub vui: Option<VuiInfo>,
}

impl SpsInfo {
    /// Crop units `(CropUnitX, CropUnitY)` in luma samples (H.264 eq. 7-19..7-22).
    pub fn crop_units(&self) -> (u32, u32) {
        crop_units(self.chroma_format_idc, self.frame_mbs_only)
    }
}

fn crop_units(chroma_format_idc: u32, frame_mbs_only: bool) -> (u32, u32) {
    let field_factor = if frame_mbs_only { 1 } else { 2 };
    // (SubWidthC, SubHeightC) from Table 6-1; ChromaArrayType 0 uses 1 and 1. With 4:4:4 and
    // separate_colour_plane_flag = 1, ChromaArrayType is 0 but SubWidthC/SubHeightC are 1 as
    // well, so the flag does not change the result.
    let (sub_w, sub_h) = match chroma_format_idc {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    (sub_w, sub_h * field_factor)
}

/// The smallest display size that an SPS with `info`'s chroma format and frame/field coding can
/// signal through cropping and that is at least `width` x `height`: each dimension rounded up to
/// its crop unit (see the [module docs](self)), and at most the coded size.
pub fn representable_display_size(info: &SpsInfo, width: u32, height: u32) -> (u32, u32) {
    let (ux, uy) = info.crop_units();
    let w = width.div_ceil(ux).saturating_mul(ux).min(info.coded_width);
    let h = height
        .div_ceil(uy)
        .saturating_mul(uy)
        .min(info.coded_height);
    (w, h)
}

/// Parse the RBSP of an SPS NAL with h264-reader; returns the parsed SPS and the RBSP.
fn read_sps(nal: &[u8]) -> Result<(SeqParameterSet, Vec<u8>), H264Error> {
    let found = nal_type(nal).ok_or(H264Error::EmptyNal)?;
    if found != NalType::Sps {
        return Err(H264Error::UnexpectedNalType {
            expected: NalType::Sps,
            found,
            header: nal[0],
        });
    }
    let rbsp = ebsp_to_rbsp(&nal[1..]).into_owned();
    let sps = SeqParameterSet::from_bits(h264_reader::rbsp::BitReader::new(&rbsp[..]))
        .map_err(|e| H264Error::InvalidSps(format!("{e:?}")))?;
    if let ChromaFormat::Invalid(v) = sps.chroma_info.chroma_format {
        return Err(H264Error::SpsFieldOutOfRange {
            field: "chroma_format_idc",
            value: v.into(),
            allowed: "0..=3",
        });
    }
    Ok((sps, rbsp))
}

fn pic_order_cnt_type(sps: &SeqParameterSet) -> u32 {
    match sps.pic_order_cnt {
        PicOrderCntType::TypeZero { .. } => 0,
        PicOrderCntType::TypeOne { .. } => 1,
        PicOrderCntType::TypeTwo => 2,
    }
}

fn info_from(sps: &SeqParameterSet) -> Result<SpsInfo, H264Error> {
    let chroma_format_idc = sps.chroma_info.chroma_format.to_u32();
    let frame_mbs_only = matches!(sps.frame_mbs_flags, FrameMbsFlags::Frames);
    // h264-reader bounds the picture size by the level's MaxFS, so these cannot overflow; use
    // checked arithmetic anyway so garbage never panics.
    let too_large = |field, value: u32| H264Error::SpsFieldOutOfRange {
        field,
        value: value.into(),
        allowed: "a picture size that fits in u32 samples",
    };
    let coded_width = sps
        .pic_width_in_mbs_minus1
        .checked_add(1)
        .and_then(|v| v.checked_mul(16))
        .ok_or_else(|| too_large("pic_width_in_mbs_minus1", sps.pic_width_in_mbs_minus1))?;
    let coded_height = sps
        .pic_height_in_map_units_minus1
        .checked_add(1)
        .and_then(|v| v.checked_mul(if frame_mbs_only { 16 } else { 32 }))
        .ok_or_else(|| {
            too_large(
                "pic_height_in_map_units_minus1",
                sps.pic_height_in_map_units_minus1,
            )
        })?;
    let (ux, uy) = crop_units(chroma_format_idc, frame_mbs_only);
    let crop = sps.frame_cropping.as_ref().map(|c| Crop {
        left: c.left_offset,
        right: c.right_offset,
        top: c.top_offset,
        bottom: c.bottom_offset,
    });
    let (width, height) = match crop {
        None => (coded_width, coded_height),
        Some(c) => {
            let cropped = |size: u32, a: u32, b: u32, unit: u32| {
                let removed = u64::from(a) * u64::from(unit) + u64::from(b) * u64::from(unit);
                // 7.4.2.1.1 requires a non-empty picture.
                (removed < u64::from(size)).then(|| size - removed as u32)
            };
            match (
                cropped(coded_width, c.left, c.right, ux),
                cropped(coded_height, c.top, c.bottom, uy),
            ) {
                (Some(w), Some(h)) => (w, h),
                _ => {
                    return Err(H264Error::CroppingExceedsPicture {
                        left: c.left,
                        right: c.right,
                        top: c.top,
                        bottom: c.bottom,
                        coded_width,
                        coded_height,
                    });
                }
            }
        }
    };
    let vui = sps.vui_parameters.as_ref().map(|v| {
        let vst = v.video_signal_type.as_ref();
        VuiInfo {
            video_signal_type_present: vst.is_some(),
            video_format: vst.map_or(5, |s| s.video_format.to_u8()),
            video_full_range_flag: vst.is_some_and(|s| s.video_full_range_flag),
            colour: vst
                .and_then(|s| s.colour_description.as_ref())
                .map(|c| ColourDescription {
                    colour_primaries: c.colour_primaries,
                    transfer_characteristics: c.transfer_characteristics,
                    matrix_coefficients: c.matrix_coefficients,
                }),
            timing: v.timing_info.as_ref().map(|t| Timing {
                num_units_in_tick: t.num_units_in_tick,
                time_scale: t.time_scale,
                fixed_frame_rate_flag: t.fixed_frame_rate_flag,
            }),
            bitstream_restriction: v.bitstream_restrictions.as_ref().map(|b| {
                BitstreamRestriction {
                    motion_vectors_over_pic_boundaries_flag: b
                        .motion_vectors_over_pic_boundaries_flag,
                    max_bytes_per_pic_denom: b.max_bytes_per_pic_denom,
                    max_bits_per_mb_denom: b.max_bits_per_mb_denom,
                    log2_max_mv_length_horizontal: b.log2_max_mv_length_horizontal,
                    log2_max_mv_length_vertical: b.log2_max_mv_length_vertical,
                    max_num_reorder_frames: b.max_num_reorder_frames,
                    max_dec_frame_buffering: b.max_dec_frame_buffering,
                }
            }),
        }
    });
    Ok(SpsInfo {
        profile_idc: sps.profile_idc.into(),
        constraint_flags: sps.constraint_flags.into(),
        level_idc: sps.level_idc,
        sps_id: sps.seq_parameter_set_id.id().into(),
        chroma_format_idc,
        bit_depth_luma: sps.chroma_info.bit_depth_luma_minus8 + 8,
        bit_depth_chroma: sps.chroma_info.bit_depth_chroma_minus8 + 8,
        max_num_ref_frames: sps.max_num_ref_frames,
        gaps_in_frame_num_allowed: sps.gaps_in_frame_num_value_allowed_flag,
        frame_mbs_only,
        pic_order_cnt_type: pic_order_cnt_type(sps),
        width,
        height,
        coded_width,
        coded_height,
        crop,
        vui,
    })
}

/// Parse an SPS NAL unit (header byte included, emulation prevention present) using
/// h264-reader.
///
/// ```
/// // x264, baseline, 1280x720, level 3.1
/// let sps = [0x67, 0x42, 0xc0, 0x1f, 0xd9, 0x00, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x24, 0x80];
/// let info = framecast_h264::sps::parse_sps(&sps).unwrap();
/// assert_eq!((info.profile_idc, info.level_idc), (66, 31));
/// assert_eq!((info.width, info.height), (1280, 720));
/// ```
pub fn parse_sps(nal: &[u8]) -> Result<SpsInfo, H264Error> {
    let (sps, _) = read_sps(nal)?;
    info_from(&sps)
}

/// Parse an SPS NAL unit into h264-reader's full representation (every syntax element).
pub fn parse_sps_full(nal: &[u8]) -> Result<SeqParameterSet, H264Error> {
    read_sps(nal).map(|(sps, _)| sps)
}

/// What [`rewrite_sps`] sets; everything else is preserved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpsRewrite {
    /// Crop the picture to this display size, anchored at the top-left corner (sets
    /// frame_cropping; must fit in the coded size). A size the crop units cannot express is
    /// rounded up to the next representable one (see [`representable_display_size`]).
    /// `None` keeps the existing cropping.
    pub display_size: Option<(u32, u32)>,
    /// video_full_range_flag.
    pub video_full_range_flag: bool,
    /// colour_primaries (H.273 code).
    pub colour_primaries: u8,
    /// transfer_characteristics (H.273 code).
    pub transfer_characteristics: u8,
    /// matrix_coefficients (H.273 code).
    pub matrix_coefficients: u8,
    /// max_dec_frame_buffering to write; `None` = max_num_ref_frames (or
    /// `max_num_reorder_frames`, if larger). bitstream_restriction_flag is always written as 1.
    pub max_dec_frame_buffering: Option<u32>,
    /// max_num_reorder_frames to write: 0 for a stream without B-frames, which lets a decoder
    /// output every frame as soon as it is decoded; the encoder's real reordering depth
    /// otherwise.
    pub max_num_reorder_frames: u32,
    /// gaps_in_frame_num_value_allowed_flag to write; `None` keeps the encoder's. An encoder
    /// that recovers decoders by skipping the frames they missed sets it, so a decoder that
    /// never got those frames treats their frame_num gap as intended (8.2.5.2), not as loss.
    pub gaps_in_frame_num_allowed: Option<bool>,
}

/// Default log2_max_mv_length_{horizontal,vertical} when the source had no bitstream
/// restriction. H.264 E.2.1 (since the 2016 editions) says these "shall be in the range of 0 to
/// 15, inclusive" and are inferred to be 15 when absent; earlier editions allowed and inferred 16.
/// 15 is valid under both readings, and is what "no restriction" means for every level
/// (the level limits in Table A-1 are far tighter), so we write 15.
pub const DEFAULT_LOG2_MAX_MV_LENGTH: u32 = 15;

/// Re-serialise an SPS NAL (header byte + EBSP in, header byte + EBSP out) with its VUI carrying:
///
/// - video_signal_type: video_format as before (5 = unspecified when there was none), the
///   requested video_full_range_flag and colour description;
/// - bitstream_restriction_flag = 1, max_num_reorder_frames and max_dec_frame_buffering as
///   requested (never less than max_num_ref_frames or max_num_reorder_frames, which E.2.1
///   forbids: that is an error);
/// - cropping as requested.
///
/// Every other field is preserved exactly (profile, constraint flags, level, id, chroma info and
/// scaling matrices, POC fields, reference frames, sizes, aspect ratio, overscan, chroma location,
/// timing, HRD parameters, pic_struct_present_flag, and existing bitstream-restriction motion
/// vector fields). Missing bitstream-restriction fields take their spec-inferred values
/// (motion_vectors_over_pic_boundaries_flag = 1, max_bytes_per_pic_denom = 2,
/// max_bits_per_mb_denom = 1, log2_max_mv_length_* = [`DEFAULT_LOG2_MAX_MV_LENGTH`]).
///
/// Before rewriting, the parsed SPS is re-serialised unchanged and compared with the input; an SPS
/// this crate cannot reproduce bit-exactly is an [`H264Error::Unsupported`] rather than a
/// silently altered one. The output is parsed again before it is returned.
pub fn rewrite_sps(nal: &[u8], rewrite: &SpsRewrite) -> Result<Vec<u8>, H264Error> {
    let (mut sps, rbsp) = read_sps(nal)?;
    let info = info_from(&sps)?;

    // Lossless check: what we would write for the unmodified SPS must be the input.
    let identity = write_sps_rbsp(&sps)?;
    let mut original = &rbsp[..];
    while let [rest @ .., 0] = original {
        original = rest; // trailing_zero_8bits / cabac_zero_words are not SPS data
    }
    if identity != original {
        return Err(H264Error::Unsupported(format!(
            "re-serialising the parsed SPS does not reproduce its {} RBSP bytes",
            original.len()
        )));
    }

    let max_dec_frame_buffering = rewrite
        .max_dec_frame_buffering
        .unwrap_or(sps.max_num_ref_frames.max(rewrite.max_num_reorder_frames));
    if max_dec_frame_buffering < sps.max_num_ref_frames.max(rewrite.max_num_reorder_frames) {
        return Err(H264Error::DecFrameBufferingTooSmall {
            requested: max_dec_frame_buffering,
            max_num_ref_frames: sps.max_num_ref_frames,
        });
    }

    if let Some((w, h)) = rewrite.display_size {
        if w == 0 || h == 0 || w > info.coded_width || h > info.coded_height {
            return Err(H264Error::DisplaySizeNotRepresentable {
                width: w,
                height: h,
                coded_width: info.coded_width,
                coded_height: info.coded_height,
            });
        }
        let (w, h) = representable_display_size(&info, w, h);
        let (ux, uy) = info.crop_units();
        let right = (info.coded_width - w) / ux;
        let bottom = (info.coded_height - h) / uy;
        sps.frame_cropping = (right != 0 || bottom != 0).then_some(FrameCropping {
            left_offset: 0,
            right_offset: right,
            top_offset: 0,
            bottom_offset: bottom,
        });
    }

    let vui = sps
        .vui_parameters
        .get_or_insert_with(VuiParameters::default);
    let video_format = vui
        .video_signal_type
        .as_ref()
        .map_or(VideoFormat::Unspecified, |v| v.video_format.clone());
    vui.video_signal_type = Some(VideoSignalType {
        video_format,
        video_full_range_flag: rewrite.video_full_range_flag,
        colour_description: Some(ReaderColour {
            colour_primaries: rewrite.colour_primaries,
            transfer_characteristics: rewrite.transfer_characteristics,
            matrix_coefficients: rewrite.matrix_coefficients,
        }),
    });
    let restriction = vui
        .bitstream_restrictions
        .get_or_insert(BitstreamRestrictions {
            motion_vectors_over_pic_boundaries_flag: true,
            max_bytes_per_pic_denom: 2,
            max_bits_per_mb_denom: 1,
            log2_max_mv_length_horizontal: DEFAULT_LOG2_MAX_MV_LENGTH,
            log2_max_mv_length_vertical: DEFAULT_LOG2_MAX_MV_LENGTH,
            max_num_reorder_frames: 0,
            max_dec_frame_buffering: 0,
        });
    restriction.max_num_reorder_frames = rewrite.max_num_reorder_frames;
    if let Some(gaps) = rewrite.gaps_in_frame_num_allowed {
        sps.gaps_in_frame_num_value_allowed_flag = gaps;
    }
    restriction.max_dec_frame_buffering = max_dec_frame_buffering;

    let rbsp = write_sps_rbsp(&sps)?;
    let mut out = Vec::with_capacity(rbsp.len() + 8);
    out.push(nal[0]);
    out.extend_from_slice(&rbsp_to_ebsp(&rbsp));
    // Check the result against the spec constraints h264-reader enforces (e.g. a
    // max_dec_frame_buffering above the level's MaxDpbFrames).
    read_sps(&out).map_err(|e| H264Error::RewriteInvalid(e.to_string()))?;
    Ok(out)
}

/// Serialise h264-reader's SPS as `seq_parameter_set_data()` + `rbsp_trailing_bits()`
/// (H.264 7.3.2.1.1, E.1.1, E.1.2).
pub fn write_sps_rbsp(sps: &SeqParameterSet) -> Result<Vec<u8>, H264Error> {
    let mut w = BitWriter::new();
    let profile_idc: u8 = sps.profile_idc.into();
    w.write_bits(profile_idc.into(), 8);
    w.write_bits(u8::from(sps.constraint_flags).into(), 8);
    w.write_bits(sps.level_idc.into(), 8);
    w.write_ue(sps.seq_parameter_set_id.id().into());
    if sps.profile_idc.has_chroma_info() {
        let ci = &sps.chroma_info;
        let chroma_format_idc = ci.chroma_format.to_u32();
        w.write_ue(chroma_format_idc);
        if chroma_format_idc == 3 {
            w.write_flag(ci.separate_colour_plane_flag);
        }
        w.write_ue(ci.bit_depth_luma_minus8.into());
        w.write_ue(ci.bit_depth_chroma_minus8.into());
        w.write_flag(ci.qpprime_y_zero_transform_bypass_flag);
        w.write_flag(ci.scaling_matrix.is_some());
        if let Some(m) = &ci.scaling_matrix {
            for list in &m.scaling_lists4x4.0 {
                write_scaling_list(&mut w, list.as_ref().map(|l| &l[..]));
            }
            let lists8: &[Option<[u8; 64]>] = match (&m.scaling_lists8x8, chroma_format_idc) {
                (ScalingLists8x8::Y(l), 0..=2) => l,
                (ScalingLists8x8::YCbCr(l), 3) => l,
                _ => {
                    return Err(H264Error::Unsupported(format!(
                        "8x8 scaling lists inconsistent with chroma_format_idc {chroma_format_idc}"
                    )));
                }
            };
            for list in lists8 {
                write_scaling_list(&mut w, list.as_ref().map(|l| &l[..]));
            }
        }
    }
    w.write_ue(sps.log2_max_frame_num_minus4.into());
    match &sps.pic_order_cnt {
        PicOrderCntType::TypeZero {
            log2_max_pic_order_cnt_lsb_minus4,
        } => {
            w.write_ue(0);
            w.write_ue((*log2_max_pic_order_cnt_lsb_minus4).into());
        }
        PicOrderCntType::TypeOne {
            delta_pic_order_always_zero_flag,
            offset_for_non_ref_pic,
            offset_for_top_to_bottom_field,
            offsets_for_ref_frame,
        } => {
            w.write_ue(1);
            w.write_flag(*delta_pic_order_always_zero_flag);
            w.write_se(*offset_for_non_ref_pic);
            w.write_se(*offset_for_top_to_bottom_field);
            let n = u32::try_from(offsets_for_ref_frame.len()).unwrap_or(u32::MAX);
            if n > 255 {
                return Err(H264Error::SpsFieldOutOfRange {
                    field: "num_ref_frames_in_pic_order_cnt_cycle",
                    value: offsets_for_ref_frame.len() as u64,
                    allowed: "0..=255",
                });
            }
            w.write_ue(n);
            for &o in offsets_for_ref_frame {
                w.write_se(o);
            }
        }
        PicOrderCntType::TypeTwo => w.write_ue(2),
    }
    w.write_ue(sps.max_num_ref_frames);
    w.write_flag(sps.gaps_in_frame_num_value_allowed_flag);
    w.write_ue(sps.pic_width_in_mbs_minus1);
    w.write_ue(sps.pic_height_in_map_units_minus1);
    match sps.frame_mbs_flags {
        FrameMbsFlags::Frames => w.write_flag(true),
        FrameMbsFlags::Fields {
            mb_adaptive_frame_field_flag,
        } => {
            w.write_flag(false);
            w.write_flag(mb_adaptive_frame_field_flag);
        }
    }
    w.write_flag(sps.direct_8x8_inference_flag);
    w.write_flag(sps.frame_cropping.is_some());
    if let Some(c) = &sps.frame_cropping {
        w.write_ue(c.left_offset);
        w.write_ue(c.right_offset);
        w.write_ue(c.top_offset);
        w.write_ue(c.bottom_offset);
    }
    w.write_flag(sps.vui_parameters.is_some());
    if let Some(vui) = &sps.vui_parameters {
        write_vui(&mut w, vui)?;
    }
    w.write_rbsp_trailing_bits();
    Ok(w.into_bytes())
}

/// `scaling_list()` (7.3.2.1.1.1) from h264-reader's representation: the resolved values up to
/// and including a terminating 0 (a list that starts with 0 means "use the default matrix").
/// Deltas are coded mod 256 in -128..=127, which maps each next value to exactly one delta, so
/// this reproduces the coded bits.
fn write_scaling_list(w: &mut BitWriter, list: Option<&[u8]>) {
    w.write_flag(list.is_some());
    let Some(list) = list else { return };
    let mut last = 8u8;
    for &next in list {
        w.write_se(i32::from(next.wrapping_sub(last) as i8));
        if next == 0 {
            break;
        }
        last = next;
    }
}

fn write_vui(w: &mut BitWriter, vui: &VuiParameters) -> Result<(), H264Error> {
    w.write_flag(vui.aspect_ratio_info.is_some());
    if let Some(ar) = &vui.aspect_ratio_info {
        w.write_bits(ar.to_u8().into(), 8);
        if let h264_reader::nal::sps::AspectRatioInfo::Extended(sw, sh) = ar {
            w.write_bits((*sw).into(), 16);
            w.write_bits((*sh).into(), 16);
        }
    }
    use h264_reader::nal::sps::OverscanAppropriate as O;
    match vui.overscan_appropriate {
        O::Unspecified => w.write_flag(false),
        O::Appropriate => {
            w.write_flag(true);
            w.write_flag(true);
        }
        O::Inappropriate => {
            w.write_flag(true);
            w.write_flag(false);
        }
    }
    w.write_flag(vui.video_signal_type.is_some());
    if let Some(vst) = &vui.video_signal_type {
        let vf = vst.video_format.to_u8();
        if vf > 7 {
            return Err(H264Error::SpsFieldOutOfRange {
                field: "video_format",
                value: vf.into(),
                allowed: "0..=7",
            });
        }
        w.write_bits(vf.into(), 3);
        w.write_flag(vst.video_full_range_flag);
        w.write_flag(vst.colour_description.is_some());
        if let Some(c) = &vst.colour_description {
            w.write_bits(c.colour_primaries.into(), 8);
            w.write_bits(c.transfer_characteristics.into(), 8);
            w.write_bits(c.matrix_coefficients.into(), 8);
        }
    }
    w.write_flag(vui.chroma_loc_info.is_some());
    if let Some(c) = &vui.chroma_loc_info {
        w.write_ue(c.chroma_sample_loc_type_top_field);
        w.write_ue(c.chroma_sample_loc_type_bottom_field);
    }
    w.write_flag(vui.timing_info.is_some());
    if let Some(t) = &vui.timing_info {
        w.write_bits(t.num_units_in_tick.into(), 32);
        w.write_bits(t.time_scale.into(), 32);
        w.write_flag(t.fixed_frame_rate_flag);
    }
    write_hrd(w, vui.nal_hrd_parameters.as_ref())?;
    write_hrd(w, vui.vcl_hrd_parameters.as_ref())?;
    if vui.nal_hrd_parameters.is_some() || vui.vcl_hrd_parameters.is_some() {
        w.write_flag(vui.low_delay_hrd_flag.unwrap_or(false));
    }
    w.write_flag(vui.pic_struct_present_flag);
    w.write_flag(vui.bitstream_restrictions.is_some());
    if let Some(b) = &vui.bitstream_restrictions {
        w.write_flag(b.motion_vectors_over_pic_boundaries_flag);
        w.write_ue(b.max_bytes_per_pic_denom);
        w.write_ue(b.max_bits_per_mb_denom);
        w.write_ue(b.log2_max_mv_length_horizontal);
        w.write_ue(b.log2_max_mv_length_vertical);
        w.write_ue(b.max_num_reorder_frames);
        w.write_ue(b.max_dec_frame_buffering);
    }
    Ok(())
}

/// `hrd_parameters()` (E.1.2), preceded by its present flag.
fn write_hrd(w: &mut BitWriter, hrd: Option<&HrdParameters>) -> Result<(), H264Error> {
    w.write_flag(hrd.is_some());
    let Some(hrd) = hrd else { return Ok(()) };
    let count = hrd.cpb_specs.len();
    if !(1..=32).contains(&count) {
        return Err(H264Error::SpsFieldOutOfRange {
            field: "cpb_cnt_minus1 + 1",
            value: count as u64,
            allowed: "1..=32",
        });
    }
    w.write_ue(count as u32 - 1);
    w.write_bits(hrd.bit_rate_scale.into(), 4);
    w.write_bits(hrd.cpb_size_scale.into(), 4);
    for spec in &hrd.cpb_specs {
        w.write_ue(spec.bit_rate_value_minus1);
        w.write_ue(spec.cpb_size_value_minus1);
        w.write_flag(spec.cbr_flag);
    }
    w.write_bits(hrd.initial_cpb_removal_delay_length_minus1.into(), 5);
    w.write_bits(hrd.cpb_removal_delay_length_minus1.into(), 5);
    w.write_bits(hrd.dpb_output_delay_length_minus1.into(), 5);
    w.write_bits(hrd.time_offset_length.into(), 5);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_units_follow_table_6_1() {
        // (chroma_format_idc, frame_mbs_only) -> (CropUnitX, CropUnitY)
        assert_eq!(crop_units(0, true), (1, 1));
        assert_eq!(crop_units(1, true), (2, 2));
        assert_eq!(crop_units(2, true), (2, 1));
        assert_eq!(crop_units(3, true), (1, 1));
        assert_eq!(crop_units(0, false), (1, 2));
        assert_eq!(crop_units(1, false), (2, 4));
        assert_eq!(crop_units(2, false), (2, 2));
        assert_eq!(crop_units(3, false), (1, 2));
    }

    #[test]
    fn scaling_list_codes_deltas_mod_256() {
        let mut w = BitWriter::new();
        // 8 -> 7 (delta -1, "011"), 7 -> 0 (delta -7, "0001111"): terminates the list.
        write_scaling_list(&mut w, Some(&[7, 0, 0]));
        let bytes = w.into_bytes();
        let mut r = crate::rbsp::BitReader::new(&bytes);
        assert!(r.read_flag().unwrap());
        assert_eq!(r.read_se().unwrap(), -1);
        assert_eq!(r.read_se().unwrap(), -7);
        assert_eq!(r.bits_left(), 5);
    }
}
