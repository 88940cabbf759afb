//! `demo --gpu` and `serve --gpu`: frames converted to NV12 on the GPU through
//! `Display::publish_texture` (framecast-gpu's readback ring, which never blocks the frame
//! loop). `demo` also renders its `gpu` scene there, with a WGSL compute shader, so the frame
//! never exists in host memory as RGBA; `serve` uploads its host frames to a texture first.

#[cfg(feature = "gpu")]
pub use on::GpuLive;

#[cfg(not(feature = "gpu"))]
pub use off::GpuLive;

/// The GPU path when `--gpu` asks for it and the machine has it; otherwise says once why not
/// (the caller then uses the CPU).
pub fn open_if(
    wanted: bool,
    display: &framecast_stream::Display,
    w: u32,
    h: u32,
) -> Option<GpuLive> {
    if !wanted {
        return None;
    }
    #[cfg(feature = "gpu")]
    match GpuLive::open(display, w, h) {
        Ok(g) => {
            println!("Converting on the GPU: {}", g.adapter());
            Some(g)
        }
        Err(e) => {
            eprintln!("note: --gpu: {e}; converting on the CPU");
            None
        }
    }
    #[cfg(not(feature = "gpu"))]
    {
        let _ = (display, w, h);
        eprintln!(
            "note: --gpu needs a build with GPU support (cargo build --release --features gpu); \
             converting on the CPU"
        );
        None
    }
}

#[cfg(not(feature = "gpu"))]
mod off {
    use framecast_core::Frame;
    use framecast_stream::{Display, StreamError};

    /// Never made without the `gpu` feature.
    pub enum GpuLive {}

    impl GpuLive {
        pub fn publish_scene(&mut self, _: &Display, _: u64) -> Result<(), StreamError> {
            match *self {}
        }

        pub fn publish_host(&mut self, _: &Display, _: &Frame<'_>) -> Result<bool, StreamError> {
            match *self {}
        }

        pub fn finish(self) {
            match self {}
        }
    }
}

#[cfg(feature = "gpu")]
mod on {
    use framecast_core::{Frame, PixelFormat, Planes};
    use framecast_gpu::{GpuConverter, GpuError, TextureRing};
    use framecast_stream::{Display, StreamError};

    const SCENE: &str = include_str!("gpu_scene.wgsl");

    /// The device, the readback ring, the scene pipeline and the frame texture.
    pub struct GpuLive {
        device: wgpu::Device,
        queue: wgpu::Queue,
        ring: TextureRing,
        texture: wgpu::Texture,
        params: wgpu::Buffer,
        pipeline: wgpu::ComputePipeline,
        bind: wgpu::BindGroup,
        size: (u32, u32),
        adapter: String,
    }

    impl GpuLive {
        /// Open the best adapter and a ring publishing to `display`.
        pub fn open(display: &Display, w: u32, h: u32) -> Result<Self, GpuError> {
            let (device, queue, info) = framecast_gpu::open_device()?;
            let adapter = format!("{} ({:?})", info.name, info.backend);
            let conv = GpuConverter::with_device(device.clone(), queue.clone(), info);
            let ring = display.texture_ring(conv);
            let texture = framecast_gpu::texture_2d(
                &device,
                Some("demo frame"),
                (w, h),
                wgpu::TextureFormat::Rgba8Unorm,
                wgpu::TextureUsages::STORAGE_BINDING
                    | wgpu::TextureUsages::TEXTURE_BINDING
                    | wgpu::TextureUsages::COPY_DST,
            );
            let params = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("demo scene params"),
                size: 16,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("demo scene"),
                source: wgpu::ShaderSource::Wgsl(SCENE.into()),
            });
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some("demo scene"),
                layout: None,
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            });
            let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
            let bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("demo scene"),
                layout: &pipeline.get_bind_group_layout(0),
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: wgpu::BindingResource::TextureView(&view),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: params.as_entire_binding(),
                    },
                ],
            });
            Ok(GpuLive {
                device,
                queue,
                ring,
                texture,
                params,
                pipeline,
                bind,
                size: (w, h),
                adapter,
            })
        }

        /// Deliver the frames still in the ring (before the stream closes).
        pub fn finish(mut self) {
            if let Err(e) = self.ring.flush() {
                tracing::warn!(error = %e, "frames still on the GPU were not delivered");
            }
        }

        /// "NVIDIA H200 (Vulkan)".
        pub fn adapter(&self) -> &str {
            &self.adapter
        }

        /// Render frame `index` of the scene on the GPU and publish it.
        pub fn publish_scene(&mut self, display: &Display, index: u64) -> Result<(), StreamError> {
            let (w, h) = self.size;
            let mut params = [0u8; 16];
            params[0..4].copy_from_slice(&w.to_le_bytes());
            params[4..8].copy_from_slice(&h.to_le_bytes());
            params[8..12].copy_from_slice(&(index as f32 / 30.0).to_le_bytes());
            self.queue.write_buffer(&self.params, 0, &params);
            let mut encoder = self
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("demo scene"),
                });
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("demo scene"),
                    timestamp_writes: None,
                });
                pass.set_pipeline(&self.pipeline);
                pass.set_bind_group(0, &self.bind, &[]);
                pass.dispatch_workgroups(w.div_ceil(16), h.div_ceil(16), 1);
            }
            self.queue.submit(Some(encoder.finish()));
            display.publish_texture(&mut self.ring, &self.texture)
        }

        /// Upload a host RGBA frame into the texture and publish it (other formats go through
        /// the CPU: `Ok(false)`).
        pub fn publish_host(
            &mut self,
            display: &Display,
            frame: &Frame<'_>,
        ) -> Result<bool, StreamError> {
            let (w, h) = self.size;
            let Planes::Packed { data, stride } = *frame.planes() else {
                return Ok(false);
            };
            if frame.format() != PixelFormat::Rgba8 || (frame.width(), frame.height()) != (w, h) {
                return Ok(false);
            }
            framecast_gpu::write_texture(
                &self.queue,
                &self.texture,
                &data[..stride * (h as usize - 1) + w as usize * 4],
                stride as u32,
            );
            display.publish_texture(&mut self.ring, &self.texture)?;
            Ok(true)
        }
    }
}
