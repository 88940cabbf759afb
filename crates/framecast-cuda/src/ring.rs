//! The converter: a ring of slots, each a device NV12 buffer, a pinned host buffer and two
//! events. Frame k's conversion is launched on the frame's own stream (so work queued after it
//! there, such as rendering frame k+1 into the same array, waits for the read); its NV12
//! readback runs on a copy stream that waits only for that conversion, so it overlaps whatever
//! the application queues next.

use crate::driver::{error_for, Context, DeviceInfo, Kernel};
use crate::{CudaError, DeviceFrame};
use cudarc::driver::{result, sys};
use framecast_core::{ColorSpace, Frame, PixelFormat, Range};
use std::collections::VecDeque;
use std::ffi::c_void;
use std::time::{Duration, Instant};

/// Identifies one submitted frame.
pub type Ticket = u64;

/// How long [`CudaConverter::wait`] polls before sleeping on the event: a readback takes
/// 0.1–0.5 ms, and a blocking wait costs a wake-up of about as much.
const SPIN: Duration = Duration::from_micros(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Free,
    InFlight(Ticket),
    Ready(Ticket),
}

struct Slot {
    device: sys::CUdeviceptr,
    host: *mut u8,
    len: usize,
    converted: sys::CUevent,
    done: sys::CUevent,
    state: State,
}

impl Slot {
    fn new(len: usize) -> Result<Self, CudaError> {
        let timing_off = sys::CUevent_flags::CU_EVENT_DISABLE_TIMING as u32;
        let sleep = sys::CUevent_flags::CU_EVENT_BLOCKING_SYNC as u32;
        // SAFETY: plain allocations of `len` bytes in the current (primary) context; freed in
        // Drop. Pinned host memory is what lets the copy engine write it asynchronously.
        unsafe {
            let device = result::malloc_sync(len).map_err(error_for("cuMemAlloc"))?;
            let host = result::malloc_host(len, 0).map_err(error_for("cuMemHostAlloc"))? as *mut u8;
            Ok(Slot {
                device,
                host,
                len,
                converted: event(timing_off)?,
                // Blocking sync: `cuEventSynchronize` on it sleeps instead of spinning.
                done: event(timing_off | sleep)?,
                state: State::Free,
            })
        }
    }
}

fn event(flags: u32) -> Result<sys::CUevent, CudaError> {
    let mut event = std::ptr::null_mut();
    // SAFETY: a valid out-pointer; the flags are a combination of CUevent_flags bits.
    unsafe { sys::cuEventCreate(&mut event, flags) }
        .result()
        .map_err(error_for("cuEventCreate"))?;
    Ok(event)
}

impl Drop for Slot {
    fn drop(&mut self) {
        // SAFETY: the converter waited for every in-flight slot before dropping slots.
        unsafe {
            let _ = result::free_sync(self.device);
            let _ = result::free_host(self.host as *mut c_void);
            let _ = result::event::destroy(self.converted);
            let _ = result::event::destroy(self.done);
        }
    }
}

/// A converted frame's NV12 in pinned host memory, as plain numbers so that another thread
/// can read it while the ring keeps converting (see [`CudaConverter::ready_view`]).
#[derive(Debug, Clone, Copy)]
pub struct HostNv12 {
    ptr: usize,
    len: usize,
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// Bytes per row of both planes.
    pub stride: usize,
}

impl HostNv12 {
    /// Address of the first byte (Y plane, then the CbCr plane).
    pub fn ptr(&self) -> usize {
        self.ptr
    }

    /// Bytes in both planes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never empty (frames are at least 1×1); for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The NV12 frame.
    ///
    /// # Safety
    /// The ticket this view came from must not have been released, and its converter must be
    /// alive.
    pub unsafe fn frame<'a>(&self) -> Frame<'a> {
        // SAFETY: the caller keeps the slot's pinned buffer alive and unwritten.
        let data = unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) };
        Frame::nv12_contiguous(data, self.width, self.height, self.stride)
            .expect("the slot was sized for this picture")
    }
}

