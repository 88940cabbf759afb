//! CUDA device arrays as frames: CuPy, PyTorch, JAX and Numba arrays are converted to NV12 on
//! their own GPU (framecast-cuda) and only the NV12 is read back, through pinned memory.
//!
//! How each kind of array is read, and in what order with the producer's work:
//! - PyTorch tensors: `__cuda_array_interface__` for the memory; the conversion is queued on
//!   `torch.cuda.current_stream()`, so later work on that stream waits for the read.
//! - `__cuda_array_interface__` v3 with a `stream` (CuPy, Numba): queued on that stream.
//! - Other `__dlpack__` producers (JAX): `__dlpack__(stream=<framecast's stream>)`, so the
//!   producer makes its pending writes visible to framecast's stream first. The array is held
//!   until the read is done (JAX arrays are immutable, so nothing can overwrite it).
//! - `__cuda_array_interface__` without a stream: the producer promises the data is ready;
//!   framecast's stream reads it.

use crate::errors::{type_error, value_error};
use crate::frames::{c_strides, dtype, host_frame, layout, Dtype, HostFrame, HostView};
use framecast_core::ColorSpace;
use framecast_cuda::{CudaConverter, CudaError, DeviceFrame, Ticket};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict, PyTuple};

/// A frame in device memory, with the Python object that keeps that memory alive.
pub(crate) struct CudaFrame<'py> {
    pub frame: DeviceFrame,
    pub device: i32,
    pub keep: Bound<'py, PyAny>,
}

pub(crate) fn cuda_error(e: CudaError) -> PyErr {
    match e {
        CudaError::UnsupportedFormat(_) | CudaError::Frame(_) => value_error(e.to_string()),
        e @ (CudaError::NoDriver(_) | CudaError::NoNvrtc(_)) => {
            pyo3::exceptions::PyRuntimeError::new_err(format!(
                "CUDA frame path: {e}; or pass host memory: cupy.asnumpy(x), \
                 tensor.cpu().numpy(), numpy.asarray(jax_array) (`python -m framecast doctor` \
                 shows what this machine has)"
            ))
        }
        other => pyo3::exceptions::PyRuntimeError::new_err(format!(
            "CUDA frame path: {other} (`python -m framecast doctor` shows what this machine has)"
        )),
    }
}

fn module_of(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .getattr("__module__")
        .and_then(|m| m.extract::<String>())
        .unwrap_or_default()
}

/// Read `obj` as a CUDA frame, or `None` when it is not a CUDA array. `own_stream(device)`
/// gives framecast's stream on that device (for the DLPack handshake).
pub(crate) fn cuda_frame<'py>(
    obj: &Bound<'py, PyAny>,
    pixel_format: Option<&str>,
    own_stream: &mut dyn FnMut(i32) -> PyResult<u64>,
) -> PyResult<Option<CudaFrame<'py>>> {
    if !crate::frames::is_cuda(obj) {
        return Ok(None);
    }
    let is_torch = module_of(obj).starts_with("torch");
    let cai = obj.getattr("__cuda_array_interface__").ok();
    let cai = cai.as_ref().and_then(|c| c.cast::<PyDict>().ok());
    let cai_stream = match cai {
        Some(d) => d.get_item("stream")?,
        None => None,
    };
    if let Some(cai) = cai.filter(|_| is_torch || cai_stream.is_some() || !has_dlpack(obj)) {
        let (mut frame, keep) = from_cai(obj, cai, pixel_format)?;
        let device = framecast_cuda::pointer_device(frame.ptr).map_err(cuda_error)?;
        frame.stream = if is_torch {
            Some(torch_stream(obj, device)?)
        } else {
            match cai_stream {
                Some(s) if !s.is_none() => Some(s.extract::<u64>()?),
                _ => None,
            }
        };
        return Ok(Some(CudaFrame {
            frame,
            device,
            keep,
        }));
    }
    from_dlpack(obj, pixel_format, own_stream).map(Some)
}

/// The CUDA device holding `obj`, or `None` when it is not a CUDA array.
pub(crate) fn device_of(obj: &Bound<'_, PyAny>) -> PyResult<Option<i32>> {
    if !crate::frames::is_cuda(obj) {
        return Ok(None);
    }
    if let Ok(d) = obj.call_method0("__dlpack_device__") {
        let (_, id): (i32, i32) = d.extract()?;
        return Ok(Some(id));
    }
    let cai = obj.getattr("__cuda_array_interface__")?;
    let ptr: u64 = cai.get_item("data")?.get_item(0)?.extract()?;
    framecast_cuda::pointer_device(ptr)
        .map(Some)
        .map_err(cuda_error)
}

