//! x264 (VideoLAN) through the system libx264: the fastest software encoder, with sliced
//! threads for live streams (one frame spread over every core, no frame of delay), presets,
//! Baseline/Main/High, B-frames for files, periodic intra refresh, and recovery without a
//! keyframe by invalidating references.
//!
//! libx264 is GPL-2.0-or-later: a framecast binary built with the `x264` feature is GPL (the
//! feature is off by default; `framecast doctor` says so).

use crate::backend::{
    Availability, BackendDescriptor, BackendEncoder, BackendFrame, BackendRgbFrame, RawAccessUnit,
    RawFormat, RgbInput,
};
use crate::short_refs::RefBook;
use crate::{EncodeError, EncoderConfig, ProfileHint, RateControl};
use framecast_core::{Planes, YuvLayout};
use framecast_h264::slice::RefReader;
use framecast_x264_sys as ffi;
use std::collections::VecDeque;
use std::ffi::{c_int, c_void, CStr, CString};
use std::ptr::NonNull;

const NAME: &str = "x264";

/// The registry entry.
pub const DESCRIPTOR: BackendDescriptor = BackendDescriptor {
    name: NAME,
    description: "x264 (system libx264), software; GPL: a binary built with it is GPL",
    hardware: false,
    recovery: true,
    bframes: true,
    intra_refresh: true,
    probe,
    create,
};

/// The preset a live stream gets when none is named.
pub const DEFAULT_PRESET: &str = "ultrafast";

/// Reference frames kept for recovery without a keyframe (H.264's maximum): a decoder whose
/// last displayed frame is up to this many reference frames old can still be recovered with a
/// P-frame. Only the decoded-picture buffer grows (memory: this many pictures); motion search
/// still uses the preset's reference count.
const RECOVERY_DPB: u32 = 16;

/// Level 5.1's MaxDpbMbs (H.264 Table A-1): the recovery DPB stays within what level 5.1
/// decoders hold, so large pictures keep fewer frames (4K: 5) rather than raise the level.
const LEVEL_51_MAX_DPB_MBS: u32 = 184_320;

/// The decoded-picture buffer, in frames, kept for recovery at `width x height`.
fn recovery_dpb(width: u32, height: u32) -> c_int {
    let mbs = width.div_ceil(16) * height.div_ceil(16);
    (LEVEL_51_MAX_DPB_MBS / mbs.max(1)).clamp(1, RECOVERY_DPB) as c_int
}

/// x264's presets, fastest first. x264.h defines `x264_preset_names` as a `static` array in
/// the header, not an exported symbol, so the list is repeated here (unchanged since 2010);
/// whether a name is valid is still x264's decision (`x264_param_default_preset`).
pub const PRESETS: [&str; 10] = [
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];

fn version() -> String {
    let point = CStr::from_bytes_until_nul(ffi::X264_POINTVER)
        .ok()
        .and_then(|c| c.to_str().ok())
        .unwrap_or("?");
    format!("libx264 {point} (API {})", ffi::X264_BUILD)
}

fn probe() -> Availability {
    let mut config = EncoderConfig::new(64, 64);
    config.backend = NAME.into();
    match create(&config) {
        Ok(_) => Availability::Available {
            detail: format!("{}; GPL-2.0+: this binary is GPL", version()),
        },
        Err(e) => Availability::Unavailable {
            reason: format!("libx264 failed to open an encoder: {e}"),
        },
    }
}

fn backend_error(message: impl Into<String>) -> EncodeError {
    EncodeError::Backend {
        backend: NAME,
        message: message.into(),
    }
}

fn kbps(bits_per_second: f64) -> c_int {
    (bits_per_second / 1000.0)
        .round()
        .clamp(1.0, c_int::MAX as f64) as c_int
}

