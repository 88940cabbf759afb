//! The image transport's encoders: JPEG (lossy, the default) and PNG (lossless, for stills).

use crate::session::EncodeFailure;
use framecast_core::{convert, ColorSpace, OwnedFrame, PixelFormat};
use std::borrow::Cow;

/// The frame as tightly packed RGBA8, borrowed when it already is.
fn rgba(frame: &OwnedFrame) -> Cow<'_, [u8]> {
    let tight = frame.stride() == frame.width() as usize * 4;
    if frame.format() == PixelFormat::Rgba8 && tight {
        Cow::Borrowed(frame.data())
    } else {
        Cow::Owned(convert::frame_to_rgba8(
            &frame.as_frame(),
            ColorSpace::default(),
        ))
    }
}

fn failure(format: &'static str, frame: &OwnedFrame, message: impl ToString) -> EncodeFailure {
    EncodeFailure::Image {
        format,
        width: frame.width(),
        height: frame.height(),
        message: message.to_string(),
    }
}

/// Encode `frame` as a JPEG of `quality` (1-100).
pub fn encode_jpeg(frame: &OwnedFrame, quality: u8) -> Result<Vec<u8>, EncodeFailure> {
    let (w, h) = (frame.width(), frame.height());
    let (Ok(w16), Ok(h16)) = (u16::try_from(w), u16::try_from(h)) else {
        return Err(failure("JPEG", frame, "too large for JPEG (65535 max)"));
    };
    let mut out = Vec::with_capacity((w * h / 4) as usize);
    let enc = jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100));
    let tight = frame.stride() == w as usize * 4;
    let result = match frame.format() {
        PixelFormat::Bgra8 if tight => {
            enc.encode(frame.data(), w16, h16, jpeg_encoder::ColorType::Bgra)
        }
        _ => enc.encode(&rgba(frame), w16, h16, jpeg_encoder::ColorType::Rgba),
    };
    result.map_err(|e| failure("JPEG", frame, e))?;
    Ok(out)
}

/// Encode `frame` as a lossless RGBA PNG (fast compression).
pub fn encode_png(frame: &OwnedFrame) -> Result<Vec<u8>, EncodeFailure> {
    let (w, h) = (frame.width(), frame.height());
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Fast);
    let mut writer = enc.write_header().map_err(|e| failure("PNG", frame, e))?;
    writer
        .write_image_data(&rgba(frame))
        .map_err(|e| failure("PNG", frame, e))?;
    writer.finish().map_err(|e| failure("PNG", frame, e))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_and_png_decode_back() {
        let (w, h) = (64, 48);
        let mut rgba = vec![0u8; 64 * 48 * 4];
        framecast_io::render_into(framecast_io::PatternKind::TestCard, 0, w, h, &mut rgba).unwrap();
        let f = OwnedFrame::new(PixelFormat::Rgba8, w, h, rgba.clone()).unwrap();
        let jpeg = encode_jpeg(&f, 90).unwrap();
        assert_eq!(&jpeg[..2], &[0xff, 0xd8]);
        let png = encode_png(&f).unwrap();
        let dec = png::Decoder::new(&png[..]);
        let mut reader = dec.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        reader.next_frame(&mut buf).unwrap();
        assert_eq!(buf, rgba, "PNG is lossless");
    }
}
