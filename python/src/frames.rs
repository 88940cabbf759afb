//! Frames from Python: numpy arrays and anything numpy views without copying (evaluated MLX
//! arrays, memoryviews and other buffer-protocol objects, CPU tensors with `__array__`),
//! read through `__array_interface__`. (The buffer protocol itself is not in the stable ABI
//! before Python 3.11, and this is an abi3 wheel for 3.9+.)
//!
//! Shapes: `(H, W, 3)` uint8 RGB, `(H, W, 4)` uint8 RGBA (or BGRA with
//! `pixel_format="bgra"`), `(H, W, 4)` float16/float32 RGBA in 0..1, and `(H*3//2, W)` uint8
//! NV12 with `pixel_format="nv12"`. Rows may be padded or cropped views (any row stride);
//! pixels and channels must be contiguous. CUDA arrays are refused with the fix.

use crate::errors::{type_error, value_error};
use framecast_core::{Frame, FrameError, PixelFormat};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dtype {
    U8,
    F16,
    F32,
}

impl Dtype {
    fn name(self) -> &'static str {
        match self {
            Dtype::U8 => "uint8",
            Dtype::F16 => "float16",
            Dtype::F32 => "float32",
        }
    }

    pub(crate) fn size(self) -> usize {
        match self {
            Dtype::U8 => 1,
            Dtype::F16 => 2,
            Dtype::F32 => 4,
        }
    }
}

/// A validated view of host memory, safe to send to a thread without the GIL: the Python
/// array it points into is kept alive by the [`HostFrame`] that made it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HostView {
    ptr: usize,
    len: usize,
    format: PixelFormat,
    width: u32,
    height: u32,
    stride: usize,
}

impl HostView {
    /// A view of NV12 read back from the GPU into pinned memory.
    pub fn nv12(h: framecast_cuda::HostNv12) -> Self {
        HostView {
            ptr: h.ptr(),
            len: h.len(),
            format: PixelFormat::Nv12,
            width: h.width,
            height: h.height,
            stride: h.stride,
        }
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    /// The frame.
    ///
    /// # Safety
    /// The [`HostFrame`] this view came from must still be alive (it holds the array).
    pub unsafe fn frame(&self) -> Result<Frame<'_>, FrameError> {
        // SAFETY: `ptr..ptr+len` lies inside the array's buffer (checked from its shape and
        // strides when the view was made), which the caller keeps alive and which Python does
        // not free or move while a reference to the array is held.
        let bytes = unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) };
        let (w, h, s) = (self.width, self.height, self.stride);
        match self.format {
            PixelFormat::Rgba8 => Frame::rgba8(bytes, w, h, s),
            PixelFormat::Bgra8 => Frame::bgra8(bytes, w, h, s),
            PixelFormat::Rgb8 => Frame::rgb8(bytes, w, h, s),
            PixelFormat::RgbaF16 => Frame::rgba_f16(bytes, w, h, s),
            PixelFormat::RgbaF32 => Frame::rgba_f32(bytes, w, h, s),
            PixelFormat::Nv12 => {
                let (y, uv) = bytes.split_at((s * h as usize).min(bytes.len()));
                Frame::nv12(y, s, uv, s, w, h)
            }
            other => Err(FrameError::Conversion(format!(
                "pixel format {} cannot come from Python",
                other.name()
            ))),
        }
    }
}

/// A frame borrowed from a Python object; holds the array while views of it are in use.
pub(crate) struct HostFrame<'py> {
    _array: Bound<'py, PyAny>,
    view: HostView,
}

impl HostFrame<'_> {
    pub fn view(&self) -> HostView {
        self.view
    }
}

pub(crate) fn is_cuda(obj: &Bound<'_, PyAny>) -> bool {
    if obj.hasattr("__cuda_array_interface__").unwrap_or(false) {
        return true;
    }
    // DLPack device types: 1 CPU, 2 CUDA, 3 CUDA host, 10 ROCm, 13 CUDA managed.
    obj.call_method0("__dlpack_device__")
        .and_then(|d| d.get_item(0))
        .and_then(|t| t.extract::<i64>())
        .is_ok_and(|t| matches!(t, 2 | 10 | 13))
}

pub(crate) fn dtype(typestr: &str) -> PyResult<Dtype> {
    let native = if cfg!(target_endian = "little") {
        '<'
    } else {
        '>'
    };
    let mut chars = typestr.chars();
    let order = chars.next().unwrap_or('?');
    let rest: String = chars.collect();
    let order_ok = order == '|' || order == '=' || order == native;
    match (rest.as_str(), order_ok) {
        ("u1", _) => Ok(Dtype::U8),
        ("f2", true) => Ok(Dtype::F16),
        ("f4", true) => Ok(Dtype::F32),
        _ => Err(type_error(format!(
            "frames must be uint8 (RGB, RGBA, BGRA, NV12) or float16/float32 (RGBA in 0..1) in \
             native byte order; got numpy typestr {typestr:?}: convert with \
             frame.astype(numpy.uint8) (or numpy.float32)"
        ))),
    }
}

