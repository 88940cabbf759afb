//! H.264 decoding through libavcodec (FFmpeg's `h264` decoder, via the maintained
//! `ffmpeg-next` binding). Used by the remote service's decode and transcode modes: it decodes
//! what cameras and x264 produce (Main/High profile, CABAC, B-frames, several slices), reorders
//! to presentation order itself, and hands each picture back with the PTS of the packet that
//! coded it.

use super::picture::{copy_i420, Picture, VideoDecoder};
use crate::EncodeError;
use ffmpeg_next as ff;

const NAME: &str = "libavcodec";

/// A libavcodec H.264 decoder.
pub struct LibavDecoder {
    inner: ff::decoder::Video,
    frame: ff::frame::Video,
    /// Parameter sets (or SEI) that came without a picture: libavcodec refuses such a packet
    /// ("no frame!"), so they go in front of the next one.
    held: Vec<u8>,
}

impl std::fmt::Debug for LibavDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LibavDecoder")
    }
}

fn decoder_err(context: &str, e: ff::Error) -> EncodeError {
    EncodeError::Decoder {
        decoder: NAME,
        message: format!("{context}: {e}"),
    }
}

impl LibavDecoder {
    /// A new decoder (one thread: the service runs one per session, and frame threads would
    /// hold pictures back).
    pub fn new() -> Result<Self, EncodeError> {
        ff::init().map_err(|e| decoder_err("init", e))?;
        let codec = ff::decoder::find(ff::codec::Id::H264).ok_or(EncodeError::Decoder {
            decoder: NAME,
            message: "this libavcodec has no H.264 decoder".into(),
        })?;
        let mut ctx = ff::codec::context::Context::new_with_codec(codec);
        ctx.set_threading(ff::threading::Config {
            kind: ff::threading::Type::Slice,
            count: 1,
            ..Default::default()
        });
        let inner = ctx.decoder().video().map_err(|e| decoder_err("open", e))?;
        Ok(LibavDecoder {
            inner,
            frame: ff::frame::Video::empty(),
            held: Vec::new(),
        })
    }

    fn receive_all(&mut self, out: &mut Vec<Picture>) -> Result<(), EncodeError> {
        loop {
            match self.inner.receive_frame(&mut self.frame) {
                Ok(()) => out.push(self.picture()?),
                Err(ff::Error::Other { errno }) if errno == ff::error::EAGAIN => return Ok(()),
                Err(ff::Error::Eof) => return Ok(()),
                Err(e) => return Err(decoder_err("decode", e)),
            }
        }
    }

    fn picture(&self) -> Result<Picture, EncodeError> {
        let f = &self.frame;
        use ff::format::Pixel;
        if !matches!(f.format(), Pixel::YUV420P | Pixel::YUVJ420P) {
            return Err(EncodeError::Decoder {
                decoder: NAME,
                message: format!(
                    "the stream decodes to {:?}; this service outputs 8-bit 4:2:0 (NV12) only",
                    f.format()
                ),
            });
        }
        let image = copy_i420(
            f.width(),
            f.height(),
            [
                (f.data(0), f.stride(0)),
                (f.data(1), f.stride(1)),
                (f.data(2), f.stride(2)),
            ],
        )?;
        Ok(Picture {
            image,
            pts: f.pts().or_else(|| f.timestamp()),
        })
    }
}

impl VideoDecoder for LibavDecoder {
    fn name(&self) -> &'static str {
        NAME
    }

    fn reorders(&self) -> bool {
        true
    }

    fn infers_missing_frames(&self) -> bool {
        true
    }

    fn send(&mut self, annexb: &[u8], pts: Option<i64>) -> Result<Vec<Picture>, EncodeError> {
        let has_picture = framecast_h264::nal::annexb_nals(annexb)
            .any(|nal| framecast_h264::nal::nal_type(nal).is_some_and(|t| t.is_vcl()));
        if !has_picture {
            self.held.extend_from_slice(annexb);
            return Ok(Vec::new());
        }
        let mut packet = if self.held.is_empty() {
            ff::Packet::copy(annexb)
        } else {
            let mut joined = std::mem::take(&mut self.held);
            joined.extend_from_slice(annexb);
            ff::Packet::copy(&joined)
        };
        packet.set_pts(pts);
        let mut out = Vec::new();
        match self.inner.send_packet(&packet) {
            Ok(()) => {}
            // The decoder's output is full: take what is ready, then feed again.
            Err(ff::Error::Other { errno }) if errno == ff::error::EAGAIN => {
                self.receive_all(&mut out)?;
                self.inner
                    .send_packet(&packet)
                    .map_err(|e| decoder_err("decode", e))?;
            }
            Err(e) => return Err(decoder_err("decode", e)),
        }
        self.receive_all(&mut out)?;
        Ok(out)
    }

    fn drain(&mut self) -> Result<Vec<Picture>, EncodeError> {
        let mut out = Vec::new();
        self.inner.send_eof().map_err(|e| decoder_err("drain", e))?;
        self.receive_all(&mut out)?;
        // Leave the draining state so the session can go on after a FLUSH.
        self.inner.flush();
        Ok(out)
    }
}