/// The x264 parameters for `config`.
fn params(config: &EncoderConfig) -> Result<ffi::x264_param_t, EncodeError> {
    let preset_name = config.preset.as_deref().unwrap_or(DEFAULT_PRESET);
    let preset = CString::new(preset_name)
        .map_err(|_| EncodeError::InvalidConfig(format!("x264 preset {preset_name:?}")))?;
    // zerolatency: no lookahead, no B-frames, sliced threads; files with B-frames keep x264's
    // lookahead and frame threads, which is what B-frames are for.
    let tune = (config.bframes == 0).then_some(c"zerolatency");
    let mut p = ffi::x264_param_t::default();
    // SAFETY: p is a valid x264_param_t; the strings live across the call.
    let rc = unsafe {
        ffi::x264_param_default_preset(
            &mut p,
            preset.as_ptr(),
            tune.map_or(std::ptr::null(), |t| t.as_ptr()),
        )
    };
    if rc < 0 {
        return Err(EncodeError::InvalidConfig(format!(
            "x264 has no preset {preset_name:?}; it has {}",
            PRESETS.join(", ")
        )));
    }
    p.i_log_level = ffi::X264_LOG_ERROR as c_int;
    p.i_width = (config.width.div_ceil(2) * 2) as c_int;
    p.i_height = (config.height.div_ceil(2) * 2) as c_int;
    p.i_csp = ffi::X264_CSP_NV12 as c_int;
    if config.threads > 0 {
        p.i_threads = config.threads.min(128) as c_int;
    }
    let (num, den) = framecast_core::fps_ratio(config.fps);
    p.i_fps_num = num;
    p.i_fps_den = den;
    // Timestamps are frame counts (see X264Backend::next_pts).
    p.i_timebase_num = den;
    p.i_timebase_den = num;
    p.b_vfr_input = 0;
    // The shared scheduler decides IDRs, so the cadence is the same for every backend; x264
    // neither adds its own nor cuts on scene changes.
    p.i_keyint_max = ffi::X264_KEYINT_MAX_INFINITE as c_int;
    p.i_scenecut_threshold = 0;
    if config.intra_refresh {
        p.b_intra_refresh = 1;
        // The refresh sweeps the picture once per keyint.
        p.i_keyint_max = if config.keyframe_interval > 0 {
            config.keyframe_interval as c_int
        } else {
            (config.fps * 2.0).round().max(2.0) as c_int
        };
    }
    p.i_bframe = config.bframes as c_int;
    if config.recovery && config.bframes == 0 && !config.intra_refresh {
        p.i_dpb_size = p.i_dpb_size.max(recovery_dpb(config.width, config.height));
    }
    p.b_annexb = 1;
    p.b_repeat_headers = 1;
    p.b_aud = 0;
    match config.rate_control {
        RateControl::Bitrate => {
            // Average bitrate capped by a one-second VBV: frames may vary, the link never sees
            // more than a second's worth at once. (The VBV is also what lets x264 change the
            // rate live: x264_encoder_reconfig only takes a new bitrate with one.)
            p.rc.i_rc_method = ffi::X264_RC_ABR as c_int;
            p.rc.i_bitrate = kbps(config.bitrate as f64);
            p.rc.i_vbv_max_bitrate = p.rc.i_bitrate;
            p.rc.i_vbv_buffer_size = p.rc.i_bitrate;
        }
        RateControl::ConstantQp(qp) => {
            p.rc.i_rc_method = ffi::X264_RC_CQP as c_int;
            p.rc.i_qp_constant = qp.into();
        }
    }
    let profile = match config.profile {
        ProfileHint::ConstrainedBaseline => c"baseline",
        ProfileHint::Main => c"main",
        ProfileHint::High => c"high",
    };
    // SAFETY: p is valid; the profile name is a static C string.
    if unsafe { ffi::x264_param_apply_profile(&mut p, profile.as_ptr()) } < 0 {
        return Err(EncodeError::InvalidConfig(format!(
            "x264 cannot apply the {:?} profile to these settings",
            config.profile
        )));
    }
    Ok(p)
}

fn create(config: &EncoderConfig) -> Result<Box<dyn BackendEncoder>, EncodeError> {
    let mut p = params(config)?;
    // SAFETY: p is a fully initialised parameter set; x264 copies what it keeps.
    let handle = NonNull::new(unsafe { ffi::x264_encoder_open(&mut p) }).ok_or_else(|| {
        backend_error(format!(
            "x264_encoder_open refused {}x{} at {} fps (see x264's message above)",
            config.width, config.height, config.fps
        ))
    })?;
    let encoder = Encoder(handle);
    let mut actual = ffi::x264_param_t::default();
    // SAFETY: the encoder is open; x264 fills `actual` with the parameters in force.
    unsafe { ffi::x264_encoder_parameters(encoder.0.as_ptr(), &mut actual) };
    let reorder = match (actual.i_bframe, actual.i_bframe_pyramid) {
        (0, _) => 0,
        (_, pyramid) if pyramid != ffi::X264_B_PYRAMID_NONE as c_int => 2,
        _ => 1,
    };
    let recovery = config.recovery && reorder == 0 && actual.b_intra_refresh == 0;
    // SAFETY: the encoder is open.
    let held = unsafe { ffi::x264_encoder_maximum_delayed_frames(encoder.0.as_ptr()) };
    Ok(Box::new(X264Backend {
        held: held.max(0) as usize,
        encoder,
        ready: VecDeque::with_capacity(1),
        next_pts: 0,
        reorder,
        refs: recovery.then(|| {
            let dpb = actual.i_frame_reference.max(actual.i_dpb_size);
            (RefReader::new(), RefBook::new(dpb.max(1) as usize))
        }),
        constant_qp: matches!(config.rate_control, RateControl::ConstantQp(_)),
        created_fps: config.fps,
    }))
}

