//! End-to-end tests of `framecast remote serve|encode|decode|transcode`: a real server process on
//! an ephemeral loopback port, real client processes, ffmpeg/ffprobe checking the outputs, and
//! the documented exit codes on failure. ffmpeg must be installed.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

struct ServerProc {
    child: Child,
    addr: String,
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(extra: &[&str]) -> ServerProc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_framecast"))
        .args([
            "remote",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--handshake-timeout",
            "3",
        ])
        .args(extra)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("framecast runs");
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // "framecast remote: VTR1 server on 127.0.0.1:PORT (capabilities: ...)"
    let addr = line
        .split_whitespace()
        .find(|w| w.starts_with("127.0.0.1:"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    ServerProc { child, addr }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_framecast"))
        .args(args)
        .output()
        .expect("framecast runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(args: &[&str]) -> Run {
    let r = run(args);
    assert_eq!(r.code, 0, "{args:?} failed:\n{}\n{}", r.stdout, r.stderr);
    r
}

fn fails(args: &[&str], code: i32, needle: &str) {
    let r = run(args);
    assert_eq!(r.code, code, "{args:?}:\n{}", r.stderr);
    let lines: Vec<&str> = r.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one error line expected:\n{}", r.stderr);
    assert!(lines[0].starts_with("error:"), "{}", lines[0]);
    assert!(
        lines[0].to_lowercase().contains(&needle.to_lowercase()),
        "{:?} should mention {needle:?}",
        lines[0]
    );
}

fn ffprobe(path: &Path) -> String {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe is installed (apt-get install ffmpeg)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn ffmpeg_raw(path: &Path, pix: &str) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "rawvideo", "-pix_fmt", pix, "-"])
        .output()
        .expect("ffmpeg is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn encode_decode_transcode_through_a_server_process() {
    let server = serve(&[]);
    let dir = tempfile::tempdir().unwrap();
    let h264 = dir.path().join("card.h264");
    let (w, h) = (320u32, 240u32);
    let r = ok(&[
        "remote",
        "encode",
        "--server",
        &server.addr,
        "--pattern",
        "testcard",
        "--size",
        "320x240",
        "--frames",
        "20",
        "--keyint",
        "10",
        "--compression",
        "lz4",
        "-q",
        "-o",
        h264.to_str().unwrap(),
    ]);
    assert!(r.stdout.contains("20 frames"), "{}", r.stdout);
    assert_eq!(ffprobe(&h264), "h264,320,240,20");
    // Pixels: the test card's flat patches survive within ±6.
    let rgb = ffmpeg_raw(&h264, "rgb24");
    let n = (w * h * 3) as usize;
    let last = &rgb[rgb.len() - n..];
    for p in framecast_io_patches(w, h) {
        let (cx, cy) = ((p.0 + p.2 / 2) as usize, (p.1 + p.3 / 2) as usize);
        let i = (cy * w as usize + cx) * 3;
        for c in 0..3 {
            let d = last[i + c] as i32 - p.4[c] as i32;
            assert!(
                d.abs() <= 6,
                "patch at {cx},{cy}: {:?} vs {:?}",
                &last[i..i + 3],
                p.4
            );
        }
    }

    // MP4 with Zstd planes.
    let mp4 = dir.path().join("card.mp4");
    ok(&[
        "remote",
        "encode",
        "--server",
        &server.addr,
        "--pattern",
        "plasma",
        "--size",
        "320x240",
        "--frames",
        "12",
        "--compression",
        "zstd",
        "-q",
        "-o",
        mp4.to_str().unwrap(),
    ]);
    assert_eq!(ffprobe(&mp4), "h264,320,240,12");

    // Decode to y4m: identical to ffmpeg's own decode of the same stream (H.264 decoding is
    // bit-exact).
    let y4m = dir.path().join("card.y4m");
    ok(&[
        "remote",
        "decode",
        "--server",
        &server.addr,
        h264.to_str().unwrap(),
        "--compression",
        "zstd",
        "-q",
        "-o",
        y4m.to_str().unwrap(),
    ]);
    assert_eq!(ffprobe(&y4m), "rawvideo,320,240,20");
    assert_eq!(
        ffmpeg_raw(&y4m, "yuv420p"),
        ffmpeg_raw(&h264, "yuv420p"),
        "remote decode equals a local ffmpeg decode"
    );

    // Transcode with resize to .mp4.
    let small = dir.path().join("small.mp4");
    ok(&[
        "remote",
        "transcode",
        "--server",
        &server.addr,
        h264.to_str().unwrap(),
        "--size",
        "160x120",
        "--bitrate",
        "300k",
        "-q",
        "-o",
        small.to_str().unwrap(),
    ]);
    assert_eq!(ffprobe(&small), "h264,160,120,20");
}

/// (x, y, w, h, rgb) of the test card's patches, from framecast-io's published layout.
fn framecast_io_patches(w: u32, h: u32) -> Vec<(u32, u32, u32, u32, [u8; 3])> {
    framecast_io::test_card_patches(w, h)
        .into_iter()
        .filter(|p| p.w >= 4 && p.h >= 4)
        .map(|p| (p.x, p.y, p.w, p.h, p.rgb))
        .collect()
}

#[test]
fn failures_have_clear_errors_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.h264");
    let out = out.to_str().unwrap();
    // Nobody listening.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap().to_string();
    drop(free);
    fails(
        &[
            "remote",
            "encode",
            "--server",
            &addr,
            "--pattern",
            "testcard",
            "-o",
            out,
        ],
        5,
        "cannot connect",
    );
    // Wrong token.
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "right\n").unwrap();
    let server = serve(&["--token-file", token_file.to_str().unwrap()]);
    std::env::set_var("FC_TEST_TOKEN", "wrong");
    fails(
        &[
            "remote",
            "encode",
            "--server",
            &server.addr,
            "--token-env",
            "FC_TEST_TOKEN",
            "--pattern",
            "testcard",
            "--frames",
            "2",
            "-o",
            out,
        ],
        5,
        "authentication failed",
    );
    // An empty token is refused on both sides, as for `serve` (it would admit anyone).
    std::env::set_var("FC_TEST_EMPTY_TOKEN", "");
    for command in [
        &["remote", "serve", "--token-env", "FC_TEST_EMPTY_TOKEN"][..],
        &[
            "remote",
            "encode",
            "--server",
            &server.addr,
            "--token-env",
            "FC_TEST_EMPTY_TOKEN",
            "--pattern",
            "testcard",
            "-o",
            out,
        ][..],
    ] {
        fails(command, 2, "the token is empty");
    }
    // Right token works.
    ok(&[
        "remote",
        "encode",
        "--server",
        &server.addr,
        "--token-file",
        token_file.to_str().unwrap(),
        "--pattern",
        "testcard",
        "--size",
        "64x48",
        "--frames",
        "2",
        "-q",
        "-o",
        out,
    ]);
    // Bad output extension: usage error before connecting.
    fails(
        &[
            "remote",
            "encode",
            "--server",
            &server.addr,
            "--pattern",
            "testcard",
            "-o",
            "x.avi",
        ],
        2,
        "extension",
    );
    // Not an H.264 file.
    let junk = dir.path().join("junk.h264");
    std::fs::write(&junk, b"not h264 at all").unwrap();
    fails(
        &[
            "remote",
            "decode",
            "--server",
            &server.addr,
            junk.to_str().unwrap(),
            "-o",
            dir.path().join("o.y4m").to_str().unwrap(),
        ],
        3,
        "SPS",
    );
    // decode writes .y4m only.
    fails(
        &["remote", "decode", "--server", &server.addr, out, "-o", out],
        2,
        "y4m",
    );
}

