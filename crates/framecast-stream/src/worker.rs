//! Encoder groups' worker threads and the image encoders.
//!
//! Each encoder group gets one OS thread (never a tokio worker): it owns an H.264
//! [`framecast_encode::Encoder`] or an image encoder, takes one job at a time and reports the
//! result through a callback. Frames arrive as `Arc`s: nothing is copied per viewer or per
//! group; the H.264 path converts straight from the shared frame.

use crate::session::{EncodeJob, EncodedFrame, GroupId, GroupKind, ImageFormat};
use bytes::Bytes;
use framecast_core::{convert, ColorSpace, Frame, PixelFormat};
use framecast_encode::{Encoder, EncoderConfig, EncoderEvent, FrameMeta};
use framecast_io::OwnedFrame;
use std::borrow::Cow;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

/// A frame as shared between the publisher, the stream task and the encoder threads.
pub type SharedFrame = Arc<OwnedFrame>;

/// Any frame as tight RGBA8.
fn to_rgba(frame: &Frame<'_>) -> Vec<u8> {
    convert::frame_to_rgba8(frame, ColorSpace::default())
}

/// Encode `frame` as a JPEG of `quality`.
pub fn encode_jpeg(frame: &OwnedFrame, quality: u8) -> Result<Vec<u8>, String> {
    let (w, h) = (frame.width(), frame.height());
    if w > u16::MAX as u32 || h > u16::MAX as u32 {
        return Err(format!("{w}x{h} is too large for JPEG"));
    }
    let mut out = Vec::with_capacity((w * h / 4) as usize);
    let enc = jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100));
    let tight = frame.stride() == frame.width() as usize * 4;
    let result = match frame.format() {
        PixelFormat::Rgba8 if tight => enc.encode(
            frame.data(),
            w as u16,
            h as u16,
            jpeg_encoder::ColorType::Rgba,
        ),
        PixelFormat::Bgra8 if tight => enc.encode(
            frame.data(),
            w as u16,
            h as u16,
            jpeg_encoder::ColorType::Bgra,
        ),
        _ => {
            let rgba = to_rgba(&frame.as_frame());
            enc.encode(&rgba, w as u16, h as u16, jpeg_encoder::ColorType::Rgba)
        }
    };
    result.map_err(|e| format!("JPEG encode of {w}x{h} failed: {e}"))?;
    Ok(out)
}

/// Encode `frame` as a lossless RGBA PNG (fast compression).
pub fn encode_png(frame: &OwnedFrame) -> Result<Vec<u8>, String> {
    let (w, h) = (frame.width(), frame.height());
    let tight_rgba =
        frame.format() == PixelFormat::Rgba8 && frame.stride() == frame.width() as usize * 4;
    let rgba: Cow<'_, [u8]> = if tight_rgba {
        Cow::Borrowed(frame.data())
    } else {
        Cow::Owned(to_rgba(&frame.as_frame()))
    };
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Fast);
    let mut writer = enc
        .write_header()
        .map_err(|e| format!("PNG header for {w}x{h}: {e}"))?;
    writer
        .write_image_data(&rgba)
        .map_err(|e| format!("PNG encode of {w}x{h}: {e}"))?;
    writer.finish().map_err(|e| format!("PNG finish: {e}"))?;
    Ok(out)
}

/// One job for a group thread.
pub struct WorkerJob {
    /// What to do.
    pub job: EncodeJob,
    /// The frame (`job.frame`).
    pub frame: SharedFrame,
}

/// Result callback: `(group, job, result)`.
pub type Report = Box<dyn Fn(GroupId, u64, Result<EncodedFrame, String>) + Send>;

/// Handle to a group's thread; dropping it stops the thread after its current job.
pub struct GroupWorker {
    tx: mpsc::Sender<WorkerJob>,
}

impl GroupWorker {
    /// Start the thread for `group`.
    pub fn spawn(group: GroupId, kind: GroupKind, report: Report) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<WorkerJob>();
        std::thread::Builder::new()
            .name(format!("framecast-enc-{group}"))
            .spawn(move || {
                let mut video: Option<Encoder> = None;
                while let Ok(w) = rx.recv() {
                    let start = Instant::now();
                    let result = match kind {
                        GroupKind::Video => encode_video(&mut video, &w),
                        GroupKind::Image(fmt) => encode_image(fmt, &w),
                    };
                    let ms = start.elapsed().as_secs_f64() * 1e3;
                    report(
                        w.job.group,
                        w.job.job,
                        result.map(|mut e| {
                            e.encode_ms = ms;
                            e
                        }),
                    );
                }
                tracing::debug!(group, "encoder thread stopped");
            })?;
        Ok(GroupWorker { tx })
    }

    /// Queue a job (the core never queues more than one at a time).
    pub fn submit(&self, job: WorkerJob) -> Result<(), WorkerJob> {
        self.tx.send(job).map_err(|e| e.0)
    }
}

fn encode_image(fmt: ImageFormat, w: &WorkerJob) -> Result<EncodedFrame, String> {
    let (data, mime) = if w.job.still || fmt == ImageFormat::Png {
        (encode_png(&w.frame)?, ImageFormat::Png.mime())
    } else {
        (
            encode_jpeg(&w.frame, w.job.settings.jpeg_quality)?,
            ImageFormat::Jpeg.mime(),
        )
    };
    Ok(EncodedFrame {
        data: Bytes::from(data),
        keyframe: true,
        codec: None,
        mime: Some(mime),
        width: w.frame.width(),
        height: w.frame.height(),
        encode_ms: 0.0,
    })
}

fn encode_video(slot: &mut Option<Encoder>, w: &WorkerJob) -> Result<EncodedFrame, String> {
    let (width, height) = (w.frame.width(), w.frame.height());
    let s = &w.job.settings;
    let rebuild = match slot {
        Some(e) => {
            let c = e.config();
            c.width != width || c.height != height || c.backend != s.backend
        }
        None => true,
    };
    if rebuild {
        let mut config = EncoderConfig::new(width, height);
        config.backend = s.backend.clone();
        config.fps = s.fps;
        config.bitrate = s.bitrate;
        config.keyframe_interval = s.fps.round().max(1.0) as u32;
        *slot = None;
        *slot = Some(Encoder::new(config).map_err(|e| {
            format!(
                "cannot create the {} encoder at {width}x{height}: {e}",
                s.backend
            )
        })?);
    }
    let enc = slot.as_mut().expect("just built");
    let meta = FrameMeta {
        token: w.job.frame.id,
        pts_ns: w.job.frame.timestamp_us as i64 * 1000,
        force_keyframe: w.job.force_keyframe || rebuild,
    };
    let sent = enc.send_frame(&w.frame.as_frame(), meta);
    let fail = |e: framecast_encode::EncodeError, slot: &mut Option<Encoder>| {
        *slot = None;
        format!("encode failed: {e}")
    };
    match sent {
        Ok(_) => {}
        Err(e) => return Err(fail(e, slot)),
    }
    let enc = slot.as_mut().expect("present");
    loop {
        match enc.receive() {
            Ok(Some(EncoderEvent::Packet(p))) => {
                return Ok(EncodedFrame {
                    data: p.data,
                    keyframe: p.keyframe,
                    codec: Some(p.codec.to_string()),
                    mime: None,
                    width,
                    height,
                    encode_ms: 0.0,
                })
            }
            Ok(Some(EncoderEvent::Dropped(_))) => continue,
            Ok(None) => return Err("the encoder returned no packet for the frame".into()),
            Err(e) => return Err(fail(e, slot)),
        }
    }
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