/// An open libx264 encoder, closed on drop.
struct Encoder(NonNull<ffi::x264_t>);

// SAFETY: an x264_t may move between threads; framecast uses it from one thread at a time
// (the backend is `Send`, not `Sync`).
unsafe impl Send for Encoder {}

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: opened by x264_encoder_open, closed once.
        unsafe { ffi::x264_encoder_close(self.0.as_ptr()) };
    }
}

struct X264Backend {
    encoder: Encoder,
    ready: VecDeque<RawAccessUnit>,
    /// x264 timestamps are frame counts; tokens travel in the picture's `opaque`.
    next_pts: i64,
    reorder: u32,
    /// Frames x264 may hold before their access units come out (lookahead, B-frames, frame
    /// threads); fixed when the encoder opens.
    held: usize,
    /// Recovery bookkeeping (recovery on, no B-frames, no intra refresh).
    refs: Option<(RefReader, RefBook)>,
    constant_qp: bool,
    /// x264 spends `i_bitrate / fps` per frame at the frame rate it was opened with.
    created_fps: f64,
}

/// One NV12 picture's planes, wherever they live.
struct Nv12Planes<'a> {
    y: &'a [u8],
    y_stride: usize,
    uv: &'a [u8],
    uv_stride: usize,
}

impl X264Backend {
    /// Submit one NV12 picture of the encoder's coded size.
    fn encode_nv12(
        &mut self,
        planes: Nv12Planes<'_>,
        token: u64,
        force_keyframe: bool,
    ) -> Result<(), EncodeError> {
        let mut pic = ffi::x264_picture_t::default();
        // SAFETY: pic is a valid picture struct to initialise.
        unsafe { ffi::x264_picture_init(&mut pic) };
        pic.img.i_csp = ffi::X264_CSP_NV12 as c_int;
        pic.img.i_plane = 2;
        pic.img.i_stride[0] = planes.y_stride as c_int;
        pic.img.i_stride[1] = planes.uv_stride as c_int;
        // x264 only reads the input planes.
        pic.img.plane[0] = planes.y.as_ptr().cast_mut();
        pic.img.plane[1] = planes.uv.as_ptr().cast_mut();
        pic.i_type = if force_keyframe {
            ffi::X264_TYPE_IDR
        } else {
            ffi::X264_TYPE_AUTO
        } as c_int;
        pic.i_pts = self.next_pts;
        self.next_pts += 1;
        pic.opaque = token as usize as *mut c_void;
        self.encode_picture(Some(&mut pic))
    }

    /// One `x264_encoder_encode` call (`None` flushes a delayed frame); queues what comes out.
    fn encode_picture(
        &mut self,
        picture: Option<&mut ffi::x264_picture_t>,
    ) -> Result<(), EncodeError> {
        let mut nals: *mut ffi::x264_nal_t = std::ptr::null_mut();
        let mut count: c_int = 0;
        let mut out = ffi::x264_picture_t::default();
        let input = picture.map_or(std::ptr::null_mut(), |p| p as *mut _);
        // SAFETY: the encoder is open; `input` is null or a picture whose planes are valid
        // for the call (x264 copies them before returning); x264 sets nals/count/out.
        let size = unsafe {
            ffi::x264_encoder_encode(
                self.encoder.0.as_ptr(),
                &mut nals,
                &mut count,
                input,
                &mut out,
            )
        };
        if size < 0 {
            return Err(backend_error(format!(
                "x264_encoder_encode failed ({size})"
            )));
        }
        if size == 0 || nals.is_null() {
            return Ok(()); // held back (B-frames, lookahead); comes out later
        }
        // SAFETY: x264 guarantees the payloads of one call's NAL units are contiguous,
        // `size` bytes from the first, valid until the next call.
        let data = unsafe { std::slice::from_raw_parts((*nals).p_payload, size as usize) }.to_vec();
        let token = out.opaque as usize as u64;
        let recovery_from = match self.refs.as_mut() {
            Some((reader, book)) => match reader
                .read_annexb(&data)
                .map_err(|e| backend_error(format!("reading its own slice header: {e}")))?
            {
                Some(refs) => book.output(token, out.i_pts, &refs),
                None => None,
            },
            None => None,
        };
        self.ready.push_back(RawAccessUnit {
            token,
            data,
            format: RawFormat::AnnexB,
            parameter_sets: None,
            recovery_from,
        });
        Ok(())
    }
}

