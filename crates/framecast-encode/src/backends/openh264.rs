//! OpenH264 (Cisco), built from source by the `openh264` crate. The default backend: software,
//! everywhere, real-time camera mode, no B-frames.

use crate::backend::{
    Availability, BackendDescriptor, BackendEncoder, BackendFrame, RawAccessUnit, RawFormat,
};
use crate::ltr::LtrBook;
use crate::{EncodeError, EncoderConfig, ProfileHint, RateControl};
use framecast_core::{Yuv420Image, YuvLayout};
use openh264::encoder::{
    BitRate, Complexity, Encoder as OhEncoder, EncoderConfig as OhConfig, FrameRate, FrameType,
    IntraFramePeriod, Profile, QpRange, RateControlMode, SpsPpsStrategy, UsageType,
};
use openh264::formats::YUVSource;
use openh264::{OpenH264API, Timestamp};
use std::collections::VecDeque;

const NAME: &str = "openh264";

/// The registry entry.
pub const DESCRIPTOR: BackendDescriptor = BackendDescriptor {
    name: NAME,
    description: "Cisco OpenH264, software, built from source (default)",
    hardware: false,
    recovery: true,
    bframes: false,
    intra_refresh: false,
    probe,
    create,
};

fn probe() -> Availability {
    match OhEncoder::with_api_config(OpenH264API::from_source(), OhConfig::new()) {
        Ok(_) => Availability::Available {
            detail: format!(
                "OpenH264 {}; assembly: {}",
                openh264_version(),
                super::openh264_asm::Assembly::probe()
            ),
        },
        Err(e) => Availability::Unavailable {
            reason: format!("OpenH264 failed to initialise: {e}"),
        },
    }
}

fn openh264_version() -> String {
    use openh264_sys2::API;
    // SAFETY: WelsGetCodecVersion only returns a struct of three integers.
    let v = unsafe { OpenH264API::from_source().WelsGetCodecVersion() };
    format!(
        "{}.{}.{} (built from source)",
        v.uMajor, v.uMinor, v.uRevision
    )
}

/// Threads for one encoder. The `openh264` crate configures a single slice per picture, and
/// OpenH264 only parallelises across slices, so extra threads buy nothing (measured: 1080p
/// 9.2 ms/frame with 1 thread, 9.5 ms with 2; BENCHMARKS.md). Default to one.
fn threads_for(requested: u32) -> u16 {
    requested.clamp(1, 16) as u16
}

fn create(config: &EncoderConfig) -> Result<Box<dyn BackendEncoder>, EncodeError> {
    config.refuse_x264_only_options(NAME)?;
    let err = |e: openh264::Error| EncodeError::Backend {
        backend: NAME,
        message: e.to_string(),
    };
    let cw = config.width.div_ceil(2) * 2;
    let ch = config.height.div_ceil(2) * 2;
    if cw.max(ch) > 3840 || cw.min(ch) > 2160 {
        return Err(EncodeError::InvalidConfig(format!(
            "{}x{} is larger than OpenH264 supports (3840x2160, or 2160x3840 portrait)",
            config.width, config.height
        )));
    }
    let profile = match config.profile {
        ProfileHint::ConstrainedBaseline => Profile::Baseline,
        ProfileHint::Main => Profile::Main,
        ProfileHint::High => Profile::High,
    };
    let mut oh = OhConfig::new()
        .usage_type(UsageType::CameraVideoRealTime)
        .max_frame_rate(FrameRate::from_hz(config.fps as f32))
        .bitrate(BitRate::from_bps(config.bitrate))
        // Every submitted frame must produce an access unit (1-in-1-out, token attribution).
        .skip_frames(false)
        // Keyframes are decided by the shared scheduler, so cadence is identical across backends.
        .scene_change_detect(false)
        .intra_frame_period(IntraFramePeriod::from_num_frames(0))
        .sps_pps_strategy(SpsPpsStrategy::ConstantId)
        .complexity(Complexity::Low)
        .profile(profile)
        // Long-term references for recovery without a keyframe (OpenH264's camera-mode LTR:
        // the IDR and then a picture now and then are marked long-term, each new mark only
        // after the last one is confirmed by feedback).
        .long_term_reference(config.recovery)
        .num_threads(threads_for(config.threads));
    oh = match config.rate_control {
        RateControl::Bitrate => oh.rate_control_mode(RateControlMode::Bitrate),
        RateControl::ConstantQp(qp) => oh
            .rate_control_mode(RateControlMode::Off)
            .qp(QpRange::new(qp, qp)),
    };
    let mut encoder = OhEncoder::with_api_config(OpenH264API::from_source(), oh).map_err(err)?;
    // OpenH264 logs at warning level by default, to stderr, before the crate can lower it; its
    // one warning for our settings ("bitrate can't be controlled ... without enabling skip
    // frame") is expected: frame skipping would break 1-in-1-out, and rate control still
    // tracks the target without it. Keep errors only.
    // SAFETY: the encoder was just created; TRACE_LEVEL is the one option OpenH264 accepts
    // before initialisation, and it reads an int through the pointer during the call only.
    unsafe {
        let mut level: std::os::raw::c_int = openh264_sys2::WELS_LOG_ERROR as _;
        encoder.raw_api().set_option(
            openh264_sys2::ENCODER_OPTION_TRACE_LEVEL,
            (&raw mut level).cast(),
        );
    }
    // OpenH264 rejects pictures smaller than one macroblock; encode those on a 16x16-or-larger
    // canvas and let the SPS crop back to the real size.
    let pad = if cw < MIN_SIDE || ch < MIN_SIDE {
        Some(Yuv420Image::new(
            cw.max(MIN_SIDE),
            ch.max(MIN_SIDE),
            YuvLayout::I420,
        )?)
    } else {
        None
    };
    Ok(Box::new(OpenH264Backend {
        encoder,
        ready: VecDeque::with_capacity(1),
        pad,
        ltr: config.recovery.then(LtrBook::new),
        ltr_period_set: false,
        bitrate: config.bitrate,
    }))
}

