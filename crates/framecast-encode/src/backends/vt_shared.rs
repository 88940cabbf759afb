//! The platform-independent half of the VideoToolbox backend.
//!
//! Everything here is plain Rust that runs (and is tested) on Linux; the macOS module
//! (`videotoolbox.rs`) only turns these plain values into CoreFoundation objects and back:
//!
//! * [`VtOptions`]: the environment switches (`FRAMECAST_VT_ALLOW_SOFTWARE`, `FRAMECAST_VT_LOW_LATENCY`);
//! * [`encoder_specification`] and [`session_properties`]: what to ask VideoToolbox for, as
//!   enums naming the `kVT…`/`kCV…` constants, with whether a refusal is fatal;
//! * [`VtColor`] and [`VtPixelFormat`]: [`ColorSpace`] → colour-property constants and the
//!   pixel-buffer range (`420v`/`420f`);
//! * [`encode_size`] and [`copy_plane`]: the canvas VideoToolbox encodes and the edge-replicating
//!   copy into a pixel buffer's planes;
//! * [`OutputQueue`]: `sourceFrameRefCon` ↔ token bookkeeping and the output callback's logic
//!   (status, dropped frames, keyframe flag, parameter sets from the format description, AVCC
//!   length size), producing the [`RawAccessUnit`]s the shared normaliser turns into Annex B;
//! * [`vt_error`]: OSStatus → [`EncodeError`] naming the call and the status.

use crate::backend::{RawAccessUnit, RawFormat};
use crate::{EncodeError, EncodeMode, EncoderConfig, ProfileHint, RateControl};
use framecast_core::{ColorSpace, Matrix, Primaries, Range, Transfer};
use framecast_h264::nal::{avcc_nals, nal_type, NalType};
use std::collections::VecDeque;
use std::ffi::c_void;
use std::time::Instant;

/// Registry name of the backend.
pub(crate) const NAME: &str = "videotoolbox";

/// `FRAMECAST_VT_ALLOW_SOFTWARE=1` lets VideoToolbox fall back to Apple's software H.264 encoder
/// when no hardware encoder can be opened (default: hardware required).
pub(crate) const ENV_ALLOW_SOFTWARE: &str = "FRAMECAST_VT_ALLOW_SOFTWARE";
/// `FRAMECAST_VT_LOW_LATENCY=0` turns off VideoToolbox's low-latency rate control (default: on).
pub(crate) const ENV_LOW_LATENCY: &str = "FRAMECAST_VT_LOW_LATENCY";

/// Backend switches that are not (yet) part of [`EncoderConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VtOptions {
    /// Accept a software encoder when no hardware one opens.
    pub allow_software: bool,
    /// `kVTVideoEncoderSpecification_EnableLowLatencyRateControl`: no lookahead, no frame delay,
    /// one access unit out per frame in (WWDC21 session 10158). The right mode for live streaming.
    pub low_latency: bool,
}

impl Default for VtOptions {
    fn default() -> Self {
        VtOptions {
            allow_software: false,
            low_latency: true,
        }
    }
}

fn parse_flag(name: &str, value: Option<&str>, default: bool) -> Result<bool, EncodeError> {
    let Some(value) = value else {
        return Ok(default);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "" => Ok(default),
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(EncodeError::InvalidConfig(format!(
            "{name}={value:?}: expected 1/0, true/false, yes/no or on/off"
        ))),
    }
}

impl VtOptions {
    /// Options from the values of [`ENV_ALLOW_SOFTWARE`] and [`ENV_LOW_LATENCY`] (`None` = unset).
    pub fn from_values(
        allow_software: Option<&str>,
        low_latency: Option<&str>,
    ) -> Result<Self, EncodeError> {
        let d = VtOptions::default();
        Ok(VtOptions {
            allow_software: parse_flag(ENV_ALLOW_SOFTWARE, allow_software, d.allow_software)?,
            low_latency: parse_flag(ENV_LOW_LATENCY, low_latency, d.low_latency)?,
        })
    }
}

/// Keys of the encoder specification passed to `VTCompressionSessionCreate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpecKey {
    /// `kVTVideoEncoderSpecification_RequireHardwareAcceleratedVideoEncoder`
    RequireHardware,
    /// `kVTVideoEncoderSpecification_EnableHardwareAcceleratedVideoEncoder`
    EnableHardware,
    /// `kVTVideoEncoderSpecification_EnableLowLatencyRateControl`
    EnableLowLatencyRateControl,
}

/// The encoder specification: hardware required (or merely preferred when software is allowed),
/// low-latency rate control when asked. All values are booleans.
pub(crate) fn encoder_specification(options: VtOptions) -> Vec<(SpecKey, bool)> {
    let mut spec = vec![if options.allow_software {
        (SpecKey::EnableHardware, true)
    } else {
        (SpecKey::RequireHardware, true)
    }];
    if options.low_latency {
        spec.push((SpecKey::EnableLowLatencyRateControl, true));
    }
    spec
}

/// Session properties framecast sets (`kVTCompressionPropertyKey_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PropertyKey {
    RealTime,
    AllowFrameReordering,
    ExpectedFrameRate,
    AverageBitRate,
    DataRateLimits,
    MaxKeyFrameInterval,
    MaxFrameDelayCount,
    ProfileLevel,
    ColorPrimaries,
    TransferFunction,
    YCbCrMatrix,
    MinAllowedFrameQP,
    MaxAllowedFrameQP,
}

