//! The two texture chores every user of the converter repeats: make a plain 2-D texture, and
//! fill one from memory.

/// A `width x height` 2-D texture (one mip level, one sample) of `format`, usable as `usage`.
pub fn texture_2d(
    device: &wgpu::Device,
    label: Option<&str>,
    (width, height): (u32, u32),
    format: wgpu::TextureFormat,
    usage: wgpu::TextureUsages,
) -> wgpu::Texture {
    device.create_texture(&wgpu::TextureDescriptor {
        label,
        size: wgpu::Extent3d {
            width,
            height,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format,
        usage,
        view_formats: &[],
    })
}

/// Queue an upload of `data` into the whole of `texture`: rows `stride` bytes apart, the last
/// one possibly ending right after its pixels.
pub fn write_texture(queue: &wgpu::Queue, texture: &wgpu::Texture, data: &[u8], stride: u32) {
    let (width, height) = (texture.width(), texture.height());
    queue.write_texture(
        wgpu::TexelCopyTextureInfo {
            texture,
            mip_level: 0,
            origin: wgpu::Origin3d::ZERO,
            aspect: wgpu::TextureAspect::All,
        },
        data,
        wgpu::TexelCopyBufferLayout {
            offset: 0,
            bytes_per_row: Some(stride),
            rows_per_image: Some(height),
        },
        wgpu::Extent3d {
            width,
            height,
            depth_or_array_layers: 1,
        },
    );
}