/// Waits for one ticket's readback (see [`CudaConverter::completion`]).
#[derive(Debug, Clone, Copy)]
pub struct Completion {
    event: usize,
}

impl Completion {
    /// Block until the readback is done: polls briefly, then sleeps on the event.
    ///
    /// # Safety
    /// The converter must be alive and the ticket not released.
    pub unsafe fn wait(&self) -> Result<(), CudaError> {
        // SAFETY: forwarded.
        unsafe { self.wait_spinning(SPIN) }
    }

    /// [`Completion::wait`], polling for at most `spin` before sleeping on the event: a
    /// thread that only hands frames on can sleep at once (`Duration::ZERO`) and spend no CPU
    /// waiting.
    ///
    /// # Safety
    /// The converter must be alive and the ticket not released.
    pub unsafe fn wait_spinning(&self, spin: Duration) -> Result<(), CudaError> {
        let event = self.event as sys::CUevent;
        let start = Instant::now();
        while start.elapsed() < spin {
            // SAFETY: the caller keeps the event alive; recorded by `submit`.
            match unsafe { result::event::query(event) } {
                Ok(()) => return Ok(()),
                Err(e) if e.0 == sys::CUresult::CUDA_ERROR_NOT_READY => std::thread::yield_now(),
                Err(e) => return Err(error_for("cuEventQuery")(e)),
            }
        }
        // SAFETY: as above.
        unsafe { result::event::synchronize(event) }.map_err(error_for("cuEventSynchronize"))
    }
}

/// RGB(A)/NV12 device arrays → NV12 in pinned host memory, on the array's own GPU.
pub struct CudaConverter {
    // Field order is drop order: slots (and their buffers) before the kernel and context.
    slots: Vec<Slot>,
    copy_stream: sys::CUstream,
    own_stream: sys::CUstream,
    kernel: Kernel,
    ctx: Context,
    size: Option<(u32, u32)>,
    order: VecDeque<usize>,
    next_ticket: Ticket,
    depth: usize,
}

// SAFETY: every handle is usable from any thread once the context is current, which each
// method makes it; `&mut self` serialises use.
unsafe impl Send for CudaConverter {}

impl std::fmt::Debug for CudaConverter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaConverter")
            .field("device", &self.ctx.info)
            .field("depth", &self.depth)
            .field("size", &self.size)
            .field("in_flight", &self.order.len())
            .finish()
    }
}

fn layout(width: u32, height: u32) -> (usize, usize) {
    let stride = 2 * (width as usize).div_ceil(2);
    let len = stride * (height as usize + (height as usize).div_ceil(2));
    (stride, len)
}

impl CudaConverter {
    /// A converter on device `ordinal` (its primary context) with `depth` frames in flight
    /// (1 to 16; 2–3 lets each readback overlap the next frame's rendering). Compiles the
    /// kernel with NVRTC (a few hundred milliseconds, once).
    pub fn new(ordinal: i32, depth: usize) -> Result<Self, CudaError> {
        if !(1..=16).contains(&depth) {
            return Err(CudaError::Depth(depth));
        }
        let ctx = Context::primary(ordinal)?;
        let kernel = Kernel::compile(&ctx)?;
        let non_blocking = result::stream::StreamKind::NonBlocking;
        let own_stream =
            result::stream::create(non_blocking).map_err(error_for("cuStreamCreate"))?;
        let copy_stream = result::stream::create(result::stream::StreamKind::NonBlocking)
            .map_err(error_for("cuStreamCreate"))?;
        Ok(CudaConverter {
            slots: Vec::new(),
            copy_stream,
            own_stream,
            kernel,
            ctx,
            size: None,
            order: VecDeque::new(),
            next_ticket: 0,
            depth,
        })
    }

