//! `demo --gpu` and `serve --gpu`: frames converted to NV12 on the GPU through
//! `Display::publish_texture` (framecast-gpu's readback ring, which never blocks the frame
//! loop). `demo` also renders its `gpu` scene there, with a WGSL compute shader, so the frame
//! never exists in host memory as RGBA; `serve` uploads its host frames to a texture first.
//! `demo -o FILE --gpu` draws the same scene for the file encoder ([`SceneSource`]).

#[cfg(feature = "gpu")]
pub use on::{GpuLive, SceneSource};

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
    {
        let opened = GpuLive::open(display, w, h);
        announce(
            opened,
            "Converting on the GPU",
            GpuLive::adapter,
            "converting on the CPU",
        )
    }
    #[cfg(not(feature = "gpu"))]
    {
        let _ = (display, w, h);
        not_built("converting on the CPU")
    }
}

/// Say what `--gpu` got, once: `doing` on the adapter, or why not and the `fallback`.
#[cfg(feature = "gpu")]
pub fn announce<T>(
    opened: Result<T, framecast_gpu::GpuError>,
    doing: &str,
    adapter: impl FnOnce(&T) -> &str,
    fallback: &str,
) -> Option<T> {
    match opened {
        Ok(g) => {
            println!("{doing}: {}", adapter(&g));
            Some(g)
        }
        Err(e) => {
            eprintln!("note: --gpu: {e}; {fallback}");
            None
        }
    }
}

/// Say that `--gpu` needs a GPU build, and the `fallback`.
#[cfg(not(feature = "gpu"))]
pub fn not_built<T>(fallback: &str) -> Option<T> {
    eprintln!(
        "note: --gpu needs a build with GPU support (cargo build --release --features gpu); \
         {fallback}"
    );
    None
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
    use framecast_core::{Frame, OwnedFrame, PixelFormat, Planes};
    use framecast_gpu::{GpuConverter, GpuError, TextureRing};
    use framecast_io::{FrameSource, IoError};
    use framecast_stream::{Display, StreamError};
    use std::sync::mpsc;

    const SCENE: &str = include_str!("gpu_scene.wgsl");

    /// The demo's scene: a WGSL compute shader that draws frame `index` into an RGBA texture
    /// on the GPU.
    struct Scene {
        device: wgpu::Device,
        queue: wgpu::Queue,
        texture: wgpu::Texture,
        params: wgpu::Buffer,
        pipeline: wgpu::ComputePipeline,
        bind: wgpu::BindGroup,
        size: (u32, u32),
    }

    impl Scene {
        fn new(device: wgpu::Device, queue: wgpu::Queue, (w, h): (u32, u32)) -> Self {
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
            Scene {
                device,
                queue,
                texture,
                params,
                pipeline,
                bind,
                size: (w, h),
            }
        }

        /// Queue the drawing of frame `index` (30 frames a second of scene time).
        fn render(&self, index: u64) {
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
        }
    }

    fn adapter_name(info: &wgpu::AdapterInfo) -> String {
        format!("{} ({:?})", info.name, info.backend)
    }

    /// The device, the readback ring publishing to a display, and the scene.
    pub struct GpuLive {
        ring: TextureRing,
        scene: Scene,
        adapter: String,
    }

    impl GpuLive {
        /// Open the best adapter and a ring publishing to `display`.
        pub fn open(display: &Display, w: u32, h: u32) -> Result<Self, GpuError> {
            let (device, queue, info) = framecast_gpu::open_device()?;
            let adapter = adapter_name(&info);
            let conv = GpuConverter::with_device(device.clone(), queue.clone(), info);
            Ok(GpuLive {
                ring: display.texture_ring(conv),
                scene: Scene::new(device, queue, (w, h)),
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
            self.scene.render(index);
            display.publish_texture(&mut self.ring, &self.scene.texture)
        }

        /// Upload a host RGBA frame into the texture and publish it (other formats go through
        /// the CPU: `Ok(false)`).
        pub fn publish_host(
            &mut self,
            display: &Display,
            frame: &Frame<'_>,
        ) -> Result<bool, StreamError> {
            let (w, h) = self.scene.size;
            let Planes::Packed { data, stride } = *frame.planes() else {
                return Ok(false);
            };
            if frame.format() != PixelFormat::Rgba8 || (frame.width(), frame.height()) != (w, h) {
                return Ok(false);
            }
            framecast_gpu::write_texture(
                &self.scene.queue,
                &self.scene.texture,
                &data[..stride * (h as usize - 1) + w as usize * 4],
                stride as u32,
            );
            display.publish_texture(&mut self.ring, &self.scene.texture)?;
            Ok(true)
        }
    }

    /// The scene as a file encoder's frame source: each frame is drawn into a texture on the
    /// GPU, converted to NV12 there and read back through the ring (which never waits on the
    /// GPU while it has room); the encoder gets the NV12 frames in order, a few frames behind
    /// the drawing.
    pub struct SceneSource {
        scene: Scene,
        ring: TextureRing,
        frames: mpsc::Receiver<Result<OwnedFrame, String>>,
        drawn: u64,
        total: u64,
        flushed: bool,
        adapter: String,
    }

    fn gpu_read_error(e: impl std::fmt::Display) -> IoError {
        IoError::Read {
            name: "GPU scene".into(),
            source: std::io::Error::other(e.to_string()),
        }
    }

    impl SceneSource {
        /// `total` frames of the scene at `w x h` on the best adapter.
        pub fn open(w: u32, h: u32, total: u64) -> Result<Self, GpuError> {
            let (device, queue, info) = framecast_gpu::open_device()?;
            let adapter = adapter_name(&info);
            let conv = GpuConverter::with_device(device.clone(), queue.clone(), info);
            let (tx, frames) = mpsc::channel();
            let ring = TextureRing::new(conv, Default::default(), move |nv12| {
                let copy = OwnedFrame::copy_from(nv12).map_err(|e| e.to_string())?;
                tx.send(Ok(copy))
                    .map_err(|_| "the encoder stopped".to_string())
            });
            Ok(SceneSource {
                scene: Scene::new(device, queue, (w, h)),
                ring,
                frames,
                drawn: 0,
                total,
                flushed: false,
                adapter,
            })
        }

        /// "NVIDIA H200 (Vulkan)".
        pub fn adapter(&self) -> &str {
            &self.adapter
        }
    }

    impl FrameSource for SceneSource {
        fn width(&self) -> u32 {
            self.scene.size.0
        }
        fn height(&self) -> u32 {
            self.scene.size.1
        }
        fn fps(&self) -> Option<(u32, u32)> {
            Some((30, 1))
        }
        fn frame_count_hint(&self) -> Option<u64> {
            Some(self.total)
        }
        fn next_frame(&mut self) -> Result<Option<OwnedFrame>, IoError> {
            loop {
                if let Ok(frame) = self.frames.try_recv() {
                    return frame.map(Some).map_err(gpu_read_error);
                }
                if self.drawn < self.total {
                    // Publishing waits only when the ring is full, for its oldest frame.
                    self.scene.render(self.drawn);
                    self.ring
                        .publish(&self.scene.texture)
                        .map_err(gpu_read_error)?;
                    self.drawn += 1;
                } else if !self.flushed {
                    self.ring.flush().map_err(gpu_read_error)?;
                    self.flushed = true;
                } else {
                    return Ok(None);
                }
            }
        }
    }
}
