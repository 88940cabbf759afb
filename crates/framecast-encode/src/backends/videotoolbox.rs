//! Apple VideoToolbox (`VTCompressionSession`), hardware H.264 on macOS.
//!
//! A thin shim: it turns the plain values of [`super::vt_shared`] into CoreFoundation objects,
//! copies pictures into `CVPixelBuffer`s from the session's pool (IOSurface-backed,
//! Metal-compatible), and hands each encoded sample's bytes, keyframe flag and parameter sets
//! back to the shared [`OutputQueue`]. Everything else (property choices, colour mapping,
//! refcon ↔ token bookkeeping, AVCC length size, SPS/PPS on keyframes, error naming) is shared
//! code tested on Linux; Annex B, the VUI rewrite and the codec string are the shared
//! normaliser's.
//!
//! Modes: synchronous 1-in-1-out (`VTCompressionSessionCompleteFrames` after every frame) or
//! pipelined (the token travels in `sourceFrameRefCon`; the output callback queues access units
//! that [`BackendEncoder::poll`] drains).
//!
//! Input paths: (a) NV12 host pictures copied into the session pool's buffers — what the encoder
//! contract hands backends today; (b) BGRA handed to VideoToolbox directly and (c) RGBA converted
//! to NV12 by `VTPixelTransferSession`, both through [`VideoToolboxBackend::encode_rgb`], which
//! `framecast doctor` exercises until the backend trait can pass RGB frames.
//!
//! This code is compile-checked for `aarch64-apple-darwin` on every CI run
//! (`scripts/check-macos.sh`) and has not been run on hardware by the project.

use super::vt_shared::{
    copy_plane, encode_size, encoder_specification, ms_between, session_properties, vt_error,
    CfConstant, OutputQueue, Plane, PlaneMut, PropertyKey, PropertyValue, RefCon, Requirement,
    SampleParts, SpecKey, VtColor, VtOptions, VtPixelFormat, ENV_ALLOW_SOFTWARE, ENV_LOW_LATENCY,
    NAME,
};
use crate::backend::{
    Availability, BackendDescriptor, BackendEncoder, BackendFrame, BackendRgbFrame, RawAccessUnit,
    RgbInput,
};
use crate::{EncodeError, EncodeMode, EncoderConfig};
use framecast_core::{Frame, PixelFormat, Planes, Yuv420Image, YuvLayout};
use objc2_core_foundation::{
    CFArray, CFBoolean, CFDictionary, CFNumber, CFRetained, CFString, CFType,
};
use objc2_core_media::{
    kCMSampleAttachmentKey_NotSync, kCMVideoCodecType_H264, CMSampleBuffer, CMTime, CMTimeFlags,
    CMVideoFormatDescriptionGetH264ParameterSetAtIndex,
};
use objc2_core_video::{
    kCVImageBufferColorPrimariesKey, kCVImageBufferColorPrimaries_EBU_3213,
    kCVImageBufferColorPrimaries_ITU_R_709_2, kCVImageBufferColorPrimaries_SMPTE_C,
    kCVImageBufferTransferFunctionKey, kCVImageBufferTransferFunction_ITU_R_709_2,
    kCVImageBufferTransferFunction_sRGB, kCVImageBufferYCbCrMatrixKey,
    kCVImageBufferYCbCrMatrix_ITU_R_601_4, kCVImageBufferYCbCrMatrix_ITU_R_709_2,
    kCVPixelBufferHeightKey, kCVPixelBufferIOSurfacePropertiesKey,
    kCVPixelBufferMetalCompatibilityKey, kCVPixelBufferPixelFormatTypeKey, kCVPixelBufferWidthKey,
    CVAttachmentMode, CVPixelBuffer, CVPixelBufferGetBaseAddress,
    CVPixelBufferGetBaseAddressOfPlane, CVPixelBufferGetBytesPerRow,
    CVPixelBufferGetBytesPerRowOfPlane, CVPixelBufferGetHeight, CVPixelBufferGetHeightOfPlane,
    CVPixelBufferGetPlaneCount, CVPixelBufferGetWidth, CVPixelBufferGetWidthOfPlane,
    CVPixelBufferLockBaseAddress, CVPixelBufferLockFlags, CVPixelBufferPool,
    CVPixelBufferUnlockBaseAddress,
};
use objc2_video_toolbox::{
    kVTCompressionPropertyKey_AllowFrameReordering, kVTCompressionPropertyKey_AverageBitRate,
    kVTCompressionPropertyKey_ColorPrimaries, kVTCompressionPropertyKey_DataRateLimits,
    kVTCompressionPropertyKey_ExpectedFrameRate, kVTCompressionPropertyKey_MaxAllowedFrameQP,
    kVTCompressionPropertyKey_MaxFrameDelayCount, kVTCompressionPropertyKey_MaxKeyFrameInterval,
    kVTCompressionPropertyKey_MinAllowedFrameQP, kVTCompressionPropertyKey_ProfileLevel,
    kVTCompressionPropertyKey_RealTime, kVTCompressionPropertyKey_TransferFunction,
    kVTCompressionPropertyKey_UsingHardwareAcceleratedVideoEncoder,
    kVTCompressionPropertyKey_YCbCrMatrix, kVTEncodeFrameOptionKey_ForceKeyFrame,
    kVTPixelTransferPropertyKey_DestinationColorPrimaries,
    kVTPixelTransferPropertyKey_DestinationTransferFunction,
    kVTPixelTransferPropertyKey_DestinationYCbCrMatrix, kVTProfileLevel_H264_Baseline_AutoLevel,
    kVTProfileLevel_H264_ConstrainedBaseline_AutoLevel,
    kVTProfileLevel_H264_ConstrainedHigh_AutoLevel, kVTProfileLevel_H264_High_AutoLevel,
    kVTProfileLevel_H264_Main_AutoLevel,
    kVTVideoEncoderSpecification_EnableHardwareAcceleratedVideoEncoder,
    kVTVideoEncoderSpecification_EnableLowLatencyRateControl,
    kVTVideoEncoderSpecification_RequireHardwareAcceleratedVideoEncoder, VTCompressionSession,
    VTEncodeInfoFlags, VTPixelTransferSession, VTSessionCopyProperty, VTSessionSetProperty,
};
use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{self, NonNull};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// The registry entry.
pub const DESCRIPTOR: BackendDescriptor = BackendDescriptor {
    name: NAME,
    description: "Apple VideoToolbox, hardware H.264 (macOS)",
    hardware: true,
    recovery: false,
    bframes: false,
    intra_refresh: false,
    probe,
    create,
};

