//! Backends by name, with an availability probe for `framecast doctor`.

use crate::backend::{Availability, BackendDescriptor};
use crate::EncodeError;

/// Backends compiled into this build, default first.
pub fn backends() -> &'static [BackendDescriptor] {
    &[
        #[cfg(feature = "openh264")]
        crate::backends::openh264::DESCRIPTOR,
        #[cfg(feature = "x264")]
        crate::backends::x264::DESCRIPTOR,
        #[cfg(all(feature = "videotoolbox", target_os = "macos"))]
        crate::backends::videotoolbox::DESCRIPTOR,
    ]
}

/// The backend used when none is named: the first compiled-in one, or `"none"`.
pub fn default_backend_name() -> &'static str {
    backends().first().map(|b| b.name).unwrap_or("none")
}

/// Look a backend up by name (case-insensitive).
pub fn find(name: &str) -> Result<&'static BackendDescriptor, EncodeError> {
    let list = backends();
    list.iter()
        .find(|b| b.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| EncodeError::UnknownBackend {
            name: name.to_string(),
            available: if list.is_empty() {
                "none (this build has no encoder feature; rebuild with --features openh264)"
                    .to_string()
            } else {
                list.iter().map(|b| b.name).collect::<Vec<_>>().join(", ")
            },
        })
}

/// One row of `framecast doctor`: every backend framecast knows, compiled in or not.
#[derive(Debug, Clone)]
pub struct BackendStatus {
    /// Backend name.
    pub name: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// Hardware encoder?
    pub hardware: bool,
    /// Whether it can be used here, and why not.
    pub availability: Availability,
}

/// Probe every known backend. Backends not compiled into this build are listed with the reason.
pub fn probe_all() -> Vec<BackendStatus> {
    let mut rows: Vec<BackendStatus> = backends()
        .iter()
        .map(|b| BackendStatus {
            name: b.name,
            description: b.description,
            hardware: b.hardware,
            availability: (b.probe)(),
        })
        .collect();
    let known: &[(&str, &str, bool, &str)] = &[
        (
            "openh264",
            "Cisco OpenH264, software",
            false,
            "not compiled in: rebuild with `--features openh264`",
        ),
        (
            "videotoolbox",
            "Apple VideoToolbox, hardware (macOS)",
            true,
            if cfg!(target_os = "macos") {
                "not compiled in: rebuild with `--features videotoolbox`"
            } else {
                "macOS only"
            },
        ),
        (
            "x264",
            "x264 (system libx264), software; GPL",
            false,
            "not compiled in: rebuild with `--features x264` (needs libx264-dev; the binary is then GPL)",
        ),
        (
            "nvenc",
            "NVIDIA NVENC, hardware",
            true,
            "not implemented yet",
        ),
    ];
    for &(name, description, hardware, reason) in known {
        if !rows.iter().any(|r| r.name == name) {
            rows.push(BackendStatus {
                name,
                description,
                hardware,
                availability: Availability::Unavailable {
                    reason: reason.to_string(),
                },
            });
        }
    }
    rows
}
