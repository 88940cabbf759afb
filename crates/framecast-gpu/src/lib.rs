//! framecast-gpu: RGB(A) → NV12 colour conversion on the GPU with wgpu (Vulkan, Metal, DX12).
//!
//! One compute pass reads an RGBA texture (RGBA8, BGRA8, RGBA16F or RGBA32F) and writes the Y
//! and interleaved CbCr planes of NV12 with the same equations, 2×2 RGB chroma averaging and
//! edge replication as [`framecast_core::convert`] (output within ±1 of the CPU reference).
//! Results come back to the host through a ring of staging buffers, so a caller can keep
//! several frames in flight ([`GpuConverter::submit_texture`] / [`GpuConverter::finish`]).
//!
//! Where the encoder runs on the GPU too (NVENC, VideoToolbox on unified memory), the NV12
//! planes can stay on the device; the readback exists for CPU encoders such as OpenH264.
//!
//! ```no_run
//! use framecast_core::{ColorSpace, Frame, Yuv420Image, YuvLayout};
//! use framecast_gpu::GpuConverter;
//!
//! let mut gpu = GpuConverter::new()?;
//! println!("converting on {}", gpu.adapter_summary());
//! let rgba = vec![0u8; 1280 * 720 * 4];
//! let frame = Frame::rgba8(&rgba, 1280, 720, 1280 * 4)?;
//! let mut nv12 = Yuv420Image::new(1280, 720, YuvLayout::Nv12)?;
//! gpu.convert(&frame, ColorSpace::default(), &mut nv12)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

use framecast_core::{
    ColorSpace, Frame, FrameError, PixelFormat, Planes, Range, Yuv420Image, YuvLayout,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;
use thiserror::Error;

mod readback;
mod texture;
pub use readback::{Readback, TextureRing};
pub use texture::{texture_2d, write_texture};

const SHADER: &str = include_str!("../shaders/rgb_to_nv12.wgsl");
/// Staging buffers in the readback ring.
const RING: usize = 3;
const WORKGROUP: (u32, u32) = (16, 8);

/// Why the GPU path could not be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GpuError {
    /// No adapter (no Vulkan/Metal/DX12 driver, or none that wgpu accepts).
    #[error("no GPU adapter found: {0} (install a Vulkan driver, e.g. mesa-vulkan-drivers, or use the CPU path)")]
    NoAdapter(String),
    /// The adapter refused to open a device.
    #[error("cannot open the GPU device: {0}")]
    Device(String),
    /// The frame's pixel format has no GPU path.
    #[error(
        "pixel format {0} has no GPU conversion path (use RGBA8, BGRA8, RGBA f16 or RGBA f32)"
    )]
    UnsupportedFormat(&'static str),
    /// The texture format has no GPU conversion path.
    #[error("texture format {0:?} has no GPU conversion path")]
    UnsupportedTexture(wgpu::TextureFormat),
    /// Frame/image validation failed.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// Mapping the readback buffer failed.
    #[error("reading the converted frame back from the GPU failed: {0}")]
    Readback(String),
    /// A ticket that is not in flight.
    #[error("no conversion is in flight for ticket {0}")]
    UnknownTicket(u64),
    /// Every staging slot is still being read back (see [`Readback`]).
    #[error("every readback slot is in use: finish or drop a Readback first")]
    Busy,
}

/// Where the time of one conversion went, in milliseconds (wall clock on the host, plus the
/// kernel's own time when the adapter supports timestamp queries).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GpuTimings {
    /// Host → texture upload (0 for GPU-resident sources).
    pub upload_ms: f64,
    /// From submit until the planes are readable on the host.
    pub gpu_and_readback_ms: f64,
    /// Copy out of the mapped staging buffer into the destination image.
    pub copy_out_ms: f64,
    /// The compute pass alone, from GPU timestamps, when supported.
    pub kernel_ms: Option<f64>,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    width: u32,
    height: u32,
    words_per_row: u32,
    coded_height: u32,
    k: [f32; 4],
    scale: [f32; 4],
}

fn params_for(width: u32, height: u32, cs: ColorSpace) -> Params {
    let (kr, kb) = cs.kr_kb();
    let (ys, yo, cscale) = match cs.range {
        Range::Limited => (219.0, 16.0, 224.0),
        Range::Full => (255.0, 0.0, 255.0),
    };
    Params {
        width,
        height,
        words_per_row: padded_width(width) / 4,
        coded_height: height.div_ceil(2) * 2,
        k: [kr as f32, (1.0 - kr - kb) as f32, kb as f32, 0.0],
        scale: [ys, yo, cscale, 0.0],
    }
}