impl PropertyKey {
    /// The C name of the key, for error messages.
    pub fn name(self) -> &'static str {
        match self {
            PropertyKey::RealTime => "kVTCompressionPropertyKey_RealTime",
            PropertyKey::AllowFrameReordering => "kVTCompressionPropertyKey_AllowFrameReordering",
            PropertyKey::ExpectedFrameRate => "kVTCompressionPropertyKey_ExpectedFrameRate",
            PropertyKey::AverageBitRate => "kVTCompressionPropertyKey_AverageBitRate",
            PropertyKey::DataRateLimits => "kVTCompressionPropertyKey_DataRateLimits",
            PropertyKey::MaxKeyFrameInterval => "kVTCompressionPropertyKey_MaxKeyFrameInterval",
            PropertyKey::MaxFrameDelayCount => "kVTCompressionPropertyKey_MaxFrameDelayCount",
            PropertyKey::ProfileLevel => "kVTCompressionPropertyKey_ProfileLevel",
            PropertyKey::ColorPrimaries => "kVTCompressionPropertyKey_ColorPrimaries",
            PropertyKey::TransferFunction => "kVTCompressionPropertyKey_TransferFunction",
            PropertyKey::YCbCrMatrix => "kVTCompressionPropertyKey_YCbCrMatrix",
            PropertyKey::MinAllowedFrameQP => "kVTCompressionPropertyKey_MinAllowedFrameQP",
            PropertyKey::MaxAllowedFrameQP => "kVTCompressionPropertyKey_MaxAllowedFrameQP",
        }
    }
}

/// String constants used as property values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CfConstant {
    ProfileConstrainedBaselineAuto,
    ProfileBaselineAuto,
    ProfileMainAuto,
    ProfileHighAuto,
    ProfileConstrainedHighAuto,
    PrimariesItuR709,
    PrimariesEbu3213,
    PrimariesSmpteC,
    TransferItuR709,
    TransferSrgb,
    MatrixItuR709,
    MatrixItuR601,
}

impl CfConstant {
    /// The C name of the constant.
    pub fn name(self) -> &'static str {
        match self {
            CfConstant::ProfileConstrainedBaselineAuto => {
                "kVTProfileLevel_H264_ConstrainedBaseline_AutoLevel"
            }
            CfConstant::ProfileBaselineAuto => "kVTProfileLevel_H264_Baseline_AutoLevel",
            CfConstant::ProfileMainAuto => "kVTProfileLevel_H264_Main_AutoLevel",
            CfConstant::ProfileHighAuto => "kVTProfileLevel_H264_High_AutoLevel",
            CfConstant::ProfileConstrainedHighAuto => {
                "kVTProfileLevel_H264_ConstrainedHigh_AutoLevel"
            }
            CfConstant::PrimariesItuR709 => "kCVImageBufferColorPrimaries_ITU_R_709_2",
            CfConstant::PrimariesEbu3213 => "kCVImageBufferColorPrimaries_EBU_3213",
            CfConstant::PrimariesSmpteC => "kCVImageBufferColorPrimaries_SMPTE_C",
            CfConstant::TransferItuR709 => "kCVImageBufferTransferFunction_ITU_R_709_2",
            CfConstant::TransferSrgb => "kCVImageBufferTransferFunction_sRGB",
            CfConstant::MatrixItuR709 => "kCVImageBufferYCbCrMatrix_ITU_R_709_2",
            CfConstant::MatrixItuR601 => "kCVImageBufferYCbCrMatrix_ITU_R_601_4",
        }
    }
}

/// A property value, before it becomes a CF object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PropertyValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    /// The first constant the session accepts wins (fallbacks for older systems/modes).
    OneOf(Vec<CfConstant>),
    /// `[bytes, seconds]`: at most `bytes` in any window of `seconds`.
    DataRateLimits {
        bytes: i64,
        seconds: f64,
    },
}

/// Whether the session refusing a property fails `create` or is logged and ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Requirement {
    Required,
    BestEffort,
}

/// One property to set on the session.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SessionProperty {
    pub key: PropertyKey,
    pub value: PropertyValue,
    pub requirement: Requirement,
}

/// Profile/level constants to try for a profile hint, best first. Levels are always automatic:
/// VideoToolbox picks them from the resolution, and the codec string is read from the emitted
/// SPS. Low-latency rate control supports Constrained Baseline and Constrained High (WWDC21), so
/// High asks for Constrained High first there.
pub(crate) fn profile_candidates(profile: ProfileHint, low_latency: bool) -> Vec<CfConstant> {
    match profile {
        ProfileHint::ConstrainedBaseline => vec![
            CfConstant::ProfileConstrainedBaselineAuto,
            CfConstant::ProfileBaselineAuto,
        ],
        ProfileHint::Main => vec![CfConstant::ProfileMainAuto],
        ProfileHint::High if low_latency => vec![
            CfConstant::ProfileConstrainedHighAuto,
            CfConstant::ProfileHighAuto,
        ],
        ProfileHint::High => vec![CfConstant::ProfileHighAuto],
    }
}

/// Colour properties of a [`ColorSpace`], for the session and for each pixel buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VtColor {
    pub primaries: CfConstant,
    pub transfer: CfConstant,
    pub matrix: CfConstant,
    /// NV12 pixel format carrying the range.
    pub nv12: VtPixelFormat,
}

impl VtColor {
    /// The VideoToolbox description of `color`. SMPTE 170M's transfer curve is BT.709's (H.264
    /// Table E-4 lists them as equivalent; CoreVideo deprecated its own SMPTE-C transfer), so it
    /// maps to `ITU_R_709_2`. The normaliser writes the exact VUI codes either way; these
    /// properties keep VideoToolbox from converting colour on the way in.
    pub fn of(color: ColorSpace) -> Result<Self, EncodeError> {
        // The colour enums are non-exhaustive: a variant added later must get its mapping here
        // before VideoToolbox can encode it, rather than be signalled wrongly.
        let unmapped = |what: &str| {
            EncodeError::InvalidConfig(format!(
                "colour space {color:?}: no VideoToolbox {what} for it yet"
            ))
        };
        Ok(VtColor {
            primaries: match color.primaries {
                Primaries::Bt709 => CfConstant::PrimariesItuR709,
                Primaries::Bt601Pal => CfConstant::PrimariesEbu3213,
                Primaries::Bt601Ntsc => CfConstant::PrimariesSmpteC,
                _ => return Err(unmapped("colour primaries")),
            },
            transfer: match color.transfer {
                Transfer::Bt709 | Transfer::Smpte170m => CfConstant::TransferItuR709,
                Transfer::Srgb => CfConstant::TransferSrgb,
                _ => return Err(unmapped("transfer function")),
            },
            matrix: match color.matrix {
                Matrix::Bt709 => CfConstant::MatrixItuR709,
                Matrix::Bt601 => CfConstant::MatrixItuR601,
                _ => return Err(unmapped("YCbCr matrix")),
            },
            nv12: VtPixelFormat::nv12(color.range),
        })
    }
}

