//! `--psnr`: decode what was encoded and compare it with the input.
//!
//! Needs a decoder, which comes with the `openh264` feature; without it `--psnr` is refused.

/// PSNR results in dB.
pub struct PsnrReport {
    /// Y, Cb, Cr and the 4:1:1-weighted average, over the whole run.
    pub yuv: [f64; 4],
    /// Lowest per-frame weighted average.
    pub min: f64,
    /// RGB round trip (includes chroma subsampling).
    pub rgb: f64,
}

#[cfg(feature = "openh264")]
pub use imp::PsnrCheck;

#[cfg(feature = "openh264")]
mod imp {
    use super::PsnrReport;
    use crate::{exit, Failure, WithCode};
    use anyhow::Context;
    use framecast_core::{convert, ColorSpace, Yuv420Image, YuvLayout};
    use framecast_encode::EncodedPacket;
    use std::collections::VecDeque;

    /// Mean squared error of the Y, Cb and Cr planes of two I420 images of equal coded size.
    fn plane_mse(a: &Yuv420Image, b: &Yuv420Image) -> Option<[f64; 3]> {
        if (a.coded_width(), a.coded_height()) != (b.coded_width(), b.coded_height()) {
            return None;
        }
        let mse = |x: &[u8], y: &[u8]| {
            let sum: u64 = x
                .iter()
                .zip(y)
                .map(|(&p, &q)| ((p as i64 - q as i64) * (p as i64 - q as i64)) as u64)
                .sum();
            sum as f64 / x.len().max(1) as f64
        };
        let (ay, au, av) = a.planes();
        let (by, bu, bv) = b.planes();
        Some([mse(ay, by), mse(au, bu), mse(av, bv)])
    }

    fn psnr_of(mse: f64) -> f64 {
        if mse <= 0.0 {
            f64::INFINITY
        } else {
            10.0 * (255.0f64 * 255.0 / mse).log10()
        }
    }

    /// PSNR accumulation: decode each packet and compare it with the picture the encoder was given
    /// (the same Y'CbCr planes, as `ffmpeg -lavfi psnr` and x264 `--psnr` do), plus the RGB error
    /// of the whole round trip including 4:2:0 chroma subsampling.
    pub struct PsnrCheck {
        decoder: framecast_encode::decode::H264Decoder,
        color: ColorSpace,
        /// Encoder input (I420) and source RGBA of frames in flight, by token.
        pending: VecDeque<(u64, Yuv420Image, Vec<u8>)>,
        sum_mse: [f64; 3],
        sum_rgb_mse: f64,
        min_psnr: f64,
        count: u64,
    }

    impl PsnrCheck {
        /// A check comparing against conversions in `color`.
        pub fn new(color: ColorSpace) -> Result<Self, Failure> {
            Ok(PsnrCheck {
                decoder: framecast_encode::decode::H264Decoder::new().code(exit::ENCODER)?,
                color,
                pending: VecDeque::new(),
                sum_mse: [0.0; 3],
                sum_rgb_mse: 0.0,
                min_psnr: f64::INFINITY,
                count: 0,
            })
        }

        pub fn push_source(
            &mut self,
            token: u64,
            frame: &framecast_core::Frame<'_>,
        ) -> anyhow::Result<()> {
            let mut img = Yuv420Image::new(frame.width(), frame.height(), YuvLayout::I420)?;
            convert::to_yuv420(frame, self.color, &mut img)?;
            self.pending
                .push_back((token, img, convert::frame_to_rgba8(frame, self.color)));
            Ok(())
        }

        pub fn packet(&mut self, p: &EncodedPacket) -> anyhow::Result<()> {
            let annexb = match p.format {
                framecast_encode::OutputFormat::AnnexB => p.data.to_vec(),
                framecast_encode::OutputFormat::Avcc => {
                    framecast_h264::nal::avcc_to_annexb(&p.data, 4)?
                }
            };
            while self.pending.front().is_some_and(|(t, _, _)| *t < p.token) {
                self.pending.pop_front(); // dropped frames
            }
            let (_, src, src_rgba) = self
                .pending
                .pop_front()
                .context("PSNR: no source frame for packet")?;
            let img = self
                .decoder
                .decode(&annexb)?
                .context("PSNR: decoder returned no picture for a packet")?;
            let mse = plane_mse(&src, &img).with_context(|| {
                format!(
                    "PSNR: decoded {}x{} but encoded {}x{}",
                    img.width(),
                    img.height(),
                    src.width(),
                    src.height()
                )
            })?;
            for (acc, m) in self.sum_mse.iter_mut().zip(mse) {
                *acc += m;
            }
            self.min_psnr = self
                .min_psnr
                .min(psnr_of((4.0 * mse[0] + mse[1] + mse[2]) / 6.0));
            // RGB: compare the source's area (for odd sizes the decoded picture is one column/row
            // wider, since 4:2:0 crops in steps of 2).
            let out = convert::yuv420_to_rgba(&img, self.color);
            let (dw, sw, sh) = (
                img.width() as usize,
                src.width() as usize,
                src.height() as usize,
            );
            let cropped: Vec<u8> = (0..sh)
                .flat_map(|row| out[row * dw * 4..row * dw * 4 + sw * 4].iter().copied())
                .collect();
            let rgb = convert::psnr_rgb(&src_rgba, &cropped);
            self.sum_rgb_mse += if rgb.is_finite() {
                255.0f64 * 255.0 / 10f64.powf(rgb / 10.0)
            } else {
                0.0
            };
            self.count += 1;
            Ok(())
        }

        pub fn result(&self) -> PsnrReport {
            let n = self.count.max(1) as f64;
            let [y, u, v] = self.sum_mse.map(|m| m / n);
            PsnrReport {
                yuv: [
                    psnr_of(y),
                    psnr_of(u),
                    psnr_of(v),
                    psnr_of((4.0 * y + u + v) / 6.0),
                ],
                min: self.min_psnr,
                rgb: psnr_of(self.sum_rgb_mse / n),
            }
        }
    }
}

/// Without a decoder there is nothing to check with: this type has no values, so
/// `Option<PsnrCheck>` is always `None`.
#[cfg(not(feature = "openh264"))]
pub enum PsnrCheck {}

#[cfg(not(feature = "openh264"))]
impl PsnrCheck {
    /// Refuse `--psnr`.
    pub fn new(_color: framecast_core::ColorSpace) -> Result<Self, crate::Failure> {
        Err(crate::Failure {
            error: anyhow::anyhow!(
                "--psnr needs the OpenH264 decoder: rebuild with --features openh264"
            ),
            code: crate::exit::USAGE,
        })
    }
    /// Unreachable.
    pub fn push_source(
        &mut self,
        _token: u64,
        _frame: &framecast_core::Frame<'_>,
    ) -> anyhow::Result<()> {
        match *self {}
    }
    /// Unreachable.
    pub fn packet(&mut self, _p: &framecast_encode::EncodedPacket) -> anyhow::Result<()> {
        match *self {}
    }
    /// Unreachable.
    pub fn result(&self) -> PsnrReport {
        match *self {}
    }
}
