//! `Display.publish` of CUDA arrays without waiting for the readback: the conversion is
//! queued on the array's stream, and a worker thread hands each frame's NV12 to the stream
//! once its readback lands, in submission order. `publish` blocks only when every slot of
//! the ring is in use.

use crate::cuda::{cuda_error, device_of, read, CudaSlot};
use framecast_core::ColorSpace;
use framecast_cuda::{CudaError, Ticket};
use framecast_stream::{Display, FrameTags};
use pyo3::prelude::*;
use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// Slots in flight by default: frame k's readback overlaps frame k+1's rendering.
pub(crate) const DEFAULT_DEPTH: usize = 2;

struct Ring {
    slot: CudaSlot,
    /// Every ticket below this has been handed to the stream and released.
    released_below: Ticket,
    /// The worker's first failure, raised by the next `publish`.
    error: Option<String>,
}

struct Shared {
    ring: Mutex<Ring>,
    freed: Condvar,
}

fn lock(shared: &Shared) -> MutexGuard<'_, Ring> {
    shared.ring.lock().unwrap_or_else(|e| e.into_inner())
}

struct Job {
    ticket: Ticket,
    tags: FrameTags,
}

/// The CUDA side of one display.
pub(crate) struct CudaPublisher {
    shared: Arc<Shared>,
    jobs: Option<mpsc::Sender<Job>>,
    worker: Option<JoinHandle<()>>,
    /// The Python objects (arrays, DLPack capsules) of frames still in the ring.
    keep: VecDeque<(Ticket, Py<PyAny>)>,
    depth: usize,
}

impl CudaPublisher {
    pub fn new(display: Display, depth: usize) -> Self {
        let shared = Arc::new(Shared {
            ring: Mutex::new(Ring {
                slot: CudaSlot::default(),
                released_below: 0,
                error: None,
            }),
            freed: Condvar::new(),
        });
        let (tx, rx) = mpsc::channel::<Job>();
        let worker_shared = shared.clone();
        let worker = std::thread::Builder::new()
            .name("framecast-cuda-readback".into())
            .spawn(move || deliver(&worker_shared, &display, rx))
            .expect("spawn the readback thread");
        CudaPublisher {
            shared,
            jobs: Some(tx),
            worker: Some(worker),
            keep: VecDeque::new(),
            depth,
        }
    }

    /// Frames in flight at once (1..=16); applies from the next converter (the next device
    /// change, or now when nothing was published yet).
    pub fn set_depth(&mut self, py: Python<'_>, depth: usize) -> PyResult<()> {
        if !(1..=16).contains(&depth) {
            return Err(cuda_error(CudaError::Depth(depth)));
        }
        self.drain(py);
        lock(&self.shared).slot = CudaSlot::default();
        self.depth = depth;
        Ok(())
    }

    /// Publish `obj` if it is a CUDA array (`Ok(false)`: it is not; use the host path).
    pub fn publish(
        &mut self,
        obj: &Bound<'_, PyAny>,
        pixel_format: Option<&str>,
        tags: FrameTags,
    ) -> PyResult<bool> {
        let py = obj.py();
        let Some(device) = device_of(obj)? else {
            return Ok(false);
        };
        let current = lock(&self.shared)
            .slot
            .converter_ref()
            .map(|c| c.device().ordinal);
        if current.is_some_and(|c| c != device) {
            // A new device gets a new converter: the frames in the old one go out first.
            self.drain(py);
        }
        let depth = self.depth;
        let frame = {
            let mut ring = lock(&self.shared);
            if let Some(e) = ring.error.take() {
                return Err(pyo3::exceptions::PyRuntimeError::new_err(e));
            }
            match read(&mut ring.slot, obj, pixel_format, depth)? {
                Some(f) => f,
                None => return Ok(false),
            }
        };
        let src = frame.frame;
        let shared = &*self.shared;
        let ticket = py
            .detach(move || {
                let mut ring = lock(shared);
                loop {
                    let conv = ring.slot.converter().expect("read() made the converter");
                    // The stream's encoder and image transports read colour with the default
                    // space (BT.709 limited), as for host frames.
                    match conv.submit(&src, ColorSpace::default()) {
                        Err(CudaError::RingFull) => {
                            ring = shared.freed.wait(ring).unwrap_or_else(|e| e.into_inner());
                        }
                        other => return other,
                    }
                }
            })
            .map_err(cuda_error)?;
        self.keep.push_back((ticket, frame.keep.unbind()));
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(Job { ticket, tags });
        }
        self.prune();
        Ok(true)
    }

    /// Drop the Python objects of frames the worker has finished with (needs the GIL).
    fn prune(&mut self) {
        let below = lock(&self.shared).released_below;
        while self.keep.front().is_some_and(|(t, _)| *t < below) {
            self.keep.pop_front();
        }
    }

    /// Wait (without the GIL) until every published frame reached the stream.
    pub fn drain(&mut self, py: Python<'_>) {
        let Some(&(last, _)) = self.keep.back() else {
            return;
        };
        let shared = &self.shared;
        py.detach(|| {
            let mut ring = lock(shared);
            while ring.released_below <= last && ring.error.is_none() {
                ring = shared.freed.wait(ring).unwrap_or_else(|e| e.into_inner());
            }
        });
        self.prune();
    }

    /// Finish: deliver what is in flight, stop the worker.
    pub fn close(&mut self, py: Python<'_>) {
        self.drain(py);
        self.jobs = None;
        if let Some(w) = self.worker.take() {
            py.detach(|| {
                let _ = w.join();
            });
        }
        self.keep.clear();
    }
}

/// The worker: wait for each readback (without holding the ring), publish, release.
fn deliver(shared: &Shared, display: &Display, jobs: mpsc::Receiver<Job>) {
    for job in jobs {
        let outcome = (|| -> Result<(), String> {
            let completion = {
                let ring = lock(shared);
                let conv = ring.slot.converter_ref().ok_or("no converter")?;
                conv.completion(job.ticket).map_err(|e| e.to_string())?
            };
            // SAFETY: the ticket is released only below, by this thread. No polling: this
            // thread only hands frames on, so it sleeps on the event and burns no CPU.
            unsafe { completion.wait_spinning(std::time::Duration::ZERO) }
                .map_err(|e| e.to_string())?;
            let view = {
                let mut ring = lock(shared);
                let conv = ring.slot.converter().ok_or("no converter")?;
                conv.ready_view(job.ticket).map_err(|e| e.to_string())?
            };
            // SAFETY: as above: the slot is ours until the release below.
            let frame = unsafe { view.frame() };
            display
                .publish_copy(&frame, job.tags)
                .map_err(|e| e.to_string())
        })();
        let mut ring = lock(shared);
        if let Some(conv) = ring.slot.converter() {
            let _ = conv.release(job.ticket);
        }
        ring.released_below = job.ticket + 1;
        if let Err(e) = outcome {
            ring.error
                .get_or_insert(format!("publishing a CUDA frame failed: {e}"));
        }
        shared.freed.notify_all();
    }
}