/// CoreVideo pixel formats the backend uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VtPixelFormat {
    /// `kCVPixelFormatType_420YpCbCr8BiPlanarVideoRange` ('420v').
    Nv12VideoRange,
    /// `kCVPixelFormatType_420YpCbCr8BiPlanarFullRange` ('420f').
    Nv12FullRange,
    /// `kCVPixelFormatType_32BGRA` ('BGRA').
    Bgra,
    /// `kCVPixelFormatType_32RGBA` ('RGBA').
    Rgba,
}

impl VtPixelFormat {
    /// The NV12 format for a range.
    pub fn nv12(range: Range) -> Self {
        match range {
            Range::Limited => VtPixelFormat::Nv12VideoRange,
            Range::Full => VtPixelFormat::Nv12FullRange,
        }
    }

    /// The four-character code (`OSType`).
    pub fn fourcc(self) -> u32 {
        u32::from_be_bytes(match self {
            VtPixelFormat::Nv12VideoRange => *b"420v",
            VtPixelFormat::Nv12FullRange => *b"420f",
            VtPixelFormat::Bgra => *b"BGRA",
            VtPixelFormat::Rgba => *b"RGBA",
        })
    }
}

/// Everything framecast sets on a session for `config`.
///
/// `max_bitrate` adds `DataRateLimits` (bytes per one-second window); [`EncoderConfig`] has no
/// such field yet, so the backend passes `None`.
pub(crate) fn session_properties(
    config: &EncoderConfig,
    options: VtOptions,
    max_bitrate: Option<u32>,
) -> Result<Vec<SessionProperty>, EncodeError> {
    use PropertyKey as K;
    use PropertyValue as V;
    use Requirement::{BestEffort, Required};
    let p = |key, value, requirement| SessionProperty {
        key,
        value,
        requirement,
    };
    let color = VtColor::of(config.color)?;
    let mut out = vec![
        p(K::RealTime, V::Bool(true), Required),
        // No B-frames: output order == input order, dts == pts.
        p(K::AllowFrameReordering, V::Bool(false), Required),
        p(K::ExpectedFrameRate, V::Float(config.fps), BestEffort),
        p(
            K::ProfileLevel,
            V::OneOf(profile_candidates(config.profile, options.low_latency)),
            Required,
        ),
        p(K::ColorPrimaries, V::OneOf(vec![color.primaries]), Required),
        p(
            K::TransferFunction,
            V::OneOf(vec![color.transfer]),
            Required,
        ),
        p(K::YCbCrMatrix, V::OneOf(vec![color.matrix]), Required),
    ];
    match config.rate_control {
        RateControl::Bitrate => {
            out.push(p(
                K::AverageBitRate,
                V::Int(i64::from(config.bitrate)),
                Required,
            ));
            if let Some(max) = max_bitrate {
                out.push(p(
                    K::DataRateLimits,
                    V::DataRateLimits {
                        bytes: i64::from(max.div_ceil(8)),
                        seconds: 1.0,
                    },
                    Required,
                ));
            }
        }
        RateControl::ConstantQp(qp) => {
            let qp = i64::from(qp);
            out.push(p(K::MinAllowedFrameQP, V::Int(qp), Required));
            out.push(p(K::MaxAllowedFrameQP, V::Int(qp), Required));
        }
    }
    // The shared scheduler forces every IDR (kVTEncodeFrameOptionKey_ForceKeyFrame), so the
    // cadence is the same for every backend; the session's own limit is the same interval, as a
    // backstop. 0 means "only forced keyframes", which is VideoToolbox's default (no limit).
    if config.keyframe_interval > 0 {
        out.push(p(
            K::MaxKeyFrameInterval,
            V::Int(i64::from(config.keyframe_interval)),
            BestEffort,
        ));
    }
    // Pipelined: VideoToolbox must emit an access unit before it holds as many frames as the
    // encoder allows in flight, or a blocking caller would wait on frames VT waits for.
    // Synchronous mode forces every frame out with CompleteFrames instead.
    if let EncodeMode::Pipelined { max_in_flight, .. } = config.mode {
        out.push(p(
            K::MaxFrameDelayCount,
            V::Int(max_in_flight.saturating_sub(1).min(i32::MAX as usize) as i64),
            BestEffort,
        ));
    }
    Ok(out)
}

/// Smallest side handed to VideoToolbox. Smaller pictures are encoded on a padded canvas and
/// cropped back by the normaliser's SPS rewrite. The hardware minimum is not documented; 64 is
/// a conservative guess (not verified on hardware).
pub(crate) const MIN_SIDE: u32 = 64;

/// The (even) canvas VideoToolbox encodes for a `width x height` picture.
pub(crate) fn encode_size(width: u32, height: u32) -> (u32, u32) {
    (
        (width.div_ceil(2) * 2).max(MIN_SIDE),
        (height.div_ceil(2) * 2).max(MIN_SIDE),
    )
}

/// A destination plane (e.g. of a locked `CVPixelBuffer`).
#[derive(Debug)]
pub(crate) struct PlaneMut<'a> {
    /// `stride * rows` bytes (the last row may be just `row_bytes`).
    pub data: &'a mut [u8],
    pub stride: usize,
    /// Bytes to fill per row.
    pub row_bytes: usize,
    pub rows: usize,
}

