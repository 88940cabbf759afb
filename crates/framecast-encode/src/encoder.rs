//! [`Encoder`]: one backend wrapped with conversion, keyframe scheduling, token attribution,
//! the H.264 normaliser and (optionally) a pipelining worker with backpressure.

use crate::backend::{BackendEncoder, BackendFrame, BackendRgbFrame, RgbInput};
use crate::normalize::Normalizer;
use crate::{
    registry, BackpressurePolicy, DropReason, DroppedFrame, EncodeError, EncodeMode, EncodedPacket,
    EncoderConfig, EncoderEvent, PacketTimings, SendOutcome,
};
use bytes::Bytes;
use framecast_core::{convert, Frame, FrameError, PixelFormat, Planes, Yuv420Image, YuvLayout};
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

/// Per-frame metadata passed to [`Encoder::send_frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameMeta {
    /// Caller token, returned in the packet (or drop report) of this frame.
    pub token: u64,
    /// Presentation time in nanoseconds.
    pub pts_ns: i64,
    /// Encode this frame as an IDR (if the frame is dropped, the next encoded frame is).
    pub force_keyframe: bool,
}

/// Decides which frames are IDRs: the first, forced ones, and every `interval` frames since
/// the last IDR.
#[derive(Debug, Clone)]
struct KeyframeScheduler {
    interval: u32,
    since_idr: Option<u32>,
}

impl KeyframeScheduler {
    fn decide(&mut self, forced: bool) -> bool {
        match self.since_idr {
            None => true,
            Some(n) => forced || (self.interval > 0 && n >= self.interval),
        }
    }
    fn record(&mut self, keyframe: bool) {
        self.since_idr = Some(if keyframe {
            1
        } else {
            self.since_idr.unwrap_or(0) + 1
        });
    }
}

/// A frame submitted to the backend, waiting for its access unit.
#[derive(Debug, Clone)]
struct InBackend {
    token: u64,
    pts_ns: i64,
    forced_idr: bool,
    convert_ms: f64,
    queue_ms: f64,
    submitted: Instant,
    /// Frames submitted after this one that were dropped before reaching the backend; reported
    /// right after this frame's packet so that events stay in submission order.
    dropped_after: Vec<DroppedFrame>,
}

/// A converted frame ready for the backend.
struct Job {
    picture: Picture,
    info: JobMeta,
}

/// What the encoder needs to know about a frame besides its pixels.
struct JobMeta {
    meta: FrameMeta,
    convert_ms: f64,
    converted_at: Instant,
}

/// The picture of a queued frame: converted YUV, or a tight copy of a packed RGB frame the
/// backend converts itself ([`crate::backend::RgbInput`]).
enum Picture {
    Yuv(Yuv420Image),
    Rgb { format: PixelFormat, data: Vec<u8> },
}

/// A picture handed to [`Core::encode`].
enum PictureRef<'a> {
    Yuv(&'a Yuv420Image),
    Rgb(&'a Frame<'a>),
}

/// The part that talks to the backend; lives on the encoding thread.
struct Core {
    backend: Box<dyn BackendEncoder>,
    normalizer: Normalizer,
    scheduler: KeyframeScheduler,
    in_backend: VecDeque<InBackend>,
    duration_ns: i64,
    format: crate::OutputFormat,
    frames_out: u64,
    stream: Arc<Mutex<StreamInfo>>,
    /// Display size, to view queued RGB copies as frames.
    size: (u32, u32),
}

/// What is known about the stream so far, shared with the caller's thread.
#[derive(Debug, Default, Clone)]
struct StreamInfo {
    codec: Option<Arc<str>>,
    avcc: Option<Vec<u8>>,
}