#[test]
fn a_pool_of_servers_passes_over_dead_and_refusing_ones() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pool.mp4");
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = free.local_addr().unwrap().to_string();
    drop(free);
    let other_token = dir.path().join("other");
    std::fs::write(&other_token, "another\n").unwrap();
    let refusing = serve(&["--token-file", other_token.to_str().unwrap()]);
    let good = serve(&[]);
    // Comma-separated and repeated flags both add to the pool, in order.
    let pool = format!("{dead},{}", refusing.addr);
    let r = ok(&[
        "remote",
        "encode",
        "--server",
        &pool,
        "--server",
        &good.addr,
        "--pattern",
        "testcard",
        "--size",
        "320x240",
        "--frames",
        "5",
        "-q",
        "-o",
        out.to_str().unwrap(),
    ]);
    let passed: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("passed over"))
        .collect();
    assert_eq!(passed.len(), 2, "{}", r.stderr);
    assert!(passed[0].contains(&dead), "{}", passed[0]);
    assert!(passed[1].contains(&refusing.addr), "{}", passed[1]);
    assert_eq!(ffprobe(&out), "h264,320,240,5");
    // No server takes it: one error line naming each attempt.
    fails(
        &[
            "remote",
            "encode",
            "--server",
            &format!("{dead},{}", refusing.addr),
            "--rounds",
            "1",
            "--pattern",
            "testcard",
            "-o",
            out.to_str().unwrap(),
        ],
        5,
        "no VTR1 server took the session (2 attempts)",
    );
}