/// Read `obj` as a frame. `pixel_format` (None, "rgb", "rgba", "bgra", "nv12") says what the
/// channels are when the shape alone does not.
pub(crate) fn host_frame<'py>(
    obj: &Bound<'py, PyAny>,
    pixel_format: Option<&str>,
) -> PyResult<HostFrame<'py>> {
    let py = obj.py();
    if obj.is_instance_of::<pyo3::types::PyString>() {
        return Err(type_error("a frame is an array of pixels, not a str"));
    }
    if is_cuda(obj) {
        return Err(type_error(
            "this is a CUDA (device) array, and this call reads host memory: pass \
             cupy.asnumpy(x), tensor.cpu().numpy() or numpy.asarray(jax_array)",
        ));
    }
    let np = py.import("numpy").map_err(|e| {
        type_error(format!(
            "framecast reads frames through numpy, which is not importable: {e}"
        ))
    })?;
    let array = np.call_method1("asarray", (obj,)).map_err(|e| {
        type_error(format!(
            "cannot read a {} as a frame: {e}; pass a numpy array or a buffer-protocol object",
            obj.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    let ai = array.getattr("__array_interface__")?;
    let ai = ai
        .cast::<PyDict>()
        .map_err(|_| type_error("__array_interface__ is not a dict"))?;
    let get = |k: &str| -> PyResult<Bound<'py, PyAny>> {
        ai.get_item(k)?
            .ok_or_else(|| type_error(format!("__array_interface__ has no {k:?}")))
    };
    let typestr: String = get("typestr")?.extract()?;
    let dtype = dtype(&typestr)?;
    let shape: Vec<usize> = get("shape")?.extract()?;
    let data = get("data")?;
    let data = data.cast::<PyTuple>().map_err(|_| {
        type_error("the array's memory is not a plain pointer (a masked or object array?)")
    })?;
    let ptr: usize = data.get_item(0)?.extract()?;
    let strides: Option<Vec<isize>> = get("strides")?.extract()?;
    let strides = strides.unwrap_or_else(|| c_strides(&shape, dtype));
    let l = layout(&shape, &strides, dtype, pixel_format)?;
    Ok(HostFrame {
        view: HostView {
            ptr,
            len: l.len,
            format: l.format,
            width: l.width,
            height: l.height,
            stride: l.row_stride,
        },
        _array: array,
    })
}

/// Byte strides of a C-contiguous array (what array interfaces mean by "no strides").
pub(crate) fn c_strides(shape: &[usize], dtype: Dtype) -> Vec<isize> {
    let mut s = vec![dtype.size() as isize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1] as isize;
    }
    s
}

/// What an array's shape, byte strides and dtype say about it as a frame.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    pub format: PixelFormat,
    pub width: u32,
    pub height: u32,
    /// Bytes from one row to the next.
    pub row_stride: usize,
    /// Bytes from the first pixel to the end of the last.
    pub len: usize,
}

/// The frame an array describes (host and device arrays alike): `(H, W, 3)` RGB,
/// `(H, W, 4)` RGBA/BGRA or float RGBA, `(H*3//2, W)` NV12; rows may be padded, pixels must be
/// contiguous.
pub(crate) fn layout(
    shape: &[usize],
    strides: &[isize],
    dtype: Dtype,
    pixel_format: Option<&str>,
) -> PyResult<Layout> {
    let elem = dtype.size() as isize;
    let format = match (
        shape,
        dtype,
        pixel_format.map(str::to_ascii_lowercase).as_deref(),
    ) {
        ([_, _, 3], Dtype::U8, None | Some("rgb") | Some("rgb24") | Some("rgb8")) => {
            PixelFormat::Rgb8
        }
        ([_, _, 4], Dtype::U8, None | Some("rgba") | Some("rgba8")) => PixelFormat::Rgba8,
        ([_, _, 4], Dtype::U8, Some("bgra") | Some("bgra8")) => PixelFormat::Bgra8,
        ([_, _, 4], Dtype::F16, None | Some("rgba")) => PixelFormat::RgbaF16,
        ([_, _, 4], Dtype::F32, None | Some("rgba")) => PixelFormat::RgbaF32,
        ([_, _], Dtype::U8, Some("nv12")) => PixelFormat::Nv12,
        (shape, dtype, hint) => {
            let dtype = dtype.name();
            return Err(value_error(format!(
                "unsupported frame: shape {shape:?} of {dtype} with pixel_format={hint:?}; \
                 expected (H, W, 3) uint8 RGB, (H, W, 4) uint8 RGBA (or pixel_format=\"bgra\"), \
                 (H, W, 4) float16/float32 RGBA, or (H*3//2, W) uint8 with pixel_format=\"nv12\""
            )));
        }
    };
    if strides.iter().any(|&s| s < 0) {
        return Err(value_error(
            "the frame has negative strides (a flipped view): pass numpy.ascontiguousarray(frame)",
        ));
    }
    let (rows, cols) = (shape[0], shape[1]);
    let row_stride = strides[0] as usize;
    let channels = if shape.len() == 3 { shape[2] } else { 1 };
    let pixel_bytes = channels as isize * elem;
    let packed_pixels = shape.len() == 2 || strides[2] == elem;
    if strides[1] != pixel_bytes || !packed_pixels {
        return Err(value_error(format!(
            "the frame's pixels are not contiguous (strides {strides:?} for shape {shape:?}): \
             pass numpy.ascontiguousarray(frame)"
        )));
    }
    let (width, height) = match format {
        PixelFormat::Nv12 => {
            // rows = H + ceil(H/2); the UV rows are `cols` bytes: the width must be even.
            let h = (rows * 2) / 3;
            if cols % 2 != 0 || rows < 3 || h + h.div_ceil(2) != rows {
                return Err(value_error(format!(
                    "an NV12 frame is (H*3//2, W) with an even W: got {shape:?}"
                )));
            }
            (cols, h)
        }
        _ => (cols, rows),
    };
    if rows == 0 || cols == 0 {
        return Err(value_error(format!("the frame is empty (shape {shape:?})")));
    }
    let (Ok(width), Ok(height)) = (u32::try_from(width), u32::try_from(height)) else {
        return Err(value_error(format!("frame shape {shape:?} is too large")));
    };
    let len = row_stride * (rows - 1) + cols * pixel_bytes as usize;
    Ok(Layout {
        format,
        width,
        height,
        row_stride,
        len,
    })
}