/// Frames between long-term marks once the previous mark is confirmed (the `openh264` crate
/// sets 30). A fresher reference makes a smaller recovery frame; each mark costs a few bits of
/// MMCO in one slice header.
const LTR_MARK_PERIOD: u32 = 10;

/// `SetOption(option, value)`; `what` names the change in the error.
///
/// # Safety
/// `T` must be the type OpenH264 reads for `option`, and the encoder must be initialised
/// (the `openh264` crate initialises OpenH264 at the first frame). OpenH264 reads `value`
/// during the call only.
unsafe fn set_option<T>(
    encoder: &mut OhEncoder,
    option: openh264_sys2::ENCODER_OPTION,
    value: &mut T,
    what: &str,
) -> Result<(), EncodeError> {
    // SAFETY: the caller's contract above.
    let rc = unsafe {
        encoder
            .raw_api()
            .set_option(option, (value as *mut T).cast())
    };
    if rc != 0 {
        return Err(EncodeError::Backend {
            backend: NAME,
            message: format!("{what} failed: SetOption returned {rc}"),
        });
    }
    Ok(())
}

/// Smallest side OpenH264 encodes (one macroblock).
const MIN_SIDE: u32 = 16;

struct OpenH264Backend {
    encoder: OhEncoder,
    ready: VecDeque<RawAccessUnit>,
    /// Canvas for pictures smaller than a macroblock.
    pad: Option<Yuv420Image>,
    /// Long-term reference state, when recovery is on.
    ltr: Option<LtrBook>,
    /// [`LTR_MARK_PERIOD`] is applied (possible only once the crate has initialised
    /// OpenH264, at the first frame).
    ltr_period_set: bool,
    /// The target bitrate in force (bits/s).
    bitrate: u32,
}

/// Copy `src` into the top-left of the larger `dst`, repeating the last column and row.
fn pad_into(src: &Yuv420Image, dst: &mut Yuv420Image) {
    let (sw, sh) = (src.coded_width() as usize, src.coded_height() as usize);
    let (dw, dh) = (dst.coded_width() as usize, dst.coded_height() as usize);
    let (sy, su, sv) = src.planes();
    let (dy, du, dv) = dst.planes_mut();
    let planes = [
        (sy, dy, sw, sh, dw, dh),
        (su, du, sw / 2, sh / 2, dw / 2, dh / 2),
        (sv, dv, sw / 2, sh / 2, dw / 2, dh / 2),
    ];
    for (s, d, w, h, ow, oh) in planes {
        for row in 0..oh {
            let r = row.min(h - 1);
            let line = &mut d[row * ow..(row + 1) * ow];
            line[..w].copy_from_slice(&s[r * w..(r + 1) * w]);
            let last = line[w - 1];
            line[w..].fill(last);
        }
    }
}