type CfDict = CFDictionary<CFString, CFType>;

fn backend_error(message: String) -> EncodeError {
    EncodeError::Backend {
        backend: NAME,
        message,
    }
}

fn check(call: &str, status: i32) -> Result<(), EncodeError> {
    if status == 0 {
        Ok(())
    } else {
        Err(vt_error(call, status))
    }
}

fn cf_constant(c: CfConstant) -> &'static CFString {
    // SAFETY: these are immutable CFString constants exported by VideoToolbox and CoreVideo,
    // initialised before any Rust code runs and valid for the life of the process.
    unsafe {
        match c {
            CfConstant::ProfileConstrainedBaselineAuto => {
                kVTProfileLevel_H264_ConstrainedBaseline_AutoLevel
            }
            CfConstant::ProfileBaselineAuto => kVTProfileLevel_H264_Baseline_AutoLevel,
            CfConstant::ProfileMainAuto => kVTProfileLevel_H264_Main_AutoLevel,
            CfConstant::ProfileHighAuto => kVTProfileLevel_H264_High_AutoLevel,
            CfConstant::ProfileConstrainedHighAuto => {
                kVTProfileLevel_H264_ConstrainedHigh_AutoLevel
            }
            CfConstant::PrimariesItuR709 => kCVImageBufferColorPrimaries_ITU_R_709_2,
            CfConstant::PrimariesEbu3213 => kCVImageBufferColorPrimaries_EBU_3213,
            CfConstant::PrimariesSmpteC => kCVImageBufferColorPrimaries_SMPTE_C,
            CfConstant::TransferItuR709 => kCVImageBufferTransferFunction_ITU_R_709_2,
            CfConstant::TransferSrgb => kCVImageBufferTransferFunction_sRGB,
            CfConstant::MatrixItuR709 => kCVImageBufferYCbCrMatrix_ITU_R_709_2,
            CfConstant::MatrixItuR601 => kCVImageBufferYCbCrMatrix_ITU_R_601_4,
        }
    }
}

fn property_key(k: PropertyKey) -> &'static CFString {
    // SAFETY: immutable CFString constants exported by VideoToolbox (see `cf_constant`).
    unsafe {
        match k {
            PropertyKey::RealTime => kVTCompressionPropertyKey_RealTime,
            PropertyKey::AllowFrameReordering => kVTCompressionPropertyKey_AllowFrameReordering,
            PropertyKey::ExpectedFrameRate => kVTCompressionPropertyKey_ExpectedFrameRate,
            PropertyKey::AverageBitRate => kVTCompressionPropertyKey_AverageBitRate,
            PropertyKey::DataRateLimits => kVTCompressionPropertyKey_DataRateLimits,
            PropertyKey::MaxKeyFrameInterval => kVTCompressionPropertyKey_MaxKeyFrameInterval,
            PropertyKey::MaxFrameDelayCount => kVTCompressionPropertyKey_MaxFrameDelayCount,
            PropertyKey::ProfileLevel => kVTCompressionPropertyKey_ProfileLevel,
            PropertyKey::ColorPrimaries => kVTCompressionPropertyKey_ColorPrimaries,
            PropertyKey::TransferFunction => kVTCompressionPropertyKey_TransferFunction,
            PropertyKey::YCbCrMatrix => kVTCompressionPropertyKey_YCbCrMatrix,
            PropertyKey::MinAllowedFrameQP => kVTCompressionPropertyKey_MinAllowedFrameQP,
            PropertyKey::MaxAllowedFrameQP => kVTCompressionPropertyKey_MaxAllowedFrameQP,
        }
    }
}

fn spec_key(k: SpecKey) -> &'static CFString {
    // SAFETY: immutable CFString constants exported by VideoToolbox (see `cf_constant`).
    unsafe {
        match k {
            SpecKey::RequireHardware => {
                kVTVideoEncoderSpecification_RequireHardwareAcceleratedVideoEncoder
            }
            SpecKey::EnableHardware => {
                kVTVideoEncoderSpecification_EnableHardwareAcceleratedVideoEncoder
            }
            SpecKey::EnableLowLatencyRateControl => {
                kVTVideoEncoderSpecification_EnableLowLatencyRateControl
            }
        }
    }
}

