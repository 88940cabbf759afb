//! Checks that OpenH264 will be built with its assembly.
//!
//! The `openh264-sys2` build silently falls back to plain C when `nasm` is missing, which makes
//! encoding about 3x slower. Say so loudly at build time and record the result for
//! `framecast doctor`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=OPENH264_NO_ASM");
    println!("cargo:rerun-if-env-changed=PATH");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let status = if std::env::var_os("CARGO_FEATURE_OPENH264").is_none() {
        "not built".to_string()
    } else if std::env::var_os("OPENH264_NO_ASM").is_some() {
        warn("OPENH264_NO_ASM is set: OpenH264 is built WITHOUT assembly and encodes ~3x slower.");
        "disabled by OPENH264_NO_ASM".to_string()
    } else if arch == "x86_64" || arch == "x86" {
        match Command::new("nasm").arg("-v").output() {
            Ok(out) if out.status.success() => {
                let v = String::from_utf8_lossy(&out.stdout);
                format!(
                    "yes ({})",
                    v.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
                )
            }
            _ => {
                warn(
                    "`nasm` was not found: OpenH264 is being built WITHOUT its x86 assembly and will encode \
                     ~3x slower. Install it (`apt-get install nasm`, `brew install nasm`) and rebuild with \
                     `cargo clean -p openh264-sys2`.",
                );
                "NO: nasm was missing at build time (install nasm, then `cargo clean -p openh264-sys2` and rebuild)"
                    .to_string()
            }
        }
    } else if arch == "aarch64" || arch == "arm" {
        "yes (NEON .S files assembled by the C compiler; no nasm needed)".to_string()
    } else {
        format!("no assembly for target arch {arch}")
    };
    println!("cargo:rustc-env=FRAMECAST_OPENH264_ASM={status}");
}

fn warn(msg: &str) {
    println!("cargo:warning=framecast: {msg}");
}