fn has_dlpack(obj: &Bound<'_, PyAny>) -> bool {
    obj.hasattr("__dlpack__").unwrap_or(false)
}

/// The stream PyTorch queues work on now (0: the legacy default stream).
fn torch_stream(obj: &Bound<'_, PyAny>, device: i32) -> PyResult<u64> {
    let torch = obj.py().import("torch")?;
    let s = torch
        .getattr("cuda")?
        .call_method1("current_stream", (device,))?
        .getattr("cuda_stream")?
        .extract::<u64>()?;
    Ok(s)
}

fn geometry(
    shape: &[usize],
    strides: &[isize],
    dtype: Dtype,
    pixel_format: Option<&str>,
    ptr: u64,
) -> PyResult<DeviceFrame> {
    let l = layout(shape, strides, dtype, pixel_format)?;
    Ok(DeviceFrame {
        ptr,
        format: l.format,
        width: l.width,
        height: l.height,
        pitch: l.row_stride,
        stream: None,
    })
}

fn from_cai<'py>(
    obj: &Bound<'py, PyAny>,
    cai: &Bound<'py, PyDict>,
    pixel_format: Option<&str>,
) -> PyResult<(DeviceFrame, Bound<'py, PyAny>)> {
    let get = |k: &str| -> PyResult<Bound<'py, PyAny>> {
        cai.get_item(k)?
            .ok_or_else(|| type_error(format!("__cuda_array_interface__ has no {k:?}")))
    };
    let typestr: String = get("typestr")?.extract()?;
    let dtype = dtype(&typestr)?;
    let shape: Vec<usize> = get("shape")?.extract()?;
    let data = get("data")?;
    let data = data.cast::<PyTuple>().map_err(|_| {
        type_error("__cuda_array_interface__['data'] is not a (ptr, readonly) tuple")
    })?;
    let ptr: u64 = data.get_item(0)?.extract()?;
    let strides: Option<Vec<isize>> = match cai.get_item("strides")? {
        Some(s) if !s.is_none() => Some(s.extract()?),
        _ => None,
    };
    let strides = strides.unwrap_or_else(|| c_strides(&shape, dtype));
    Ok((
        geometry(&shape, &strides, dtype, pixel_format, ptr)?,
        obj.clone(),
    ))
}

/// DLPack's C structs (dlpack.h, ABI-stable since 0.x): the capsule's `DLManagedTensor`.
#[repr(C)]
struct DlDevice {
    device_type: i32,
    device_id: i32,
}

#[repr(C)]
struct DlDataType {
    code: u8,
    bits: u8,
    lanes: u16,
}

#[repr(C)]
struct DlTensor {
    data: *mut std::ffi::c_void,
    device: DlDevice,
    ndim: i32,
    dtype: DlDataType,
    shape: *const i64,
    strides: *const i64,
    byte_offset: u64,
}

const DL_CUDA: i32 = 2;

fn from_dlpack<'py>(
    obj: &Bound<'py, PyAny>,
    pixel_format: Option<&str>,
    own_stream: &mut dyn FnMut(i32) -> PyResult<u64>,
) -> PyResult<CudaFrame<'py>> {
    let py = obj.py();
    let (kind, device): (i32, i32) = obj.call_method0("__dlpack_device__")?.extract()?;
    if kind != DL_CUDA {
        return Err(type_error(format!(
            "DLPack device type {kind} is not plain CUDA memory (2): framecast reads CUDA \
             device arrays and host arrays"
        )));
    }
    let stream = own_stream(device)?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("stream", stream)?;
    let capsule = obj.call_method("__dlpack__", (), Some(&kwargs))?;
    let cap = capsule
        .cast::<PyCapsule>()
        .map_err(|_| type_error("__dlpack__() did not return a capsule"))?;
    // The capsule is not consumed (not renamed "used_dltensor"): when it is dropped, after
    // the conversion, its destructor hands the tensor back to the producer.
    let managed = cap.pointer_checked(Some(c"dltensor"))?;
    // SAFETY: a "dltensor" capsule points to a DLManagedTensor whose first member is the
    // DLTensor; it lives as long as the capsule, which `keep` holds.
    let t = unsafe { &*(managed.as_ptr() as *const DlTensor) };
    if t.device.device_type != DL_CUDA {
        return Err(type_error("the DLPack tensor is not in CUDA memory"));
    }
    let dtype = match (t.dtype.code, t.dtype.bits, t.dtype.lanes) {
        (1, 8, 1) => Dtype::U8,
        (2, 16, 1) => Dtype::F16,
        (2, 32, 1) => Dtype::F32,
        (code, bits, lanes) => {
            return Err(type_error(format!(
                "frames must be uint8 or float16/float32; got DLPack dtype code {code}, \
                 {bits} bits, {lanes} lanes"
            )))
        }
    };
    let ndim = usize::try_from(t.ndim).unwrap_or(0);
    // SAFETY: `shape` (and `strides`, when not null) hold `ndim` int64s (DLPack).
    let shape: Vec<usize> = unsafe { std::slice::from_raw_parts(t.shape, ndim) }
        .iter()
        .map(|&d| d as usize)
        .collect();
    let strides = if t.strides.is_null() {
        c_strides(&shape, dtype)
    } else {
        // SAFETY: as above; DLPack strides count elements.
        unsafe { std::slice::from_raw_parts(t.strides, ndim) }
            .iter()
            .map(|&s| s as isize * dtype.size() as isize)
            .collect()
    };
    let ptr = t.data as u64 + t.byte_offset;
    let frame = geometry(&shape, &strides, dtype, pixel_format, ptr)?;
    Ok(CudaFrame {
        frame,
        device: t.device.device_id,
        keep: capsule,
    })
}