impl BackendEncoder for X264Backend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn input_layout(&self) -> YuvLayout {
        // x264 codes from NV12 internally: I420 input would be interleaved again.
        YuvLayout::Nv12
    }

    fn reorder_depth(&self) -> u32 {
        self.reorder
    }

    fn encode(&mut self, frame: BackendFrame<'_>) -> Result<(), EncodeError> {
        let image = frame.image;
        let planes = Nv12Planes {
            y: image.y(),
            y_stride: image.y_stride(),
            uv: image.uv(),
            uv_stride: image.chroma_stride(),
        };
        self.encode_nv12(planes, frame.token, frame.force_keyframe)
    }

    fn rgb_input(&self) -> RgbInput {
        RgbInput {
            nv12: true,
            ..RgbInput::default()
        }
    }

    fn encode_rgb(&mut self, frame: BackendRgbFrame<'_>) -> Result<(), EncodeError> {
        // An NV12 frame of the encoder's (even) size: x264 copies it from where it is.
        let Planes::Nv12 {
            y,
            y_stride,
            uv,
            uv_stride,
        } = *frame.frame.planes()
        else {
            return Err(EncodeError::Contract {
                backend: NAME,
                message: format!("handed a {} frame in place", frame.frame.format().name()),
            });
        };
        let planes = Nv12Planes {
            y,
            y_stride,
            uv,
            uv_stride,
        };
        self.encode_nv12(planes, frame.token, frame.force_keyframe)
    }

    fn poll(&mut self) -> Result<Option<RawAccessUnit>, EncodeError> {
        Ok(self.ready.pop_front())
    }

    fn finish(&mut self) -> Result<(), EncodeError> {
        // SAFETY: the encoder is open.
        while unsafe { ffi::x264_encoder_delayed_frames(self.encoder.0.as_ptr()) } > 0 {
            self.encode_picture(None)?;
        }
        Ok(())
    }

    fn held_frames(&self) -> usize {
        self.held
    }

    fn frame_num_gaps(&self) -> bool {
        self.refs.is_some()
    }

    fn set_rate(&mut self, bitrate: u32, fps: f64) -> Result<bool, EncodeError> {
        if self.constant_qp {
            return Ok(false);
        }
        let mut p = ffi::x264_param_t::default();
        // SAFETY: the encoder is open; x264 fills p with the parameters in force.
        unsafe { ffi::x264_encoder_parameters(self.encoder.0.as_ptr(), &mut p) };
        // x264 budgets i_bitrate / (its frame rate) per frame; reconfig cannot change the
        // frame rate, so scale the rate to give each frame what `bitrate` at `fps` would.
        let rate = kbps(bitrate as f64 * self.created_fps / fps);
        p.rc.i_bitrate = rate;
        p.rc.i_vbv_max_bitrate = rate;
        p.rc.i_vbv_buffer_size = rate;
        // SAFETY: p came from this encoder and was only changed in rate fields.
        let rc = unsafe { ffi::x264_encoder_reconfig(self.encoder.0.as_ptr(), &mut p) };
        if rc < 0 {
            return Err(backend_error(format!(
                "x264_encoder_reconfig refused {bitrate} bit/s at {fps} fps ({rc})"
            )));
        }
        Ok(true)
    }

    fn displayed(&mut self, token: u64) -> Result<(), EncodeError> {
        if let Some((_, book)) = self.refs.as_mut() {
            book.displayed(token);
        }
        Ok(())
    }

    fn recover(&mut self, last_displayed: u64) -> Result<Option<u64>, EncodeError> {
        let Some((_, book)) = self.refs.as_mut() else {
            return Ok(None);
        };
        let Some(recovery) = book.recover(last_displayed) else {
            return Ok(None);
        };
        // Every reference from the chosen frame's successor on is unusable: x264 predicts
        // the next frame only from older ones (or makes it an IDR if none is left).
        // SAFETY: the encoder is open.
        let rc = unsafe {
            ffi::x264_encoder_invalidate_reference(
                self.encoder.0.as_ptr(),
                recovery.invalidate_from,
            )
        };
        if rc < 0 {
            return Err(backend_error("x264_encoder_invalidate_reference failed"));
        }
        Ok(Some(recovery.token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recovery_dpb_stays_within_level_5_1() {
        assert_eq!(recovery_dpb(320, 240), 16);
        assert_eq!(recovery_dpb(1920, 1080), 16);
        assert_eq!(recovery_dpb(3840, 2160), 5);
    }

    #[test]
    fn every_listed_preset_is_accepted_and_unknown_ones_are_named() {
        for name in PRESETS {
            let mut c = EncoderConfig::new(64, 64);
            c.preset = Some(name.into());
            params(&c).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let mut c = EncoderConfig::new(64, 64);
        c.preset = Some("warpspeed".into());
        let e = params(&c).unwrap_err().to_string();
        assert!(e.contains("warpspeed") && e.contains("ultrafast"), "{e}");
    }
}
