//! The CUDA driver and NVRTC, loaded at run time: probing, the device's primary context, and
//! the conversion kernel compiled for the device.

use crate::CudaError;
use cudarc::driver::{result, sys};
use std::ffi::{c_void, CString};
use std::sync::OnceLock;

/// One CUDA device, as `framecast doctor` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Ordinal (`cudaSetDevice` numbering).
    pub ordinal: i32,
    /// Marketing name, e.g. "NVIDIA H200".
    pub name: String,
    /// Compute capability (major, minor).
    pub compute_capability: (i32, i32),
    /// Device memory in bytes.
    pub total_memory: usize,
}

/// What the machine's CUDA installation offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CudaInfo {
    /// The driver's CUDA version, e.g. (13, 0).
    pub driver_version: (i32, i32),
    /// NVRTC's version, or why it cannot be loaded (the kernel cannot be compiled without it).
    pub nvrtc: Result<(i32, i32), String>,
    /// The devices the driver sees.
    pub devices: Vec<DeviceInfo>,
}

pub(crate) fn error_for(call: &'static str) -> impl Fn(result::DriverError) -> CudaError {
    move |e| CudaError::Driver {
        call,
        detail: e.to_string(),
    }
}

/// Load the driver library and `cuInit` it, once per process.
pub(crate) fn init() -> Result<(), CudaError> {
    static INIT: OnceLock<Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| {
        // SAFETY: only probes for the shared library (cudarc panics on first use otherwise).
        if !unsafe { sys::is_culib_present() } {
            return Err(
                "libcuda.so (the NVIDIA driver) is not installed or not on the loader's \
                        path"
                    .into(),
            );
        }
        result::init().map_err(|e| format!("cuInit failed: {e}"))
    })
    .clone()
    .map_err(CudaError::NoDriver)
}

fn nvrtc_version() -> Result<(i32, i32), String> {
    // SAFETY: probes for the library before any call into it.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err(
            "libnvrtc.so (CUDA's run-time compiler) was not found: install the CUDA \
                    toolkit's NVRTC, or `pip install nvidia-cuda-nvrtc`, and put its lib folder \
                    on LD_LIBRARY_PATH"
                .into(),
        );
    }
    let (mut major, mut minor) = (0, 0);
    // SAFETY: two valid out-pointers.
    let r = unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) };
    if r != cudarc::nvrtc::sys::nvrtcResult::NVRTC_SUCCESS {
        return Err(format!("nvrtcVersion failed: {r:?}"));
    }
    Ok((major, minor))
}

fn attribute(dev: sys::CUdevice, a: sys::CUdevice_attribute) -> Result<i32, CudaError> {
    // SAFETY: `dev` came from cuDeviceGet.
    unsafe { result::device::get_attribute(dev, a) }.map_err(error_for("cuDeviceGetAttribute"))
}

