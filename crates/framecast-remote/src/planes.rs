//! FRAME planes both ways: the expected geometry of each pixel format, validating and
//! decompressing what a peer sent, and building planes from a picture ([`FramePlanes`]) —
//! the one place a FRAME's planes are made, for the client's input and the server's output.

use crate::compress::{compress_plane, decompress_plane, Compression};
use crate::error::{CompressionError, PlaneError};
use crate::wire::{pix_fmt, Plane};
use bytes::Bytes;
use framecast_core::{convert, ColorSpace, Frame, FrameError, PixelFormat, Yuv420Image, YuvLayout};

/// Expected geometry of one plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaneLayout {
    /// Minimum stride (bytes of one row).
    pub row_bytes: u32,
    /// Rows.
    pub height: u32,
    /// Fewest rows accepted: a chroma plane of an odd-height picture may come with
    /// `height / 2` rows (FFmpeg's vtremote client sends that) instead of `ceil(height / 2)`;
    /// the missing last row is then a copy of the one above.
    pub min_height: u32,
}

/// The plane layouts of a wire pixel format at `width x height` (`None`: not a format this
/// server handles).
pub fn plane_layouts(fmt: u8, width: u32, height: u32) -> Option<Vec<PlaneLayout>> {
    let full = |row_bytes, height| PlaneLayout {
        row_bytes,
        height,
        min_height: height,
    };
    match fmt {
        pix_fmt::NV12 => Some(vec![
            full(width, height),
            PlaneLayout {
                row_bytes: 2 * width.div_ceil(2),
                height: height.div_ceil(2),
                min_height: height / 2,
            },
        ]),
        pix_fmt::BGRA => Some(vec![full(width.checked_mul(4)?, height)]),
        _ => None,
    }
}

/// Validate the planes of an input FRAME and decompress them (the reference's
/// `FramePlaneValidation`: plane count, heights, stride ≥ row bytes, size limits, raw data ≥
/// stride × height, compressed data non-empty). Each plane comes back with `layout.height`
/// rows of the plane's own stride.
pub fn validate_and_decompress(
    planes: &[Plane],
    layouts: &[PlaneLayout],
    compression: Compression,
    max_decoded_bytes: u64,
) -> Result<Vec<Bytes>, PlaneError> {
    if planes.len() != layouts.len() {
        return Err(PlaneError::Count {
            expected: layouts.len(),
            got: planes.len(),
        });
    }
    let mut total: u64 = 0;
    let mut out = Vec::with_capacity(planes.len());
    for (i, (p, l)) in planes.iter().zip(layouts).enumerate() {
        if p.stride == 0 || p.height == 0 {
            return Err(PlaneError::Geometry {
                plane: i,
                stride: p.stride,
                height: p.height,
            });
        }
        if !(l.min_height..=l.height).contains(&p.height) {
            let expected = if l.min_height == l.height {
                l.height.to_string()
            } else {
                format!("{} or {}", l.min_height, l.height)
            };
            return Err(PlaneError::Height {
                plane: i,
                height: p.height,
                expected,
            });
        }
        if p.stride < l.row_bytes {
            return Err(PlaneError::Stride {
                plane: i,
                stride: p.stride,
                minimum: l.row_bytes,
            });
        }
        let size = p.stride as u64 * p.height as u64;
        total += p.stride as u64 * l.height as u64;
        if total > max_decoded_bytes {
            return Err(PlaneError::TooLarge {
                plane: i,
                size,
                limit: max_decoded_bytes,
            });
        }
        match compression {
            Compression::None if (p.data.len() as u64) < size => {
                return Err(PlaneError::TooSmall {
                    plane: i,
                    len: p.data.len(),
                    stride: p.stride,
                    height: p.height,
                    needed: size,
                })
            }
            c if c != Compression::None && p.data.is_empty() => {
                return Err(PlaneError::Empty { plane: i })
            }
            _ => {}
        }
        let plane = decompress_plane(compression, i, &p.data, size as usize)?;
        out.push(if p.height < l.height {
            repeat_last_rows(&plane, p.stride as usize, p.height, l.height)
        } else {
            plane
        });
    }
    Ok(out)
}