/// Output rows are padded to a multiple of 4 bytes (one u32 word holds four luma samples).
fn padded_width(width: u32) -> u32 {
    width.div_ceil(4) * 4
}

/// Per-size buffers.
struct Sized {
    width: u32,
    height: u32,
    y_buf: wgpu::Buffer,
    uv_buf: wgpu::Buffer,
    params: wgpu::Buffer,
    y_len: u64,
    uv_len: u64,
    staging: Vec<wgpu::Buffer>,
    /// Per staging slot: lent to a [`Readback`] that has not been dropped yet.
    busy: Vec<Arc<AtomicBool>>,
    /// Upload texture for host frames, by format.
    upload: Option<(wgpu::TextureFormat, wgpu::Texture)>,
}

struct InFlight {
    ticket: u64,
    slot: usize,
    submitted: Instant,
    upload_ms: f64,
}

/// A GPU colour converter bound to one wgpu device.
pub struct GpuConverter {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
    sized: Option<Sized>,
    in_flight: Vec<InFlight>,
    next_ticket: u64,
    timestamps: Option<(wgpu::QuerySet, wgpu::Buffer, wgpu::Buffer, f32)>,
    last_kernel_ms: Option<f64>,
    last_submission: Option<wgpu::SubmissionIndex>,
}

impl std::fmt::Debug for GpuConverter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuConverter")
            .field("adapter", &self.info.name)
            .finish_non_exhaustive()
    }
}

/// What [`probe`] found.
#[derive(Debug, Clone)]
pub struct AdapterSummary {
    /// Adapter name (e.g. "NVIDIA H100", "llvmpipe").
    pub name: String,
    /// Backend ("Vulkan", "Metal", ...).
    pub backend: String,
    /// Device type (discrete, integrated, CPU).
    pub device_type: String,
}

impl std::fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}, {})", self.name, self.backend, self.device_type)
    }
}

fn summary(info: &wgpu::AdapterInfo) -> AdapterSummary {
    AdapterSummary {
        name: info.name.clone(),
        backend: format!("{:?}", info.backend),
        device_type: format!("{:?}", info.device_type),
    }
}

fn request_adapter() -> Result<wgpu::Adapter, GpuError> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let options = wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::HighPerformance,
        force_fallback_adapter: false,
        compatible_surface: None,
        ..Default::default()
    };
    match pollster::block_on(instance.request_adapter(&options)) {
        Ok(a) => Ok(a),
        // A software rasteriser (lavapipe) is reported as a fallback adapter.
        Err(first) => pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            force_fallback_adapter: true,
            ..options
        }))
        .map_err(|_| GpuError::NoAdapter(first.to_string())),
    }
}

/// Find the adapter [`GpuConverter::new`] would use, without opening it.
pub fn probe() -> Result<AdapterSummary, GpuError> {
    Ok(summary(&request_adapter()?.get_info()))
}

/// Open the best adapter's device and queue (high performance first, a software adapter as
/// a last resort; `WGPU_BACKEND` / `WGPU_ADAPTER_NAME` select another), with timestamp
/// queries when the adapter has them. For applications that render with wgpu and have no
/// device yet: render on it, then convert with [`GpuConverter::with_device`].
pub fn open_device() -> Result<(wgpu::Device, wgpu::Queue, wgpu::AdapterInfo), GpuError> {
    let adapter = request_adapter()?;
    let features = adapter.features() & wgpu::Features::TIMESTAMP_QUERY;
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("framecast-gpu"),
        required_features: features,
        required_limits: wgpu::Limits::downlevel_defaults().using_resolution(adapter.limits()),
        ..Default::default()
    }))
    .map_err(|e| GpuError::Device(e.to_string()))?;
    Ok((device, queue, adapter.get_info()))
}

impl GpuConverter {
    /// Open the best adapter (high performance first, a software adapter as a last resort).
    /// `WGPU_BACKEND` / `WGPU_ADAPTER_NAME` select another, as in every wgpu program.
    pub fn new() -> Result<Self, GpuError> {
        let (device, queue, info) = open_device()?;
        Ok(Self::with_device(device, queue, info))
    }

    /// Use a device the application already renders with, so its textures can be converted
    /// without leaving the GPU.
    pub fn with_device(device: wgpu::Device, queue: wgpu::Queue, info: wgpu::AdapterInfo) -> Self {
        let timestamps = device.features().contains(wgpu::Features::TIMESTAMP_QUERY);
        Self::build(device, queue, info, timestamps)
    }