fn device_info(ordinal: i32) -> Result<DeviceInfo, CudaError> {
    let dev = result::device::get(ordinal).map_err(error_for("cuDeviceGet"))?;
    use sys::CUdevice_attribute::*;
    Ok(DeviceInfo {
        ordinal,
        name: result::device::get_name(dev).map_err(error_for("cuDeviceGetName"))?,
        compute_capability: (
            attribute(dev, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?,
            attribute(dev, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?,
        ),
        // SAFETY: as above.
        total_memory: unsafe { result::device::total_mem(dev) }
            .map_err(error_for("cuDeviceTotalMem"))?,
    })
}

/// The driver, NVRTC and devices on this machine; `Err(NoDriver)` without a driver.
pub fn probe() -> Result<CudaInfo, CudaError> {
    init()?;
    let mut version = 0;
    // SAFETY: a valid out-pointer; the driver is loaded.
    unsafe { sys::cuDriverGetVersion(&mut version) }
        .result()
        .map_err(error_for("cuDriverGetVersion"))?;
    let count = result::device::get_count().map_err(error_for("cuDeviceGetCount"))?;
    Ok(CudaInfo {
        driver_version: (version / 1000, (version % 1000) / 10),
        nvrtc: nvrtc_version(),
        devices: (0..count).map(device_info).collect::<Result<_, _>>()?,
    })
}

/// The device ordinal that owns a device pointer (unified addressing: no context needed).
pub fn pointer_device(ptr: u64) -> Result<i32, CudaError> {
    init()?;
    let mut ordinal: i32 = -1;
    // SAFETY: the attribute is an int, written into `ordinal`.
    unsafe {
        sys::cuPointerGetAttribute(
            &mut ordinal as *mut i32 as *mut c_void,
            sys::CUpointer_attribute::CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL,
            ptr,
        )
    }
    .result()
    .map_err(|e| CudaError::NotDeviceMemory(format!("{ptr:#x}: {e}")))?;
    Ok(ordinal)
}

/// A device's **primary** context, the one CuPy, PyTorch and JAX use: framecast never creates
/// a second context (each would hold its own copy of every allocation and module).
pub(crate) struct Context {
    dev: sys::CUdevice,
    ctx: sys::CUcontext,
    pub(crate) info: DeviceInfo,
}

// SAFETY: a CUcontext handle may be used from any thread (made current there first).
unsafe impl Send for Context {}

impl Context {
    pub(crate) fn primary(ordinal: i32) -> Result<Self, CudaError> {
        init()?;
        let info = device_info(ordinal)?;
        let dev = result::device::get(ordinal).map_err(error_for("cuDeviceGet"))?;
        // SAFETY: `dev` is valid; released in Drop.
        let ctx = unsafe { result::primary_ctx::retain(dev) }
            .map_err(error_for("cuDevicePrimaryCtxRetain"))?;
        let c = Context { dev, ctx, info };
        c.make_current()?;
        Ok(c)
    }

    /// Make the primary context current on the calling thread (a no-op where the
    /// application's framework already did).
    pub(crate) fn make_current(&self) -> Result<(), CudaError> {
        if result::ctx::get_current().ok().flatten() == Some(self.ctx) {
            return Ok(());
        }
        // SAFETY: the context is retained for our lifetime.
        unsafe { result::ctx::set_current(self.ctx) }.map_err(error_for("cuCtxSetCurrent"))
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: balances the retain in `primary`.
        let _ = unsafe { result::primary_ctx::release(self.dev) };
    }
}

const SOURCE: &str = include_str!("rgb_to_nv12.cu");

/// The conversion kernel, compiled by NVRTC for the context's device.
pub(crate) struct Kernel {
    module: sys::CUmodule,
    pub(crate) function: sys::CUfunction,
}

// SAFETY: module and function handles are context-wide, usable from any thread.
unsafe impl Send for Kernel {}

impl Kernel {
    pub(crate) fn compile(ctx: &Context) -> Result<Self, CudaError> {
        nvrtc_version().map_err(CudaError::NoNvrtc)?;
        let (major, minor) = ctx.info.compute_capability;
        let arch = format!("--gpu-architecture=compute_{major}{minor}");
        let compile = |options: Vec<String>| {
            cudarc::nvrtc::compile_ptx_with_opts(
                SOURCE,
                cudarc::nvrtc::CompileOptions {
                    options,
                    name: Some("rgb_to_nv12.cu".into()),
                    ..Default::default()
                },
            )
        };
        // An NVRTC older than the device does not know its architecture: fall back to its
        // default target, whose PTX the driver compiles for the device when loading it.
        let ptx = compile(vec![arch])
            .or_else(|_| compile(Vec::new()))
            .map_err(|e| CudaError::Compile(e.to_string()))?;
        let image = CString::new(ptx.to_src())
            .map_err(|_| CudaError::Compile("NVRTC returned PTX with a NUL byte".into()))?;
        ctx.make_current()?;
        // SAFETY: `image` is NUL-terminated PTX.
        let module = unsafe { result::module::load_data(image.as_ptr() as *const c_void) }
            .map_err(error_for("cuModuleLoadData"))?;
        let name = CString::new("rgb_to_nv12").expect("no NUL");
        // SAFETY: `module` was just loaded; `name` is NUL-terminated.
        let function = unsafe { result::module::get_function(module, name) }
            .map_err(error_for("cuModuleGetFunction"))?;
        Ok(Kernel { module, function })
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        // SAFETY: loaded in `compile`; the owning converter has synchronised its streams.
        let _ = unsafe { result::module::unload(self.module) };
    }
}