impl Core {
    /// Encode a queued job.
    fn encode_job(&mut self, job: &Job, out: &mut Vec<EncoderEvent>) -> Result<(), EncodeError> {
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

    fn encode(
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
    fn report_drop(&mut self, dropped: DroppedFrame, out: &mut Vec<EncoderEvent>) {
        match self.in_backend.back_mut() {
            Some(last) => last.dropped_after.push(dropped),
            None => out.push(EncoderEvent::Dropped(dropped)),
        }
    }

    fn drain(&mut self, out: &mut Vec<EncoderEvent>) -> Result<(), EncodeError> {
        while let Some(au) = self.backend.poll()? {
            let done = Instant::now();
            let name = self.backend.name();
            let Some(expected) = self.in_backend.pop_front() else {
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
                dts_ns: expected.pts_ns,
                duration_ns: self.duration_ns,
                keyframe: unit.keyframe,
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

    fn finish(&mut self, out: &mut Vec<EncoderEvent>) -> Result<(), EncodeError> {
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

/// An entry of the pipeline queue: a frame to encode, or the report of one that was dropped,
/// kept in its place so that events come out in submission order.
enum Queued {
    Job(Job),
    Dropped(DroppedFrame),
}

/// Shared state between the caller and the pipelining worker.
struct PipeState {
    queue: VecDeque<Queued>,
    /// `Queued::Job` entries in `queue`.
    jobs_queued: usize,
    /// Frames taken by the worker and not yet reported, or reserved by a caller converting.
    busy: usize,
    /// Frames the backend holds without having returned their access unit (asynchronous
    /// backends only).
    in_backend: usize,
    events: VecDeque<EncoderEvent>,
    pool: Vec<Yuv420Image>,
    /// Buffers for tight copies of RGB frames a backend converts itself.
    rgb_pool: Vec<Vec<u8>>,
    /// A keyframe request inherited from a dropped frame.
    pending_force: bool,
    flush_requested: bool,
    flushed: bool,
    shutdown: bool,
    error: Option<EncodeError>,
}

impl PipeState {
    /// Return a finished or dropped job's buffer to its pool.
    fn recycle(&mut self, picture: Picture) {
        match picture {
            Picture::Yuv(image) => self.pool.push(image),
            Picture::Rgb { data, .. } => self.rgb_pool.push(data),
        }
    }
}

/// A tightly packed copy of a packed RGB frame, reusing `buf`.
fn tight_copy(frame: &Frame<'_>, mut buf: Vec<u8>) -> Vec<u8> {
    buf.clear();
    if let Planes::Packed { data, stride } = *frame.planes() {
        let row = frame.width() as usize * 4;
        for y in 0..frame.height() as usize {
            buf.extend_from_slice(&data[y * stride..y * stride + row]);
        }
    }
    buf
}

struct Pipe {
    state: Mutex<PipeState>,
    changed: Condvar,
}

impl Pipe {
    fn lock(&self) -> MutexGuard<'_, PipeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

enum Mode {
    Sync {
        core: Box<Core>,
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
        let core = Box::new(Core {
            normalizer: Normalizer::new(
                backend_name,
                config.width,
                config.height,
                config.color,
                config.output,
            ),
            backend,
            scheduler: KeyframeScheduler {
                interval: config.keyframe_interval,
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
                let direct = self.rgb.accepts(frame.format());
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
                let direct = self.rgb.accepts(frame.format());
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

enum Work {
    Encode(Job),
    Drop(DroppedFrame),
    Finish,
    Poll,
}

fn worker_loop(mut core: Box<Core>, pipe: &Pipe) {
    let mut out = Vec::new();
    loop {
        let mut s = pipe.lock();
        let job = loop {
            if s.shutdown {
                return;
            }
            if let Some(item) = s.queue.pop_front() {
                s.busy += 1;
                break Some(match item {
                    Queued::Job(job) => {
                        s.jobs_queued -= 1;
                        Work::Encode(job)
                    }
                    Queued::Dropped(d) => Work::Drop(d),
                });
            }
            if s.flush_requested && s.busy == 0 && !s.flushed {
                break Some(Work::Finish);
            }
            if !core.in_backend.is_empty() {
                // An asynchronous backend still owes access units: look again shortly.
                let (guard, _) = pipe
                    .changed
                    .wait_timeout(s, std::time::Duration::from_millis(1))
                    .unwrap_or_else(|e| e.into_inner());
                s = guard;
                break Some(Work::Poll);
            }
            s = pipe.changed.wait(s).unwrap_or_else(|e| e.into_inner());
        };
        drop(s);
        let job = job.expect("loop breaks with work");
        let result = match &job {
            Work::Encode(job) => core.encode_job(job, &mut out),
            Work::Drop(d) => {
                core.report_drop(*d, &mut out);
                Ok(())
            }
            Work::Finish => core.finish(&mut out),
            Work::Poll => core.drain(&mut out),
        };
        let mut s = pipe.lock();
        s.events.extend(out.drain(..));
        s.in_backend = core.in_backend.len();
        match job {
            Work::Encode(job) => {
                s.busy -= 1;
                s.recycle(job.picture);
            }
            Work::Drop(_) => s.busy -= 1,
            Work::Finish => s.flushed = true,
            Work::Poll => {}
        }
        let failed = result.is_err();
        if let Err(e) = result {
            s.error = Some(e);
        }
        pipe.changed.notify_all();
        if failed {
            // A backend that failed once is in an unknown state; stop accepting work.
            s.shutdown = true;
            return;
        }
    }
}

#[cfg(all(test, feature = "openh264"))]
mod tests {
    use super::*;
    use crate::backend::{BackendRgbFrame, RawAccessUnit, RgbInput};
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
                rgba8: false,
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
