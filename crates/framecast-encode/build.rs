//! Warns at build time when OpenH264 is about to be built without its assembly.
//!
//! The `openh264-sys2` build silently falls back to plain C when `nasm` is missing, which makes
//! encoding about 2-3x slower. This only warns: what the binary really contains is asked of the
//! linked library at run time (`src/backends/openh264_asm.rs`), because this script runs when
//! framecast-encode is built, not when openh264-sys2 is, and either can be rebuilt alone.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=OPENH264_NO_ASM");
    println!("cargo:rerun-if-env-changed=PATH");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if std::env::var_os("CARGO_FEATURE_OPENH264").is_none() || !(arch == "x86_64" || arch == "x86")
    {
        return;
    }
    if std::env::var_os("OPENH264_NO_ASM").is_some() {
        warn(
            "OPENH264_NO_ASM is set: OpenH264 is built WITHOUT assembly and encodes ~2-3x slower.",
        );
    } else if !Command::new("nasm")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        // Run again once nasm shows up in any PATH directory, so the warning does not outlive
        // the missing nasm (cargo would otherwise replay it on every build).
        if let Some(path) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&path).filter(|d| d.is_dir()) {
                println!("cargo:rerun-if-changed={}", dir.display());
            }
        }
        warn(
            "`nasm` was not found: OpenH264 is being built WITHOUT its x86 assembly and will encode \
             ~2-3x slower. Install it (`apt-get install nasm`, `brew install nasm`) and rebuild with \
             `cargo clean -p openh264-sys2`, or run ./scripts/demo.sh, which does both.",
        );
    }
}

fn warn(msg: &str) {
    println!("cargo:warning=framecast: {msg}");
}