/// `plane` (`rows` rows of `stride`) extended to `height` rows by repeating the last one.
fn repeat_last_rows(plane: &[u8], stride: usize, rows: u32, height: u32) -> Bytes {
    let mut v = Vec::with_capacity(stride * height as usize);
    v.extend_from_slice(&plane[..stride * rows as usize]);
    let last = stride * (rows as usize - 1)..stride * rows as usize;
    for _ in rows..height {
        v.extend_from_within(last.clone());
    }
    Bytes::from(v)
}

/// Builds the planes of FRAME messages from pictures: NV12 (any frame converted or copied;
/// the colour space applies to RGB input) or BGRA as it is, compressed as negotiated. Keeps
/// one scratch picture, so a stream of frames allocates only the wire buffers.
#[derive(Debug)]
pub struct FramePlanes {
    compression: Compression,
    scratch: Option<Yuv420Image>,
}

impl FramePlanes {
    /// A builder for planes compressed with `compression`.
    pub fn new(compression: Compression) -> Self {
        FramePlanes {
            compression,
            scratch: None,
        }
    }

    /// NV12 planes of `frame`: Y with `height` rows and UV with `ceil(height / 2)`, both of
    /// stride `2 * ceil(width / 2)`.
    pub fn nv12(
        &mut self,
        frame: &Frame<'_>,
        cs: ColorSpace,
    ) -> Result<Vec<Plane>, PlaneBuildError> {
        let (w, h) = (frame.width(), frame.height());
        let reuse = self
            .scratch
            .as_ref()
            .is_some_and(|s| (s.width(), s.height()) == (w, h));
        if !reuse {
            self.scratch = Some(Yuv420Image::new(w, h, YuvLayout::Nv12)?);
        }
        let img = self.scratch.as_mut().expect("set above");
        convert::to_yuv420(frame, cs, img)?;
        let (ys, cs) = (img.y_stride(), img.chroma_stride());
        let ch = h.div_ceil(2);
        let c = self.compression;
        Ok(vec![
            plane(c, 0, ys, h, &img.y()[..ys * h as usize])?,
            plane(c, 1, cs, ch, &img.uv()[..cs * ch as usize])?,
        ])
    }

    /// The single BGRA plane of a BGRA frame (its own stride).
    pub fn bgra(&mut self, frame: &Frame<'_>) -> Result<Vec<Plane>, PlaneBuildError> {
        let (bytes_in, stride, row_bytes, rows) = frame.plane_rows()[0];
        if frame.format() != PixelFormat::Bgra8 {
            return Err(PlaneBuildError::NotBgra(frame.format().name()));
        }
        // The last row of a view may be cut to its pixels: send whole strides but for it.
        let bytes = &bytes_in[..stride * (rows - 1) + row_bytes];
        let c = self.compression;
        if bytes.len() == stride * rows {
            return Ok(vec![plane(c, 0, stride, rows as u32, bytes)?]);
        }
        let mut padded = bytes.to_vec();
        padded.resize(stride * rows, 0);
        Ok(vec![plane(c, 0, stride, rows as u32, &padded)?])
    }
}

fn plane(
    c: Compression,
    i: usize,
    stride: usize,
    rows: u32,
    bytes: &[u8],
) -> Result<Plane, CompressionError> {
    Ok(Plane {
        stride: stride as u32,
        height: rows,
        data: compress_plane(c, i, bytes)?,
    })
}