fn dictionary(pairs: &[(&CFString, &CFType)]) -> CFRetained<CfDict> {
    let keys: Vec<&CFString> = pairs.iter().map(|(k, _)| *k).collect();
    let values: Vec<&CFType> = pairs.iter().map(|(_, v)| *v).collect();
    CfDict::from_slices(&keys, &values)
}

fn opaque(d: &CfDict) -> &CFDictionary {
    d.as_ref()
}

/// Attributes of IOSurface-backed, Metal-compatible pixel buffers of one format and size.
fn buffer_attributes(format: VtPixelFormat, width: u32, height: u32) -> CFRetained<CfDict> {
    let fourcc = CFNumber::new_i64(i64::from(format.fourcc()));
    let w = CFNumber::new_i64(i64::from(width));
    let h = CFNumber::new_i64(i64::from(height));
    let iosurface = CfDict::from_slices(&[], &[]);
    // SAFETY: immutable CFString constants exported by CoreVideo (see `cf_constant`).
    let keys = unsafe {
        [
            kCVPixelBufferPixelFormatTypeKey,
            kCVPixelBufferWidthKey,
            kCVPixelBufferHeightKey,
            kCVPixelBufferIOSurfacePropertiesKey,
            kCVPixelBufferMetalCompatibilityKey,
        ]
    };
    dictionary(&[
        (keys[0], &fourcc),
        (keys[1], &w),
        (keys[2], &h),
        (keys[3], &iosurface),
        (keys[4], CFBoolean::new(true)),
    ])
}

/// Colour attachments for every pixel buffer, so VideoToolbox never converts colour.
fn color_attachments(color: VtColor) -> CFRetained<CfDict> {
    // SAFETY: immutable CFString constants exported by CoreVideo (see `cf_constant`).
    let keys = unsafe {
        [
            kCVImageBufferColorPrimariesKey,
            kCVImageBufferTransferFunctionKey,
            kCVImageBufferYCbCrMatrixKey,
        ]
    };
    dictionary(&[
        (keys[0], cf_constant(color.primaries)),
        (keys[1], cf_constant(color.transfer)),
        (keys[2], cf_constant(color.matrix)),
    ])
}

fn set_property(session: &CFType, key: &CFString, value: &CFType) -> i32 {
    // SAFETY: `session` is a live VideoToolbox session (compression or pixel transfer); key and
    // value are valid CF objects that VideoToolbox retains as needed.
    unsafe { VTSessionSetProperty(session, key, Some(value)) }
}

/// Set one planned property; `OneOf` tries each constant until one is accepted.
fn apply_property(
    session: &CFType,
    key: PropertyKey,
    value: &PropertyValue,
) -> Result<(), EncodeError> {
    let k = property_key(key);
    let call = |extra: &str| format!("VTSessionSetProperty({}{extra})", key.name());
    let status = match value {
        PropertyValue::Bool(b) => set_property(session, k, CFBoolean::new(*b)),
        PropertyValue::Int(i) => set_property(session, k, &CFNumber::new_i64(*i)),
        PropertyValue::Float(f) => set_property(session, k, &CFNumber::new_f64(*f)),
        PropertyValue::DataRateLimits { bytes, seconds } => {
            let limits = CFArray::<CFNumber>::from_retained_objects(&[
                CFNumber::new_i64(*bytes),
                CFNumber::new_f64(*seconds),
            ]);
            set_property(session, k, &limits)
        }
        PropertyValue::OneOf(candidates) => {
            let mut last = (String::new(), -12902);
            for c in candidates {
                let status = set_property(session, k, cf_constant(*c));
                if status == 0 {
                    return Ok(());
                }
                last = (format!(" = {}", c.name()), status);
            }
            return Err(vt_error(&call(&last.0), last.1));
        }
    };
    check(&call(""), status)
}

/// The output callback. VideoToolbox calls it on its own thread, once per submitted frame.
unsafe extern "C-unwind" fn output_callback(
    output_ref_con: *mut c_void,
    source_frame_ref_con: *mut c_void,
    status: i32,
    info_flags: VTEncodeInfoFlags,
    sample_buffer: *mut CMSampleBuffer,
) {
    let now = Instant::now();
    // SAFETY: `output_ref_con` is the `Arc<Mutex<OutputQueue>>` pointer passed to
    // VTCompressionSessionCreate; `Session` keeps that reference alive until after the session
    // is completed and invalidated, so it outlives every callback.
    let queue = unsafe { &*output_ref_con.cast_const().cast::<Mutex<OutputQueue>>() };
    let dropped = info_flags.contains(VTEncodeInfoFlags::FrameDropped);
    let sample = if status == 0 && !dropped {
        // Never unwind into VideoToolbox.
        catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: VideoToolbox passes a valid sample buffer (or null) that stays alive for
            // the duration of the callback; `sample_parts` copies what it needs.
            unsafe { sample_parts(sample_buffer) }
        }))
        .unwrap_or_else(|_| Err(backend_error("panic while reading a sample buffer".into())))
    } else {
        Ok(None)
    };
    lock(queue).on_output(
        RefCon::from_ptr(source_frame_ref_con),
        status,
        dropped,
        sample,
        now,
    );
}

fn lock(queue: &Mutex<OutputQueue>) -> MutexGuard<'_, OutputQueue> {
    queue.lock().unwrap_or_else(|e| e.into_inner())
}

