//! [`Encoder`]: one backend wrapped with conversion, keyframe scheduling, token attribution,
//! the H.264 normaliser and (optionally) a pipelining worker with backpressure.

use crate::backend::{BackendEncoder, RgbInput};
use crate::driver::{BackendDriver, Job, JobMeta, Picture, PictureRef, StreamInfo};
use crate::dts::DtsClock;
use crate::keyframes::KeyframeScheduler;
use crate::meta::FrameMeta;
use crate::normalize::Normalizer;
use crate::pipeline::{tight_copy, worker_loop, Pipe, PipeState, Queued};
use crate::{
    registry, BackpressurePolicy, DropReason, DroppedFrame, EncodeError, EncodeMode, EncoderConfig,
    EncoderEvent, SendOutcome,
};
use framecast_core::{convert, Frame, FrameError, PixelFormat, Yuv420Image, YuvLayout};
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

enum Mode {
    Sync {
        core: Box<BackendDriver>,
        image: Yuv420Image,
        events: VecDeque<EncoderEvent>,
        closed: bool,
    },
    Pipelined {
        pipe: Arc<Pipe>,
        worker: Option<JoinHandle<()>>,
        max_in_flight: usize,
        policy: BackpressurePolicy,
    },
}

/// An H.264 encoder: frames in, [`EncodedPacket`]s out, whatever the backend.
///
/// ```no_run
/// use framecast_core::Frame;
/// use framecast_encode::{Encoder, EncoderConfig, EncoderEvent, FrameMeta};
///
/// let mut enc = Encoder::new(EncoderConfig::new(640, 360))?;
/// let rgba = vec![0u8; 640 * 360 * 4];
/// let frame = Frame::rgba8(&rgba, 640, 360, 640 * 4)?;
/// let _ = enc.send_frame(&frame, FrameMeta { token: 0, pts_ns: 0, force_keyframe: false })?;
/// while let Some(EncoderEvent::Packet(p)) = enc.receive()? {
///     println!("{} bytes, keyframe={}, {}", p.data.len(), p.keyframe, p.codec);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Encoder {
    config: EncoderConfig,
    backend_name: &'static str,
    layout: YuvLayout,
    /// Packed RGB formats the backend converts itself.
    rgb: RgbInput,
    stream: Arc<Mutex<StreamInfo>>,
    mode: Mode,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("backend", &self.backend_name)
            .field("config", &self.config)
            .finish()
    }
}

impl Encoder {
    /// Build the backend named in `config.backend`.
    pub fn new(config: EncoderConfig) -> Result<Self, EncodeError> {
        config.validate()?;
        let descriptor = registry::find(&config.backend)?;
        let backend = (descriptor.create)(&config)?;
        Self::with_backend(config, backend)
    }