/// Why planes could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlaneBuildError {
    /// The picture could not be converted.
    #[error("picture: {0}")]
    Frame(#[from] FrameError),
    /// Compression failed.
    #[error(transparent)]
    Compression(#[from] CompressionError),
    /// [`FramePlanes::bgra`] got another format.
    #[error("a BGRA plane was asked of a {0} frame")]
    NotBgra(&'static str),
}

/// Bilinear resize of one 8-bit plane.
pub(crate) fn resize_plane(
    src: &[u8],
    sw: usize,
    sh: usize,
    ss: usize,
    dw: usize,
    dh: usize,
) -> Vec<u8> {
    let mut out = vec![0u8; dw * dh];
    if sw == 0 || sh == 0 {
        return out;
    }
    for y in 0..dh {
        let fy = ((y as f64 + 0.5) * sh as f64 / dh as f64 - 0.5).max(0.0);
        let y0 = (fy as usize).min(sh - 1);
        let y1 = (y0 + 1).min(sh - 1);
        let wy = ((fy - y0 as f64) * 256.0) as u32;
        for x in 0..dw {
            let fx = ((x as f64 + 0.5) * sw as f64 / dw as f64 - 0.5).max(0.0);
            let x0 = (fx as usize).min(sw - 1);
            let x1 = (x0 + 1).min(sw - 1);
            let wx = ((fx - x0 as f64) * 256.0) as u32;
            let p = |xx: usize, yy: usize| src[yy * ss + xx] as u32;
            let top = p(x0, y0) * (256 - wx) + p(x1, y0) * wx;
            let bot = p(x0, y1) * (256 - wx) + p(x1, y1) * wx;
            out[y * dw + x] = ((top * (256 - wy) + bot * wy + 32768) >> 16) as u8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plane_validation() {
        let layouts = plane_layouts(pix_fmt::NV12, 4, 3).unwrap();
        let p = |stride, height, len| Plane {
            stride,
            height,
            data: Bytes::from(vec![0u8; len]),
        };
        assert!(validate_and_decompress(
            &[p(4, 3, 12), p(4, 2, 8)],
            &layouts,
            Compression::None,
            1 << 20
        )
        .is_ok());
        let e = validate_and_decompress(&[p(4, 3, 12)], &layouts, Compression::None, 1 << 20)
            .unwrap_err();
        assert!(e.to_string().contains("expected 2 planes"), "{e}");
        let e = validate_and_decompress(
            &[p(4, 2, 12), p(4, 2, 8)],
            &layouts,
            Compression::None,
            1 << 20,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("invalid plane height 2, expected 3"),
            "{e}"
        );
        // Odd height: the chroma plane may come with floor(3/2) = 1 row; the missing row
        // repeats the last one. Fewer rows still is refused.
        let uv_one_row = Plane {
            stride: 4,
            height: 1,
            data: Bytes::from_static(&[1, 2, 3, 4]),
        };
        let out = validate_and_decompress(
            &[p(4, 3, 12), uv_one_row.clone()],
            &layouts,
            Compression::None,
            1 << 20,
        )
        .unwrap();
        assert_eq!(&out[1][..], &[1, 2, 3, 4, 1, 2, 3, 4]);
        let e = validate_and_decompress(
            &[
                p(4, 3, 12),
                Plane {
                    height: 0,
                    ..uv_one_row
                },
            ],
            &layouts,
            Compression::None,
            1 << 20,
        )
        .unwrap_err();
        assert!(e.to_string().contains("geometry"), "{e}");
        let e = validate_and_decompress(
            &[p(4, 3, 12), p(4, 3, 12)],
            &layouts,
            Compression::None,
            1 << 20,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("invalid plane height 3, expected 1 or 2"),
            "{e}"
        );
        let e = validate_and_decompress(
            &[p(3, 3, 12), p(4, 2, 8)],
            &layouts,
            Compression::None,
            1 << 20,
        )
        .unwrap_err();
        assert!(e.to_string().contains("stride 3, minimum 4"), "{e}");
        let e = validate_and_decompress(
            &[p(4, 3, 11), p(4, 2, 8)],
            &layouts,
            Compression::None,
            1 << 20,
        )
        .unwrap_err();
        assert!(e.to_string().contains("plane too small"), "{e}");
        let e = validate_and_decompress(
            &[p(4, 3, 0), p(4, 2, 8)],
            &layouts,
            Compression::Lz4,
            1 << 20,
        )
        .unwrap_err();
        assert!(e.to_string().contains("empty compressed plane"), "{e}");
        let e =
            validate_and_decompress(&[p(4, 3, 12), p(4, 2, 8)], &layouts, Compression::None, 10)
                .unwrap_err();
        assert!(e.to_string().contains("exceeds limit"), "{e}");
    }
}