/// Borrowed I420 planes in the shape the `openh264` crate reads.
struct I420View<'a>(&'a Yuv420Image);

impl YUVSource for I420View<'_> {
    fn dimensions(&self) -> (usize, usize) {
        (
            self.0.coded_width() as usize,
            self.0.coded_height() as usize,
        )
    }
    fn strides(&self) -> (usize, usize, usize) {
        let c = self.0.chroma_stride();
        (self.0.y_stride(), c, c)
    }
    fn y(&self) -> &[u8] {
        self.0.y()
    }
    fn u(&self) -> &[u8] {
        self.0.u()
    }
    fn v(&self) -> &[u8] {
        self.0.v()
    }
}

impl OpenH264Backend {
    /// Tell OpenH264 whether decoders hold a long-term picture (LTR marking feedback). It
    /// applies this after its next P-frame: a confirmed mark becomes the reference it
    /// recovers from; a failed one is dropped, and it marks a new one.
    fn feedback(&mut self, fb: crate::ltr::Feedback) -> Result<(), EncodeError> {
        let kind = if fb.success {
            openh264_sys2::LTR_MARKING_SUCCESS
        } else {
            openh264_sys2::LTR_MARKING_FAILED
        };
        let mut feedback = openh264_sys2::SLTRMarkingFeedback {
            uiFeedbackType: kind as _,
            uiIDRPicId: fb.idr_pic_id,
            iLTRFrameNum: fb.frame_num.into(),
            iLayerId: 0,
        };
        // SAFETY: ENCODER_LTR_MARKING_FEEDBACK takes an SLTRMarkingFeedback; a feedback exists
        // only for a mark read from an encoded frame, so the encoder is initialised.
        unsafe {
            set_option(
                &mut self.encoder,
                openh264_sys2::ENCODER_LTR_MARKING_FEEDBACK,
                &mut feedback,
                "LTR marking feedback",
            )
        }
    }
}

