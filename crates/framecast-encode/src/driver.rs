//! [`BackendDriver`]: one backend on the encoding thread — submits pictures, checks the
//! encoder contract on what comes out (order, forced IDRs), runs the H.264 normaliser and
//! attributes tokens and timings to each packet.

use crate::backend::{BackendEncoder, BackendFrame, BackendRgbFrame};
use crate::dts::DtsClock;
use crate::keyframes::KeyframeScheduler;
use crate::meta::FrameMeta;
use crate::normalize::Normalizer;
use crate::{DroppedFrame, EncodeError, EncodedPacket, EncoderEvent, PacketTimings};
use bytes::Bytes;
use framecast_core::{Frame, PixelFormat, Yuv420Image};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A frame submitted to the backend, waiting for its access unit.
#[derive(Debug, Clone)]
pub(crate) struct InBackend {
    pub(crate) token: u64,
    pub(crate) pts_ns: i64,
    pub(crate) forced_idr: bool,
    pub(crate) convert_ms: f64,
    pub(crate) queue_ms: f64,
    pub(crate) submitted: Instant,
    /// Frames submitted after this one that were dropped before reaching the backend; reported
    /// right after this frame's packet so that events stay in submission order.
    pub(crate) dropped_after: Vec<DroppedFrame>,
}

/// A converted frame ready for the backend.
pub(crate) struct Job {
    pub(crate) picture: Picture,
    pub(crate) info: JobMeta,
}

/// What the encoder needs to know about a frame besides its pixels.
pub(crate) struct JobMeta {
    pub(crate) meta: FrameMeta,
    pub(crate) convert_ms: f64,
    pub(crate) converted_at: Instant,
}

/// The picture of a queued frame: converted YUV, or a tight copy of a packed RGB frame the
/// backend converts itself ([`crate::backend::RgbInput`]).
pub(crate) enum Picture {
    Yuv(Yuv420Image),
    Rgb { format: PixelFormat, data: Vec<u8> },
}

/// A picture handed to [`BackendDriver::encode`].
pub(crate) enum PictureRef<'a> {
    Yuv(&'a Yuv420Image),
    Rgb(&'a Frame<'a>),
}

/// The part that talks to the backend; lives on the encoding thread.
pub(crate) struct BackendDriver {
    pub(crate) backend: Box<dyn BackendEncoder>,
    pub(crate) normalizer: Normalizer,
    /// Decode times (B-frames reorder; without them dts = pts).
    pub(crate) dts: DtsClock,
    pub(crate) scheduler: KeyframeScheduler,
    pub(crate) in_backend: VecDeque<InBackend>,
    pub(crate) duration_ns: i64,
    pub(crate) format: crate::OutputFormat,
    pub(crate) frames_out: u64,
    pub(crate) stream: Arc<Mutex<StreamInfo>>,
    /// Display size, to view queued RGB copies as frames.
    pub(crate) size: (u32, u32),
}

/// What is known about the stream so far, shared with the caller's thread.
#[derive(Debug, Default, Clone)]
pub(crate) struct StreamInfo {
    pub(crate) codec: Option<Arc<str>>,
    pub(crate) avcc: Option<Vec<u8>>,
}

impl BackendDriver {
    /// Encode a queued job.
    pub(crate) fn encode_job(
        &mut self,
        job: &Job,
        out: &mut Vec<EncoderEvent>,
    ) -> Result<(), EncodeError> {
        match &job.picture {
            Picture::Yuv(image) => self.encode(PictureRef::Yuv(image), &job.info, out),
            Picture::Rgb { format, data } => {
                let (w, h) = self.size;
                let frame = match format {
                    PixelFormat::Bgra8 => Frame::bgra8(data, w, h, w as usize * 4)?,
                    _ => Frame::rgba8(data, w, h, w as usize * 4)?,
                };
                self.encode(PictureRef::Rgb(&frame), &job.info, out)
            }
        }
    }

