//! The low-level contract a backend implements. Callers use [`crate::Encoder`], which wraps a
//! backend with conversion, keyframe scheduling, pipelining and the H.264 normaliser, so a
//! backend only moves pictures in and access units out.

use crate::{EncodeError, EncoderConfig};
use framecast_core::{Frame, PixelFormat, Yuv420Image, YuvLayout};

/// One picture handed to a backend.
#[derive(Debug)]
pub struct BackendFrame<'a> {
    /// The picture, already converted, in the backend's [`BackendEncoder::input_layout`],
    /// coded at even size. Backends that keep it beyond `encode` must copy it.
    pub image: &'a Yuv420Image,
    /// Token to return with the access unit.
    pub token: u64,
    /// Presentation time in nanoseconds.
    pub pts_ns: i64,
    /// The access unit must be an IDR.
    pub force_keyframe: bool,
}

/// Frame formats a backend takes as they are, skipping framecast's CPU conversion or copy
/// (e.g. VideoToolbox converts BGRA in the encoder and RGBA with `VTPixelTransferSession`;
/// x264 reads NV12 planes in place).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RgbInput {
    /// Takes BGRA8.
    pub bgra8: bool,
    /// Takes RGBA8.
    pub rgba8: bool,
    /// Takes NV12 frames of even size, read in place during `encode_rgb` (synchronous mode:
    /// a pipelined encoder copies them into its own pictures as it must anyway).
    pub nv12: bool,
}

impl RgbInput {
    /// Whether frames of `format` go to [`BackendEncoder::encode_rgb`].
    pub fn accepts(self, format: PixelFormat) -> bool {
        match format {
            PixelFormat::Bgra8 => self.bgra8,
            PixelFormat::Rgba8 => self.rgba8,
            PixelFormat::Nv12 => self.nv12,
            _ => false,
        }
    }
}

/// One packed RGB picture handed to a backend, at the configured display size.
#[derive(Debug)]
pub struct BackendRgbFrame<'a> {
    /// The picture (a format the backend's [`BackendEncoder::rgb_input`] accepts).
    pub frame: &'a Frame<'a>,
    /// Token to return with the access unit.
    pub token: u64,
    /// Presentation time in nanoseconds.
    pub pts_ns: i64,
    /// The access unit must be an IDR.
    pub force_keyframe: bool,
}

/// Byte format of a backend's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawFormat {
    /// Start-code delimited.
    AnnexB,
    /// Length-prefixed with `length_size`-byte lengths (1, 2 or 4).
    Avcc {
        /// Size of each length prefix.
        length_size: u8,
    },
}

/// One access unit as a backend produced it; the normaliser turns it into an
/// [`crate::EncodedPacket`].
#[derive(Debug, Clone)]
pub struct RawAccessUnit {
    /// Token of the frame it encodes.
    pub token: u64,
    /// NAL units.
    pub data: Vec<u8>,
    /// Their format.
    pub format: RawFormat,
    /// Out-of-band parameter sets (SPS, PPS NAL units), e.g. from a VideoToolbox format
    /// description; `None` when they are in band.
    pub parameter_sets: Option<(Vec<u8>, Vec<u8>)>,
    /// This is the recovery frame [`BackendEncoder::recover`] promised: a P-frame predicted
    /// only from the frame of this token. `None` for every other access unit.
    pub recovery_from: Option<u64>,
}

