//! `framecast doctor`: what works on this machine, and what to use.

use crate::Failure;
use framecast_encode::backend::Availability;
use framecast_encode::registry;
use std::process::Command;

fn tool_version(cmd: &str, arg: &str) -> Option<String> {
    let out = Command::new(cmd).arg(arg).output().ok()?;
    let text = String::from_utf8_lossy(if out.stdout.is_empty() {
        &out.stderr
    } else {
        &out.stdout
    })
    .to_string();
    text.lines().next().map(|l| l.trim().to_string())
}

#[derive(clap::Args)]
pub struct DoctorArgs {
    /// Only check that the linked OpenH264 has its assembly (the fast build): print one line,
    /// exit 0 when it has, 5 when it has not. `./scripts/demo.sh` uses it to catch a build made
    /// before nasm was installed.
    #[arg(long)]
    pub require_assembly: bool,
}

pub fn run(args: DoctorArgs) -> Result<(), Failure> {
    if args.require_assembly {
        return require_assembly();
    }
    let mut rows: Vec<(String, bool, String)> = Vec::new();
    rows.push((
        "platform".into(),
        true,
        format!(
            "{}/{}, {} CPU threads",
            std::env::consts::OS,
            std::env::consts::ARCH,
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        ),
    ));
    let statuses = registry::probe_all();
    for s in &statuses {
        let kind = if s.hardware { "hardware" } else { "software" };
        let (ok, detail) = match &s.availability {
            Availability::Available { detail } => (true, detail.clone()),
            Availability::Unavailable { reason } => (false, reason.clone()),
        };
        rows.push((format!("encoder {} ({kind})", s.name), ok, detail));
    }
    #[cfg(feature = "openh264")]
    {
        let asm = framecast_encode::openh264_assembly();
        rows.push(("openh264 assembly".into(), asm.linked(), asm.to_string()));
    }
    #[cfg(feature = "gpu")]
    let wgpu_ok = match framecast_gpu::probe() {
        Ok(a) => {
            rows.push((
                "gpu colour conversion (wgpu)".into(),
                true,
                format!(
                    "{a}; `encode --gpu`, `demo --gpu`, `serve --gpu`, Display::publish_texture"
                ),
            ));
            true
        }
        Err(e) => {
            rows.push(("gpu colour conversion (wgpu)".into(), false, e.to_string()));
            false
        }
    };
    #[cfg(not(feature = "gpu"))]
    rows.push((
        "gpu colour conversion (wgpu)".into(),
        false,
        "not in this build (rebuild with --features gpu); conversion runs on the CPU (SIMD)".into(),
    ));
    #[cfg(not(feature = "gpu"))]
    let wgpu_ok = false;
    let cuda_ok = match framecast_cuda::probe() {
        Ok(info) => {
            rows.push((
                "cuda driver".into(),
                true,
                format!("CUDA {}.{}", info.driver_version.0, info.driver_version.1),
            ));
            let nvrtc_ok = info.nvrtc.is_ok();
            rows.push((
                "cuda nvrtc".into(),
                nvrtc_ok,
                match &info.nvrtc {
                    Ok((a, b)) => format!("{a}.{b} (compiles the conversion kernel at run time)"),
                    Err(e) => e.clone(),
                },
            ));
            for d in &info.devices {
                rows.push((
                    format!("cuda device {}", d.ordinal),
                    true,
                    format!(
                        "{} (compute {}.{}, {} MiB)",
                        d.name,
                        d.compute_capability.0,
                        d.compute_capability.1,
                        d.total_memory >> 20
                    ),
                ));
            }
            nvrtc_ok && !info.devices.is_empty()
        }
        Err(e) => {
            rows.push(("cuda driver".into(), false, e.to_string()));
            false
        }
    };
    for (tool, arg, why) in [
        (
            "ffmpeg",
            "-version",
            "used by tests and benchmarks to decode and compare",
        ),
        ("ffprobe", "-version", "used by tests to inspect output"),
    ] {
        match tool_version(tool, arg) {
            Some(v) => rows.push((tool.into(), true, v)),
            None => rows.push((
                tool.into(),
                false,
                format!("not found ({why}); apt-get install ffmpeg"),
            )),
        }
    }
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(10);
    println!("{:<width$}  {:<6}  detail", "component", "status");
    for (name, ok, detail) in &rows {
        println!(
            "{:<width$}  {:<6}  {}",
            name,
            if *ok { "ok" } else { "--" },
            detail
        );
    }
    println!("\nHow frames are converted to YUV:");
    println!("  host memory (files, patterns, numpy): CPU, SIMD");
    println!(
        "  wgpu textures (Display::publish_texture, --gpu): {}",
        if wgpu_ok {
            "on the texture's device, NV12 read back by a ring that never blocks the frame loop"
        } else {
            "unavailable here (see the wgpu row); --gpu falls back to the CPU"
        }
    );
    println!(
        "  CUDA arrays (Python: CuPy, PyTorch, JAX): {}",
        if cuda_ok {
            "on the array's GPU, in order with its stream; NV12 read back through pinned buffers"
        } else {
            "unavailable here (see the cuda rows); pass host memory"
        }
    );
    let usable: Vec<_> = statuses
        .iter()
        .filter(|s| matches!(s.availability, Availability::Available { .. }))
        .collect();
    let pick = usable.iter().find(|s| s.hardware).or(usable.first());
    match pick {
        Some(s) => println!("\nRecommended: --backend {} ({})", s.name, s.description),
        None => println!(
            "\nNo encoder backend is usable in this build: rebuild with `--features openh264`."
        ),
    }
    #[cfg(feature = "openh264")]
    {
        let asm = framecast_encode::openh264_assembly();
        if !asm.linked() {
            println!("Warning: openh264 assembly {asm}");
        }
    }
    Ok(())
}

#[cfg(feature = "openh264")]
fn require_assembly() -> Result<(), Failure> {
    use crate::WithCode;
    let asm = framecast_encode::openh264_assembly();
    if asm.linked() {
        println!("openh264 assembly: {asm}");
        Ok(())
    } else {
        Err(anyhow::anyhow!("openh264 assembly: {asm}")).code(crate::exit::ENCODER)
    }
}

#[cfg(not(feature = "openh264"))]
fn require_assembly() -> Result<(), Failure> {
    use crate::WithCode;
    Err(anyhow::anyhow!(
        "this build has no OpenH264 (rebuild with --features openh264)"
    ))
    .code(crate::exit::ENCODER)
}