    /// Wrap an already created backend (used by tests and out-of-tree backends).
    pub fn with_backend(
        config: EncoderConfig,
        backend: Box<dyn BackendEncoder>,
    ) -> Result<Self, EncodeError> {
        config.validate()?;
        let backend_name = backend.name();
        let layout = backend.input_layout();
        let rgb = backend.rgb_input();
        let stream = Arc::new(Mutex::new(StreamInfo::default()));
        let core = Box::new(BackendDriver {
            normalizer: Normalizer::new(
                backend_name,
                config.width,
                config.height,
                config.color,
                config.output,
                backend.reorder_depth(),
            )
            .allow_frame_num_gaps_if(backend.frame_num_gaps()),
            dts: DtsClock::new(backend.reorder_depth(), config.frame_duration_ns()),
            backend,
            scheduler: KeyframeScheduler {
                // With intra refresh the backend sweeps intra macroblocks instead; only the
                // first and forced frames are IDRs.
                interval: if config.intra_refresh {
                    0
                } else {
                    config.keyframe_interval
                },
                since_idr: None,
            },
            in_backend: VecDeque::new(),
            duration_ns: config.frame_duration_ns(),
            format: config.output,
            frames_out: 0,
            stream: stream.clone(),
            size: (config.width, config.height),
        });
        let image = Yuv420Image::new(config.width, config.height, layout)?;
        let mode = match config.mode {
            EncodeMode::Sync => Mode::Sync {
                core,
                image,
                events: VecDeque::new(),
                closed: false,
            },
            EncodeMode::Pipelined {
                max_in_flight,
                policy,
            } => {
                let pipe = Arc::new(Pipe {
                    state: Mutex::new(PipeState {
                        queue: VecDeque::new(),
                        jobs_queued: 0,
                        busy: 0,
                        in_backend: 0,
                        events: VecDeque::new(),
                        pool: vec![image],
                        rgb_pool: Vec::new(),
                        pending_force: false,
                        flush_requested: false,
                        flushed: false,
                        shutdown: false,
                        error: None,
                    }),
                    changed: Condvar::new(),
                });
                let worker_pipe = pipe.clone();
                let worker = std::thread::Builder::new()
                    .name(format!("framecast-{backend_name}"))
                    .spawn(move || worker_loop(core, &worker_pipe))
                    .map_err(|e| EncodeError::Backend {
                        backend: backend_name,
                        message: format!("cannot start worker thread: {e}"),
                    })?;
                Mode::Pipelined {
                    pipe,
                    worker: Some(worker),
                    max_in_flight,
                    policy,
                }
            }
        };
        Ok(Encoder {
            config,
            backend_name,
            layout,
            rgb,
            stream,
            mode,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &EncoderConfig {
        &self.config
    }

    /// Change the target bitrate (bits/s) and frame rate for the frames sent from now on,
    /// without a keyframe. `Ok(false)` when the backend cannot change them live, or the
    /// encoder is pipelined (the backend is busy on its own thread): rebuild it instead.
    pub fn set_rate(&mut self, bitrate: u32, fps: f64) -> Result<bool, EncodeError> {
        if !(fps.is_finite() && fps > 0.0) || bitrate == 0 {
            return Err(EncodeError::InvalidConfig(format!(
                "rate {bitrate} bit/s at {fps} fps: both must be positive"
            )));
        }
        let Mode::Sync { core, .. } = &mut self.mode else {
            return Ok(false);
        };
        let changed = core.backend.set_rate(bitrate, fps)?;
        if changed {
            self.config.bitrate = bitrate;
            self.config.fps = fps;
        }
        Ok(changed)
    }

    /// Every decoder of this stream has displayed the packet of `token` (a caller token) and
    /// all before it: the backend may use any reference among them for [`Self::recover`].
    /// Tokens passed here never decrease. Ignored when pipelined.
    pub fn displayed(&mut self, token: u64) -> Result<(), EncodeError> {
        match &mut self.mode {
            Mode::Sync { core, .. } => core.backend.displayed(token),
            Mode::Pipelined { .. } => Ok(()),
        }
    }

    /// Recovery without a keyframe: make the next frame sent decodable by a decoder that
    /// displayed the packet of `last_displayed` and then missed frames, by predicting it only
    /// from a frame every decoder displayed ([`Self::displayed`]). Returns that frame's token
    /// (the next packet then carries it in [`EncodedPacket::recovery_from`](crate::EncodedPacket::recovery_from)),
    /// or `None` when the backend has no such frame or no mechanism, or the encoder is
    /// pipelined: send an IDR instead.
    pub fn recover(&mut self, last_displayed: u64) -> Result<Option<u64>, EncodeError> {
        match &mut self.mode {
            Mode::Sync { core, .. } => core.backend.recover(last_displayed),
            Mode::Pipelined { .. } => Ok(None),
        }
    }

    /// The YUV layout the backend encodes from (what a caller with YUV frames should hand it
    /// to avoid a repack: NV12 for x264 and VideoToolbox, I420 for OpenH264).
    pub fn input_layout(&self) -> YuvLayout {
        self.layout
    }

    /// The backend's registry name.
    pub fn backend_name(&self) -> &'static str {
        self.backend_name
    }

    /// RFC 6381 codec string, known once the first packet is out.
    pub fn codec_string(&self) -> Option<Arc<str>> {
        self.stream.lock().ok()?.codec.clone()
    }

    /// AVCDecoderConfigurationRecord for the parameter sets in force, known once the first
    /// packet is out (for `OutputFormat::Avcc`, MP4 and WebCodecs `description`).
    pub fn avcc(&self) -> Option<Vec<u8>> {
        self.stream.lock().ok()?.avcc.clone()
    }

    /// Frames queued or encoding (always 0 in synchronous mode between calls).
    pub fn in_flight(&self) -> usize {
        match &self.mode {
            Mode::Sync { .. } => 0,
            Mode::Pipelined { pipe, .. } => {
                let s = pipe.lock();
                s.jobs_queued + s.busy + s.in_backend
            }
        }
    }

    fn check_frame(&self, frame: &Frame<'_>) -> Result<(), EncodeError> {
        if frame.width() != self.config.width || frame.height() != self.config.height {
            return Err(FrameError::SizeMismatch {
                frame_width: frame.width(),
                frame_height: frame.height(),
                image_width: self.config.width,
                image_height: self.config.height,
            }
            .into());
        }
        Ok(())
    }

    /// Submit one frame. See [`SendOutcome`] for what can happen under backpressure; dropped
    /// frames are also reported through [`Self::receive`].
    pub fn send_frame(
        &mut self,
        frame: &Frame<'_>,
        meta: FrameMeta,
    ) -> Result<SendOutcome, EncodeError> {
        self.check_frame(frame)?;
        let color = self.config.color;
        match &mut self.mode {
            Mode::Sync {
                core,
                image,
                events,
                closed,
            } => {
                if *closed {
                    return Err(EncodeError::Closed);
                }
                // NV12 in place only at even sizes (no padding row or column to add).
                let direct = self.rgb.accepts(frame.format())
                    && (frame.format() != PixelFormat::Nv12
                        || (frame.width() % 2 == 0 && frame.height() % 2 == 0));
                let t0 = Instant::now();
                if !direct {
                    convert::to_yuv420(frame, color, image)?;
                }
                let job = JobMeta {
                    meta,
                    convert_ms: t0.elapsed().as_secs_f64() * 1e3,
                    converted_at: Instant::now(),
                };
                let picture = if direct {
                    PictureRef::Rgb(frame)
                } else {
                    PictureRef::Yuv(image)
                };
                let mut out = Vec::with_capacity(1);
                let result = core.encode(picture, &job, &mut out);
                events.extend(out);
                result?;
                Ok(SendOutcome::Accepted)
            }
            Mode::Pipelined {
                pipe,
                max_in_flight,
                policy,
                ..
            } => {
                let (max, policy) = (*max_in_flight, *policy);
                let mut s = pipe.lock();
                let mut force = meta.force_keyframe;
                loop {
                    if let Some(e) = s.error.take() {
                        return Err(e);
                    }
                    if s.flush_requested || s.shutdown {
                        return Err(EncodeError::Closed);
                    }
                    if s.jobs_queued + s.busy + s.in_backend < max {
                        break;
                    }
                    match policy {
                        BackpressurePolicy::Block => {}
                        BackpressurePolicy::FailFast => return Ok(SendOutcome::Busy),
                        BackpressurePolicy::DropNew => {
                            s.pending_force |= force;
                            s.queue.push_back(Queued::Dropped(DroppedFrame {
                                token: meta.token,
                                pts_ns: meta.pts_ns,
                                reason: DropReason::EncoderFull,
                            }));
                            pipe.changed.notify_all();
                            return Ok(SendOutcome::Dropped);
                        }
                        BackpressurePolicy::DropOld => {
                            // The oldest frame not yet taken by the encoder gives way; its
                            // report keeps its place in the queue.
                            let oldest = s.queue.iter().position(|q| matches!(q, Queued::Job(_)));
                            if let Some(Queued::Job(old)) = oldest.and_then(|i| s.queue.remove(i)) {
                                let i = oldest.expect("removed above");
                                s.queue.insert(
                                    i,
                                    Queued::Dropped(DroppedFrame {
                                        token: old.info.meta.token,
                                        pts_ns: old.info.meta.pts_ns,
                                        reason: DropReason::Superseded,
                                    }),
                                );
                                s.jobs_queued -= 1;
                                force |= old.info.meta.force_keyframe;
                                s.recycle(old.picture);
                                continue;
                            }
                        }
                    }
                    s = pipe.changed.wait(s).unwrap_or_else(|e| e.into_inner());
                }
                // Reserve a slot, convert outside the lock, then queue.
                force |= std::mem::take(&mut s.pending_force);
                s.busy += 1;
                // Queued frames are copied either way: NV12 goes into a pooled picture.
                let direct =
                    self.rgb.accepts(frame.format()) && frame.format() != PixelFormat::Nv12;
                let (pooled, rgb_buf) = if direct {
                    (None, s.rgb_pool.pop())
                } else {
                    (s.pool.pop(), None)
                };
                drop(s);
                let t0 = Instant::now();
                let converted = if direct {
                    Ok(Picture::Rgb {
                        format: frame.format(),
                        data: tight_copy(frame, rgb_buf.unwrap_or_default()),
                    })
                } else {
                    let image = match pooled {
                        Some(img) => Ok(img),
                        None => {
                            Yuv420Image::new(self.config.width, self.config.height, self.layout)
                        }
                    };
                    image.and_then(|mut image| {
                        convert::to_yuv420(frame, color, &mut image).map(|()| Picture::Yuv(image))
                    })
                };
                let convert_ms = t0.elapsed().as_secs_f64() * 1e3;
                let mut s = pipe.lock();
                s.busy -= 1;
                let picture = match converted {
                    Ok(p) => p,
                    Err(e) => {
                        s.pending_force |= force;
                        pipe.changed.notify_all();
                        return Err(e.into());
                    }
                };
                s.jobs_queued += 1;
                s.queue.push_back(Queued::Job(Job {
                    picture,
                    info: JobMeta {
                        meta: FrameMeta {
                            force_keyframe: force,
                            ..meta
                        },
                        convert_ms,
                        converted_at: Instant::now(),
                    },
                }));
                pipe.changed.notify_all();
                Ok(SendOutcome::Accepted)
            }
        }
    }

    /// The next packet or drop report, if one is ready (never blocks).
    pub fn receive(&mut self) -> Result<Option<EncoderEvent>, EncodeError> {
        match &mut self.mode {
            Mode::Sync { events, .. } => Ok(events.pop_front()),
            Mode::Pipelined { pipe, .. } => {
                let mut s = pipe.lock();
                if let Some(ev) = s.events.pop_front() {
                    return Ok(Some(ev));
                }
                match s.error.take() {
                    Some(e) => Err(e),
                    None => Ok(None),
                }
            }
        }
    }

    /// Wait until an event is ready or nothing is in flight; `None` means nothing is pending.
    pub fn receive_blocking(&mut self) -> Result<Option<EncoderEvent>, EncodeError> {
        match &mut self.mode {
            Mode::Sync { events, .. } => Ok(events.pop_front()),
            Mode::Pipelined { pipe, .. } => {
                let mut s = pipe.lock();
                loop {
                    if let Some(ev) = s.events.pop_front() {
                        return Ok(Some(ev));
                    }
                    if let Some(e) = s.error.take() {
                        return Err(e);
                    }
                    if s.queue.is_empty() && s.busy == 0 && s.in_backend == 0 {
                        return Ok(None);
                    }
                    s = pipe.changed.wait(s).unwrap_or_else(|e| e.into_inner());
                }
            }
        }
    }

    /// Encode everything still in flight and return every remaining event. The encoder
    /// accepts no frames afterwards.
    pub fn flush(&mut self) -> Result<Vec<EncoderEvent>, EncodeError> {
        match &mut self.mode {
            Mode::Sync {
                core,
                events,
                closed,
                ..
            } => {
                let mut out: Vec<EncoderEvent> = events.drain(..).collect();
                if !*closed {
                    *closed = true;
                    core.finish(&mut out)?;
                }
                Ok(out)
            }
            Mode::Pipelined { pipe, worker, .. } => {
                let mut s = pipe.lock();
                s.flush_requested = true;
                pipe.changed.notify_all();
                while !s.flushed
                    && s.error.is_none()
                    && worker.as_ref().is_some_and(|w| !w.is_finished())
                {
                    s = pipe.changed.wait(s).unwrap_or_else(|e| e.into_inner());
                }
                let out: Vec<EncoderEvent> = s.events.drain(..).collect();
                if let Some(e) = s.error.take() {
                    return Err(e);
                }
                if !s.flushed {
                    return Err(EncodeError::Closed);
                }
                Ok(out)
            }
        }
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        if let Mode::Pipelined { pipe, worker, .. } = &mut self.mode {
            pipe.lock().shutdown = true;
            pipe.changed.notify_all();
            if let Some(w) = worker.take() {
                let _ = w.join();
            }
        }
    }
}

#[cfg(all(test, feature = "openh264"))]
mod tests {
    use super::*;
    use crate::backend::{BackendFrame, BackendRgbFrame, RawAccessUnit, RgbInput};
    use framecast_core::PixelFormat;
    use std::sync::mpsc::{channel, Receiver, Sender};

    /// OpenH264 behind a gate: `encode` waits until the test lets one frame through, so the
    /// test decides exactly which frames are inside the encoder when the next ones arrive.
    struct Gated {
        inner: Box<dyn BackendEncoder>,
        gate: Receiver<()>,
        started: Sender<u64>,
    }

    impl BackendEncoder for Gated {
        fn name(&self) -> &'static str {
            "gated-openh264"
        }
        fn input_layout(&self) -> YuvLayout {
            self.inner.input_layout()
        }
        fn encode(&mut self, frame: BackendFrame<'_>) -> Result<(), EncodeError> {
            self.started.send(frame.token).unwrap();
            self.gate.recv().unwrap();
            self.inner.encode(frame)
        }
        fn poll(&mut self) -> Result<Option<RawAccessUnit>, EncodeError> {
            self.inner.poll()
        }
        fn finish(&mut self) -> Result<(), EncodeError> {
            self.inner.finish()
        }
    }

    fn gated(
        policy: BackpressurePolicy,
        max_in_flight: usize,
    ) -> (Encoder, Sender<()>, Receiver<u64>) {
        let mut config = EncoderConfig::new(64, 64);
        config.mode = EncodeMode::Pipelined {
            max_in_flight,
            policy,
        };
        let inner = (registry::find("openh264").unwrap().create)(&config).unwrap();
        let (open, gate) = channel();
        let (started, starts) = channel();
        let enc = Encoder::with_backend(
            config,
            Box::new(Gated {
                inner,
                gate,
                started,
            }),
        )
        .unwrap();
        (enc, open, starts)
    }

    fn send(enc: &mut Encoder, token: u64, force: bool) -> SendOutcome {
        let rgba = vec![(token * 40) as u8; 64 * 64 * 4];
        let frame = Frame::rgba8(&rgba, 64, 64, 256).unwrap();
        enc.send_frame(
            &frame,
            FrameMeta {
                token,
                pts_ns: token as i64 * 1000,
                force_keyframe: force,
            },
        )
        .unwrap()
    }

    fn order(events: &[EncoderEvent]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                EncoderEvent::Packet(p) => {
                    format!("P{}{}", p.token, if p.keyframe { "k" } else { "" })
                }
                EncoderEvent::Dropped(d) => format!("D{}", d.token),
            })
            .collect()
    }

    fn flush_open(mut enc: Encoder, open: Sender<()>) -> Vec<EncoderEvent> {
        for _ in 0..16 {
            let _ = open.send(());
        }
        enc.flush().unwrap()
    }

    #[test]
    fn drop_new_reports_in_submission_order_and_moves_the_keyframe() {
        let (mut enc, open, starts) = gated(BackpressurePolicy::DropNew, 2);
        assert_eq!(send(&mut enc, 0, false), SendOutcome::Accepted);
        assert_eq!(starts.recv().unwrap(), 0); // frame 0 is inside the encoder
        assert_eq!(send(&mut enc, 1, false), SendOutcome::Accepted); // queued
        assert_eq!(send(&mut enc, 2, true), SendOutcome::Dropped); // full: dropped, its IDR request moves on
        assert_eq!(
            enc.receive().unwrap(),
            None,
            "the drop report waits for frames 0 and 1"
        );
        open.send(()).unwrap();
        assert_eq!(starts.recv().unwrap(), 1);
        assert_eq!(send(&mut enc, 3, false), SendOutcome::Accepted);
        let events = flush_open(enc, open);
        assert_eq!(order(&events), ["P0k", "P1", "D2", "P3k"]);
    }

    #[test]
    fn drop_old_replaces_the_queued_frame_in_place() {
        let (mut enc, open, starts) = gated(BackpressurePolicy::DropOld, 2);
        assert_eq!(send(&mut enc, 0, false), SendOutcome::Accepted);
        assert_eq!(starts.recv().unwrap(), 0);
        assert_eq!(send(&mut enc, 1, true), SendOutcome::Accepted); // queued, asks for an IDR
        assert_eq!(send(&mut enc, 2, false), SendOutcome::Accepted); // supersedes 1, inherits the IDR
        assert_eq!(send(&mut enc, 3, false), SendOutcome::Accepted); // supersedes 2
        let events = flush_open(enc, open);
        assert_eq!(order(&events), ["P0k", "D1", "D2", "P3k"]);
    }

    /// A backend that takes BGRA itself (as VideoToolbox does) and converts it on its own.
    struct TakesBgra {
        inner: Box<dyn BackendEncoder>,
        image: Yuv420Image,
        rgb_calls: Arc<Mutex<Vec<PixelFormat>>>,
    }

    impl BackendEncoder for TakesBgra {
        fn name(&self) -> &'static str {
            "bgra-openh264"
        }
        fn input_layout(&self) -> YuvLayout {
            self.inner.input_layout()
        }
        fn encode(&mut self, frame: BackendFrame<'_>) -> Result<(), EncodeError> {
            self.inner.encode(frame)
        }
        fn poll(&mut self) -> Result<Option<RawAccessUnit>, EncodeError> {
            self.inner.poll()
        }
        fn finish(&mut self) -> Result<(), EncodeError> {
            self.inner.finish()
        }
        fn rgb_input(&self) -> RgbInput {
            RgbInput {
                bgra8: true,
                ..RgbInput::default()
            }
        }
        fn encode_rgb(&mut self, f: BackendRgbFrame<'_>) -> Result<(), EncodeError> {
            self.rgb_calls.lock().unwrap().push(f.frame.format());
            convert::to_yuv420(
                f.frame,
                framecast_core::ColorSpace::default(),
                &mut self.image,
            )?;
            self.inner.encode(BackendFrame {
                image: &self.image,
                token: f.token,
                pts_ns: f.pts_ns,
                force_keyframe: f.force_keyframe,
            })
        }
    }

    fn takes_bgra(mode: EncodeMode) -> (Encoder, Arc<Mutex<Vec<PixelFormat>>>) {
        let mut config = EncoderConfig::new(64, 48);
        config.mode = mode;
        let inner = (registry::find("openh264").unwrap().create)(&config).unwrap();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let backend = TakesBgra {
            inner,
            image: Yuv420Image::new(64, 48, YuvLayout::I420).unwrap(),
            rgb_calls: calls.clone(),
        };
        (
            Encoder::with_backend(config, Box::new(backend)).unwrap(),
            calls,
        )
    }

    #[test]
    fn rgb_frames_go_to_a_backend_that_takes_them_and_decode_right() {
        for mode in [
            EncodeMode::Sync,
            EncodeMode::Pipelined {
                max_in_flight: 2,
                policy: BackpressurePolicy::Block,
            },
        ] {
            let (mut enc, calls) = takes_bgra(mode);
            // BGRA (taken by the backend) and RGBA (converted by framecast) of the same colour,
            // with a padded stride the backend must not see.
            let (r, g, b) = (200u8, 40u8, 90u8);
            let stride = 64 * 4 + 12;
            let bgra: Vec<u8> = (0..48)
                .flat_map(|_| (0..stride / 4).flat_map(|_| [b, g, r, 255]))
                .collect();
            let rgba: Vec<u8> = (0..48)
                .flat_map(|_| (0..stride / 4).flat_map(|_| [r, g, b, 255]))
                .collect();
            for token in 0..6u64 {
                let frame = if token % 2 == 0 {
                    Frame::bgra8(&bgra, 64, 48, stride).unwrap()
                } else {
                    Frame::rgba8(&rgba, 64, 48, stride).unwrap()
                };
                let meta = FrameMeta {
                    token,
                    pts_ns: token as i64,
                    force_keyframe: false,
                };
                assert_eq!(enc.send_frame(&frame, meta).unwrap(), SendOutcome::Accepted);
            }
            let mut events = Vec::new();
            while let Some(ev) = enc.receive_blocking().unwrap() {
                events.push(ev);
            }
            events.extend(enc.flush().unwrap());
            assert_eq!(
                *calls.lock().unwrap(),
                vec![PixelFormat::Bgra8; 3],
                "{mode:?}: only BGRA frames go to encode_rgb"
            );
            let mut dec = crate::decode::H264Decoder::new().unwrap();
            let mut seen = 0;
            for ev in &events {
                let EncoderEvent::Packet(p) = ev else {
                    panic!("{mode:?}: dropped a frame")
                };
                assert_eq!(p.token, seen);
                let img = dec
                    .decode(&p.data)
                    .unwrap()
                    .expect("one picture per packet");
                let px = &convert::yuv420_to_rgba(&img, framecast_core::ColorSpace::default())
                    [(24 * 64 + 32) * 4..][..3];
                for (got, want) in px.iter().zip([r, g, b]) {
                    assert!(
                        got.abs_diff(want) <= 3,
                        "{mode:?} token {seen}: {px:?} vs {:?}",
                        [r, g, b]
                    );
                }
                seen += 1;
            }
            assert_eq!(seen, 6);
        }
    }

    #[test]
    fn fail_fast_leaves_the_frame_with_the_caller() {
        let (mut enc, open, starts) = gated(BackpressurePolicy::FailFast, 1);
        assert_eq!(send(&mut enc, 0, false), SendOutcome::Accepted);
        assert_eq!(starts.recv().unwrap(), 0);
        assert_eq!(send(&mut enc, 1, false), SendOutcome::Busy);
        assert_eq!(enc.in_flight(), 1);
        let events = flush_open(enc, open);
        assert_eq!(
            order(&events),
            ["P0k"],
            "nothing is reported for a refused frame"
        );
    }
}
