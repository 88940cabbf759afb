//! Backends compiled into this build.

#[cfg(feature = "openh264")]
pub mod openh264;
#[cfg(feature = "openh264")]
pub mod openh264_asm;
/// Apple VideoToolbox: the macOS shim.
#[cfg(all(feature = "videotoolbox", target_os = "macos"))]
pub mod videotoolbox;
/// The VideoToolbox backend's pure half: built for the macOS shim and for the Linux tests.
#[cfg(any(test, all(feature = "videotoolbox", target_os = "macos")))]
pub(crate) mod vt_shared;
/// x264 through the system libx264 (GPL).
#[cfg(feature = "x264")]
pub mod x264;