impl BackendEncoder for OpenH264Backend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn input_layout(&self) -> YuvLayout {
        YuvLayout::I420
    }

    fn encode(&mut self, frame: BackendFrame<'_>) -> Result<(), EncodeError> {
        if frame.force_keyframe {
            self.encoder.force_intra_frame();
        }
        let ts = Timestamp::from_millis((frame.pts_ns.max(0) / 1_000_000) as u64);
        let image = match self.pad.as_mut() {
            Some(pad) => {
                pad_into(frame.image, pad);
                &*pad
            }
            None => frame.image,
        };
        let bitstream =
            self.encoder
                .encode_at(&I420View(image), ts)
                .map_err(|e| EncodeError::Backend {
                    backend: NAME,
                    message: e.to_string(),
                })?;
        match bitstream.frame_type() {
            FrameType::Skip | FrameType::Invalid => {
                return Err(EncodeError::Contract {
                    backend: NAME,
                    message: format!(
                        "frame with token {} produced no picture ({:?})",
                        frame.token,
                        bitstream.frame_type()
                    ),
                })
            }
            _ => {}
        }
        let data = bitstream.to_vec();
        if self.ltr.is_some() && !self.ltr_period_set {
            let mut period: u32 = LTR_MARK_PERIOD;
            // SAFETY: ENCODER_LTR_MARKING_PERIOD takes a u32; the encoder has just encoded.
            unsafe {
                set_option(
                    &mut self.encoder,
                    openh264_sys2::ENCODER_LTR_MARKING_PERIOD,
                    &mut period,
                    "setting the LTR marking period",
                )?;
            }
            self.ltr_period_set = true;
        }
        let out = match self.ltr.as_mut() {
            Some(book) => book
                .output(frame.token, &data)
                .map_err(|e| EncodeError::Backend {
                    backend: NAME,
                    message: format!("reading its own slice header: {e}"),
                })?,
            None => Default::default(),
        };
        if let Some(fb) = out.failed {
            self.feedback(fb)?;
        }
        let recovery_from = out.recovery_from;
        self.ready.push_back(RawAccessUnit {
            token: frame.token,
            data,
            format: RawFormat::AnnexB,
            parameter_sets: None,
            recovery_from,
        });
        Ok(())
    }

    fn displayed(&mut self, token: u64) -> Result<(), EncodeError> {
        match self.ltr.as_mut().and_then(|b| b.displayed(token)) {
            Some(fb) => self.feedback(fb),
            None => Ok(()),
        }
    }

    fn recover(&mut self, last_displayed: u64) -> Result<Option<u64>, EncodeError> {
        let Some(book) = self.ltr.as_mut() else {
            return Ok(None);
        };
        let (Some(idr_pic_id), Some(mark)) = (book.idr_pic_id(), book.recover(last_displayed))
        else {
            return Ok(None);
        };
        // "The decoder lost frames after a correct one": OpenH264 then predicts the next
        // P-frame only from its confirmed long-term reference. iCurrentFrameNum = -1 skips
        // its frame_num bookkeeping, which assumes one decoder's view of the stream; here the
        // caller has already established which reference every decoder holds.
        let mut request = openh264_sys2::SLTRRecoverRequest {
            uiFeedbackType: openh264_sys2::LTR_RECOVERY_REQUEST as _,
            uiIDRPicId: idr_pic_id,
            iLastCorrectFrameNum: mark.frame_num.into(),
            iCurrentFrameNum: -1,
            iLayerId: 0,
        };
        // SAFETY: ENCODER_LTR_RECOVERY_REQUEST takes an SLTRRecoverRequest; a confirmed mark
        // exists only after encoded frames, so the encoder is initialised.
        unsafe {
            set_option(
                &mut self.encoder,
                openh264_sys2::ENCODER_LTR_RECOVERY_REQUEST,
                &mut request,
                "LTR recovery request",
            )?;
        }
        Ok(Some(mark.token))
    }

    fn set_rate(&mut self, bitrate: u32, fps: f64) -> Result<bool, EncodeError> {
        // The `openh264` crate fixes the rate at creation; OpenH264 itself changes it live
        // through SetOption (the same call its own RTC samples make), with no IDR.
        //
        // The crate also makes the layer's maximum bitrate the creation target, and OpenH264
        // refuses a target above the maximum: the maximum moves with the target, raised
        // before it and lowered after it, so the two never cross (an encoder created at a
        // low rate, a lower tier, can then climb back without a rebuild and its IDR).
        let bps = bitrate.min(i32::MAX as u32) as i32;
        let mut target = openh264_sys2::SBitrateInfo {
            iLayer: openh264_sys2::SPATIAL_LAYER_ALL,
            iBitrate: bps,
        };
        let mut max = openh264_sys2::SBitrateInfo {
            iLayer: openh264_sys2::SPATIAL_LAYER_0,
            iBitrate: bps,
        };
        let mut rate = fps as f32;
        let raising = bitrate > self.bitrate;
        // SAFETY: ENCODER_OPTION_BITRATE and ENCODER_OPTION_MAX_BITRATE take an SBitrateInfo,
        // ENCODER_OPTION_FRAME_RATE a float; the caller changes the rate of an encoder that
        // has encoded frames.
        unsafe {
            let what = format!("setting the bitrate to {bitrate}");
            let mut set_max = |enc: &mut OhEncoder| {
                set_option(
                    enc,
                    openh264_sys2::ENCODER_OPTION_MAX_BITRATE,
                    &mut max,
                    &what,
                )
            };
            if raising {
                set_max(&mut self.encoder)?;
            }
            set_option(
                &mut self.encoder,
                openh264_sys2::ENCODER_OPTION_BITRATE,
                &mut target,
                &format!("setting the bitrate to {bitrate}"),
            )?;
            if !raising {
                set_max(&mut self.encoder)?;
            }
            set_option(
                &mut self.encoder,
                openh264_sys2::ENCODER_OPTION_FRAME_RATE,
                &mut rate,
                &format!("setting the frame rate to {fps}"),
            )?;
        }
        self.bitrate = bitrate;
        Ok(true)
    }

    fn poll(&mut self) -> Result<Option<RawAccessUnit>, EncodeError> {
        Ok(self.ready.pop_front())
    }

    fn finish(&mut self) -> Result<(), EncodeError> {
        // OpenH264 is synchronous: nothing is held back.
        Ok(())
    }
}
