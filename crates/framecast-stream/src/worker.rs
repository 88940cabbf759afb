//! Encoder groups' worker threads.
//!
//! Each encoder group gets one OS thread (never a tokio worker): it owns an H.264
//! [`framecast_encode::Encoder`] or uses the image encoders, takes one job at a time and
//! reports the result through a callback. Frames arrive as `Arc`s: nothing is copied per
//! viewer or per group; the H.264 path converts straight from the shared frame.

use crate::image::{encode_jpeg, encode_png};
use crate::session::{EncodeFailure, EncodeJob, EncodedFrame, GroupId, GroupKind, ImageFormat};
use bytes::Bytes;
use framecast_core::OwnedFrame;
use framecast_encode::{Encoder, EncoderConfig, EncoderEvent, FrameMeta};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

/// A frame as shared between the publisher, the stream task and the encoder threads.
pub type SharedFrame = Arc<OwnedFrame>;

/// One job for a group thread.
pub(crate) struct WorkerJob {
    /// What to do.
    pub job: EncodeJob,
    /// The frame (`job.frame`).
    pub frame: SharedFrame,
}

/// Result callback: `(group, job, result)`.
pub(crate) type Report = Box<dyn Fn(GroupId, u64, Result<EncodedFrame, EncodeFailure>) + Send>;

/// Handle to a group's thread; dropping it stops the thread after its current job.
pub(crate) struct GroupWorker {
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

fn encode_image(fmt: ImageFormat, w: &WorkerJob) -> Result<EncodedFrame, EncodeFailure> {
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
        recovery_from: None,
    })
}

/// Tell the encoder which frames every viewer displayed and, when viewers wait for recovery,
/// ask for a recovery P-frame. Failures here only cost the recovery: the frame is encoded as
/// usual and the core sends those viewers a keyframe.
fn recovery_inputs(enc: &mut Encoder, job: &EncodeJob) {
    if let Some(token) = job.displayed_by_all {
        if let Err(e) = enc.displayed(token) {
            tracing::warn!(group = job.group, %e, "reporting displayed frames to the encoder failed");
        }
    }
    if let Some(last) = job.recover_for {
        match enc.recover(last) {
            Ok(Some(reference)) => {
                tracing::debug!(
                    group = job.group,
                    reference,
                    "recovery P-frame for viewers that missed frames"
                );
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(group = job.group, %e, "recovery request failed; keyframe path")
            }
        }
    }
}

fn encode_video(slot: &mut Option<Encoder>, w: &WorkerJob) -> Result<EncodedFrame, EncodeFailure> {
    let (width, height) = (w.frame.width(), w.frame.height());
    let s = &w.job.settings;
    // Congestion control moved the group's rate: change it live (no IDR) where the backend
    // can; otherwise rebuild (the next frame is then an IDR).
    let rate_stuck = slot.as_mut().is_some_and(|e| {
        let c = e.config();
        let moved = c.bitrate != s.bitrate || (c.fps - s.fps).abs() > 1e-6;
        moved && !matches!(e.set_rate(s.bitrate, s.fps), Ok(true))
    });
    if rate_stuck {
        *slot = None;
    }
    let rebuild = slot.as_ref().is_none_or(|e| {
        let c = e.config();
        c.width != width || c.height != height || c.backend != s.backend
    });
    if rebuild {
        let mut config = EncoderConfig::new(width, height);
        config.backend = s.backend.clone();
        config.fps = s.fps;
        config.bitrate = s.bitrate;
        config.keyframe_interval = (s.fps * s.keyframe_interval_s).round() as u32;
        // Viewers that miss frames come back with a recovery P-frame where the backend can.
        config.recovery = true;
        config.preset = s.preset.clone();
        config.intra_refresh = s.intra_refresh;
        *slot = None;
        *slot = Some(Encoder::new(config).map_err(|e| EncodeFailure::Create {
            backend: s.backend.clone(),
            width,
            height,
            message: e.to_string(),
        })?);
    }
    let enc = slot.as_mut().expect("just built");
    if !rebuild {
        recovery_inputs(enc, &w.job);
    }
    let meta = FrameMeta {
        token: w.job.frame.id,
        pts_ns: w.job.frame.timestamp_us as i64 * 1000,
        force_keyframe: w.job.force_keyframe || rebuild,
    };
    let packet = enc
        .send_frame(&w.frame.as_frame(), meta)
        .and_then(|_| loop {
            match enc.receive()? {
                Some(EncoderEvent::Packet(p)) => return Ok(Some(p)),
                Some(EncoderEvent::Dropped(_)) => continue,
                None => return Ok(None),
            }
        });
    match packet {
        Ok(Some(p)) => Ok(EncodedFrame {
            data: p.data,
            keyframe: p.keyframe,
            codec: Some(p.codec),
            mime: None,
            width,
            height,
            encode_ms: 0.0,
            recovery_from: p.recovery_from,
        }),
        Ok(None) => Err(EncodeFailure::NoPacket),
        Err(e) => {
            // A failed encoder is rebuilt for the next frame (which is a keyframe).
            *slot = None;
            Err(EncodeFailure::Encode(e.to_string()))
        }
    }
}