/// The frames of a Y4M file: its header and each frame's bytes ("FRAME\n" included).
fn y4m_split(y4m: &[u8], w: usize, h: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
    let header_end = y4m.iter().position(|&b| b == b'\n').unwrap() + 1;
    let frame = b"FRAME\n".len() + w * h * 3 / 2;
    let body = &y4m[header_end..];
    assert_eq!(body.len() % frame, 0, "plain FRAME headers, 4:2:0");
    (
        y4m[..header_end].to_vec(),
        body.chunks(frame).map(|c| c.to_vec()).collect(),
    )
}

#[test]
fn an_encode_goes_on_when_its_server_dies_mid_stream() {
    use std::io::Write;
    const FRAMES: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.y4m");
    let made = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30",
        ])
        .args([
            "-frames:v",
            &FRAMES.to_string(),
            "-pix_fmt",
            "yuv420p",
            "-y",
        ])
        .arg(&src)
        .status()
        .expect("ffmpeg is installed");
    assert!(made.success());
    let (header, frames) = y4m_split(&std::fs::read(&src).unwrap(), 320, 240);
    assert_eq!(frames.len(), FRAMES);

    let mut first = serve(&[]);
    let second = serve(&[]);
    let out = dir.path().join("resumed.mp4");
    // Frames come through stdin, so the first server can be killed while the session is open.
    let mut client = Command::new(env!("CARGO_BIN_EXE_framecast"))
        .args(["remote", "encode", "--server", &first.addr, "--server"])
        .args([&second.addr, "--timeout", "5", "-q", "-o"])
        .arg(&out)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("framecast runs");
    let mut stdin = client.stdin.take().unwrap();
    stdin.write_all(&header).unwrap();
    for f in &frames[..FRAMES / 2] {
        stdin.write_all(f).unwrap();
    }
    stdin.flush().unwrap();
    // Give the first server the first half, then take it away as a crash would.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    for f in &frames[FRAMES / 2..] {
        stdin.write_all(f).unwrap();
    }
    drop(stdin);
    let done = client.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stderr}");
    let moved: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("mid-stream"))
        .collect();
    assert_eq!(moved.len(), 1, "{stderr}");
    assert!(
        moved[0].contains(&format!("lost {}", first.addr))
            && moved[0].contains(&format!("resumed on {}", second.addr)),
        "{}",
        moved[0]
    );
    // Every frame once, in order: each decoded frame is close to its own source frame.
    assert_eq!(ffprobe(&out), format!("h264,320,240,{FRAMES}"));
    let decoded = ffmpeg_raw(&out, "yuv420p");
    let size = 320 * 240 * 3 / 2;
    assert_eq!(decoded.len(), FRAMES * size);
    let source = |i: usize| &frames[i][b"FRAME\n".len()..];
    let mad = |a: &[u8], b: &[u8]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (*x as i32 - *y as i32).unsigned_abs() as u64)
            .sum::<u64>() as f64
            / size as f64
    };
    for (i, got) in decoded.chunks(size).enumerate() {
        let own = mad(got, source(i));
        assert!(own < 4.0, "frame {i}: mean difference {own:.2}");
        // testsrc2 moves every frame: a frame lost or repeated would match a neighbour better.
        for j in [i.wrapping_sub(1), i + 1] {
            if j < FRAMES {
                let other = mad(got, source(j));
                assert!(own < other, "frame {i} is closer to source frame {j}");
            }
        }
    }
}
