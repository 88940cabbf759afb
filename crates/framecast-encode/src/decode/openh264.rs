//! H.264 decoding through OpenH264, for verification (decode-back tests, `--psnr`) and for the
//! remote service's decode mode.

use crate::EncodeError;
use framecast_core::{Yuv420Image, YuvLayout};
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

fn backend_err(e: openh264::Error) -> EncodeError {
    EncodeError::Backend {
        backend: "openh264-decoder",
        message: e.to_string(),
    }
}

fn copy_picture(src: &impl YUVSource) -> Result<Yuv420Image, EncodeError> {
    let (w, h) = src.dimensions();
    let (ys, us, vs) = src.strides();
    let mut img = Yuv420Image::new(w as u32, h as u32, YuvLayout::I420)?;
    let cw = img.coded_width() as usize;
    let ch = img.coded_height() as usize;
    let (sw, sh) = (w.div_ceil(2), h.div_ceil(2));
    let (y, u, v) = img.planes_mut();
    let (sy, su, sv) = (src.y(), src.u(), src.v());
    for row in 0..ch {
        let r = row.min(h - 1);
        let dst = &mut y[row * cw..(row + 1) * cw];
        dst[..w].copy_from_slice(&sy[r * ys..r * ys + w]);
        let last = dst[w - 1];
        dst[w..].fill(last);
    }
    for (plane, sp, stride) in [(u, su, us), (v, sv, vs)] {
        for row in 0..ch / 2 {
            let r = row.min(sh - 1);
            plane[row * cw / 2..row * cw / 2 + sw]
                .copy_from_slice(&sp[r * stride..r * stride + sw]);
        }
    }
    Ok(img)
}

impl H264Decoder {
    /// A new decoder.
    pub fn new() -> Result<Self, EncodeError> {
        let inner = Decoder::with_api_config(
            OpenH264API::from_source(),
            openh264::decoder::DecoderConfig::new(),
        )
        .map_err(backend_err)?;
        Ok(H264Decoder { inner })
    }

    /// Decode one Annex B access unit (or any run of NAL units); returns the picture it
    /// completes, if any. The picture has the display (cropped) size the SPS signals.
    pub fn decode(&mut self, annexb: &[u8]) -> Result<Option<Yuv420Image>, EncodeError> {
        match self.inner.decode(annexb).map_err(backend_err)? {
            Some(pic) => Ok(Some(copy_picture(&pic)?)),
            None => Ok(None),
        }
    }

    /// Pictures still held by the decoder at the end of a stream.
    pub fn flush(&mut self) -> Result<Vec<Yuv420Image>, EncodeError> {
        let pics = self.inner.flush_remaining().map_err(backend_err)?;
        pics.iter().map(copy_picture).collect()
    }
}