/// Copy bytes, keyframe flag and parameter sets out of an encoded sample.
///
/// # Safety
/// `sample` is null or a valid `CMSampleBuffer` for the duration of the call.
unsafe fn sample_parts(sample: *mut CMSampleBuffer) -> Result<Option<SampleParts>, EncodeError> {
    // SAFETY: per the function contract.
    let Some(sample) = (unsafe { sample.as_ref() }) else {
        return Ok(None);
    };
    // SAFETY: `sample` is valid; the getters return +1 retained objects or None.
    let (block, desc, attachments) = unsafe {
        (
            sample.data_buffer(),
            sample.format_description(),
            sample.sample_attachments_array(false),
        )
    };
    let block = block.ok_or_else(|| backend_error("sample buffer has no data buffer".into()))?;
    // SAFETY: `block` is a valid CMBlockBuffer.
    let len = unsafe { block.data_length() };
    let mut data = vec![0u8; len];
    if len > 0 {
        let dest = NonNull::from(data.as_mut_slice()).cast::<c_void>();
        // SAFETY: `dest` points to `len` writable bytes; the block buffer holds `len` bytes.
        check("CMBlockBufferCopyDataBytes", unsafe {
            block.copy_data_bytes(0, len, dest)
        })?;
    }
    let sync = match attachments {
        None => true,
        Some(array) if array.count() == 0 => true,
        Some(array) => {
            // SAFETY: CMSampleBufferGetSampleAttachmentsArray returns an array of
            // CFDictionaries with CFString keys.
            let array = unsafe { array.cast_unchecked::<CFDictionary>() };
            match array.get(0) {
                None => true,
                Some(dict) => {
                    // SAFETY: sample attachment dictionaries have CFString keys and CF values;
                    // the key is an immutable CoreMedia constant.
                    let (dict, key) = unsafe {
                        (
                            dict.cast_unchecked::<CFString, CFType>(),
                            kCMSampleAttachmentKey_NotSync,
                        )
                    };
                    match dict.get(key) {
                        None => true,
                        Some(v) => !v.downcast_ref::<CFBoolean>().is_none_or(|b| b.as_bool()),
                    }
                }
            }
        }
    };
    let desc =
        desc.ok_or_else(|| backend_error("sample buffer has no format description".into()))?;
    let mut count = 0usize;
    let mut header_length: c_int = 0;
    // SAFETY: `desc` is a valid H.264 format description; the out pointers are valid or null.
    check(
        "CMVideoFormatDescriptionGetH264ParameterSetAtIndex",
        unsafe {
            CMVideoFormatDescriptionGetH264ParameterSetAtIndex(
                &desc,
                0,
                ptr::null_mut(),
                ptr::null_mut(),
                &mut count,
                &mut header_length,
            )
        },
    )?;
    let mut parameter_sets = Vec::with_capacity(count);
    for index in 0..count {
        let mut set: *const u8 = ptr::null();
        let mut size = 0usize;
        // SAFETY: as above; `index < count`.
        check(
            "CMVideoFormatDescriptionGetH264ParameterSetAtIndex",
            unsafe {
                CMVideoFormatDescriptionGetH264ParameterSetAtIndex(
                    &desc,
                    index,
                    &mut set,
                    &mut size,
                    ptr::null_mut(),
                    ptr::null_mut(),
                )
            },
        )?;
        if set.is_null() {
            return Err(backend_error(format!("parameter set {index} is null")));
        }
        // SAFETY: the pointer is valid for `size` bytes while `desc` is retained (it is).
        parameter_sets.push(unsafe { std::slice::from_raw_parts(set, size) }.to_vec());
    }
    Ok(Some(SampleParts {
        data,
        sync,
        parameter_sets,
        nal_unit_header_length: header_length,
    }))
}

fn cm_time(ns: i64) -> CMTime {
    CMTime {
        value: ns,
        timescale: 1_000_000_000,
        flags: CMTimeFlags::Valid,
        epoch: 0,
    }
}

/// `kCMTimeInvalid`: "complete every pending frame".
const CM_TIME_INVALID: CMTime = CMTime {
    value: 0,
    timescale: 0,
    flags: CMTimeFlags(0),
    epoch: 0,
};

/// A compression session and the callback's reference to the output queue.
struct Session {
    session: CFRetained<VTCompressionSession>,
    /// `Arc::into_raw` of the queue, released in `Drop` after the session is invalidated.
    callback_queue: *const Mutex<OutputQueue>,
}