    fn build(
        device: wgpu::Device,
        queue: wgpu::Queue,
        info: wgpu::AdapterInfo,
        timestamps: bool,
    ) -> Self {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("rgb_to_nv12"),
            source: wgpu::ShaderSource::Wgsl(SHADER.into()),
        });
        let storage = |binding| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only: false },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("rgb_to_nv12"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Texture {
                        sample_type: wgpu::TextureSampleType::Float { filterable: false },
                        view_dimension: wgpu::TextureViewDimension::D2,
                        multisampled: false,
                    },
                    count: None,
                },
                storage(1),
                storage(2),
                wgpu::BindGroupLayoutEntry {
                    binding: 3,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("rgb_to_nv12"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("rgb_to_nv12"),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        let timestamps = timestamps.then(|| {
            let set = device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("rgb_to_nv12 timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: 2,
            });
            let resolve = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamps resolve"),
                size: 16,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let read = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamps read"),
                size: 16,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            (set, resolve, read, queue.get_timestamp_period())
        });
        GpuConverter {
            device,
            queue,
            info,
            pipeline,
            layout,
            sized: None,
            in_flight: Vec::new(),
            next_ticket: 0,
            timestamps,
            last_kernel_ms: None,
            last_submission: None,
        }
    }

    /// The adapter's full description.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// Stop timing the kernel with timestamp queries: [`GpuTimings::kernel_ms`] becomes
    /// `None`, and each synchronous conversion saves the second readback those need.
    pub fn disable_timestamps(&mut self) {
        self.timestamps = None;
    }

    /// The adapter in use.
    pub fn adapter_summary(&self) -> AdapterSummary {
        summary(&self.info)
    }

    /// The wgpu device (to create textures the converter can read).
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// The wgpu queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    fn ensure_size(&mut self, width: u32, height: u32) {
        if self
            .sized
            .as_ref()
            .is_some_and(|s| s.width == width && s.height == height)
        {
            return;
        }
        // Buffers of the old size may still be in flight; finish them first is the caller's
        // job (resizing mid-flight drops those results).
        self.in_flight.clear();
        let pw = padded_width(width) as u64;
        let ch = height.div_ceil(2) as u64 * 2;
        let (y_len, uv_len) = (pw * ch, pw * ch / 2);
        let buf = |label, size, usage| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        };
        let out = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
        let staging = (0..RING)
            .map(|_| {
                buf(
                    "nv12 staging",
                    y_len + uv_len,
                    wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                )
            })
            .collect();
        self.sized = Some(Sized {
            width,
            height,
            y_buf: buf("nv12 y", y_len, out),
            uv_buf: buf("nv12 uv", uv_len, out),
            params: buf(
                "nv12 params",
                std::mem::size_of::<Params>() as u64,
                wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            ),
            y_len,
            uv_len,
            staging,
            busy: (0..RING)
                .map(|_| Arc::new(AtomicBool::new(false)))
                .collect(),
            upload: None,
        });
    }

    /// Convert a host frame: upload, convert, read back into `dst` (NV12 or I420). Blocks until
    /// the result is on the host.
    pub fn convert(
        &mut self,
        frame: &Frame<'_>,
        cs: ColorSpace,
        dst: &mut Yuv420Image,
    ) -> Result<GpuTimings, GpuError> {
        check_size(frame.width(), frame.height(), dst)?;
        let (format, bpp) = match frame.format() {
            PixelFormat::Rgba8 => (wgpu::TextureFormat::Rgba8Unorm, 4),
            PixelFormat::Bgra8 => (wgpu::TextureFormat::Bgra8Unorm, 4),
            PixelFormat::RgbaF16 => (wgpu::TextureFormat::Rgba16Float, 8),
            PixelFormat::RgbaF32 => (wgpu::TextureFormat::Rgba32Float, 16),
            other => return Err(GpuError::UnsupportedFormat(other.name())),
        };
        let Planes::Packed { data, stride } = *frame.planes() else {
            return Err(GpuError::UnsupportedFormat(frame.format().name()));
        };
        let (w, h) = (frame.width(), frame.height());
        self.ensure_size(w, h);
        let t0 = Instant::now();
        let sized = self.sized.as_mut().expect("sized above");
        if sized.upload.as_ref().is_none_or(|(f, _)| *f != format) {
            let texture = texture_2d(
                &self.device,
                Some("framecast upload"),
                (w, h),
                format,
                wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            );
            sized.upload = Some((format, texture));
        }
        let texture = sized.upload.as_ref().expect("set above").1.clone();
        let used = stride * (h as usize - 1) + w as usize * bpp;
        write_texture(&self.queue, &texture, &data[..used], stride as u32);
        let upload_ms = t0.elapsed().as_secs_f64() * 1e3;
        let ticket = self.submit_inner(&texture, w, h, cs, upload_ms)?;
        self.finish(ticket, dst)
    }

    /// Convert a texture that is already on this device (RGBA8, BGRA8, RGBA16F or RGBA32F,
    /// with `TEXTURE_BINDING` usage) and read the result into `dst`. Blocks.
    pub fn convert_texture(
        &mut self,
        texture: &wgpu::Texture,
        cs: ColorSpace,
        dst: &mut Yuv420Image,
    ) -> Result<GpuTimings, GpuError> {
        let ticket = self.submit_texture(texture, cs)?;
        self.finish(ticket, dst)
    }

    /// Start converting a texture; up to 3 conversions can be in flight. Collect the result
    /// with [`Self::finish`] (in any order). Starting a fourth waits for nothing: the oldest
    /// slot is reused, so finish tickets in time.
    pub fn submit_texture(
        &mut self,
        texture: &wgpu::Texture,
        cs: ColorSpace,
    ) -> Result<u64, GpuError> {
        match texture.format() {
            wgpu::TextureFormat::Rgba8Unorm
            | wgpu::TextureFormat::Bgra8Unorm
            | wgpu::TextureFormat::Rgba16Float
            | wgpu::TextureFormat::Rgba32Float => {}
            other => return Err(GpuError::UnsupportedTexture(other)),
        }
        let size = texture.size();
        self.ensure_size(size.width, size.height);
        self.submit_inner(texture, size.width, size.height, cs, 0.0)
    }

    fn submit_inner(
        &mut self,
        texture: &wgpu::Texture,
        w: u32,
        h: u32,
        cs: ColorSpace,
        upload_ms: f64,
    ) -> Result<u64, GpuError> {
        let sized = self.sized.as_ref().expect("ensure_size ran");
        let params = params_for(w, h, cs);
        self.queue
            .write_buffer(&sized.params, 0, bytemuck::bytes_of(&params));
        let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
        let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("rgb_to_nv12"),
            layout: &self.layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::TextureView(&view),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: sized.y_buf.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: sized.uv_buf.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 3,
                    resource: sized.params.as_entire_binding(),
                },
            ],
        });
        let slot = (self.next_ticket % RING as u64) as usize;
        if sized.busy[slot].load(Ordering::Acquire) {
            return Err(GpuError::Busy);
        }
        self.in_flight.retain(|f| f.slot != slot);
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("rgb_to_nv12"),
            });
        {
            let timestamp_writes =
                self.timestamps
                    .as_ref()
                    .map(|(set, ..)| wgpu::ComputePassTimestampWrites {
                        query_set: set,
                        beginning_of_pass_write_index: Some(0),
                        end_of_pass_write_index: Some(1),
                    });
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("rgb_to_nv12"),
                timestamp_writes,
            });
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &bind, &[]);
            let rows = params.coded_height / 2;
            pass.dispatch_workgroups(
                params.words_per_row.div_ceil(WORKGROUP.0),
                rows.div_ceil(WORKGROUP.1),
                1,
            );
        }
        if let Some((set, resolve, read, _)) = &self.timestamps {
            encoder.resolve_query_set(set, 0..2, resolve, 0);
            encoder.copy_buffer_to_buffer(resolve, 0, read, 0, 16);
        }
        let staging = &sized.staging[slot];
        encoder.copy_buffer_to_buffer(&sized.y_buf, 0, staging, 0, sized.y_len);
        encoder.copy_buffer_to_buffer(&sized.uv_buf, 0, staging, sized.y_len, sized.uv_len);
        let submission = self.queue.submit(Some(encoder.finish()));
        self.last_submission = Some(submission);
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.in_flight.push(InFlight {
            ticket,
            slot,
            submitted: Instant::now(),
            upload_ms,
        });
        Ok(ticket)
    }

    /// Start converting a texture and reading it back, without waiting: the returned
    /// [`Readback`] holds one of the 3 staging slots until dropped ([`GpuError::Busy`] while
    /// all are held). Wait for it off the frame loop ([`Readback::wait`], or a
    /// [`TextureRing`], which does that on its own thread).
    pub fn submit_texture_async(
        &mut self,
        texture: &wgpu::Texture,
        cs: ColorSpace,
    ) -> Result<Readback, GpuError> {
        let ticket = self.submit_texture(texture, cs)?;
        let idx = self
            .in_flight
            .iter()
            .position(|f| f.ticket == ticket)
            .expect("just submitted");
        let job = self.in_flight.remove(idx);
        let sized = self.sized.as_ref().expect("submitted implies sized");
        let buffer = sized.staging[job.slot].clone();
        let busy = sized.busy[job.slot].clone();
        busy.store(true, Ordering::Release);
        let (tx, mapped) = mpsc::channel();
        buffer.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        Ok(Readback {
            ticket,
            buffer,
            y_len: sized.y_len,
            width: sized.width,
            height: sized.height,
            stride: padded_width(sized.width) as usize,
            submission: self.last_submission.clone().expect("just submitted"),
            mapped,
            is_mapped: false,
            busy,
            submitted: job.submitted,
        })
    }

    fn map_and_wait(&self, buffer: &wgpu::Buffer) -> Result<(), GpuError> {
        let (tx, rx) = mpsc::channel();
        buffer.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: None,
                timeout: None,
            })
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        rx.recv()
            .map_err(|_| GpuError::Readback("map callback never ran".into()))?
            .map_err(|e| GpuError::Readback(e.to_string()))
    }

    /// Wait for `ticket` and copy its planes into `dst` (NV12, or I420 deinterleaved).
    pub fn finish(&mut self, ticket: u64, dst: &mut Yuv420Image) -> Result<GpuTimings, GpuError> {
        let idx = self
            .in_flight
            .iter()
            .position(|f| f.ticket == ticket)
            .ok_or(GpuError::UnknownTicket(ticket))?;
        let job = self.in_flight.remove(idx);
        let sized = self.sized.as_ref().expect("in flight implies sized");
        check_size(sized.width, sized.height, dst)?;
        let staging = &sized.staging[job.slot];
        self.map_and_wait(staging)?;
        let gpu_ms = job.submitted.elapsed().as_secs_f64() * 1e3;
        let t0 = Instant::now();
        {
            let mapped = staging
                .get_mapped_range(..)
                .map_err(|e| GpuError::Readback(e.to_string()))?;
            let (ybytes, uvbytes) = mapped.split_at(sized.y_len as usize);
            copy_out(ybytes, uvbytes, padded_width(sized.width) as usize, dst);
        }
        staging.unmap();
        let copy_out_ms = t0.elapsed().as_secs_f64() * 1e3;
        let kernel_ms = self.read_kernel_ms();
        Ok(GpuTimings {
            upload_ms: job.upload_ms,
            gpu_and_readback_ms: gpu_ms,
            copy_out_ms,
            kernel_ms,
        })
    }

    fn read_kernel_ms(&mut self) -> Option<f64> {
        let (_, _, read, period) = self.timestamps.as_ref()?;
        self.map_and_wait(read).ok()?;
        let ms = {
            let view = read.get_mapped_range(..).ok()?;
            let t: &[u64] = bytemuck::cast_slice(&view);
            (t[1].saturating_sub(t[0])) as f64 * *period as f64 / 1e6
        };
        read.unmap();
        self.last_kernel_ms = Some(ms);
        Some(ms)
    }
}

