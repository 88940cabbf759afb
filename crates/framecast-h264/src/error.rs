//! The crate's single error type.

use crate::nal::NalType;

/// Everything that can go wrong while reading or writing H.264 bitstream structures.
///
/// Every message names the offending value so that a log line alone says what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum H264Error {
    /// An AVCC length-prefix size other than 1, 2 or 4 bytes.
    #[error("AVCC length size {0} is not 1, 2 or 4")]
    InvalidLengthSize(u8),
    /// The data ends inside an AVCC length prefix.
    #[error("AVCC length prefix needs {needed} bytes but only {left} are left")]
    TruncatedLengthPrefix {
        /// Bytes the prefix needs.
        needed: usize,
        /// Bytes left in the input.
        left: usize,
    },
    /// An AVCC length prefix points past the end of the data.
    #[error("AVCC NAL length {len} exceeds the {left} bytes left")]
    NalLengthExceedsData {
        /// The length read from the prefix.
        len: usize,
        /// Bytes left after the prefix.
        left: usize,
    },
    /// A NAL unit is too long for the requested AVCC length-prefix size.
    #[error("NAL unit of {len} bytes does not fit a {length_size}-byte length prefix")]
    NalTooLongForLengthSize {
        /// NAL length in bytes.
        len: usize,
        /// Length-prefix size in bytes.
        length_size: u8,
    },
    /// An empty NAL unit where one was required.
    #[error("empty NAL unit")]
    EmptyNal,
    /// A NAL unit of the wrong type was passed.
    #[error("expected a {expected:?} NAL unit, got {found:?} (header byte {header:#04x})")]
    UnexpectedNalType {
        /// The type the function needs.
        expected: NalType,
        /// The type that was passed.
        found: NalType,
        /// The NAL header byte.
        header: u8,
    },
    /// The bit reader ran past the end of the data.
    #[error("bitstream ended: needed {needed} more bits at bit {position} of {total}")]
    EndOfBitstream {
        /// Bits that were requested.
        needed: u32,
        /// Bit position of the read.
        position: usize,
        /// Total bits available.
        total: usize,
    },
    /// An exp-Golomb code with more than 31 leading zero bits.
    #[error("exp-Golomb code at bit {position} has {leading_zeros} leading zeros (max 31)")]
    ExpGolombTooLong {
        /// Bit position of the code.
        position: usize,
        /// Leading zero bits seen.
        leading_zeros: u32,
    },
    /// h264-reader rejected the SPS.
    #[error("invalid SPS: {0}")]
    InvalidSps(String),
    /// An SPS syntax element has a value the spec does not allow.
    #[error("SPS {field} = {value} is out of range ({allowed})")]
    SpsFieldOutOfRange {
        /// Syntax element name as in the spec.
        field: &'static str,
        /// Its value.
        value: u64,
        /// The allowed range, in words.
        allowed: &'static str,
    },
    /// The frame cropping of an SPS removes the whole picture.
    #[error(
        "SPS frame cropping (left {left}, right {right}, top {top}, bottom {bottom} crop units) \
         does not fit the coded size {coded_width}x{coded_height}"
    )]
    CroppingExceedsPicture {
        /// frame_crop_left_offset.
        left: u32,
        /// frame_crop_right_offset.
        right: u32,
        /// frame_crop_top_offset.
        top: u32,
        /// frame_crop_bottom_offset.
        bottom: u32,
        /// Coded width in luma samples.
        coded_width: u32,
        /// Coded height in luma samples.
        coded_height: u32,
    },
    /// A requested display size that cropping cannot produce.
    #[error(
        "display size {width}x{height} does not fit the coded size {coded_width}x{coded_height}"
    )]
    DisplaySizeNotRepresentable {
        /// Requested width.
        width: u32,
        /// Requested height.
        height: u32,
        /// Coded width in luma samples.
        coded_width: u32,
        /// Coded height in luma samples.
        coded_height: u32,
    },
    /// A requested max_dec_frame_buffering below max_num_ref_frames (H.264 E.2.1).
    #[error(
        "max_dec_frame_buffering {requested} is less than the SPS's max_num_ref_frames \
         {max_num_ref_frames} (H.264 E.2.1 forbids it)"
    )]
    DecFrameBufferingTooSmall {
        /// The requested value.
        requested: u32,
        /// max_num_ref_frames of the SPS.
        max_num_ref_frames: u32,
    },
    /// The SPS uses something this crate cannot reproduce bit-exactly.
    #[error("unsupported SPS: {0}")]
    Unsupported(String),
    /// The rewritten SPS did not parse back (a value broke a constraint of the spec).
    #[error("rewritten SPS is invalid: {0}")]
    RewriteInvalid(String),
    /// An AVCDecoderConfigurationRecord is too short.
    #[error(
        "avcC record truncated: {what} needs {needed} bytes at offset {offset}, record has {len}"
    )]
    AvccTruncated {
        /// What was being read.
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Offset of the read.
        offset: usize,
        /// Record length.
        len: usize,
    },
    /// An avcC record with a configurationVersion other than 1.
    #[error("avcC configurationVersion {0} is not 1")]
    AvccVersion(u8),
    /// An avcC record with lengthSizeMinusOne = 2 (3-byte lengths are not allowed).
    #[error("avcC lengthSizeMinusOne {0} is not 0, 1 or 3")]
    AvccLengthSizeMinusOne(u8),
}
