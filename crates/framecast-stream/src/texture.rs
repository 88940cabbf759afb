//! `Display::publish_texture` (feature `gpu`): frames rendered with wgpu are converted to NV12
//! on the application's own device, in its queue's order, and only the NV12 comes back: a
//! [`TextureRing`] waits for each readback on its own thread, so the render loop never waits
//! for the GPU (it blocks only while all three staging slots are still on their way).

use crate::session::FrameTags;
use crate::{Display, StreamError};
use framecast_core::ColorSpace;
use framecast_gpu::{GpuConverter, TextureRing};

impl Display {
    /// A readback ring for this stream on `conv`'s device: make `conv` with
    /// [`GpuConverter::with_device`] from the device and queue you render with.
    pub fn texture_ring(&self, conv: GpuConverter) -> TextureRing {
        let display = self.clone();
        // The stream's encoders and image transports read colour with the default space,
        // as for host frames.
        TextureRing::new(conv, ColorSpace::default(), move |nv12| {
            display
                .publish_copy(nv12, FrameTags::default())
                .map_err(|e| e.to_string())
        })
    }

    /// Publish a texture rendered on `ring`'s device (RGBA8, BGRA8, RGBA16F or RGBA32F with
    /// `TEXTURE_BINDING` usage). Returns once the conversion is queued; the frame reaches the
    /// stream when its readback lands, in order. The texture may be rendered into again at
    /// once: the queue runs that after the conversion.
    pub fn publish_texture(
        &self,
        ring: &mut TextureRing,
        texture: &wgpu::Texture,
    ) -> Result<(), StreamError> {
        if self.is_closed() {
            return Err(StreamError::Closed(self.name().to_string()));
        }
        ring.publish(texture)?;
        Ok(())
    }
}
