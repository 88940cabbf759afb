//! Helpers shared by the integration tests: running ffmpeg/ffprobe.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// Whether `tool` (ffmpeg or ffprobe) can be run; prints a notice when it cannot.
pub fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("-version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("NOTICE: {tool} not found; skipping this test (apt-get install -y ffmpeg)");
    }
    ok
}

/// Runs ffmpeg with `-v error -y` and the given arguments; panics with its stderr on failure.
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-y"])
        .args(args)
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ffmpeg -f lavfi -i testsrc=size=WxH:rate=25 -frames:v N <extra> out`.
pub fn testsrc(w: u32, h: u32, frames: u32, extra: &[&str], out: &Path) {
    let src = format!("testsrc=size={w}x{h}:rate=25");
    let n = frames.to_string();
    let mut args = vec!["-f", "lavfi", "-i", &src, "-frames:v", &n];
    args.extend_from_slice(extra);
    args.push(out.to_str().unwrap());
    ffmpeg(&args);
}