/// A source plane.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plane<'a> {
    pub data: &'a [u8],
    pub stride: usize,
    pub row_bytes: usize,
    pub rows: usize,
}

/// Copy `src` into the top-left of `dst`, filling extra columns with the last `pixel_bytes` of
/// each row and extra rows with the last row (so padding never adds a visible edge to encode).
/// Fails instead of panicking when a plane's geometry does not fit its buffer.
pub(crate) fn copy_plane(
    src: Plane<'_>,
    dst: PlaneMut<'_>,
    pixel_bytes: usize,
) -> Result<(), String> {
    let fits = |len: usize, stride: usize, row_bytes: usize, rows: usize| {
        rows == 0
            || (stride >= row_bytes
                && stride
                    .checked_mul(rows - 1)
                    .and_then(|n| n.checked_add(row_bytes))
                    .is_some_and(|n| n <= len))
    };
    if pixel_bytes == 0
        || src.rows == 0
        || src.row_bytes < pixel_bytes
        || src.row_bytes % pixel_bytes != 0
        || dst.row_bytes % pixel_bytes != 0
        || src.row_bytes > dst.row_bytes
        || src.rows > dst.rows
        || !fits(src.data.len(), src.stride, src.row_bytes, src.rows)
        || !fits(dst.data.len(), dst.stride, dst.row_bytes, dst.rows)
    {
        return Err(format!(
            "plane copy {}x{} (stride {}, {} bytes) -> {}x{} (stride {}, {} bytes) does not fit",
            src.row_bytes,
            src.rows,
            src.stride,
            src.data.len(),
            dst.row_bytes,
            dst.rows,
            dst.stride,
            dst.data.len()
        ));
    }
    for row in 0..dst.rows {
        let s = row.min(src.rows - 1) * src.stride;
        let s = &src.data[s..s + src.row_bytes];
        let d = row * dst.stride;
        let d = &mut dst.data[d..d + dst.row_bytes];
        d[..s.len()].copy_from_slice(s);
        let last = &s[s.len() - pixel_bytes..];
        for px in d[s.len()..].chunks_exact_mut(pixel_bytes) {
            px.copy_from_slice(last);
        }
    }
    Ok(())
}

/// Milliseconds from `from` to `to`.
pub(crate) fn ms_between(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1e3
}

/// Per-frame instrumentation, like pdum.vtenc's `last_copy_ms` / `last_encode_ms`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct StageTimings {
    /// Host picture → `CVPixelBuffer` (copy or pixel transfer) of the last frame.
    pub last_copy_ms: f64,
    /// `VTCompressionSessionEncodeFrame` → output callback of the last frame.
    pub last_encode_ms: f64,
}

/// The `sourceFrameRefCon` of one submitted frame: a nonzero id, not a pointer to anything, so
/// nothing leaks whether or not VideoToolbox ever calls back with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct RefCon(u64);

impl RefCon {
    /// As the `void*` VideoToolbox carries.
    pub fn to_ptr(self) -> *mut c_void {
        std::ptr::without_provenance_mut(self.0 as usize)
    }
    /// From the `void*` VideoToolbox hands back.
    pub fn from_ptr(ptr: *mut c_void) -> Self {
        RefCon(ptr.addr() as u64)
    }
}

/// A frame inside VideoToolbox.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PendingFrame {
    pub token: u64,
    pub pts_ns: i64,
    pub submitted: Instant,
}

/// What the output callback extracted from a `CMSampleBuffer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SampleParts {
    /// The sample's bytes: length-prefixed NAL units.
    pub data: Vec<u8>,
    /// `kCMSampleAttachmentKey_NotSync` was absent (or false): a keyframe.
    pub sync: bool,
    /// Every parameter set of the format description (SPS, PPS, possibly SEI), in order.
    pub parameter_sets: Vec<Vec<u8>>,
    /// `NALUnitHeaderLength` of the format description: the AVCC length-prefix size.
    pub nal_unit_header_length: i32,
}

/// Build the [`RawAccessUnit`] for one encoded sample: AVCC with the format description's
/// length size, and the SPS/PPS attached out of band on every keyframe (the normaliser puts them
/// in band and rewrites the SPS).
pub(crate) fn access_unit(token: u64, sample: SampleParts) -> Result<RawAccessUnit, EncodeError> {
    let contract = |message: String| EncodeError::Contract {
        backend: NAME,
        message,
    };
    let length_size = match sample.nal_unit_header_length {
        n @ (1 | 2 | 4) => n as u8,
        n => {
            return Err(contract(format!(
                "format description gives NAL unit header length {n} (expected 1, 2 or 4)"
            )))
        }
    };
    let mut idr = false;
    for nal in avcc_nals(&sample.data, length_size) {
        let nal = nal.map_err(|e| contract(format!("sample for token {token}: {e}")))?;
        idr |= nal_type(nal) == Some(NalType::IdrSlice);
    }
    if sample.sync != idr {
        tracing::debug!(
            token,
            sync = sample.sync,
            idr,
            "VideoToolbox sync attachment disagrees with the slice types; trusting the slices"
        );
    }
    let parameter_sets = if sample.sync || idr {
        let find = |t| {
            sample
                .parameter_sets
                .iter()
                .find(|p| nal_type(p) == Some(t))
                .cloned()
        };
        match (find(NalType::Sps), find(NalType::Pps)) {
            (Some(sps), Some(pps)) => Some((sps, pps)),
            _ => {
                return Err(contract(format!(
                    "keyframe for token {token}: the format description holds no SPS and PPS ({} parameter sets)",
                    sample.parameter_sets.len()
                )))
            }
        }
    } else {
        None
    };
    Ok(RawAccessUnit {
        token,
        data: sample.data,
        format: RawFormat::Avcc { length_size },
        parameter_sets,
        recovery_from: None,
    })
}