impl Session {
    fn open(
        config: &EncoderConfig,
        options: VtOptions,
        canvas: (u32, u32),
        color: VtColor,
        queue: &Arc<Mutex<OutputQueue>>,
    ) -> Result<Self, EncodeError> {
        let spec_values: Vec<(&CFString, &CFType)> = encoder_specification(options)
            .into_iter()
            .map(|(k, v)| (spec_key(k), &**CFBoolean::new(v)))
            .collect();
        let spec = dictionary(&spec_values);
        let attributes = buffer_attributes(color.nv12, canvas.0, canvas.1);
        let callback_queue = Arc::into_raw(queue.clone());
        let mut out: *mut VTCompressionSession = ptr::null_mut();
        // SAFETY: the dictionaries are valid CF objects; the callback has the required
        // signature; `callback_queue` stays valid until `Session::drop` (or is released right
        // below on failure); `out` is a valid out pointer.
        let status = unsafe {
            VTCompressionSession::create(
                None,
                canvas.0 as i32,
                canvas.1 as i32,
                kCMVideoCodecType_H264,
                Some(opaque(&spec)),
                Some(opaque(&attributes)),
                None,
                Some(output_callback),
                callback_queue.cast_mut().cast(),
                NonNull::from(&mut out),
            )
        };
        let session = match NonNull::new(out) {
            // SAFETY: VTCompressionSessionCreate returns a +1 reference.
            Some(s) if status == 0 => unsafe { CFRetained::from_raw(s) },
            _ => {
                // SAFETY: no session exists, so no callback can use the pointer; reclaim it.
                drop(unsafe { Arc::from_raw(callback_queue) });
                let mut e = vt_error("VTCompressionSessionCreate", status);
                if !options.allow_software {
                    if let EncodeError::Backend { message, .. } = &mut e {
                        message.push_str(&format!(
                            " (hardware H.264 encoder required at {}x{}; {ENV_ALLOW_SOFTWARE}=1 allows Apple's software encoder)",
                            canvas.0, canvas.1
                        ));
                    }
                }
                return Err(e);
            }
        };
        let session = Session {
            session,
            callback_queue,
        };
        for prop in session_properties(config, options, None)? {
            match (
                apply_property(&session.session, prop.key, &prop.value),
                prop.requirement,
            ) {
                (Ok(()), _) => {}
                (Err(e), Requirement::Required) => return Err(e),
                (Err(e), Requirement::BestEffort) => {
                    tracing::warn!(backend = NAME, "{e}; continuing without it")
                }
            }
        }
        // SAFETY: the session is valid.
        check("VTCompressionSessionPrepareToEncodeFrames", unsafe {
            session.session.prepare_to_encode_frames()
        })?;
        Ok(session)
    }

    /// Whether VideoToolbox picked a hardware encoder (`None`: it would not say).
    fn using_hardware(&self) -> Option<bool> {
        let mut value: *const CFType = ptr::null();
        // SAFETY: valid session, constant key and out pointer; a "Copy" call returns +1.
        let status = unsafe {
            VTSessionCopyProperty(
                &self.session,
                kVTCompressionPropertyKey_UsingHardwareAcceleratedVideoEncoder,
                None,
                (&raw mut value).cast(),
            )
        };
        let value = NonNull::new(value.cast_mut()).filter(|_| status == 0)?;
        // SAFETY: a +1 CF object from VTSessionCopyProperty.
        let value = unsafe { CFRetained::from_raw(value) };
        value.downcast_ref::<CFBoolean>().map(|b| b.as_bool())
    }

    fn complete(&self, until: CMTime) -> Result<(), EncodeError> {
        // SAFETY: valid session; blocks until the callbacks for those frames have returned.
        check("VTCompressionSessionCompleteFrames", unsafe {
            self.session.complete_frames(until)
        })
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: valid session. Completing then invalidating guarantees no callback runs after
        // this point, so the callback's queue reference can be released.
        unsafe {
            let _ = self.session.complete_frames(CM_TIME_INVALID);
            self.session.invalidate();
            drop(Arc::from_raw(self.callback_queue));
        }
    }
}

/// Lazily created extra resources of the RGB input paths.
struct RgbPaths {
    /// BGRA buffers handed to VideoToolbox directly (path b).
    bgra_pool: Option<CFRetained<CVPixelBufferPool>>,
    /// RGBA buffers and the transfer session converting them to NV12 (path c).
    transfer: Option<(
        CFRetained<VTPixelTransferSession>,
        CFRetained<CVPixelBufferPool>,
    )>,
}

impl Drop for RgbPaths {
    fn drop(&mut self) {
        if let Some((transfer, _)) = &self.transfer {
            // SAFETY: valid transfer session, invalidated once before its last release.
            unsafe { transfer.invalidate() };
        }
    }
}

/// The backend instance.
pub(crate) struct VideoToolboxBackend {
    // Field order: the session (and its callback reference) goes first.
    session: Session,
    queue: Arc<Mutex<OutputQueue>>,
    sync: bool,
    canvas: (u32, u32),
    display: (u32, u32),
    duration: CMTime,
    color: VtColor,
    attachments: CFRetained<CfDict>,
    force_keyframe: CFRetained<CfDict>,
    rgb: RgbPaths,
}

// SAFETY: the CF objects held here (session, pools, dictionaries) are not tied to the thread
// that created them; VideoToolbox sessions may be driven from any thread, and the backend is
// only ever used from one thread at a time (`&mut self`). The raw queue pointer is an `Arc`.
unsafe impl Send for VideoToolboxBackend {}

fn create(config: &EncoderConfig) -> Result<Box<dyn BackendEncoder>, EncodeError> {
    config.refuse_x264_only_options(NAME)?;
    Ok(Box::new(VideoToolboxBackend::new(config)?))
}

fn options_from_env() -> Result<VtOptions, EncodeError> {
    VtOptions::from_values(
        std::env::var(ENV_ALLOW_SOFTWARE).ok().as_deref(),
        std::env::var(ENV_LOW_LATENCY).ok().as_deref(),
    )
}

/// Create a pool of IOSurface-backed buffers.
fn create_pool(
    format: VtPixelFormat,
    (w, h): (u32, u32),
) -> Result<CFRetained<CVPixelBufferPool>, EncodeError> {
    let attributes = buffer_attributes(format, w, h);
    let mut pool: *mut CVPixelBufferPool = ptr::null_mut();
    // SAFETY: valid attributes dictionary and out pointer.
    let status = unsafe {
        CVPixelBufferPool::create(
            None,
            None,
            Some(opaque(&attributes)),
            NonNull::from(&mut pool),
        )
    };
    check("CVPixelBufferPoolCreate", status)?;
    NonNull::new(pool)
        // SAFETY: a +1 reference from a "Create" call.
        .map(|p| unsafe { CFRetained::from_raw(p) })
        .ok_or_else(|| backend_error("CVPixelBufferPoolCreate returned no pool".into()))
}