/// A backend encoder instance.
///
/// Contract: access units come out with the submitted tokens, in submission order unless the
/// backend reorders for B-frames ([`Self::reorder_depth`] > 0: decode order, no frame more than
/// that many places ahead of its submission position); a frame submitted with `force_keyframe`
/// yields an IDR. Synchronous backends without reordering make the access unit available from
/// `poll` as soon as `encode` returns.
///
/// # Recovery without a keyframe (optional)
///
/// A decoder that missed frames can be brought back with a P-frame predicted only from a frame
/// it is known to hold, instead of an IDR that every other decoder of the stream pays for.
/// The caller says which frames *every* decoder has displayed ([`Self::displayed`]; tokens
/// never decrease) and asks for a recovery frame ([`Self::recover`]); the backend answers with
/// the token of the reference it will use, or `None` when it has none that qualifies (the
/// caller then sends an IDR). The access unit of the next submitted frame carries
/// [`RawAccessUnit::recovery_from`]. OpenH264 does this with long-term references and its LTR
/// marking feedback and recovery request; backends without a mechanism keep the defaults.
pub trait BackendEncoder: Send {
    /// Registry name.
    fn name(&self) -> &'static str;
    /// The YUV layout `encode` expects.
    fn input_layout(&self) -> YuvLayout;
    /// Submit one picture.
    fn encode(&mut self, frame: BackendFrame<'_>) -> Result<(), EncodeError>;
    /// The next finished access unit, if any (never blocks).
    fn poll(&mut self) -> Result<Option<RawAccessUnit>, EncodeError>;
    /// Finish every submitted frame; afterwards `poll` drains the rest.
    fn finish(&mut self) -> Result<(), EncodeError>;
    /// Change the target bitrate (bits/s) and frame rate for the frames submitted from now
    /// on, without a keyframe. `Ok(false)`: this backend cannot change them live (the caller
    /// rebuilds the encoder instead, which costs an IDR). The default.
    fn set_rate(&mut self, bitrate: u32, fps: f64) -> Result<bool, EncodeError> {
        let _ = (bitrate, fps);
        Ok(false)
    }
    /// Every decoder has displayed the access unit of `token` and all before it, so any
    /// reference among them may carry a recovery frame. The default ignores it.
    fn displayed(&mut self, token: u64) -> Result<(), EncodeError> {
        let _ = token;
        Ok(())
    }
    /// Make the next submitted frame decodable by a decoder that displayed the frame of
    /// `last_displayed` (and everything before it) and then missed any number of frames:
    /// predict it only from a frame every decoder displayed, no later than `last_displayed`.
    /// Returns that frame's token, or `None` when there is none (the default).
    fn recover(&mut self, last_displayed: u64) -> Result<Option<u64>, EncodeError> {
        let _ = last_displayed;
        Ok(None)
    }
    /// How many frames a decoder must hold back before display: `max_num_reorder_frames` of
    /// the stream. 0 (the default): no B-frames, output order is submission order.
    fn reorder_depth(&self) -> u32 {
        0
    }
    /// Frames this backend holds by design before their access units can come out (lookahead,
    /// B-frames, frame threads): they come out as later frames go in, or at `finish`. A
    /// pipelined encoder does not count them against its in-flight limit. 0 by default.
    fn held_frames(&self) -> usize {
        0
    }
    /// The stream's SPS must allow frame_num gaps: this backend recovers a decoder by
    /// predicting from a frame before the ones it missed, and that decoder must read the gap
    /// as intended rather than as loss. `false` by default.
    fn frame_num_gaps(&self) -> bool {
        false
    }
    /// Packed RGB formats [`Self::encode_rgb`] takes; none by default (YUV only).
    fn rgb_input(&self) -> RgbInput {
        RgbInput::default()
    }
    /// Submit a packed RGB picture of a format [`Self::rgb_input`] lists. Same output contract
    /// as [`Self::encode`].
    fn encode_rgb(&mut self, frame: BackendRgbFrame<'_>) -> Result<(), EncodeError> {
        Err(EncodeError::Contract {
            backend: self.name(),
            message: format!(
                "handed a {} frame it did not ask for",
                frame.frame.format().name()
            ),
        })
    }
}

/// Is a backend usable on this machine?
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// Usable; the detail says what was found (library version, assembly on/off...).
    Available {
        /// What was found.
        detail: String,
    },
    /// Not usable, and why (with what to do about it where there is something).
    Unavailable {
        /// Why not.
        reason: String,
    },
}

/// A backend in the registry.
#[derive(Clone, Copy)]
pub struct BackendDescriptor {
    /// Name used in configs and on the command line.
    pub name: &'static str,
    /// One line for `framecast doctor`.
    pub description: &'static str,
    /// Hardware encoder?
    pub hardware: bool,
    /// Implements recovery without a keyframe ([`BackendEncoder::recover`]) when
    /// [`EncoderConfig::recovery`] is on.
    pub recovery: bool,
    /// Accepts [`EncoderConfig::bframes`] > 0.
    pub bframes: bool,
    /// Accepts [`EncoderConfig::intra_refresh`].
    pub intra_refresh: bool,
    /// Probe this machine (may open a real session; cheap enough for `doctor`).
    pub probe: fn() -> Availability,
    /// Create an instance for a validated config.
    pub create: fn(&EncoderConfig) -> Result<Box<dyn BackendEncoder>, EncodeError>,
}

impl std::fmt::Debug for BackendDescriptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendDescriptor")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