/// State shared between the backend and VideoToolbox's output callback: the frames inside the
/// encoder (by [`RefCon`], in submission order) and the finished access units.
#[derive(Debug)]
pub(crate) struct OutputQueue {
    next_id: u64,
    in_flight: VecDeque<(RefCon, PendingFrame)>,
    ready: VecDeque<Result<RawAccessUnit, EncodeError>>,
    /// Timings of the last frame.
    pub timings: StageTimings,
}

impl Default for OutputQueue {
    fn default() -> Self {
        OutputQueue {
            next_id: 1,
            in_flight: VecDeque::new(),
            ready: VecDeque::new(),
            timings: StageTimings::default(),
        }
    }
}

impl OutputQueue {
    /// Record a frame about to be handed to `VTCompressionSessionEncodeFrame`.
    pub fn submit(&mut self, token: u64, pts_ns: i64, now: Instant) -> RefCon {
        let id = RefCon(self.next_id);
        // Never 0 (a null refcon), even after wrapping.
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        self.in_flight.push_back((
            id,
            PendingFrame {
                token,
                pts_ns,
                submitted: now,
            },
        ));
        id
    }

    fn take(&mut self, refcon: RefCon) -> Option<PendingFrame> {
        let i = self.in_flight.iter().position(|(r, _)| *r == refcon)?;
        self.in_flight.remove(i).map(|(_, f)| f)
    }

    /// `VTCompressionSessionEncodeFrame` failed for this frame; no callback will report it.
    pub fn forget(&mut self, refcon: RefCon) -> Option<PendingFrame> {
        self.take(refcon)
    }

    /// The output callback for `refcon`: `status` and `dropped` as VideoToolbox reported them,
    /// `sample` what could be read from the sample buffer (an error when it could not).
    pub fn on_output(
        &mut self,
        refcon: RefCon,
        status: i32,
        dropped: bool,
        sample: Result<Option<SampleParts>, EncodeError>,
        now: Instant,
    ) {
        let Some(frame) = self.take(refcon) else {
            self.ready.push_back(Err(EncodeError::Contract {
                backend: NAME,
                message: format!(
                    "output callback for a frame that was never submitted (refcon {})",
                    refcon.0
                ),
            }));
            return;
        };
        self.timings.last_encode_ms = ms_between(frame.submitted, now);
        let result = if status != 0 {
            Err(vt_error("VTCompressionOutputCallback", status))
        } else if dropped {
            Err(EncodeError::Contract {
                backend: NAME,
                message: format!(
                    "VideoToolbox dropped the frame with token {} (kVTEncodeInfo_FrameDropped)",
                    frame.token
                ),
            })
        } else {
            match sample {
                Ok(Some(sample)) => access_unit(frame.token, sample),
                Ok(None) => Err(EncodeError::Contract {
                    backend: NAME,
                    message: format!("no sample buffer for the frame with token {}", frame.token),
                }),
                Err(e) => Err(e),
            }
        };
        self.ready.push_back(result);
    }

    /// The next finished access unit (or the error that replaced it).
    pub fn pop(&mut self) -> Option<Result<RawAccessUnit, EncodeError>> {
        self.ready.pop_front()
    }

    /// Frames submitted and not yet reported.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Forget every frame still inside the encoder (teardown), returning them.
    pub fn drain_in_flight(&mut self) -> Vec<PendingFrame> {
        self.in_flight.drain(..).map(|(_, f)| f).collect()
    }
}

/// Name of a VideoToolbox / CoreVideo / CoreMedia status code.
pub(crate) fn status_name(status: i32) -> Option<&'static str> {
    Some(match status {
        -12900 => "kVTPropertyNotSupportedErr",
        -12901 => "kVTPropertyReadOnlyErr",
        -12902 => "kVTParameterErr",
        -12903 => "kVTInvalidSessionErr",
        -12904 => "kVTAllocationFailedErr",
        -12905 => "kVTPixelTransferNotSupportedErr",
        -12907 => "kVTCouldNotCreateInstanceErr",
        -12908 => "kVTCouldNotFindVideoEncoderErr",
        -12912 => "kVTVideoEncoderMalfunctionErr",
        -12915 => "kVTVideoEncoderNotAvailableNowErr",
        -12916 => "kVTFormatDescriptionChangeNotSupportedErr",
        -12917 => "kVTInsufficientSourceColorDataErr",
        -12211 => "kVTVideoEncoderAuthorizationErr",
        -17691 => "kVTSessionMalfunctionErr",
        -17693 => "kVTVideoEncoderNeedsRosettaErr",
        -6660 => "kCVReturnError",
        -6661 => "kCVReturnInvalidArgument",
        -6662 => "kCVReturnAllocationFailed",
        -6663 => "kCVReturnUnsupported",
        -6680 => "kCVReturnInvalidPixelFormat",
        -6681 => "kCVReturnInvalidSize",
        -6682 => "kCVReturnInvalidPixelBufferAttributes",
        -6684 => "kCVReturnPixelBufferNotMetalCompatible",
        -6689 => "kCVReturnWouldExceedAllocationThreshold",
        -6690 => "kCVReturnPoolAllocationFailed",
        -6691 => "kCVReturnInvalidPoolAttributes",
        -12700 => "kCMBlockBufferStructureAllocationFailedErr",
        -12704 => "kCMBlockBufferBadOffsetParameterErr",
        -12706 => "kCMBlockBufferBadLengthParameterErr",
        -12710 => "kCMFormatDescriptionError_InvalidParameter",
        _ => return None,
    })
}