fn check_size(width: u32, height: u32, dst: &Yuv420Image) -> Result<(), GpuError> {
    if (dst.width(), dst.height()) != (width, height) {
        return Err(FrameError::SizeMismatch {
            frame_width: width,
            frame_height: height,
            image_width: dst.width(),
            image_height: dst.height(),
        }
        .into());
    }
    Ok(())
}

/// Copy padded GPU rows (`stride` bytes each) into `dst`'s tight planes.
fn copy_out(y: &[u8], uv: &[u8], stride: usize, dst: &mut Yuv420Image) {
    let cw = dst.coded_width() as usize;
    let ch = dst.coded_height() as usize;
    let layout = dst.layout();
    let (dy, c0, c1) = dst.planes_mut();
    for row in 0..ch {
        dy[row * cw..(row + 1) * cw].copy_from_slice(&y[row * stride..row * stride + cw]);
    }
    for row in 0..ch / 2 {
        let src = &uv[row * stride..row * stride + cw];
        match layout {
            YuvLayout::Nv12 => c0[row * cw..(row + 1) * cw].copy_from_slice(src),
            YuvLayout::I420 => {
                let half = cw / 2;
                for (i, pair) in src.chunks_exact(2).enumerate() {
                    c0[row * half + i] = pair[0];
                    c1[row * half + i] = pair[1];
                }
            }
        }
    }
}
