//! `encode --gpu`: frames converted by the wgpu kernel encode and decode back to the input.
#![cfg(feature = "gpu")]

use std::path::Path;
use std::process::Command;

/// Run `framecast ARGS OUT` to completion; its stdout, or a panic with both streams.
fn run_to(args: &[&str], out: &Path) -> String {
    let run = Command::new(env!("CARGO_BIN_EXE_framecast"))
        .args(args)
        .arg(out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    stdout
}

#[test]
fn gpu_conversion_encodes_the_test_card() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gpu.mp4");
    let stdout = run_to(
        &[
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
        ],
        &out,
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

/// A running `framecast serve`/`demo`, its WebSocket address and its stdout lines.
struct Live {
    child: std::process::Child,
    ws_url: String,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Live {
    /// Wait (up to 60 s) for a stdout line containing `text`.
    fn expect_line(&self, text: &str) -> String {
        let mut seen = String::new();
        while let Ok(line) = self.lines.recv_timeout(std::time::Duration::from_secs(60)) {
            if line.contains(text) {
                return line;
            }
            seen += &line;
            seen.push('\n');
        }
        panic!("no line with {text:?} on stdout; saw:\n{seen}");
    }
}

fn live(args: &[&str]) -> Live {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_framecast"))
        .args(args)
        .args(["--listen", "127.0.0.1:0", "--size", "320x240"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    let (tx, lines) = std::sync::mpsc::channel();
    // Read stdout to the end (the server never blocks on a full pipe).
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut live = Live {
        child,
        ws_url: String::new(),
        lines,
    };
    let line = live.expect_line("Serving at http://");
    let addr = line["Serving at http://".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    live.ws_url = format!("ws://{addr}");
    live
}

/// `n` decoded pictures (RGBA) from a viewer that acks each chunk.
fn view(url: &str, n: usize) -> Vec<Vec<u8>> {
    use framecast_stream::protocol::{client, decode_envelope, BinaryHeader, CAP_H264_ANNEXB};
    use tungstenite::Message;
    let (mut ws, _) = tungstenite::connect(url).unwrap();
    ws.send(Message::text(client::hello(&[CAP_H264_ANNEXB], None)))
        .unwrap();
    let mut decoder = framecast_encode::decode::H264Decoder::new().unwrap();
    let mut pictures = Vec::new();
    while pictures.len() < n {
        let Message::Binary(data) = ws.read().unwrap() else {
            continue;
        };
        let (header, payload) = decode_envelope(&data).unwrap();
        let BinaryHeader::VideoChunk(h) = header else {
            continue;
        };
        if let Some(img) = decoder.decode(payload).unwrap() {
            pictures.push(framecast_core::convert::yuv420_to_rgba(
                &img,
                framecast_core::ColorSpace::default(),
            ));
        }
        ws.send(Message::text(client::ack(h.seq, 0))).unwrap();
    }
    pictures
}

#[test]
fn serve_gpu_converts_on_the_gpu_and_the_viewer_decodes_the_test_card() {
    let s = live(&["serve", "--gpu", "--pattern", "testcard"]);
    s.expect_line("Converting on the GPU");
    for (i, rgba) in view(&s.ws_url, 5).iter().enumerate() {
        for p in framecast_io::test_card_patches(320, 240) {
            if p.w < 8 || p.h < 8 {
                continue;
            }
            let at = (((p.y + p.h / 2) * 320 + p.x + p.w / 2) * 4) as usize;
            for c in 0..3 {
                let (got, want) = (rgba[at + c] as i32, p.rgb[c] as i32);
                assert!(
                    (got - want).abs() <= 6,
                    "picture {i}, patch {} channel {c}: {got} vs {want}",
                    p.name
                );
            }
        }
    }
}

#[test]
fn demo_gpu_streams_the_shader_scene() {
    let s = live(&["demo", "--gpu"]);
    s.expect_line("Converting on the GPU");
    let pictures = view(&s.ws_url, 20);
    // A moving, colourful scene: many distinct colours, and the picture changes over time.
    let first = &pictures[0];
    let last = &pictures[19];
    let colours: std::collections::HashSet<[u8; 3]> = first
        .chunks_exact(4)
        .map(|p| [p[0] >> 4, p[1] >> 4, p[2] >> 4])
        .collect();
    assert!(colours.len() > 100, "{} colours", colours.len());
    let changed = first
        .chunks_exact(4)
        .zip(last.chunks_exact(4))
        .filter(|(a, b)| a[0].abs_diff(b[0]) > 16)
        .count();
    assert!(
        changed > first.len() / 4 / 10,
        "only {changed} pixels changed"
    );
}

/// `demo -o FILE --gpu`: the file encoder takes the scene drawn on the GPU, read back through
/// the ring: every frame arrives (30 for one second), the picture is the colourful shader
/// scene, and it moves from frame to frame in order (each frame differs from the one before,
/// and is closer to its neighbour than to a frame further on).
#[test]
fn demo_to_a_file_encodes_the_gpu_scene() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("scene.mp4");
    let stdout = run_to(&["demo", "--gpu", "--seconds", "1", "-o"], &out);
    assert!(
        stdout.contains("Drawing and converting on the GPU"),
        "{stdout}"
    );
    let decoded = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(&out)
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .unwrap();
    assert!(decoded.status.success());
    let frame_len = 1280 * 720 * 3;
    let frames: Vec<&[u8]> = decoded.stdout.chunks_exact(frame_len).collect();
    assert_eq!(frames.len(), 30, "{} bytes decoded", decoded.stdout.len());
    let colours: std::collections::HashSet<[u8; 3]> = frames[0]
        .chunks_exact(3)
        .map(|p| [p[0] >> 4, p[1] >> 4, p[2] >> 4])
        .collect();
    assert!(colours.len() > 100, "{} colours", colours.len());
    let distance = |a: &[u8], b: &[u8]| -> u64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| u64::from(x.abs_diff(*y)))
            .sum()
    };
    for i in 1..frames.len() - 5 {
        let next = distance(frames[i - 1], frames[i]);
        let further = distance(frames[i - 1], frames[i + 5]);
        assert!(next > 0, "frame {i} repeats frame {}", i - 1);
        assert!(next < further, "frame {i} is out of order");
    }
}
