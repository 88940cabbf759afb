//! Readback without blocking the frame loop: [`GpuConverter::submit_texture_async`] records the
//! conversion on the application's queue, copies the planes into a staging buffer and asks
//! for it to be mapped, all at once; a [`Readback`] then waits for that mapping wherever is
//! convenient (another thread), and lends the NV12 straight out of mapped memory, with no
//! copy into an intermediate image. [`TextureRing`] is that thread.

use crate::{GpuConverter, GpuError};
use framecast_core::{ColorSpace, Frame};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

/// One converted frame on its way to the host (holds its staging slot until dropped).
#[derive(Debug)]
pub struct Readback {
    pub(crate) ticket: u64,
    pub(crate) buffer: wgpu::Buffer,
    pub(crate) y_len: u64,
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) stride: usize,
    pub(crate) submission: wgpu::SubmissionIndex,
    pub(crate) mapped: mpsc::Receiver<Result<(), wgpu::BufferAsyncError>>,
    pub(crate) is_mapped: bool,
    pub(crate) busy: Arc<AtomicBool>,
    pub(crate) submitted: Instant,
}

impl Readback {
    /// Submission order (0, 1, 2, ...).
    pub fn ticket(&self) -> u64 {
        self.ticket
    }

    /// When the conversion was submitted.
    pub fn submitted(&self) -> Instant {
        self.submitted
    }

    fn take_callback(&mut self, block: bool) -> Result<bool, GpuError> {
        if self.is_mapped {
            return Ok(true);
        }
        let r = if block {
            self.mapped.recv().map_err(|_| ())
        } else {
            match self.mapped.try_recv() {
                Ok(r) => Ok(r),
                Err(mpsc::TryRecvError::Empty) => return Ok(false),
                Err(mpsc::TryRecvError::Disconnected) => Err(()),
            }
        };
        r.map_err(|_| GpuError::Readback("the map callback was dropped".into()))?
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        self.is_mapped = true;
        Ok(true)
    }

    /// Whether the NV12 is on the host; never blocks (one non-blocking device poll).
    pub fn is_ready(&mut self, device: &wgpu::Device) -> Result<bool, GpuError> {
        if self.take_callback(false)? {
            return Ok(true);
        }
        device
            .poll(wgpu::PollType::Poll)
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        self.take_callback(false)
    }

    /// Block until the NV12 is on the host: waits for this frame's submission alone. Meant
    /// for a thread other than the render loop (see [`TextureRing`]).
    pub fn wait(&mut self, device: &wgpu::Device) -> Result<(), GpuError> {
        if self.take_callback(false)? {
            return Ok(());
        }
        device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(self.submission.clone()),
                timeout: None,
            })
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        self.take_callback(true).map(|_| ())
    }

    /// Lend the NV12 frame, read in place from mapped memory (rows `stride` bytes apart).
    /// The frame must be ready ([`Readback::wait`]).
    pub fn with_nv12<R>(&self, f: impl FnOnce(&Frame<'_>) -> R) -> Result<R, GpuError> {
        if !self.is_mapped {
            return Err(GpuError::Readback(format!(
                "frame {} is not mapped yet: wait() first",
                self.ticket
            )));
        }
        let mapped = self
            .buffer
            .get_mapped_range(..)
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        let (y, uv) = mapped.split_at(self.y_len as usize);
        let frame = Frame::nv12(y, self.stride, uv, self.stride, self.width, self.height)?;
        Ok(f(&frame))
    }
}

impl Drop for Readback {
    fn drop(&mut self) {
        if self.is_mapped {
            self.buffer.unmap();
        }
        self.busy.store(false, Ordering::Release);
    }
}

/// Converts textures on the application's device and hands each frame's NV12, in order, to
/// a sink on a thread of its own: [`TextureRing::publish`] returns as soon as the work is
/// queued, and blocks only while every staging slot is still on its way.
pub struct TextureRing {
    conv: GpuConverter,
    cs: ColorSpace,
    jobs: Option<mpsc::Sender<Readback>>,
    freed: mpsc::Receiver<Result<(), String>>,
    outstanding: usize,
    worker: Option<JoinHandle<()>>,
    failure: Option<String>,
}

impl std::fmt::Debug for TextureRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextureRing")
            .field("converter", &self.conv)
            .field("outstanding", &self.outstanding)
            .finish_non_exhaustive()
    }
}

impl TextureRing {
    /// A ring on `conv`'s device (usually [`GpuConverter::with_device`] on the application's
    /// own device and queue), converting with `cs`; `sink` receives every frame's NV12, in
    /// submission order, on the ring's thread (an error there is reported by the next
    /// [`TextureRing::publish`]).
    pub fn new(
        conv: GpuConverter,
        cs: ColorSpace,
        mut sink: impl FnMut(&Frame<'_>) -> Result<(), String> + Send + 'static,
    ) -> Self {
        let device = conv.device().clone();
        let (jobs, rx) = mpsc::channel::<Readback>();
        let (freed_tx, freed) = mpsc::channel();
        let worker = std::thread::Builder::new()
            .name("framecast-gpu-readback".into())
            .spawn(move || {
                for mut job in rx {
                    let r = job
                        .wait(&device)
                        .and_then(|()| job.with_nv12(&mut sink))
                        .map_err(|e| e.to_string())
                        .and_then(|r| r);
                    drop(job);
                    if freed_tx.send(r).is_err() {
                        break;
                    }
                }
            })
            .expect("spawn the readback thread");
        TextureRing {
            conv,
            cs,
            jobs: Some(jobs),
            freed,
            outstanding: 0,
            worker: Some(worker),
            failure: None,
        }
    }

    /// The converter (its adapter, device and queue).
    pub fn converter(&self) -> &GpuConverter {
        &self.conv
    }

    fn collect(&mut self, block: bool) -> Result<bool, GpuError> {
        let r = if block {
            self.freed
                .recv()
                .map_err(|_| "the readback thread stopped".to_string())
        } else {
            match self.freed.try_recv() {
                Ok(r) => Ok(r),
                Err(mpsc::TryRecvError::Empty) => return Ok(false),
                Err(mpsc::TryRecvError::Disconnected) => {
                    Err("the readback thread stopped".to_string())
                }
            }
        };
        self.outstanding = self.outstanding.saturating_sub(1);
        match r.and_then(|r| r) {
            Ok(()) => Ok(true),
            Err(e) => {
                self.failure.get_or_insert(e.clone());
                Err(GpuError::Readback(e))
            }
        }
    }

    /// Queue `texture`'s conversion and readback; its NV12 reaches the sink when it lands.
    pub fn publish(&mut self, texture: &wgpu::Texture) -> Result<u64, GpuError> {
        if let Some(e) = &self.failure {
            return Err(GpuError::Readback(e.clone()));
        }
        while self.collect(false)? {}
        loop {
            match self.conv.submit_texture_async(texture, self.cs) {
                Ok(job) => {
                    let ticket = job.ticket();
                    self.outstanding += 1;
                    self.jobs
                        .as_ref()
                        .expect("open until drop")
                        .send(job)
                        .map_err(|_| GpuError::Readback("the readback thread stopped".into()))?;
                    return Ok(ticket);
                }
                Err(GpuError::Busy) if self.outstanding > 0 => {
                    self.collect(true)?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Block until every published frame has reached the sink.
    pub fn flush(&mut self) -> Result<(), GpuError> {
        while self.outstanding > 0 {
            self.collect(true)?;
        }
        Ok(())
    }
}

impl Drop for TextureRing {
    fn drop(&mut self) {
        let _ = self.flush();
        self.jobs = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}
