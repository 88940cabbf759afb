//! `encode --gpu`: frames converted by the wgpu kernel encode and decode back to the input.
#![cfg(feature = "gpu")]

use std::process::Command;

#[test]
fn gpu_conversion_encodes_the_test_card() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gpu.mp4");
    let run = Command::new(env!("CARGO_BIN_EXE_framecast"))
        .args([
            "encode",
            "--pattern",
            "testcard",
            "--size",
            "641x361",
            "--frames",
            "10",
            "--gpu",
            "--psnr",
            "-q",
            "-o",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // "PSNR 48.31 dB (...)": the decode matches the CPU-converted input closely, which it can
    // only do if the GPU kernel used the same matrix, range and chroma siting.
    let psnr: f64 = stdout
        .split("PSNR ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no PSNR in {stdout}"));
    assert!(
        psnr >= 38.0,
        "PSNR {psnr} dB after GPU conversion: {stdout}"
    );
    assert!(std::fs::metadata(&out).unwrap().len() > 1000);
}