    pub(crate) fn encode(
        &mut self,
        picture: PictureRef<'_>,
        job: &JobMeta,
        out: &mut Vec<EncoderEvent>,
    ) -> Result<(), EncodeError> {
        let force = self.scheduler.decide(job.meta.force_keyframe);
        // The backend learns which frames are IDRs from us, so the cadence is the same for every
        // backend; record optimistically, corrected by what actually comes out.
        self.scheduler.record(force);
        let submitted = Instant::now();
        self.dts.submitted(job.meta.pts_ns);
        self.in_backend.push_back(InBackend {
            token: job.meta.token,
            pts_ns: job.meta.pts_ns,
            forced_idr: force,
            convert_ms: job.convert_ms,
            queue_ms: submitted.duration_since(job.converted_at).as_secs_f64() * 1e3,
            submitted,
            dropped_after: Vec::new(),
        });
        match picture {
            PictureRef::Yuv(image) => self.backend.encode(BackendFrame {
                image,
                token: job.meta.token,
                pts_ns: job.meta.pts_ns,
                force_keyframe: force,
            })?,
            PictureRef::Rgb(frame) => self.backend.encode_rgb(BackendRgbFrame {
                frame,
                token: job.meta.token,
                pts_ns: job.meta.pts_ns,
                force_keyframe: force,
            })?,
        }
        self.drain(out)
    }

    /// Report a dropped frame after every frame submitted before it.
    pub(crate) fn report_drop(&mut self, dropped: DroppedFrame, out: &mut Vec<EncoderEvent>) {
        match self.in_backend.back_mut() {
            Some(last) => last.dropped_after.push(dropped),
            None => out.push(EncoderEvent::Dropped(dropped)),
        }
    }

    pub(crate) fn drain(&mut self, out: &mut Vec<EncoderEvent>) -> Result<(), EncodeError> {
        while let Some(au) = self.backend.poll()? {
            let done = Instant::now();
            let name = self.backend.name();
            // With B-frames, units come in decode order: find the frame by its token.
            let position = if self.backend.reorder_depth() > 0 {
                self.in_backend.iter().position(|f| f.token == au.token)
            } else {
                (!self.in_backend.is_empty()).then_some(0)
            };
            let Some(expected) = position.and_then(|i| self.in_backend.remove(i)) else {
                return Err(EncodeError::Contract {
                    backend: name,
                    message: format!(
                        "access unit for token {} that was never submitted",
                        au.token
                    ),
                });
            };
            if expected.token != au.token {
                return Err(EncodeError::Contract {
                    backend: name,
                    message: format!(
                        "output order differs from input order: expected token {}, got {}",
                        expected.token, au.token
                    ),
                });
            }
            let unit = self.normalizer.process(&au)?;
            if expected.forced_idr && !unit.keyframe {
                return Err(EncodeError::Contract {
                    backend: name,
                    message: format!(
                        "frame with token {} was asked to be an IDR and is not",
                        au.token
                    ),
                });
            }
            if unit.keyframe && !expected.forced_idr {
                // An IDR the backend chose itself (e.g. a scene cut): restart the cadence there.
                self.scheduler.record(true);
            }
            // Parameter sets (hence codec string and avcC) only change on an IDR, and the first
            // packet is one (it is forced, and a non-IDR answer is a contract error above).
            if unit.keyframe {
                let mut info = self.stream.lock().unwrap_or_else(|e| e.into_inner());
                info.codec = self.normalizer.codec();
                info.avcc = self.normalizer.avcc();
            }
            out.push(EncoderEvent::Packet(EncodedPacket {
                data: Bytes::from(unit.data),
                format: self.format,
                pts_ns: expected.pts_ns,
                dts_ns: self.dts.next(),
                duration_ns: self.duration_ns,
                keyframe: unit.keyframe,
                recovery_from: au.recovery_from.filter(|_| !unit.keyframe),
                token: au.token,
                frame_index: self.frames_out,
                codec: unit.codec,
                timings: PacketTimings {
                    convert_ms: expected.convert_ms,
                    encode_ms: done.duration_since(expected.submitted).as_secs_f64() * 1e3,
                    queue_ms: expected.queue_ms,
                },
            }));
            out.extend(
                expected
                    .dropped_after
                    .into_iter()
                    .map(EncoderEvent::Dropped),
            );
            self.frames_out += 1;
        }
        Ok(())
    }

    pub(crate) fn finish(&mut self, out: &mut Vec<EncoderEvent>) -> Result<(), EncodeError> {
        self.backend.finish()?;
        self.drain(out)?;
        if let Some(lost) = self.in_backend.front() {
            return Err(EncodeError::Contract {
                backend: self.backend.name(),
                message: format!(
                    "finished without returning the frame with token {}",
                    lost.token
                ),
            });
        }
        Ok(())
    }
}
