//! What the linked OpenH264 really contains, asked of the library itself at run time.
//!
//! `openh264-sys2` quietly builds plain C when `nasm` is missing (about 2-3x slower), and cargo
//! does not redo that build when `nasm` appears later; a check made by another crate's build
//! script is therefore stale as soon as either build is redone without the other. OpenH264's own
//! `WelsCPUFeatureDetect` is compiled in one of two versions: in a build with assembly
//! (`X86_ASM` on x86, `HAVE_NEON*` on ARM) it returns the CPU's SIMD features, read through the
//! assembly's `cpuid` routine on x86; in a plain-C build it returns 0. Calling it tells which
//! version this binary linked.

use std::fmt;

extern "C" {
    /// OpenH264 `codec/common/src/cpu.cpp` (extern "C" in `cpu.h`): `WELS_CPU_*` flags, and
    /// the logical processor count through the pointer when it is not null.
    fn WelsCPUFeatureDetect(number_of_logical_processors: *mut i32) -> u32;
}

/// `WELS_CPU_*` flags (`codec/common/inc/cpu_core.h`) that name the kernels OpenH264 selects.
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
const KERNELS: &[(u32, &str)] = &[
    (0x0000_0008, "SSE2"),
    (0x0000_0200, "SSSE3"),
    (0x0000_0020, "SSE4.1"),
    (0x0000_0800, "AVX"),
    (0x0004_0000, "AVX2"),
];
#[cfg(any(target_arch = "arm", target_arch = "aarch64"))]
const KERNELS: &[(u32, &str)] = &[(0x0000_0004, "NEON")];
#[cfg(not(any(
    target_arch = "x86",
    target_arch = "x86_64",
    target_arch = "arm",
    target_arch = "aarch64"
)))]
const KERNELS: &[(u32, &str)] = &[];

/// The assembly status of the linked OpenH264.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assembly {
    flags: u32,
}

impl Assembly {
    /// Ask the linked library.
    pub fn probe() -> Self {
        let mut logical = 0i32;
        // SAFETY: the function reads CPU features and writes one i32 through a pointer that is
        // valid for the call; it has no other effect and keeps no reference.
        let flags = unsafe { WelsCPUFeatureDetect(&mut logical) };
        Assembly { flags }
    }

    /// Whether the library was built with its assembly (a plain-C build reports no features).
    pub fn linked(&self) -> bool {
        self.flags != 0
    }

    /// Names of the SIMD kernel families OpenH264 will use on this CPU.
    pub fn kernels(&self) -> Vec<&'static str> {
        KERNELS
            .iter()
            .filter(|(bit, _)| self.flags & bit != 0)
            .map(|&(_, name)| name)
            .collect()
    }
}

impl fmt::Display for Assembly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.linked() {
            write!(f, "yes ({} kernels)", self.kernels().join("/"))
        } else {
            f.write_str(
                "NO: this OpenH264 was built without its assembly (nasm was missing when \
                 openh264-sys2 was built) and encodes ~2-3x slower; install nasm, then \
                 `cargo clean --release -p openh264-sys2` and rebuild (./scripts/demo.sh does both)",
            )
        }
    }
}
