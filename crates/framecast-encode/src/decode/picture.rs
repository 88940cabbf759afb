//! What every decoder hands out and the trait the remote service drives them through.

use crate::EncodeError;
use framecast_core::{Yuv420Image, YuvLayout};

/// A decoded picture (display-cropped) and the timestamp the decoder carried for it.
#[derive(Debug)]
pub struct Picture {
    /// The picture, I420.
    pub image: Yuv420Image,
    /// The PTS given with the packet that coded this picture, when the decoder carries
    /// timestamps ([`VideoDecoder::reorders`]); `None` otherwise.
    pub pts: Option<i64>,
}

/// What the remote service's decode and transcode modes need of a decoder.
pub trait VideoDecoder: Send {
    /// Short name (`openh264`, `libavcodec`) for logs, errors and HELLO_ACK.
    fn name(&self) -> &'static str;
    /// Whether the decoder handles B-frames: outputs in presentation order, each picture with
    /// the PTS of its own packet.
    fn reorders(&self) -> bool;
    /// Whether the decoder runs H.264's process for gaps in frame_num (8.2.5.2) when the SPS
    /// allows gaps: the frames it never got are inferred and slide older references out of
    /// its window, as in the encoder's. Without it, older references linger and a later frame
    /// can repeat their frame_num.
    fn infers_missing_frames(&self) -> bool;
    /// Feed one access unit (Annex B) with its PTS; returns the pictures now ready.
    fn send(&mut self, annexb: &[u8], pts: Option<i64>) -> Result<Vec<Picture>, EncodeError>;
    /// End of stream: every picture still held, in order. The decoder then accepts a new
    /// stream (the next access unit should be an IDR).
    fn drain(&mut self) -> Result<Vec<Picture>, EncodeError>;
}

/// Copy three 8-bit 4:2:0 planes (`(data, stride)`, `width x height` luma) into an owned I420
/// picture, repeating the last column and row into the coded (even) size.
#[cfg_attr(not(any(feature = "openh264", feature = "libav")), allow(dead_code))]
pub(crate) fn copy_i420(
    width: u32,
    height: u32,
    planes: [(&[u8], usize); 3],
) -> Result<Yuv420Image, EncodeError> {
    let (w, h) = (width as usize, height as usize);
    let mut img = Yuv420Image::new(width, height, YuvLayout::I420)?;
    let cw = img.coded_width() as usize;
    let ch = img.coded_height() as usize;
    let (sw, sh) = (w.div_ceil(2), h.div_ceil(2));
    let [(sy, ys), (su, us), (sv, vs)] = planes;
    let (y, u, v) = img.planes_mut();
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
            let dst = &mut plane[row * cw / 2..(row + 1) * cw / 2];
            dst[..sw].copy_from_slice(&sp[r * stride..r * stride + sw]);
            let last = dst[sw - 1];
            dst[sw..].fill(last);
        }
    }
    Ok(img)
}