/// A lazily made converter, remade when frames move to another device.
#[derive(Default)]
pub(crate) struct CudaSlot {
    conv: Option<CudaConverter>,
}

impl CudaSlot {
    /// The converter for `device` (made on first use: loads the driver, compiles the kernel).
    pub fn get(
        &mut self,
        py: Python<'_>,
        device: i32,
        depth: usize,
    ) -> PyResult<&mut CudaConverter> {
        if self
            .conv
            .as_ref()
            .is_some_and(|c| c.device().ordinal != device)
        {
            self.conv = None;
        }
        if self.conv.is_none() {
            let c = py
                .detach(|| CudaConverter::new(device, depth))
                .map_err(cuda_error)?;
            self.conv = Some(c);
        }
        Ok(self.conv.as_mut().expect("just set"))
    }

    /// The converter, once one was made.
    pub fn converter(&mut self) -> Option<&mut CudaConverter> {
        self.conv.as_mut()
    }

    /// The converter, once one was made.
    pub fn converter_ref(&self) -> Option<&CudaConverter> {
        self.conv.as_ref()
    }

    /// framecast's stream on `device`.
    pub fn stream(&mut self, py: Python<'_>, device: i32, depth: usize) -> PyResult<u64> {
        Ok(self.get(py, device, depth)?.stream_handle())
    }
}

/// Read `obj` as a CUDA frame through `slot`'s converter; `None` for host arrays.
pub(crate) fn read<'py>(
    slot: &mut CudaSlot,
    obj: &Bound<'py, PyAny>,
    pixel_format: Option<&str>,
    depth: usize,
) -> PyResult<Option<CudaFrame<'py>>> {
    let py = obj.py();
    let frame = cuda_frame(obj, pixel_format, &mut |device| {
        slot.stream(py, device, depth)
    })?;
    if let Some(f) = &frame {
        slot.get(py, f.device, depth)?;
    }
    Ok(frame)
}

/// A frame from Python, host or CUDA, seen as host memory while this lives: the array itself,
/// or the NV12 its GPU conversion read back into a pinned buffer (returned to the ring on drop).
pub(crate) struct Input<'a, 'py> {
    view: HostView,
    _host: Option<HostFrame<'py>>,
    held: Option<(&'a mut CudaConverter, Ticket)>,
}

impl Input<'_, '_> {
    pub fn view(&self) -> HostView {
        self.view
    }
}

impl Drop for Input<'_, '_> {
    fn drop(&mut self) {
        if let Some((conv, ticket)) = self.held.take() {
            let _ = conv.release(ticket);
        }
    }
}

/// Read `obj` (host array, or CUDA array converted with `cs` and read back now).
pub(crate) fn input<'a, 'py>(
    slot: &'a mut CudaSlot,
    obj: &Bound<'py, PyAny>,
    pixel_format: Option<&str>,
    cs: ColorSpace,
) -> PyResult<Input<'a, 'py>> {
    let py = obj.py();
    let Some(frame) = read(slot, obj, pixel_format, 1)? else {
        let host = host_frame(obj, pixel_format)?;
        return Ok(Input {
            view: host.view(),
            _host: Some(host),
            held: None,
        });
    };
    let conv = slot.conv.as_mut().expect("read() made the converter");
    let src = frame.frame;
    let (ticket, nv12) = py
        .detach(|| {
            let ticket = conv.submit(&src, cs)?;
            conv.wait(ticket)?;
            Ok((ticket, conv.ready_view(ticket)?))
        })
        .map_err(cuda_error)?;
    // The conversion has run: the source array is no longer read.
    drop(frame);
    Ok(Input {
        view: HostView::nv12(nv12),
        _host: None,
        held: Some((conv, ticket)),
    })
}
