//! The pipelined mode's queue and worker thread: frames wait (or are dropped by the
//! backpressure policy) in submission order, the worker feeds them to the backend, and
//! events come back in the same order.

use crate::driver::{BackendDriver, Job, Picture};
use crate::{DroppedFrame, EncodeError, EncoderEvent};
use framecast_core::{Frame, Planes, Yuv420Image};
use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};

/// An entry of the pipeline queue: a frame to encode, or the report of one that was dropped,
/// kept in its place so that events come out in submission order.
pub(crate) enum Queued {
    Job(Job),
    Dropped(DroppedFrame),
}

/// Shared state between the caller and the pipelining worker.
pub(crate) struct PipeState {
    pub(crate) queue: VecDeque<Queued>,
    /// `Queued::Job` entries in `queue`.
    pub(crate) jobs_queued: usize,
    /// Frames taken by the worker and not yet reported, or reserved by a caller converting.
    pub(crate) busy: usize,
    /// Frames the backend holds without having returned their access unit (asynchronous
    /// backends only).
    pub(crate) in_backend: usize,
    pub(crate) events: VecDeque<EncoderEvent>,
    pub(crate) pool: Vec<Yuv420Image>,
    /// Buffers for tight copies of RGB frames a backend converts itself.
    pub(crate) rgb_pool: Vec<Vec<u8>>,
    /// A keyframe request inherited from a dropped frame.
    pub(crate) pending_force: bool,
    pub(crate) flush_requested: bool,
    pub(crate) flushed: bool,
    pub(crate) shutdown: bool,
    pub(crate) error: Option<EncodeError>,
}

impl PipeState {
    /// Return a finished or dropped job's buffer to its pool.
    pub(crate) fn recycle(&mut self, picture: Picture) {
        match picture {
            Picture::Yuv(image) => self.pool.push(image),
            Picture::Rgb { data, .. } => self.rgb_pool.push(data),
        }
    }
}

/// A tightly packed copy of a packed RGB frame, reusing `buf`.
pub(crate) fn tight_copy(frame: &Frame<'_>, mut buf: Vec<u8>) -> Vec<u8> {
    buf.clear();
    if let Planes::Packed { data, stride } = *frame.planes() {
        let row = frame.width() as usize * 4;
        for y in 0..frame.height() as usize {
            buf.extend_from_slice(&data[y * stride..y * stride + row]);
        }
    }
    buf
}

pub(crate) struct Pipe {
    pub(crate) state: Mutex<PipeState>,
    pub(crate) changed: Condvar,
}

impl Pipe {
    pub(crate) fn lock(&self) -> MutexGuard<'_, PipeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

enum Work {
    Encode(Job),
    Drop(DroppedFrame),
    Finish,
    Poll,
}

pub(crate) fn worker_loop(mut core: Box<BackendDriver>, pipe: &Pipe) {
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
            if core.in_backend.len() > core.backend.held_frames() {
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
        // Frames the backend holds by design (lookahead, B-frames) come out only as more go
        // in: counting them against the in-flight limit would wait for ever.
        s.in_backend = core
            .in_backend
            .len()
            .saturating_sub(core.backend.held_frames());
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
