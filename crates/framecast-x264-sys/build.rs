//! Finds the system libx264 with pkg-config and generates bindings from its own `x264.h`.
//!
//! Why bindgen over the installed header rather than a hand-written FFI or a crate: no binding
//! is maintained (the `x264` crate's last release is from 2022), and the calls framecast needs
//! pass `x264_param_t` and `x264_picture_t` by pointer — large structs whose layout changes
//! with every `X264_BUILD`. Generating them from the header the library was built with keeps
//! the layout right by construction; the allowlist keeps the surface to the few calls used.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let lib = match pkg_config::Config::new()
        .atleast_version("0.148")
        .probe("x264")
    {
        Ok(lib) => lib,
        Err(e) => panic!(
            "framecast's `x264` feature needs the system libx264 and its header \
             (Debian/Ubuntu: `apt-get install libx264-dev pkg-config libclang-dev`; \
             macOS: `brew install x264`); pkg-config said: {e}"
        ),
    };
    let header = lib
        .include_paths
        .iter()
        .map(|p| p.join("x264.h"))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("/usr/include/x264.h"));
    println!("cargo:rerun-if-changed={}", header.display());
    let text = std::fs::read_to_string(&header)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", header.display()));
    // `x264_encoder_open` is a macro naming the versioned symbol (x264_encoder_open_164), so a
    // binary built against one API version refuses to link against another.
    let build: u32 = text
        .lines()
        .find_map(|l| l.strip_prefix("#define X264_BUILD "))
        .and_then(|v| v.trim().parse().ok())
        .expect("x264.h defines X264_BUILD");
    let mut builder = bindgen::Builder::default()
        // x264.h uses stdint types without including stdint.h itself.
        .header_contents("wrapper.h", "#include <stdint.h>\n#include <x264.h>\n")
        .allowlist_function("x264_(param_default|param_default_preset|param_apply_profile|param_apply_fastfirstpass|param_parse|picture_init|encoder_.*)")
        .allowlist_type("x264_(param_t|picture_t|nal_t|t)")
        .allowlist_var("X264_.*")
        .layout_tests(false)
        .generate_comments(false)
        .derive_default(true);
    for p in &lib.include_paths {
        builder = builder.clang_arg(format!("-I{}", p.display()));
    }
    let bindings = builder.generate().expect(
        "bindgen could not read x264.h (is libclang installed? apt-get install libclang-dev)",
    );
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let mut code = bindings.to_string();
    code.push_str(&format!(
        "\n/// `x264_encoder_open` (the header's macro for the versioned symbol).\npub use self::x264_encoder_open_{build} as x264_encoder_open;\n"
    ));
    std::fs::write(out.join("bindings.rs"), code).expect("write bindings");
}
