//! H.264 decoding through OpenH264, for verification (decode-back tests, `--psnr`) and for the
//! remote service's decode mode when libavcodec is not compiled in. OpenH264's decoder handles
//! what OpenH264 and other low-latency encoders produce; it fails on B-frames.

use super::picture::{copy_i420, Picture, VideoDecoder};
use crate::EncodeError;
use framecast_core::Yuv420Image;
use openh264::decoder::Decoder;
use openh264::formats::YUVSource;
use openh264::OpenH264API;

/// An OpenH264 decoder that returns owned I420 pictures.
pub struct H264Decoder {
    inner: Decoder,
}

impl std::fmt::Debug for H264Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("H264Decoder")
    }
}

fn decoder_err(e: openh264::Error) -> EncodeError {
    EncodeError::Decoder {
        decoder: NAME,
        message: e.to_string(),
    }
}

const NAME: &str = "openh264";

fn copy_picture(src: &impl YUVSource) -> Result<Yuv420Image, EncodeError> {
    let (w, h) = src.dimensions();
    let (ys, us, vs) = src.strides();
    copy_i420(
        w as u32,
        h as u32,
        [(src.y(), ys), (src.u(), us), (src.v(), vs)],
    )
}

impl H264Decoder {
    /// A new decoder.
    pub fn new() -> Result<Self, EncodeError> {
        let inner = Decoder::with_api_config(
            OpenH264API::from_source(),
            openh264::decoder::DecoderConfig::new(),
        )
        .map_err(decoder_err)?;
        Ok(H264Decoder { inner })
    }

    /// Decode one Annex B access unit (or any run of NAL units); returns the picture it
    /// completes, if any. The picture has the display (cropped) size the SPS signals.
    pub fn decode(&mut self, annexb: &[u8]) -> Result<Option<Yuv420Image>, EncodeError> {
        match self.inner.decode(annexb).map_err(decoder_err)? {
            Some(pic) => Ok(Some(copy_picture(&pic)?)),
            None => Ok(None),
        }
    }

    /// Pictures still held by the decoder at the end of a stream.
    pub fn flush(&mut self) -> Result<Vec<Yuv420Image>, EncodeError> {
        let pics = self.inner.flush_remaining().map_err(decoder_err)?;
        pics.iter().map(copy_picture).collect()
    }
}

/// Without timestamps: OpenH264 outputs in decode order, which is display order for the streams
/// it can decode (no B-frames); the caller stamps pictures with the smallest pending PTS.
impl VideoDecoder for H264Decoder {
    fn name(&self) -> &'static str {
        NAME
    }

    fn reorders(&self) -> bool {
        false
    }

    fn infers_missing_frames(&self) -> bool {
        // OpenH264's decoder only stops treating the gap as loss; it keeps the old references.
        false
    }

    fn send(&mut self, annexb: &[u8], _pts: Option<i64>) -> Result<Vec<Picture>, EncodeError> {
        Ok(self
            .decode(annexb)?
            .map(|image| Picture { image, pts: None })
            .into_iter()
            .collect())
    }

    fn drain(&mut self) -> Result<Vec<Picture>, EncodeError> {
        Ok(self
            .flush()?
            .into_iter()
            .map(|image| Picture { image, pts: None })
            .collect())
    }
}