    /// The device this converter runs on.
    pub fn device(&self) -> &DeviceInfo {
        &self.ctx.info
    }

    /// Frames that may be in flight at once.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Submitted and not yet released.
    pub fn in_flight(&self) -> usize {
        self.order.len()
    }

    /// framecast's own stream, for producers that synchronise to a consumer's stream
    /// (DLPack's `__dlpack__(stream=...)`); frames with no stream of their own run on it.
    pub fn stream_handle(&self) -> u64 {
        self.own_stream as u64
    }

    /// Queue the conversion of `src` and the readback of its NV12; returns at once.
    /// [`CudaError::RingFull`] when `depth` frames are unreleased (or, for a new picture
    /// size, when any is): wait for and release the oldest, then submit again.
    pub fn submit(&mut self, src: &DeviceFrame, cs: ColorSpace) -> Result<Ticket, CudaError> {
        src.validate()?;
        self.ctx.make_current()?;
        let size = (src.width, src.height);
        if self.size != Some(size) {
            if !self.order.is_empty() {
                return Err(CudaError::RingFull);
            }
            self.slots.clear();
            let (_, len) = layout(src.width, src.height);
            for _ in 0..self.depth {
                self.slots.push(Slot::new(len)?);
            }
            self.size = Some(size);
        }
        let index = self
            .slots
            .iter()
            .position(|s| s.state == State::Free)
            .ok_or(CudaError::RingFull)?;
        let stream = match src.stream {
            Some(s) => s as sys::CUstream,
            None => self.own_stream,
        };
        let (stride, _) = layout(src.width, src.height);
        let slot = &self.slots[index];
        if src.format == PixelFormat::Nv12 {
            self.copy_nv12(src, slot.device, stride, stream)?;
        } else {
            self.launch(src, cs, slot.device, stride, stream)?;
        }
        // SAFETY: events and streams belong to this context; the host slice is the slot's
        // pinned buffer of `len` bytes, untouched until the ticket is released.
        unsafe {
            result::event::record(slot.converted, stream).map_err(error_for("cuEventRecord"))?;
            result::stream::wait_event(
                self.copy_stream,
                slot.converted,
                sys::CUevent_wait_flags::CU_EVENT_WAIT_DEFAULT,
            )
            .map_err(error_for("cuStreamWaitEvent"))?;
            let host = std::slice::from_raw_parts_mut(slot.host, slot.len);
            result::memcpy_dtoh_async(host, slot.device, self.copy_stream)
                .map_err(error_for("cuMemcpyDtoHAsync"))?;
            result::event::record(slot.done, self.copy_stream)
                .map_err(error_for("cuEventRecord"))?;
        }
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.slots[index].state = State::InFlight(ticket);
        self.order.push_back(index);
        Ok(ticket)
    }

