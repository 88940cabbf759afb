//! Owned 4:2:0 pictures, the encoders' input.

use crate::frame::check_dimensions;
use crate::{Frame, FrameError};

/// Plane layout of a [`Yuv420Image`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum YuvLayout {
    /// Y, then Cb, then Cr planes (what OpenH264 takes).
    I420,
    /// Y, then interleaved CbCr (what VideoToolbox and NVENC take).
    Nv12,
}

/// An owned 4:2:0 picture whose coded size is the display size rounded up to even.
///
/// H.264 codes 4:2:0 in whole chroma samples, so odd sizes are padded by repeating the last
/// column/row; the encoder then crops back to `width x height` through the SPS frame-cropping
/// fields so decoders show exactly the requested size. Planes are tightly packed:
/// Y stride = `coded_width`, I420 chroma stride = `coded_width / 2`, NV12 UV stride = `coded_width`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Yuv420Image {
    width: u32,
    height: u32,
    layout: YuvLayout,
    y: Vec<u8>,
    /// I420: Cb. NV12: interleaved CbCr.
    c0: Vec<u8>,
    /// I420: Cr. NV12: empty.
    c1: Vec<u8>,
}

impl Yuv420Image {
    /// A black (limited-range black: Y=16, Cb=Cr=128) image of `width x height`.
    pub fn new(width: u32, height: u32, layout: YuvLayout) -> Result<Self, FrameError> {
        check_dimensions(width, height)?;
        let cw = width.div_ceil(2) as usize * 2;
        let ch = height.div_ceil(2) as usize * 2;
        let y = vec![16u8; cw * ch];
        let (c0, c1) = match layout {
            YuvLayout::I420 => (vec![128u8; cw * ch / 4], vec![128u8; cw * ch / 4]),
            YuvLayout::Nv12 => (vec![128u8; cw * ch / 2], Vec::new()),
        };
        Ok(Yuv420Image {
            width,
            height,
            layout,
            y,
            c0,
            c1,
        })
    }

    /// Display width.
    pub fn width(&self) -> u32 {
        self.width
    }
    /// Display height.
    pub fn height(&self) -> u32 {
        self.height
    }
    /// Coded (even) width.
    pub fn coded_width(&self) -> u32 {
        self.width.div_ceil(2) * 2
    }
    /// Coded (even) height.
    pub fn coded_height(&self) -> u32 {
        self.height.div_ceil(2) * 2
    }
    /// Plane layout.
    pub fn layout(&self) -> YuvLayout {
        self.layout
    }
    /// Luma plane, `coded_height` rows of `coded_width` bytes.
    pub fn y(&self) -> &[u8] {
        &self.y
    }
    /// Luma stride in bytes.
    pub fn y_stride(&self) -> usize {
        self.coded_width() as usize
    }
    /// Mutable luma plane.
    pub fn y_mut(&mut self) -> &mut [u8] {
        &mut self.y
    }
    /// I420 Cb plane. Panics for NV12 (use [`Self::uv`]).
    pub fn u(&self) -> &[u8] {
        assert_eq!(self.layout, YuvLayout::I420, "u() on an NV12 image");
        &self.c0
    }
    /// I420 Cr plane. Panics for NV12 (use [`Self::uv`]).
    pub fn v(&self) -> &[u8] {
        assert_eq!(self.layout, YuvLayout::I420, "v() on an NV12 image");
        &self.c1
    }
    /// NV12 interleaved CbCr plane. Panics for I420.
    pub fn uv(&self) -> &[u8] {
        assert_eq!(self.layout, YuvLayout::Nv12, "uv() on an I420 image");
        &self.c0
    }
    /// Chroma stride in bytes (`coded_width/2` for I420 planes, `coded_width` for NV12 UV).
    pub fn chroma_stride(&self) -> usize {
        match self.layout {
            YuvLayout::I420 => self.coded_width() as usize / 2,
            YuvLayout::Nv12 => self.coded_width() as usize,
        }
    }
    /// All planes mutably: (Y, Cb or CbCr, Cr or empty).
    pub fn planes_mut(&mut self) -> (&mut [u8], &mut [u8], &mut [u8]) {
        (&mut self.y, &mut self.c0, &mut self.c1)
    }
    /// All planes: (Y, Cb or CbCr, Cr or empty).
    pub fn planes(&self) -> (&[u8], &[u8], &[u8]) {
        (&self.y, &self.c0, &self.c1)
    }

    /// A view of the picture at its display size (the padding is outside the view), e.g. to
    /// copy it into an image of the other layout with [`crate::convert::to_yuv420`].
    pub fn as_frame(&self) -> Frame<'_> {
        let (w, h) = (self.width, self.height);
        let (ys, cs) = (self.y_stride(), self.chroma_stride());
        match self.layout {
            YuvLayout::I420 => Frame::i420(&self.y, ys, &self.c0, cs, &self.c1, cs, w, h),
            YuvLayout::Nv12 => Frame::nv12(&self.y, ys, &self.c0, cs, w, h),
        }
        .expect("an image's planes always cover its display size")
    }
}
