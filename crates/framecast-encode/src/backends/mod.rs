//! Backends compiled into this build.

#[cfg(feature = "openh264")]
pub mod openh264;