    fn launch(
        &self,
        src: &DeviceFrame,
        cs: ColorSpace,
        dst: sys::CUdeviceptr,
        stride: usize,
        stream: sys::CUstream,
    ) -> Result<(), CudaError> {
        let (kr, kb) = cs.kr_kb();
        let (ys, yo, cscale) = match cs.range {
            Range::Limited => (219.0f32, 16.0f32, 224.0f32),
            Range::Full => (255.0, 0.0, 255.0),
        };
        let fmt: i32 = match src.format {
            PixelFormat::Rgb8 => 0,
            PixelFormat::Rgba8 => 1,
            PixelFormat::Bgra8 => 2,
            PixelFormat::RgbaF16 => 3,
            PixelFormat::RgbaF32 => 4,
            other => return Err(CudaError::UnsupportedFormat(other.name())),
        };
        let mut src_ptr = src.ptr;
        let mut src_pitch = src.pitch as i64;
        let mut fmt = fmt;
        let (mut width, mut height) = (src.width as i32, src.height as i32);
        let mut dst_ptr = dst;
        let mut pitch = stride as i32;
        let (mut kr, mut kg, mut kb) = (kr as f32, (1.0 - kr - kb) as f32, kb as f32);
        let (mut ys, mut yo, mut cscale) = (ys, yo, cscale);
        let mut params: [*mut c_void; 13] = [
            &mut src_ptr as *mut _ as *mut c_void,
            &mut src_pitch as *mut _ as *mut c_void,
            &mut fmt as *mut _ as *mut c_void,
            &mut width as *mut _ as *mut c_void,
            &mut height as *mut _ as *mut c_void,
            &mut dst_ptr as *mut _ as *mut c_void,
            &mut pitch as *mut _ as *mut c_void,
            &mut kr as *mut _ as *mut c_void,
            &mut kg as *mut _ as *mut c_void,
            &mut kb as *mut _ as *mut c_void,
            &mut ys as *mut _ as *mut c_void,
            &mut yo as *mut _ as *mut c_void,
            &mut cscale as *mut _ as *mut c_void,
        ];
        const BLOCK: (u32, u32) = (32, 8);
        let grid = (
            src.width.div_ceil(2).div_ceil(BLOCK.0),
            src.height.div_ceil(2).div_ceil(BLOCK.1),
            1,
        );
        // SAFETY: the parameters match the kernel's signature in order and type; `src` was
        // validated (size, pitch, alignment) and `dst` holds `layout()` bytes.
        unsafe {
            result::launch_kernel(
                self.kernel.function,
                grid,
                (BLOCK.0, BLOCK.1, 1),
                0,
                stream,
                &mut params,
            )
        }
        .map_err(error_for("cuLaunchKernel"))
    }

    /// NV12 in: a device-to-device copy on the frame's stream (so the source is read in its
    /// order, as the kernel would), into the slot's tightly strided buffer.
    fn copy_nv12(
        &self,
        src: &DeviceFrame,
        dst: sys::CUdeviceptr,
        stride: usize,
        stream: sys::CUstream,
    ) -> Result<(), CudaError> {
        let rows = src.height as usize + (src.height as usize).div_ceil(2);
        let copy = sys::CUDA_MEMCPY2D {
            srcXInBytes: 0,
            srcY: 0,
            srcMemoryType: sys::CUmemorytype::CU_MEMORYTYPE_DEVICE,
            srcHost: std::ptr::null(),
            srcDevice: src.ptr,
            srcArray: std::ptr::null_mut(),
            srcPitch: src.pitch,
            dstXInBytes: 0,
            dstY: 0,
            dstMemoryType: sys::CUmemorytype::CU_MEMORYTYPE_DEVICE,
            dstHost: std::ptr::null_mut(),
            dstDevice: dst,
            dstArray: std::ptr::null_mut(),
            dstPitch: stride,
            WidthInBytes: src.width as usize,
            Height: rows,
        };
        // SAFETY: both regions hold `rows` rows of at least `width` bytes (validated).
        unsafe { sys::cuMemcpy2DAsync_v2(&copy, stream) }
            .result()
            .map_err(error_for("cuMemcpy2DAsync"))
    }

    /// The oldest unreleased ticket.
    pub fn oldest(&self) -> Option<Ticket> {
        self.order.front().map(|&i| match self.slots[i].state {
            State::InFlight(t) | State::Ready(t) => t,
            State::Free => unreachable!("ordered slots are in use"),
        })
    }

    fn slot_of(&self, ticket: Ticket) -> Result<usize, CudaError> {
        self.order
            .iter()
            .copied()
            .find(|&i| matches!(self.slots[i].state, State::InFlight(t) | State::Ready(t) if t == ticket))
            .ok_or(CudaError::UnknownTicket(ticket))
    }