fn pool_buffer(pool: &CVPixelBufferPool) -> Result<CFRetained<CVPixelBuffer>, EncodeError> {
    let mut buffer: *mut CVPixelBuffer = ptr::null_mut();
    // SAFETY: valid pool and out pointer.
    let status =
        unsafe { CVPixelBufferPool::create_pixel_buffer(None, pool, NonNull::from(&mut buffer)) };
    check("CVPixelBufferPoolCreatePixelBuffer", status)?;
    NonNull::new(buffer)
        // SAFETY: a +1 reference from a "Create" call.
        .map(|b| unsafe { CFRetained::from_raw(b) })
        .ok_or_else(|| {
            backend_error("CVPixelBufferPoolCreatePixelBuffer returned no buffer".into())
        })
}

/// Lock `buffer`, let `fill` write its planes (`bytes_per_pixel[i]` bytes per pixel of plane
/// `i`; a single entry for a packed buffer), unlock.
fn fill_buffer(
    buffer: &CVPixelBuffer,
    bytes_per_pixel: &[usize],
    fill: impl FnOnce(Vec<PlaneMut<'_>>) -> Result<(), String>,
) -> Result<(), EncodeError> {
    let flags = CVPixelBufferLockFlags(0);
    // SAFETY: valid buffer; unlocked below on every path.
    check("CVPixelBufferLockBaseAddress", unsafe {
        CVPixelBufferLockBaseAddress(buffer, flags)
    })?;
    let planes = CVPixelBufferGetPlaneCount(buffer);
    let mut views = Vec::with_capacity(bytes_per_pixel.len());
    let mut geometry_ok =
        planes == bytes_per_pixel.len() || (planes == 0 && bytes_per_pixel.len() == 1);
    if geometry_ok {
        for (i, &bpp) in bytes_per_pixel.iter().enumerate() {
            let (base, stride, rows, width) = if planes == 0 {
                (
                    CVPixelBufferGetBaseAddress(buffer),
                    CVPixelBufferGetBytesPerRow(buffer),
                    CVPixelBufferGetHeight(buffer),
                    CVPixelBufferGetWidth(buffer),
                )
            } else {
                (
                    CVPixelBufferGetBaseAddressOfPlane(buffer, i),
                    CVPixelBufferGetBytesPerRowOfPlane(buffer, i),
                    CVPixelBufferGetHeightOfPlane(buffer, i),
                    CVPixelBufferGetWidthOfPlane(buffer, i),
                )
            };
            if base.is_null() || stride < width * bpp {
                geometry_ok = false;
                break;
            }
            // SAFETY: while the buffer is locked, plane `i` is `stride * rows` writable bytes
            // at `base`, and no other view aliases it; the views die before the unlock.
            let data = unsafe { std::slice::from_raw_parts_mut(base.cast::<u8>(), stride * rows) };
            views.push(PlaneMut {
                data,
                stride,
                row_bytes: width * bpp,
                rows,
            });
        }
    }
    let result = if geometry_ok {
        fill(views).map_err(|m| backend_error(format!("filling a CVPixelBuffer: {m}")))
    } else {
        drop(views);
        Err(backend_error(format!(
            "CVPixelBuffer has {planes} planes, expected {}",
            bytes_per_pixel.len()
        )))
    };
    // SAFETY: locked above with the same flags.
    let unlocked = check("CVPixelBufferUnlockBaseAddress", unsafe {
        CVPixelBufferUnlockBaseAddress(buffer, flags)
    });
    result.and(unlocked)
}

impl VideoToolboxBackend {
    fn new(config: &EncoderConfig) -> Result<Self, EncodeError> {
        let options = options_from_env()?;
        let canvas = encode_size(config.width, config.height);
        let color = VtColor::of(config.color)?;
        let queue = Arc::new(Mutex::new(OutputQueue::default()));
        let session = Session::open(config, options, canvas, color, &queue)?;
        // SAFETY: immutable CFString constant exported by VideoToolbox.
        let force_key = unsafe { kVTEncodeFrameOptionKey_ForceKeyFrame };
        Ok(VideoToolboxBackend {
            session,
            queue,
            sync: matches!(config.mode, EncodeMode::Sync),
            canvas,
            display: (config.width, config.height),
            duration: cm_time(config.frame_duration_ns()),
            color,
            attachments: color_attachments(color),
            force_keyframe: dictionary(&[(force_key, CFBoolean::new(true))]),
            rgb: RgbPaths {
                bgra_pool: None,
                transfer: None,
            },
        })
    }

    fn session_buffer(&self) -> Result<CFRetained<CVPixelBuffer>, EncodeError> {
        // SAFETY: valid session.
        let pool = unsafe { self.session.session.pixel_buffer_pool() }.ok_or_else(|| {
            backend_error("VTCompressionSessionGetPixelBufferPool returned no pool".into())
        })?;
        pool_buffer(&pool)
    }

    fn record_copy(&self, started: Instant) {
        lock(&self.queue).timings.last_copy_ms = ms_between(started, Instant::now());
    }

    /// Hand a filled buffer to the session.
    fn submit(
        &mut self,
        buffer: &CVPixelBuffer,
        token: u64,
        pts_ns: i64,
        force_keyframe: bool,
    ) -> Result<(), EncodeError> {
        // SAFETY: valid buffer and attachments dictionary.
        unsafe {
            buffer.set_attachments(opaque(&self.attachments), CVAttachmentMode::ShouldPropagate)
        };
        let refcon = lock(&self.queue).submit(token, pts_ns, Instant::now());
        let pts = cm_time(pts_ns);
        let mut flags = VTEncodeInfoFlags(0);
        let properties = force_keyframe.then(|| opaque(&self.force_keyframe));
        // SAFETY: valid session, buffer and dictionary; the refcon is a plain id (never
        // dereferenced); `flags` is a valid out pointer.
        let status = unsafe {
            self.session.session.encode_frame(
                buffer,
                pts,
                self.duration,
                properties,
                refcon.to_ptr(),
                &mut flags,
            )
        };
        if status != 0 {
            lock(&self.queue).forget(refcon);
            return Err(vt_error("VTCompressionSessionEncodeFrame", status));
        }
        if self.sync {
            self.session.complete(pts)?;
            let left = lock(&self.queue).in_flight();
            if left != 0 {
                return Err(EncodeError::Contract {
                    backend: NAME,
                    message: format!(
                        "{left} frame(s) still inside VideoToolbox after CompleteFrames"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Internal entry point for packed RGB input: BGRA8 goes to VideoToolbox as is (path b, the
    /// encoder converts), RGBA8 is converted to NV12 by `VTPixelTransferSession` (path c).
    ///
    /// The `Encoder` routes BGRA8/RGBA8 frames here (see `rgb_input`), and `framecast doctor`'s
    /// probe exercises both paths. The frame must have the configured size.
    pub(crate) fn encode_rgb(
        &mut self,
        frame: &Frame<'_>,
        token: u64,
        pts_ns: i64,
        force_keyframe: bool,
    ) -> Result<(), EncodeError> {
        if (frame.width(), frame.height()) != self.display {
            return Err(EncodeError::InvalidConfig(format!(
                "{}x{} frame for a {}x{} VideoToolbox session",
                frame.width(),
                frame.height(),
                self.display.0,
                self.display.1
            )));
        }
        let Planes::Packed { data, stride } = *frame.planes() else {
            return Err(EncodeError::InvalidConfig(format!(
                "VideoToolbox takes BGRA8 or RGBA8 frames directly, not {}",
                frame.format().name()
            )));
        };
        let src = Plane {
            data,
            stride,
            row_bytes: frame.width() as usize * 4,
            rows: frame.height() as usize,
        };
        let started = Instant::now();
        match frame.format() {
            PixelFormat::Bgra8 => {
                if self.rgb.bgra_pool.is_none() {
                    self.rgb.bgra_pool = Some(create_pool(VtPixelFormat::Bgra, self.canvas)?);
                }
                let pool = self.rgb.bgra_pool.as_ref().expect("created above");
                let buffer = pool_buffer(pool)?;
                fill_buffer(&buffer, &[4], |mut planes| {
                    copy_plane(src, planes.remove(0), 4)
                })?;
                self.record_copy(started);
                self.submit(&buffer, token, pts_ns, force_keyframe)
            }
            PixelFormat::Rgba8 => {
                if self.rgb.transfer.is_none() {
                    self.rgb.transfer = Some(self.open_transfer()?);
                }
                let (transfer, pool) = self.rgb.transfer.as_ref().expect("created above");
                let rgba = pool_buffer(pool)?;
                fill_buffer(&rgba, &[4], |mut planes| {
                    copy_plane(src, planes.remove(0), 4)
                })?;
                let nv12 = self.session_buffer()?;
                // SAFETY: valid transfer session and buffers.
                check("VTPixelTransferSessionTransferImage", unsafe {
                    transfer.transfer_image(&rgba, &nv12)
                })?;
                self.record_copy(started);
                self.submit(&nv12, token, pts_ns, force_keyframe)
            }
            other => Err(EncodeError::InvalidConfig(format!(
                "VideoToolbox takes BGRA8 or RGBA8 frames directly, not {}",
                other.name()
            ))),
        }
    }

    /// A pixel transfer session writing this session's colour description, and an RGBA pool.
    fn open_transfer(
        &self,
    ) -> Result<
        (
            CFRetained<VTPixelTransferSession>,
            CFRetained<CVPixelBufferPool>,
        ),
        EncodeError,
    > {
        let mut out: *mut VTPixelTransferSession = ptr::null_mut();
        // SAFETY: valid out pointer.
        check("VTPixelTransferSessionCreate", unsafe {
            VTPixelTransferSession::create(None, NonNull::from(&mut out))
        })?;
        let transfer = NonNull::new(out)
            // SAFETY: a +1 reference from a "Create" call.
            .map(|t| unsafe { CFRetained::from_raw(t) })
            .ok_or_else(|| backend_error("VTPixelTransferSessionCreate returned none".into()))?;
        // SAFETY: immutable CFString constants exported by VideoToolbox.
        let keys = unsafe {
            [
                kVTPixelTransferPropertyKey_DestinationColorPrimaries,
                kVTPixelTransferPropertyKey_DestinationTransferFunction,
                kVTPixelTransferPropertyKey_DestinationYCbCrMatrix,
            ]
        };
        let values = [self.color.primaries, self.color.transfer, self.color.matrix];
        for (key, value) in keys.into_iter().zip(values) {
            check(
                "VTSessionSetProperty(kVTPixelTransferPropertyKey_Destination*)",
                set_property(&transfer, key, cf_constant(value)),
            )?;
        }
        Ok((transfer, create_pool(VtPixelFormat::Rgba, self.canvas)?))
    }
}

impl BackendEncoder for VideoToolboxBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn rgb_input(&self) -> RgbInput {
        // BGRA goes to VideoToolbox as is (design doc 002, option 1); RGBA through
        // VTPixelTransferSession (option 2). Both skip framecast's CPU conversion.
        RgbInput {
            bgra8: true,
            rgba8: true,
            nv12: false,
        }
    }

    fn encode_rgb(&mut self, frame: BackendRgbFrame<'_>) -> Result<(), EncodeError> {
        VideoToolboxBackend::encode_rgb(
            self,
            frame.frame,
            frame.token,
            frame.pts_ns,
            frame.force_keyframe,
        )
    }

    fn input_layout(&self) -> YuvLayout {
        YuvLayout::Nv12
    }

    fn encode(&mut self, frame: BackendFrame<'_>) -> Result<(), EncodeError> {
        let image = frame.image;
        if image.layout() != YuvLayout::Nv12 {
            return Err(EncodeError::Contract {
                backend: NAME,
                message: "handed an I420 picture; VideoToolbox takes NV12".into(),
            });
        }
        let started = Instant::now();
        let buffer = self.session_buffer()?;
        let (w, h) = (image.coded_width() as usize, image.coded_height() as usize);
        let (y, uv, _) = image.planes();
        fill_buffer(&buffer, &[1, 2], |mut planes| {
            let uv_plane = planes.pop().expect("two planes");
            let y_plane = planes.pop().expect("two planes");
            copy_plane(
                Plane {
                    data: y,
                    stride: image.y_stride(),
                    row_bytes: w,
                    rows: h,
                },
                y_plane,
                1,
            )?;
            copy_plane(
                Plane {
                    data: uv,
                    stride: image.chroma_stride(),
                    row_bytes: w,
                    rows: h / 2,
                },
                uv_plane,
                2,
            )
        })?;
        self.record_copy(started);
        self.submit(&buffer, frame.token, frame.pts_ns, frame.force_keyframe)
    }

    fn poll(&mut self) -> Result<Option<RawAccessUnit>, EncodeError> {
        let mut queue = lock(&self.queue);
        let unit = queue.pop().transpose()?;
        if let Some(au) = &unit {
            let t = queue.timings;
            tracing::trace!(
                backend = NAME,
                token = au.token,
                last_copy_ms = t.last_copy_ms,
                last_encode_ms = t.last_encode_ms,
                "access unit"
            );
        }
        Ok(unit)
    }

    fn finish(&mut self) -> Result<(), EncodeError> {
        self.session.complete(CM_TIME_INVALID)?;
        // Every callback has run; a frame still recorded will never come back.
        let lost = lock(&self.queue).drain_in_flight();
        if let Some(first) = lost.first() {
            return Err(EncodeError::Contract {
                backend: NAME,
                message: format!(
                    "{} frame(s) never came back from VideoToolbox (first token {})",
                    lost.len(),
                    first.token
                ),
            });
        }
        Ok(())
    }
}

impl Drop for VideoToolboxBackend {
    fn drop(&mut self) {
        let timings = lock(&self.queue).timings;
        tracing::debug!(
            backend = NAME,
            last_copy_ms = timings.last_copy_ms,
            last_encode_ms = timings.last_encode_ms,
            "closing VideoToolbox session"
        );
    }
}

/// `framecast doctor`: open a real session, encode one frame through each input path.
fn probe() -> Availability {
    match probe_session() {
        Ok(detail) => Availability::Available { detail },
        Err(e) => Availability::Unavailable {
            reason: e.to_string(),
        },
    }
}

fn probe_session() -> Result<String, EncodeError> {
    let (w, h) = (320, 240);
    let mut config = EncoderConfig::new(w, h);
    config.backend = NAME.to_string();
    let mut backend = VideoToolboxBackend::new(&config)?;
    let kind = match backend.session.using_hardware() {
        Some(true) => "hardware encoder",
        Some(false) => "SOFTWARE encoder",
        None => "encoder (hardware use not reported)",
    };
    let dur = config.frame_duration_ns();
    let nv12 = Yuv420Image::new(w, h, YuvLayout::Nv12)?;
    backend.encode(BackendFrame {
        image: &nv12,
        token: 0,
        pts_ns: 0,
        force_keyframe: true,
    })?;
    let pixels = vec![128u8; (w * h * 4) as usize];
    let outcome = |r: Result<(), EncodeError>| match r {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("failed ({e})"),
    };
    let bgra = Frame::bgra8(&pixels, w, h, w as usize * 4)?;
    let bgra = outcome(backend.encode_rgb(&bgra, 1, dur, false));
    let rgba = Frame::rgba8(&pixels, w, h, w as usize * 4)?;
    let rgba = outcome(backend.encode_rgb(&rgba, 2, 2 * dur, false));
    backend.finish()?;
    let mut units = 0;
    while backend.poll()?.is_some() {
        units += 1;
    }
    let timings = lock(&backend.queue).timings;
    Ok(format!(
        "{kind}, VTCompressionSession opened at {w}x{h} ({units} access units); input paths: \
         NV12 copy ok, BGRA direct {bgra}, RGBA->NV12 pixel transfer {rgba}; last copy {:.3} ms, \
         last encode {:.3} ms",
        timings.last_copy_ms, timings.last_encode_ms
    ))
}