/// A failed platform call as an [`EncodeError::Backend`] naming the call and the status.
pub(crate) fn vt_error(call: &str, status: i32) -> EncodeError {
    let name = status_name(status)
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    EncodeError::Backend {
        backend: NAME,
        message: format!("{call} failed: OSStatus {status}{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BackpressurePolicy;
    use std::time::Duration;

    #[test]
    fn options_parse_and_name_bad_values() {
        assert_eq!(
            VtOptions::from_values(None, None).unwrap(),
            VtOptions::default()
        );
        let o = VtOptions::from_values(Some("1"), Some("off")).unwrap();
        assert!(o.allow_software && !o.low_latency);
        let o = VtOptions::from_values(Some(" TRUE "), Some("")).unwrap();
        assert!(o.allow_software && o.low_latency);
        let e = VtOptions::from_values(Some("maybe"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("FRAMECAST_VT_ALLOW_SOFTWARE=\"maybe\""), "{e}");
    }

    #[test]
    fn specification_requires_hardware_unless_allowed() {
        assert_eq!(
            encoder_specification(VtOptions::default()),
            vec![
                (SpecKey::RequireHardware, true),
                (SpecKey::EnableLowLatencyRateControl, true)
            ]
        );
        assert_eq!(
            encoder_specification(VtOptions {
                allow_software: true,
                low_latency: false
            }),
            vec![(SpecKey::EnableHardware, true)]
        );
    }

    fn find(props: &[SessionProperty], key: PropertyKey) -> Option<&SessionProperty> {
        props.iter().find(|p| p.key == key)
    }

    #[test]
    fn default_config_maps_to_low_latency_properties() {
        let c = EncoderConfig::new(1920, 1080);
        let props = session_properties(&c, VtOptions::default(), None).unwrap();
        let value = |k| find(&props, k).map(|p| p.value.clone());
        assert_eq!(
            value(PropertyKey::RealTime),
            Some(PropertyValue::Bool(true))
        );
        assert_eq!(
            value(PropertyKey::AllowFrameReordering),
            Some(PropertyValue::Bool(false))
        );
        assert_eq!(
            value(PropertyKey::AverageBitRate),
            Some(PropertyValue::Int(8_000_000))
        );
        assert_eq!(
            value(PropertyKey::ExpectedFrameRate),
            Some(PropertyValue::Float(30.0))
        );
        assert_eq!(
            value(PropertyKey::MaxKeyFrameInterval),
            Some(PropertyValue::Int(60))
        );
        assert_eq!(
            value(PropertyKey::ProfileLevel),
            Some(PropertyValue::OneOf(vec![
                CfConstant::ProfileConstrainedBaselineAuto,
                CfConstant::ProfileBaselineAuto
            ]))
        );
        assert_eq!(
            value(PropertyKey::YCbCrMatrix),
            Some(PropertyValue::OneOf(vec![CfConstant::MatrixItuR709]))
        );
        // No max rate configured, no QP bounds, no frame delay limit in sync mode.
        for absent in [
            PropertyKey::DataRateLimits,
            PropertyKey::MinAllowedFrameQP,
            PropertyKey::MaxAllowedFrameQP,
            PropertyKey::MaxFrameDelayCount,
        ] {
            assert!(find(&props, absent).is_none(), "{absent:?}");
        }
        assert_eq!(
            find(&props, PropertyKey::AllowFrameReordering)
                .unwrap()
                .requirement,
            Requirement::Required
        );
    }

    #[test]
    fn rate_keyframe_and_pipelining_mapping() {
        let mut c = EncoderConfig::new(640, 360);
        c.keyframe_interval = 0;
        c.rate_control = RateControl::ConstantQp(23);
        c.mode = EncodeMode::Pipelined {
            max_in_flight: 3,
            policy: BackpressurePolicy::DropOld,
        };
        let props = session_properties(&c, VtOptions::default(), Some(4_000_001)).unwrap();
        assert!(find(&props, PropertyKey::MaxKeyFrameInterval).is_none());
        assert!(find(&props, PropertyKey::AverageBitRate).is_none());
        assert_eq!(
            find(&props, PropertyKey::MinAllowedFrameQP).unwrap().value,
            PropertyValue::Int(23)
        );
        assert_eq!(
            find(&props, PropertyKey::MaxAllowedFrameQP).unwrap().value,
            PropertyValue::Int(23)
        );
        assert_eq!(
            find(&props, PropertyKey::MaxFrameDelayCount).unwrap().value,
            PropertyValue::Int(2)
        );
        c.rate_control = RateControl::Bitrate;
        let props = session_properties(&c, VtOptions::default(), Some(4_000_001)).unwrap();
        assert_eq!(
            find(&props, PropertyKey::DataRateLimits).unwrap().value,
            PropertyValue::DataRateLimits {
                bytes: 500_001,
                seconds: 1.0
            }
        );
    }

    #[test]
    fn profiles_and_names() {
        assert_eq!(
            profile_candidates(ProfileHint::High, true),
            vec![
                CfConstant::ProfileConstrainedHighAuto,
                CfConstant::ProfileHighAuto
            ]
        );
        assert_eq!(
            profile_candidates(ProfileHint::High, false),
            vec![CfConstant::ProfileHighAuto]
        );
        assert_eq!(
            profile_candidates(ProfileHint::Main, true),
            vec![CfConstant::ProfileMainAuto]
        );
        assert_eq!(
            CfConstant::ProfileConstrainedBaselineAuto.name(),
            "kVTProfileLevel_H264_ConstrainedBaseline_AutoLevel"
        );
        assert_eq!(
            PropertyKey::MaxKeyFrameInterval.name(),
            "kVTCompressionPropertyKey_MaxKeyFrameInterval"
        );
    }

    #[test]
    fn colour_mapping_and_pixel_formats() {
        let c = VtColor::of(ColorSpace::BT709_LIMITED).unwrap();
        assert_eq!(
            (c.primaries, c.transfer, c.matrix, c.nv12),
            (
                CfConstant::PrimariesItuR709,
                CfConstant::TransferItuR709,
                CfConstant::MatrixItuR709,
                VtPixelFormat::Nv12VideoRange
            )
        );
        let c = VtColor::of(ColorSpace::new(Matrix::Bt601, Range::Full)).unwrap();
        assert_eq!(
            (c.primaries, c.transfer, c.matrix, c.nv12),
            (
                CfConstant::PrimariesSmpteC,
                CfConstant::TransferItuR709,
                CfConstant::MatrixItuR601,
                VtPixelFormat::Nv12FullRange
            )
        );
        let pal = ColorSpace {
            primaries: Primaries::Bt601Pal,
            transfer: Transfer::Srgb,
            ..ColorSpace::default()
        };
        let c = VtColor::of(pal).unwrap();
        assert_eq!(c.primaries.name(), "kCVImageBufferColorPrimaries_EBU_3213");
        assert_eq!(c.transfer.name(), "kCVImageBufferTransferFunction_sRGB");
        // The OSType values CoreVideo defines.
        assert_eq!(VtPixelFormat::Nv12VideoRange.fourcc(), 0x3432_3076);
        assert_eq!(VtPixelFormat::Nv12FullRange.fourcc(), 0x3432_3066);
        assert_eq!(VtPixelFormat::Bgra.fourcc(), 0x4247_5241);
        assert_eq!(VtPixelFormat::Rgba.fourcc(), 0x5247_4241);
    }

    #[test]
    fn canvas_is_even_and_at_least_min_side() {
        assert_eq!(encode_size(1920, 1080), (1920, 1080));
        assert_eq!(encode_size(1279, 719), (1280, 720));
        assert_eq!(encode_size(33, 17), (MIN_SIDE, MIN_SIDE));
        assert_eq!(encode_size(33, 4000), (MIN_SIDE, 4000));
    }

    #[test]
    fn copy_plane_replicates_edges_and_respects_strides() {
        // 2x2 NV12 chroma (CbCr pairs) into 3 pairs x 3 rows with a padded stride.
        let src = [1u8, 2, 3, 4, /* row 1 */ 5, 6, 7, 8];
        let mut dst = vec![0u8; 8 * 3];
        copy_plane(
            Plane {
                data: &src,
                stride: 4,
                row_bytes: 4,
                rows: 2,
            },
            PlaneMut {
                data: &mut dst,
                stride: 8,
                row_bytes: 6,
                rows: 3,
            },
            2,
        )
        .unwrap();
        assert_eq!(
            dst,
            [
                1, 2, 3, 4, 3, 4, 0, 0, // row 0, last pair repeated, stride padding untouched
                5, 6, 7, 8, 7, 8, 0, 0, // row 1
                5, 6, 7, 8, 7, 8, 0, 0, // last row repeated
            ]
        );
        // Same size, tight: a plain copy.
        let mut same = vec![0u8; 8];
        copy_plane(
            Plane {
                data: &src,
                stride: 4,
                row_bytes: 4,
                rows: 2,
            },
            PlaneMut {
                data: &mut same,
                stride: 4,
                row_bytes: 4,
                rows: 2,
            },
            1,
        )
        .unwrap();
        assert_eq!(same, src);
    }

    #[test]
    fn copy_plane_rejects_geometry_that_does_not_fit() {
        let src = [0u8; 16];
        let mut small = vec![0u8; 10];
        let e = copy_plane(
            Plane {
                data: &src,
                stride: 4,
                row_bytes: 4,
                rows: 4,
            },
            PlaneMut {
                data: &mut small,
                stride: 4,
                row_bytes: 4,
                rows: 4,
            },
            1,
        )
        .unwrap_err();
        assert!(e.contains("does not fit"), "{e}");
        // Destination narrower than the source.
        let mut dst = vec![0u8; 64];
        assert!(copy_plane(
            Plane {
                data: &src,
                stride: 4,
                row_bytes: 4,
                rows: 4
            },
            PlaneMut {
                data: &mut dst,
                stride: 2,
                row_bytes: 2,
                rows: 4
            },
            1
        )
        .is_err());
        // Source buffer shorter than its geometry claims.
        assert!(copy_plane(
            Plane {
                data: &src[..10],
                stride: 4,
                row_bytes: 4,
                rows: 4
            },
            PlaneMut {
                data: &mut dst,
                stride: 4,
                row_bytes: 4,
                rows: 4
            },
            1
        )
        .is_err());
    }

    const SPS: &[u8] = &[0x67, 0x42, 0xC0, 0x1F, 0xDA, 0x01];
    const PPS: &[u8] = &[0x68, 0xCE, 0x3C, 0x80];
    const SEI: &[u8] = &[0x06, 0x05, 0x01, 0x00, 0x80];

    fn avcc(nals: &[&[u8]], length_size: u8) -> Vec<u8> {
        let mut out = Vec::new();
        for n in nals {
            let len = (n.len() as u32).to_be_bytes();
            out.extend_from_slice(&len[4 - length_size as usize..]);
            out.extend_from_slice(n);
        }
        out
    }

    fn sample(nals: &[&[u8]], sync: bool, length_size: i32) -> SampleParts {
        SampleParts {
            data: avcc(nals, length_size as u8),
            sync,
            parameter_sets: vec![SEI.to_vec(), SPS.to_vec(), PPS.to_vec()],
            nal_unit_header_length: length_size,
        }
    }

    #[test]
    fn keyframes_carry_parameter_sets_from_the_format_description() {
        let idr: &[u8] = &[0x65, 0x88, 0x80, 0x10];
        let au = access_unit(7, sample(&[SEI, idr], true, 4)).unwrap();
        assert_eq!(au.token, 7);
        assert_eq!(au.format, RawFormat::Avcc { length_size: 4 });
        assert_eq!(au.parameter_sets, Some((SPS.to_vec(), PPS.to_vec())));
        // Non-sync P frame: no parameter sets; 2-byte lengths are passed through.
        let p: &[u8] = &[0x41, 0x9A, 0x02];
        let au = access_unit(8, sample(&[p], false, 2)).unwrap();
        assert_eq!(au.format, RawFormat::Avcc { length_size: 2 });
        assert_eq!(au.parameter_sets, None);
        // An IDR the attachments failed to mark still gets them.
        let au = access_unit(9, sample(&[idr], false, 4)).unwrap();
        assert!(au.parameter_sets.is_some());
    }

    #[test]
    fn malformed_samples_are_contract_errors() {
        let idr: &[u8] = &[0x65, 0x88];
        let e = access_unit(1, sample(&[idr], true, 3))
            .unwrap_err()
            .to_string();
        assert!(e.contains("header length 3"), "{e}");
        let mut s = sample(&[idr], true, 4);
        s.data.truncate(3);
        assert!(access_unit(1, s).is_err());
        let mut s = sample(&[idr], true, 4);
        s.parameter_sets = vec![SPS.to_vec()];
        let e = access_unit(1, s).unwrap_err().to_string();
        assert!(e.contains("no SPS and PPS"), "{e}");
    }

    #[test]
    fn normaliser_turns_vt_output_into_annexb_with_in_band_parameter_sets() {
        // The whole VideoToolbox output path minus the platform calls: sample -> RawAccessUnit
        // -> shared normaliser.
        use crate::normalize::Normalizer;
        use crate::OutputFormat;
        use framecast_h264::nal::annexb_nals;
        // A real SPS (1280x720 Constrained Baseline, from framecast-h264's docs).
        let sps = [
            0x67, 0x42, 0xc0, 0x1f, 0xd9, 0x00, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03,
            0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x24, 0x80,
        ];
        let idr: &[u8] = &[0x65, 0x88, 0x84, 0x00, 0x33];
        let mut s = sample(&[idr], true, 4);
        s.parameter_sets = vec![sps.to_vec(), PPS.to_vec()];
        let au = access_unit(3, s).unwrap();
        let mut n = Normalizer::new(
            NAME,
            1280,
            720,
            ColorSpace::default(),
            OutputFormat::AnnexB,
            0,
        );
        let out = match n.process(&au) {
            Ok(out) => out,
            // The fixture SPS must parse; if framecast-h264 rejects it, say so clearly.
            Err(e) => panic!("normaliser rejected the fixture: {e}"),
        };
        assert!(out.keyframe);
        let types: Vec<_> = annexb_nals(&out.data).filter_map(nal_type).collect();
        assert_eq!(types, vec![NalType::Sps, NalType::Pps, NalType::IdrSlice]);
        assert!(out.codec.starts_with("avc1.42"), "{}", out.codec);
    }

    #[test]
    fn refcons_are_nonzero_ids_that_round_trip_through_void_pointers() {
        let mut q = OutputQueue::default();
        let t0 = Instant::now();
        let a = q.submit(10, 0, t0);
        let b = q.submit(11, 1, t0);
        assert_ne!(a, b);
        assert!(!a.to_ptr().is_null());
        assert_eq!(RefCon::from_ptr(b.to_ptr()), b);
        q.next_id = u64::MAX;
        let c = q.submit(12, 2, t0);
        let d = q.submit(13, 3, t0);
        assert_eq!(c.0, u64::MAX);
        assert_eq!(d.0, 1, "wraps to 1, never 0");
    }

    #[test]
    fn output_queue_attributes_tokens_and_times_and_releases_every_frame() {
        let mut q = OutputQueue::default();
        let t0 = Instant::now();
        let a = q.submit(100, 0, t0);
        let b = q.submit(200, 33, t0);
        let c = q.submit(300, 66, t0);
        assert_eq!(q.in_flight(), 3);
        let idr: &[u8] = &[0x65, 0x88];
        q.on_output(
            a,
            0,
            false,
            Ok(Some(sample(&[idr], true, 4))),
            t0 + Duration::from_millis(6),
        );
        assert_eq!(q.timings.last_encode_ms, 6.0);
        let au = q.pop().unwrap().unwrap();
        assert_eq!(au.token, 100);
        assert!(au.parameter_sets.is_some());
        // EncodeFrame failed for b: it is forgotten, no output expected.
        assert_eq!(q.forget(b).map(|f| f.token), Some(200));
        assert!(q.pop().is_none());
        // c is dropped by the encoder: an error in its place, and the frame is released.
        q.on_output(c, 0, true, Ok(None), t0);
        let e = q.pop().unwrap().unwrap_err().to_string();
        assert!(e.contains("token 300") && e.contains("FrameDropped"), "{e}");
        assert_eq!(q.in_flight(), 0);
        // A callback for something never submitted (or already reported) is an error, not a panic.
        q.on_output(a, 0, false, Ok(None), t0);
        assert!(q.pop().unwrap().is_err());
        // Status errors name the status.
        let d = q.submit(400, 99, t0);
        q.on_output(d, -12912, false, Ok(None), t0);
        let e = q.pop().unwrap().unwrap_err().to_string();
        assert!(
            e.contains("-12912") && e.contains("kVTVideoEncoderMalfunctionErr"),
            "{e}"
        );
        // Missing sample buffer.
        let e2 = q.submit(500, 0, t0);
        q.on_output(e2, 0, false, Ok(None), t0);
        assert!(q
            .pop()
            .unwrap()
            .unwrap_err()
            .to_string()
            .contains("no sample buffer"));
        // Teardown releases whatever is left.
        q.submit(600, 0, t0);
        assert_eq!(q.drain_in_flight().len(), 1);
        assert_eq!(q.in_flight(), 0);
    }

    #[test]
    fn errors_name_the_call_and_status() {
        let e = vt_error("VTCompressionSessionCreate", -12908).to_string();
        assert!(e.contains("VTCompressionSessionCreate failed: OSStatus -12908 (kVTCouldNotFindVideoEncoderErr)"), "{e}");
        let e = vt_error("CVPixelBufferLockBaseAddress", -1).to_string();
        assert!(e.ends_with("OSStatus -1"), "{e}");
    }
}