    /// Whether `ticket`'s NV12 is in host memory (never blocks).
    pub fn is_ready(&mut self, ticket: Ticket) -> Result<bool, CudaError> {
        let i = self.slot_of(ticket)?;
        if let State::Ready(_) = self.slots[i].state {
            return Ok(true);
        }
        self.ctx.make_current()?;
        // SAFETY: the event was recorded by `submit`.
        match unsafe { result::event::query(self.slots[i].done) } {
            Ok(()) => {
                self.slots[i].state = State::Ready(ticket);
                Ok(true)
            }
            Err(e) if e.0 == sys::CUresult::CUDA_ERROR_NOT_READY => Ok(false),
            Err(e) => Err(error_for("cuEventQuery")(e)),
        }
    }

    /// Block until `ticket`'s NV12 is in host memory: polls briefly, then sleeps on the event.
    pub fn wait(&mut self, ticket: Ticket) -> Result<(), CudaError> {
        let completion = self.completion(ticket)?;
        // SAFETY: `self` is borrowed mutably, so the ticket stays in the ring meanwhile.
        unsafe { completion.wait() }?;
        let i = self.slot_of(ticket)?;
        self.slots[i].state = State::Ready(ticket);
        Ok(())
    }

    /// A handle that waits for `ticket`'s readback without borrowing the converter, so that
    /// another thread can wait while this one submits more frames.
    pub fn completion(&self, ticket: Ticket) -> Result<Completion, CudaError> {
        let i = self.slot_of(ticket)?;
        Ok(Completion {
            event: self.slots[i].done as usize,
        })
    }

    /// `ticket`'s NV12 in pinned host memory, valid until [`CudaConverter::release`].
    pub fn ready_view(&mut self, ticket: Ticket) -> Result<HostNv12, CudaError> {
        if !self.is_ready(ticket)? {
            return Err(CudaError::NotReady(ticket));
        }
        let slot = &self.slots[self.slot_of(ticket)?];
        let (w, h) = self.size.expect("slots exist only with a size");
        Ok(HostNv12 {
            ptr: slot.host as usize,
            len: slot.len,
            width: w,
            height: h,
            stride: layout(w, h).0,
        })
    }

    /// `ticket`'s NV12 frame (it must be ready).
    pub fn frame(&mut self, ticket: Ticket) -> Result<Frame<'_>, CudaError> {
        let view = self.ready_view(ticket)?;
        // SAFETY: the slot stays unreleased while `self` is borrowed.
        Ok(unsafe { view.frame() })
    }

    /// Return `ticket`'s slot to the ring.
    pub fn release(&mut self, ticket: Ticket) -> Result<(), CudaError> {
        let i = self.slot_of(ticket)?;
        if let State::InFlight(_) = self.slots[i].state {
            self.wait(ticket)?;
        }
        self.slots[i].state = State::Free;
        self.order.retain(|&j| j != i);
        Ok(())
    }

    /// Convert one frame and wait for it: `f` reads the NV12 in pinned memory. For a
    /// converter not also used through [`CudaConverter::submit`] ([`CudaError::RingFull`]
    /// while frames are in flight).
    pub fn convert<R>(
        &mut self,
        src: &DeviceFrame,
        cs: ColorSpace,
        f: impl FnOnce(&Frame<'_>) -> R,
    ) -> Result<R, CudaError> {
        if self.in_flight() > 0 {
            return Err(CudaError::RingFull);
        }
        let ticket = self.submit(src, cs)?;
        self.wait(ticket)?;
        let out = f(&self.frame(ticket)?);
        self.release(ticket)?;
        Ok(out)
    }
}

impl Drop for CudaConverter {
    fn drop(&mut self) {
        let _ = self.ctx.make_current();
        for slot in &self.slots {
            if let State::InFlight(_) = slot.state {
                // SAFETY: recorded by `submit`; buffers must outlive the copies.
                let _ = unsafe { result::event::synchronize(slot.done) };
            }
        }
        self.slots.clear();
        // SAFETY: created in `new`; nothing is queued on them any more.
        unsafe {
            let _ = result::stream::destroy(self.copy_stream);
            let _ = result::stream::destroy(self.own_stream);
        }
    }
}
