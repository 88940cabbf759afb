//! End-to-end tests of the `framecast` binary against real peers: ffprobe and ffmpeg inspect and
//! decode what `framecast encode` / `framecast demo` write, and bad input must fail with the
//! documented exit code, one clear `error:` line and no file left behind.
//!
//! ffmpeg and ffprobe must be installed (`apt-get install ffmpeg`); these tests fail, not skip,
//! when they are missing. Nothing here asserts timing.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

/// Result of one `framecast` run.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn from_output(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn describe(&self) -> String {
        format!(
            "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    /// Panics unless the run succeeded.
    fn ok(self) -> Run {
        assert_eq!(self.code, 0, "framecast failed:\n{}", self.describe());
        self
    }

    /// The last non-empty line on stdout (the summary line).
    fn last_line(&self) -> &str {
        self.stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_else(|| panic!("no output on stdout:\n{}", self.describe()))
    }

    /// Asserts the exit code and that stderr is exactly one line, starting with `error:` and
    /// containing every one of `needles` (case-insensitive). Returns that line.
    fn fails_with(&self, code: i32, needles: &[&str]) -> String {
        assert_eq!(self.code, code, "wrong exit code:\n{}", self.describe());
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "expected exactly one line on stderr:\n{}",
            self.describe()
        );
        let line = lines[0];
        assert!(
            line.starts_with("error:"),
            "error line should start with `error:`: {line:?}"
        );
        assert_mentions(line, needles);
        line.to_string()
    }

    /// Like [`Run::fails_with`] for clap's own usage errors, which add a blank line and a
    /// "For more information, try '--help'." hint: exactly one `error:` line, naming `needles`.
    fn usage_error(&self, needles: &[&str]) -> String {
        assert_eq!(self.code, 2, "wrong exit code:\n{}", self.describe());
        let errors: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .collect();
        assert_eq!(
            errors.len(),
            1,
            "expected exactly one `error:` line:\n{}",
            self.describe()
        );
        assert_mentions(errors[0], needles);
        errors[0].to_string()
    }
}

fn assert_mentions(line: &str, needles: &[&str]) {
    let lower = line.to_ascii_lowercase();
    for n in needles {
        assert!(
            lower.contains(&n.to_ascii_lowercase()),
            "error line should mention {n:?}: {line:?}"
        );
    }
}

fn framecast() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_framecast"));
    // Logs at the default level only; a developer's RUST_LOG must not change what stderr holds.
    c.env_remove("RUST_LOG");
    c.stdin(Stdio::null());
    c
}

/// Runs `framecast ARGS` in `dir`.
fn run_in(dir: &Path, args: &[&str]) -> Run {
    let out = framecast()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("cannot run the framecast binary");
    Run::from_output(out)
}

/// Runs `framecast ARGS` in `dir` with `input` on stdin.
fn run_with_stdin(dir: &Path, args: &[&str], input: &[u8]) -> Run {
    use std::io::Write;
    let mut child = framecast()
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run the framecast binary");
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    // Write from a thread: framecast may exit early (bad input) and close the pipe.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    Run::from_output(out)
}

/// Panics with an actionable message when `tool` is not installed.
fn require(tool: &str) {
    let found = Command::new(tool)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        found,
        "`{tool}` was not found on PATH: install ffmpeg (e.g. `apt-get install ffmpeg`); \
         framecast's CLI tests inspect and decode their output with ffmpeg/ffprobe"
    );
}

fn tool(name: &str, args: &[&str]) -> Output {
    require(name);
    Command::new(name)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"))
}

/// `ffprobe -v error ARGS -of json FILE`, parsed.
fn ffprobe_json(file: &Path, args: &[&str]) -> Value {
    let mut all = vec!["-v", "error"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-of", "json"]);
    let f = file.to_str().unwrap();
    all.push(f);
    let out = tool("ffprobe", &all);
    assert!(
        out.status.success(),
        "ffprobe {all:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ffprobe printed invalid JSON")
}

/// The first video stream with frames counted by decoding, and the format section.
fn probe(file: &Path) -> (Value, Value) {
    let v = ffprobe_json(file, &["-count_frames", "-show_streams", "-show_format"]);
    let stream = v["streams"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["codec_type"] == "video"))
        .unwrap_or_else(|| panic!("no video stream in {}: {v:#}", file.display()))
        .clone();
    (stream, v["format"].clone())
}

fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) => s.parse().unwrap_or_else(|_| panic!("not a number: {s:?}")),
        other => panic!("not a number: {other}"),
    }
}

fn dims(stream: &Value) -> (u64, u64) {
    (num(&stream["width"]) as u64, num(&stream["height"]) as u64)
}

fn frame_count(stream: &Value) -> u64 {
    num(&stream["nb_read_frames"]) as u64
}

/// Key-frame flag and picture type of every decoded frame, in order.
fn frame_types(file: &Path) -> Vec<(bool, String)> {
    let v = ffprobe_json(
        file,
        &["-show_frames", "-show_entries", "frame=key_frame,pict_type"],
    );
    v["frames"]
        .as_array()
        .expect("no frames")
        .iter()
        .map(|f| {
            (
                num(&f["key_frame"]) as u64 == 1,
                f["pict_type"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

/// Decodes `file` completely with ffmpeg; asserts exit 0 and an empty stderr.
fn assert_decodes_cleanly(file: &Path) {
    let out = tool(
        "ffmpeg",
        &[
            "-nostdin",
            "-v",
            "error",
            "-i",
            file.to_str().unwrap(),
            "-f",
            "null",
            "-",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "ffmpeg does not decode {} cleanly (exit {:?}):\n{stderr}",
        file.display(),
        out.status.code()
    );
}

/// Every value ffmpeg's `trace_headers` bitstream filter prints for the syntax element `name`.
fn trace_values(file: &Path, name: &str) -> Vec<u64> {
    // trace_headers logs at info level, so the default log level shows it.
    let out = tool(
        "ffmpeg",
        &[
            "-nostdin",
            "-hide_banner",
            "-i",
            file.to_str().unwrap(),
            "-c",
            "copy",
            "-bsf:v",
            "trace_headers",
            "-f",
            "null",
            "-",
        ],
    );
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffmpeg trace_headers failed:\n{text}");
    text.lines()
        .filter(|l| l.contains("[trace_headers") && l.split_whitespace().any(|w| w == name))
        .map(|l| {
            let (_, value) = l
                .rsplit_once("= ")
                .unwrap_or_else(|| panic!("unexpected trace line {l:?}"));
            value.trim().parse().unwrap()
        })
        .collect()
}

/// Asserts `name` appears in the trace and is `expected` everywhere.
fn assert_trace(file: &Path, name: &str, expected: u64) {
    let values = trace_values(file, name);
    assert!(
        !values.is_empty(),
        "{name} does not appear in the SPS of {}",
        file.display()
    );
    assert!(
        values.iter().all(|&v| v == expected),
        "{name} should be {expected} in every SPS of {}, got {values:?}",
        file.display()
    );
}

/// Top-level MP4 boxes: (type, size).
fn top_level_boxes(data: &[u8]) -> Vec<(String, u64)> {
    let mut boxes = Vec::new();
    let mut pos = 0usize;
    while pos + 8 <= data.len() {
        let size32 = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as u64;
        let kind = String::from_utf8_lossy(&data[pos + 4..pos + 8]).into_owned();
        let size = match size32 {
            0 => (data.len() - pos) as u64,
            1 => u64::from_be_bytes(data[pos + 8..pos + 16].try_into().unwrap()),
            s => s,
        };
        assert!(size >= 8, "box {kind:?} at {pos} has size {size}");
        boxes.push((kind, size));
        pos += size as usize;
    }
    assert_eq!(pos, data.len(), "top-level boxes do not tile the file");
    boxes
}

/// NAL units of an Annex B stream: (nal_unit_type, payload after the 1-byte header).
fn annexb_nals(data: &[u8]) -> Vec<(u8, &[u8])> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map(|&n| n - 3).unwrap_or(data.len());
        while end > s && data[end - 1] == 0 {
            end -= 1; // trailing zero of a 4-byte start code
        }
        if end > s {
            nals.push((data[s] & 0x1f, &data[s + 1..end]));
        }
    }
    nals
}

/// For an Annex B stream: the index of every picture that is an IDR, after asserting that each
/// IDR picture is preceded (in its access unit) by an SPS and a PPS.
fn idr_pictures_with_parameter_sets(data: &[u8]) -> Vec<usize> {
    let (mut sps, mut pps) = (false, false);
    let mut picture = None::<usize>;
    let mut idrs = Vec::new();
    for (t, payload) in annexb_nals(data) {
        match t {
            7 => sps = true,
            8 => pps = true,
            1 | 5 => {
                // first_mb_in_slice is ue(v); 0 is coded as a single 1 bit.
                let first_slice = payload.first().is_some_and(|b| b & 0x80 != 0);
                if first_slice {
                    let n = picture.map_or(0, |p| p + 1);
                    picture = Some(n);
                    if t == 5 {
                        assert!(
                            sps && pps,
                            "IDR picture {n} is not preceded by SPS and PPS in its access unit"
                        );
                        idrs.push(n);
                    }
                }
                sps = false;
                pps = false;
            }
            _ => {}
        }
    }
    idrs
}

/// The first "PSNR xx.xx dB" number in `line`.
fn first_psnr(line: &str) -> f64 {
    let rest = &line[line
        .find("PSNR ")
        .unwrap_or_else(|| panic!("no PSNR in {line:?}"))
        + 5..];
    let token = rest.split_whitespace().next().unwrap();
    assert!(
        rest[token.len()..].trim_start().starts_with("dB"),
        "PSNR should be given in dB: {line:?}"
    );
    token.parse().unwrap()
}

/// Names of the entries of `dir`.
fn entries(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Asserts `dir` holds exactly `names` (so no output, no `.NAME.PID.tmp` left behind).
fn assert_only(dir: &Path, names: &[&str]) {
    let want: BTreeSet<String> = names.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        entries(dir),
        want,
        "{} should hold only {names:?} (no partial output, no temporary file)",
        dir.display()
    );
}

/// `ffmpeg -f lavfi -i testsrc=...` into `dir/name`.
fn gen_input(dir: &Path, name: &str, size: &str, frames: u32, out_args: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let src = format!("testsrc=size={size}:rate=25");
    let frames = frames.to_string();
    let mut args = vec![
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        &src,
        "-frames:v",
        &frames,
    ];
    args.extend_from_slice(out_args);
    args.push(path.to_str().unwrap());
    let out = tool("ffmpeg", &args);
    assert!(
        out.status.success(),
        "ffmpeg could not generate {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Encodes `--pattern testcard --size 640x360 --frames 30` plus `extra` into `out`.
fn encode_testcard(dir: &Path, out: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "encode",
        "--pattern",
        "testcard",
        "--size",
        "640x360",
        "--frames",
        "30",
        "-o",
        s(out),
    ];
    args.extend_from_slice(extra);
    run_in(dir, &args).ok()
}

fn assert_common_stream(stream: &Value, profile: &str, (w, h): (u64, u64), frames: u64) {
    assert_eq!(stream["codec_name"], "h264", "{stream:#}");
    assert_eq!(stream["profile"], profile, "{stream:#}");
    assert_eq!(dims(stream), (w, h), "{stream:#}");
    assert_eq!(frame_count(stream), frames, "{stream:#}");
    assert_eq!(num(&stream["has_b_frames"]) as u64, 0, "{stream:#}");
    // ffmpeg 5/6 name full-range 4:2:0 `yuvj420p`.
    assert!(
        stream["pix_fmt"] == "yuv420p" || stream["pix_fmt"] == "yuvj420p",
        "{stream:#}"
    );
}

fn assert_colour(stream: &Value, range: &str, space: &str) {
    assert_eq!(stream["color_range"], range, "{stream:#}");
    assert_eq!(stream["color_space"], space, "{stream:#}");
    if range == "tv" {
        assert_eq!(stream["pix_fmt"], "yuv420p", "{stream:#}");
    }
    // BT.709 signals 709 primaries and transfer; BT.601 (525-line) signals SMPTE 170M for both.
    assert_eq!(stream["color_primaries"], space, "{stream:#}");
    assert_eq!(stream["color_transfer"], space, "{stream:#}");
}

/// The codec string on the summary line must agree with the stream ffprobe sees.
fn assert_codec_string(summary: &str, stream: &Value) {
    let codec = summary
        .split([' ', ','])
        .find(|w| w.starts_with("avc1."))
        .unwrap_or_else(|| panic!("no avc1.PPCCLL codec string in {summary:?}"));
    assert_eq!(codec.len(), 11, "codec string {codec:?}");
    let level = u8::from_str_radix(&codec[9..11], 16).unwrap();
    assert_eq!(
        level as u64,
        num(&stream["level"]) as u64,
        "codec string {codec} vs ffprobe level"
    );
    let profile_idc = u8::from_str_radix(&codec[5..7], 16).unwrap();
    let expected = match stream["profile"].as_str().unwrap() {
        "Constrained Baseline" | "Baseline" => 66,
        "Main" => 77,
        "High" => 100,
        p => panic!("unexpected profile {p}"),
    };
    assert_eq!(profile_idc, expected, "codec string {codec}");
}

// ---------------------------------------------------------------------------------------------
// stream properties
// ---------------------------------------------------------------------------------------------

#[test]
fn mp4_default_stream_properties_and_summary_line() {
    let dir = tempdir();
    let out = dir.path().join("out.mp4");
    let run = encode_testcard(dir.path(), &out, &[]);

    // Summary: frames, fps, kb/s, codec string and where the file went.
    let line = run.last_line();
    assert!(line.starts_with("30 frames"), "summary {line:?}");
    assert!(line.contains("fps"), "summary {line:?}");
    assert!(line.contains("kb/s"), "summary {line:?}");
    assert!(line.contains("avc1.42C0"), "summary {line:?}");
    assert!(
        line.contains(s(&out)),
        "summary should name {out:?}: {line:?}"
    );
    assert!(!line.contains("PSNR"), "no PSNR without --psnr: {line:?}");

    let (stream, format) = probe(&out);
    assert_common_stream(&stream, "Constrained Baseline", (640, 360), 30);
    assert_colour(&stream, "tv", "bt709");
    assert_codec_string(line, &stream);
    // 30 frames at 30 fps.
    let duration = num(&format["duration"]);
    assert!(
        (duration - 1.0).abs() < 0.01,
        "duration {duration} should be 1.0 s"
    );

    // Fast start: the index comes before the media data.
    let data = std::fs::read(&out).unwrap();
    let boxes = top_level_boxes(&data);
    let kinds: Vec<&str> = boxes.iter().map(|(k, _)| k.as_str()).collect();
    let moov = kinds.iter().position(|k| *k == "moov").expect("no moov");
    let mdat = kinds.iter().position(|k| *k == "mdat").expect("no mdat");
    assert!(moov < mdat, "moov must precede mdat: {kinds:?}");
    assert_eq!(kinds[0], "ftyp", "{kinds:?}");

    assert_decodes_cleanly(&out);
}

#[test]
fn mp4_timestamps_are_exact_multiples_of_the_frame_duration() {
    let dir = tempdir();
    let out = dir.path().join("out.mp4");
    encode_testcard(dir.path(), &out, &[]);
    let (stream, _) = probe(&out);
    assert_eq!(stream["avg_frame_rate"], "30/1", "{stream:#}");
    assert_eq!(num(&stream["duration_ts"]) as u64, 90_000, "{stream:#}");
    let v = ffprobe_json(&out, &["-show_entries", "packet=pts,duration"]);
    for (i, p) in v["packets"].as_array().unwrap().iter().enumerate() {
        assert_eq!(num(&p["pts"]) as u64, 3000 * i as u64, "packet {i}: {p}");
        assert_eq!(num(&p["duration"]) as u64, 3000, "packet {i}: {p}");
    }
}

#[test]
fn h264_default_stream_properties_and_vui() {
    let dir = tempdir();
    let out = dir.path().join("out.h264");
    let run = encode_testcard(dir.path(), &out, &[]);
    let line = run.last_line();
    assert!(
        line.contains(s(&out)),
        "summary should name {out:?}: {line:?}"
    );

    let (stream, _) = probe(&out);
    assert_common_stream(&stream, "Constrained Baseline", (640, 360), 30);
    assert_colour(&stream, "tv", "bt709");
    assert_codec_string(line, &stream);

    // VUI: the decoder is told not to wait for reordered frames, and the true colour.
    assert_trace(&out, "bitstream_restriction_flag", 1);
    assert_trace(&out, "max_num_reorder_frames", 0);
    assert_trace(&out, "video_full_range_flag", 0);
    assert_trace(&out, "colour_primaries", 1);
    assert_trace(&out, "transfer_characteristics", 1);
    assert_trace(&out, "matrix_coefficients", 1);

    // The stream starts with an IDR that carries its own SPS/PPS.
    let data = std::fs::read(&out).unwrap();
    assert_eq!(idr_pictures_with_parameter_sets(&data).first(), Some(&0));

    assert_decodes_cleanly(&out);
}

#[test]
fn main_and_high_profiles_have_no_reordering() {
    let dir = tempdir();
    for (flag, name, codec) in [("main", "Main", "avc1.4D"), ("high", "High", "avc1.64")] {
        for ext in ["h264", "mp4"] {
            let out = dir.path().join(format!("{flag}.{ext}"));
            let run = encode_testcard(dir.path(), &out, &["--profile", flag]);
            let line = run.last_line();
            assert!(line.contains(codec), "{flag}: summary {line:?}");
            let (stream, _) = probe(&out);
            assert_common_stream(&stream, name, (640, 360), 30);
            assert_codec_string(line, &stream);
            if ext == "h264" {
                assert_trace(&out, "max_num_reorder_frames", 0);
                assert_trace(&out, "bitstream_restriction_flag", 1);
            }
            assert_decodes_cleanly(&out);
        }
    }
}

#[test]
fn bt601_full_range_is_signalled_in_both_containers() {
    let dir = tempdir();
    for ext in ["h264", "mp4"] {
        let out = dir.path().join(format!("full.{ext}"));
        encode_testcard(
            dir.path(),
            &out,
            &["--color", "bt601", "--range", "full", "-q"],
        );
        let (stream, _) = probe(&out);
        assert_common_stream(&stream, "Constrained Baseline", (640, 360), 30);
        assert_colour(&stream, "pc", "smpte170m");
        assert_trace(&out, "video_full_range_flag", 1);
        // SMPTE 170M primaries (6), transfer (6) and BT.601 matrix (6).
        assert_trace(&out, "colour_primaries", 6);
        assert_trace(&out, "transfer_characteristics", 6);
        assert_trace(&out, "matrix_coefficients", 6);
    }
}

#[test]
fn keyframes_land_exactly_on_the_keyint_cadence() {
    let dir = tempdir();
    for ext in ["h264", "mp4"] {
        let out = dir.path().join(format!("k.{ext}"));
        run_in(
            dir.path(),
            &[
                "encode",
                "--pattern",
                "bands",
                "--size",
                "320x240",
                "--keyint",
                "10",
                "--frames",
                "35",
                "-o",
                s(&out),
            ],
        )
        .ok();
        let types = frame_types(&out);
        assert_eq!(types.len(), 35, "{ext}: {types:?}");
        for (i, (key, pict)) in types.iter().enumerate() {
            if i % 10 == 0 {
                assert!(
                    *key && pict == "I",
                    "{ext}: frame {i} should be a key I frame"
                );
            } else {
                assert!(!*key && pict == "P", "{ext}: frame {i} should be a P frame");
            }
        }
        if ext == "h264" {
            let data = std::fs::read(&out).unwrap();
            assert_eq!(idr_pictures_with_parameter_sets(&data), vec![0, 10, 20, 30]);
        }
    }
}

#[test]
fn keyint_zero_means_first_frame_only() {
    let dir = tempdir();
    let out = dir.path().join("k0.h264");
    run_in(
        dir.path(),
        &[
            "encode",
            "--pattern",
            "bands",
            "--size",
            "160x96",
            "--keyint",
            "0",
            "--frames",
            "40",
            "-o",
            s(&out),
        ],
    )
    .ok();
    let keys: Vec<usize> = frame_types(&out)
        .iter()
        .enumerate()
        .filter(|(_, (k, _))| *k)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(keys, vec![0]);
    assert_eq!(
        idr_pictures_with_parameter_sets(&std::fs::read(&out).unwrap()),
        vec![0]
    );
}

#[test]
fn psnr_is_reported_and_high_for_patterns() {
    let dir = tempdir();
    for pattern in ["testcard", "bands"] {
        for size in ["640x360", "1280x720"] {
            let out = dir.path().join(format!("{pattern}-{size}.h264"));
            let run = run_in(
                dir.path(),
                &[
                    "encode",
                    "--pattern",
                    pattern,
                    "--size",
                    size,
                    "--frames",
                    "10",
                    "--psnr",
                    "-o",
                    s(&out),
                ],
            )
            .ok();
            let line = run.last_line();
            let psnr = first_psnr(line);
            assert!(
                psnr >= 38.0,
                "{pattern} {size}: PSNR {psnr} dB below 38 dB at the default bitrate: {line:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// odd and tiny sizes
// ---------------------------------------------------------------------------------------------

#[test]
fn odd_size_is_padded_to_even_in_the_sps() {
    // 4:2:0 H.264 crops in units of 2 luma samples (H.264 7.4.2.1.1: CropUnitX = CropUnitY = 2
    // for chroma_format_idc 1, frame_mbs_only), so a 33x17 picture can only be signalled as
    // 34x18: the extra column and row are padding the encoder fills.
    let dir = tempdir();
    let out = dir.path().join("odd.h264");
    let run = run_in(
        dir.path(),
        &[
            "encode",
            "--pattern",
            "testcard",
            "--size",
            "33x17",
            "--frames",
            "5",
            "--psnr",
            "-o",
            s(&out),
        ],
    )
    .ok();
    let (stream, _) = probe(&out);
    assert_common_stream(&stream, "Constrained Baseline", (34, 18), 5);
    assert_trace(&out, "frame_cropping_flag", 1);
    assert!(first_psnr(run.last_line()).is_finite());
    assert_decodes_cleanly(&out);

    let mp4 = dir.path().join("odd.mp4");
    run_in(
        dir.path(),
        &[
            "encode",
            "--pattern",
            "testcard",
            "--size",
            "33x17",
            "--frames",
            "5",
            "-o",
            s(&mp4),
        ],
    )
    .ok();
    let (stream, _) = probe(&mp4);
    assert_eq!(frame_count(&stream), 5);
    assert_decodes_cleanly(&mp4);
}

#[test]
fn tiny_sizes_encode() {
    let dir = tempdir();
    for size in ["1x1", "2x2", "3x3", "14x14", "100x2"] {
        for ext in ["h264", "mp4"] {
            let out = dir.path().join(format!("tiny-{size}.{ext}"));
            let run = run_in(
                dir.path(),
                &[
                    "encode",
                    "--pattern",
                    "testcard",
                    "--size",
                    size,
                    "--frames",
                    "3",
                    "-o",
                    s(&out),
                ],
            );
            assert_eq!(run.code, 0, "{size}.{ext}:\n{}", run.describe());
            let (stream, _) = probe(&out);
            assert_eq!(frame_count(&stream), 3, "{size}.{ext}");
            assert_decodes_cleanly(&out);
        }
    }
}

#[test]
fn smallest_working_sizes_encode() {
    // The sizes below 16 are covered by `tiny_sizes_encode`.
    let dir = tempdir();
    for size in ["16x16", "15x15", "17x17"] {
        let out = dir.path().join(format!("small-{size}.h264"));
        run_in(
            dir.path(),
            &[
                "encode",
                "--pattern",
                "testcard",
                "--size",
                size,
                "--frames",
                "3",
                "-o",
                s(&out),
            ],
        )
        .ok();
        let (stream, _) = probe(&out);
        assert_eq!(frame_count(&stream), 3, "{size}");
        assert_decodes_cleanly(&out);
    }
}

// ---------------------------------------------------------------------------------------------
// input files
// ---------------------------------------------------------------------------------------------

#[test]
fn y4m_inputs_take_size_and_fps_from_the_header() {
    let dir = tempdir();
    let d = dir.path();
    let cases = [
        ("in420.y4m", "320x240", &["-pix_fmt", "yuv420p"], (320, 240)),
        ("in444.y4m", "320x240", &["-pix_fmt", "yuv444p"], (320, 240)),
        // Odd: the .h264 signals 34x18 (see odd_size_is_padded_to_even_in_the_sps).
        ("odd.y4m", "33x17", &["-pix_fmt", "yuv420p"], (34, 18)),
    ];
    for (name, size, args, want) in cases {
        let input = gen_input(d, name, size, 20, args);
        let h264 = d.join(format!("{name}.h264"));
        run_in(d, &["encode", s(&input), "-o", s(&h264), "--psnr"]).ok();
        let (stream, _) = probe(&h264);
        assert_common_stream(&stream, "Constrained Baseline", want, 20);
        assert_decodes_cleanly(&h264);

        // The y4m's 25 fps is the default: 20 frames last 0.8 s.
        let mp4 = d.join(format!("{name}.mp4"));
        run_in(d, &["encode", s(&input), "-o", s(&mp4)]).ok();
        let (stream, format) = probe(&mp4);
        assert_eq!(frame_count(&stream), 20, "{name}");
        assert_eq!(stream["avg_frame_rate"], "25/1", "{name}: {stream:#}");
        let duration = num(&format["duration"]);
        assert!(
            (duration - 0.8).abs() < 0.005,
            "{name}: duration {duration} should be 0.8 s"
        );
        assert_decodes_cleanly(&mp4);
    }
}

#[test]
fn fps_flag_overrides_the_y4m_rate_and_frames_limits_the_count() {
    let dir = tempdir();
    let d = dir.path();
    let input = gen_input(d, "in.y4m", "160x96", 20, &["-pix_fmt", "yuv420p"]);
    let mp4 = d.join("out.mp4");
    run_in(
        d,
        &[
            "encode",
            s(&input),
            "--fps",
            "50",
            "--frames",
            "10",
            "-o",
            s(&mp4),
        ],
    )
    .ok();
    let (stream, format) = probe(&mp4);
    assert_eq!(frame_count(&stream), 10);
    let duration = num(&format["duration"]);
    assert!(
        (duration - 0.2).abs() < 0.005,
        "10 frames at 50 fps: duration {duration}"
    );
}

#[test]
fn raw_rgba_and_nv12_inputs_with_size() {
    let dir = tempdir();
    let d = dir.path();
    for (name, fmt) in [("in.rgba", "rgba"), ("in.nv12", "nv12")] {
        let input = gen_input(d, name, "320x240", 20, &["-f", "rawvideo", "-pix_fmt", fmt]);
        let mp4 = d.join(format!("{name}.mp4"));
        run_in(
            d,
            &["encode", s(&input), "--size", "320x240", "-o", s(&mp4)],
        )
        .ok();
        let (stream, format) = probe(&mp4);
        assert_common_stream(&stream, "Constrained Baseline", (320, 240), 20);
        // Raw input has no rate: 30 fps by default.
        let duration = num(&format["duration"]);
        assert!(
            (duration - 20.0 / 30.0).abs() < 0.01,
            "{name}: duration {duration} should be 20/30 s"
        );
        assert_decodes_cleanly(&mp4);
    }
}

#[test]
fn raw_input_with_format_flag_and_other_extension() {
    let dir = tempdir();
    let d = dir.path();
    let input = gen_input(
        d,
        "frames.bin",
        "64x48",
        6,
        &["-f", "rawvideo", "-pix_fmt", "bgra"],
    );
    let out = d.join("out.h264");
    run_in(
        d,
        &[
            "encode",
            s(&input),
            "--size",
            "64x48",
            "--format",
            "bgra",
            "-o",
            s(&out),
        ],
    )
    .ok();
    let (stream, _) = probe(&out);
    assert_common_stream(&stream, "Constrained Baseline", (64, 48), 6);
}

#[test]
fn y4m_from_stdin() {
    let dir = tempdir();
    let d = dir.path();
    let input = gen_input(d, "in.y4m", "320x240", 20, &["-pix_fmt", "yuv420p"]);
    let data = std::fs::read(&input).unwrap();
    let out = d.join("out.h264");
    let run = run_with_stdin(d, &["encode", "-", "-o", "out.h264"], &data);
    assert_eq!(run.code, 0, "{}", run.describe());
    assert!(
        run.last_line().starts_with("20 frames"),
        "{}",
        run.last_line()
    );
    let (stream, _) = probe(&out);
    assert_common_stream(&stream, "Constrained Baseline", (320, 240), 20);
    assert_decodes_cleanly(&out);
}

// ---------------------------------------------------------------------------------------------
// bad input: non-zero exit, one clear line, nothing written
// ---------------------------------------------------------------------------------------------

/// A 20-frame 320x240 y4m cut in the middle of frame 8's pixels.
fn truncated_y4m() -> Vec<u8> {
    let src = tempdir();
    let full = gen_input(
        src.path(),
        "full.y4m",
        "320x240",
        20,
        &["-pix_fmt", "yuv420p"],
    );
    let data = std::fs::read(full).unwrap();
    data[..1_000_000].to_vec()
}

#[test]
fn truncated_y4m_fails_and_writes_nothing() {
    let dir = tempdir();
    let d = dir.path();
    std::fs::write(d.join("cut.y4m"), truncated_y4m()).unwrap();
    for out in ["out.mp4", "out.h264"] {
        let run = run_in(d, &["encode", "cut.y4m", "-o", out]);
        run.fails_with(3, &["cut.y4m", "frame 8", "truncated"]);
        assert!(run.stdout.trim().is_empty(), "{}", run.describe());
        assert_only(d, &["cut.y4m"]);
    }
}

#[test]
fn truncated_y4m_on_stdin_fails_and_writes_nothing() {
    let dir = tempdir();
    let d = dir.path();
    let data = truncated_y4m();
    let run = run_with_stdin(d, &["encode", "-", "-o", "out.mp4"], &data);
    run.fails_with(3, &["stdin", "frame 8", "truncated"]);
    assert_only(d, &[]);
}

#[test]
fn failed_encode_leaves_an_existing_output_untouched() {
    let dir = tempdir();
    let d = dir.path();
    std::fs::write(d.join("cut.y4m"), truncated_y4m()).unwrap();
    std::fs::write(d.join("out.mp4"), b"previous").unwrap();
    run_in(d, &["encode", "cut.y4m", "-o", "out.mp4"]).fails_with(3, &["truncated"]);
    assert_eq!(std::fs::read(d.join("out.mp4")).unwrap(), b"previous");
    assert_only(d, &["cut.y4m", "out.mp4"]);
}

#[test]
fn malformed_y4m_headers_fail() {
    let dir = tempdir();
    let d = dir.path();
    let cases: [(&str, &[u8], &[&str]); 4] = [
        (
            "zero.y4m",
            b"YUV4MPEG2 W0 H10 F25:1 C420jpeg\nFRAME\n",
            &["zero.y4m", "width"],
        ),
        (
            "huge.y4m",
            b"YUV4MPEG2 W99999 H99999 F25:1 C420jpeg\nFRAME\nabc",
            &["huge.y4m", "99999"],
        ),
        (
            "noframes.y4m",
            b"YUV4MPEG2 W64 H64 F25:1 C420jpeg\n",
            &["no frames"],
        ),
        ("garbage.y4m", b"this is not a y4m file\n", &["garbage.y4m"]),
    ];
    for (name, bytes, needles) in cases {
        std::fs::write(d.join(name), bytes).unwrap();
        run_in(d, &["encode", name, "-o", "out.h264"]).fails_with(3, needles);
    }
    assert_only(d, &["zero.y4m", "huge.y4m", "noframes.y4m", "garbage.y4m"]);
}

#[test]
fn raw_input_size_errors_are_actionable() {
    let dir = tempdir();
    let d = dir.path();
    gen_input(
        d,
        "in.rgba",
        "64x48",
        4,
        &["-f", "rawvideo", "-pix_fmt", "rgba"],
    );
    // Wrong --size: the file length is not a whole number of frames.
    run_in(
        d,
        &["encode", "in.rgba", "--size", "65x48", "-o", "out.h264"],
    )
    .fails_with(3, &["--size", "65x48"]);
    // No --size at all.
    run_in(d, &["encode", "in.rgba", "-o", "out.h264"]).fails_with(3, &["in.rgba", "--size"]);
    // Raw input with an extension that does not say the format.
    std::fs::copy(d.join("in.rgba"), d.join("in.dat")).unwrap();
    run_in(
        d,
        &["encode", "in.dat", "--size", "64x48", "-o", "out.h264"],
    )
    .fails_with(3, &["in.dat", "--format"]);
    assert_only(d, &["in.rgba", "in.dat"]);
}

#[test]
fn raw_size_mismatch_names_the_file() {
    let dir = tempdir();
    let d = dir.path();
    gen_input(
        d,
        "in.rgba",
        "64x48",
        4,
        &["-f", "rawvideo", "-pix_fmt", "rgba"],
    );
    run_in(
        d,
        &["encode", "in.rgba", "--size", "65x48", "-o", "out.h264"],
    )
    .fails_with(3, &["in.rgba", "--size"]);
}

#[test]
fn bad_sizes_are_usage_errors() {
    let dir = tempdir();
    let d = dir.path();
    for (size, needle) in [
        ("0x10", "at least 1"),
        ("10x0", "at least 1"),
        ("99999x10", "maximum"),
        ("10x99999", "maximum"),
        ("big", "1280x720"),
    ] {
        let run = run_in(
            d,
            &[
                "encode",
                "--pattern",
                "testcard",
                "--size",
                size,
                "--frames",
                "1",
                "-o",
                "out.h264",
            ],
        );
        run.usage_error(&[size, needle]);
    }
    // Within the parser's limit but beyond what the encoder supports.
    run_in(
        d,
        &[
            "encode",
            "--pattern",
            "testcard",
            "--size",
            "5000x2000",
            "--frames",
            "1",
            "-o",
            "out.h264",
        ],
    )
    .fails_with(2, &["5000x2000"]);
    assert_only(d, &[]);
}

#[test]
fn unwritable_output_paths_fail_with_exit_4() {
    let dir = tempdir();
    let d = dir.path();
    // Tests may run as root, where a read-only directory does not stop writes: use a regular
    // file where a directory is expected, and a directory that does not exist.
    std::fs::write(d.join("afile"), b"x").unwrap();
    let missing_dir = d.join("no-such-dir");
    let cases = [
        (missing_dir.join("out.mp4"), missing_dir.clone()),
        (missing_dir.join("out.h264"), missing_dir.clone()),
        (d.join("afile").join("out.mp4"), d.join("afile")),
        (d.join("afile").join("out.h264"), d.join("afile")),
    ];
    for (out, parent) in &cases {
        let run = run_in(
            d,
            &[
                "encode",
                "--pattern",
                "testcard",
                "--size",
                "64x64",
                "--frames",
                "2",
                "-o",
                s(out),
            ],
        );
        let name = out.file_name().unwrap().to_str().unwrap();
        run.fails_with(4, &[s(parent), name]);
    }
    assert_only(d, &["afile"]);

    // The absolute /nonexistent-dir of the issue as well.
    let run = run_in(
        d,
        &[
            "encode",
            "--pattern",
            "testcard",
            "--size",
            "64x64",
            "--frames",
            "2",
            "-o",
            "/nonexistent-dir/out.mp4",
        ],
    );
    run.fails_with(4, &["/nonexistent-dir", "out.mp4"]);
    assert!(!Path::new("/nonexistent-dir").exists());
}

#[test]
fn os_errors_are_reported_once() {
    let dir = tempdir();
    let d = dir.path();
    let run = run_in(
        d,
        &[
            "encode",
            "--pattern",
            "testcard",
            "--size",
            "64x64",
            "--frames",
            "2",
            "-o",
            "no-such-dir/out.mp4",
        ],
    );
    let line = run.fails_with(4, &["no-such-dir"]);
    assert_eq!(line.matches("os error").count(), 1, "{line:?}");

    let run = run_in(d, &["encode", "missing.y4m", "-o", "out.h264"]);
    let line = run.fails_with(3, &["missing.y4m"]);
    assert_eq!(line.matches("os error").count(), 1, "{line:?}");
}

#[test]
fn usage_errors_list_the_valid_choices() {
    let dir = tempdir();
    let d = dir.path();
    let pattern = |extra: &[&str]| {
        let mut a = vec!["encode", "--size", "64x64", "--frames", "2"];
        a.extend_from_slice(extra);
        run_in(d, &a)
    };
    pattern(&["--pattern", "testcard", "-o", "out.avi"]).fails_with(2, &["avi", ".h264", ".mp4"]);
    pattern(&["--pattern", "nosuch", "-o", "out.h264"])
        .fails_with(2, &["nosuch", "testcard", "bands", "gradient", "plasma"]);
    let run = pattern(&[
        "--pattern",
        "testcard",
        "--backend",
        "nosuch",
        "-o",
        "out.h264",
    ]);
    assert!(
        run.code == 5 || run.code == 2,
        "unknown backend: exit 5 or 2:\n{}",
        run.describe()
    );
    run.fails_with(run.code, &["nosuch", "openh264"]);
    // Neither input nor pattern.
    assert_eq!(run_in(d, &["encode", "-o", "out.h264"]).code, 2);
    assert_only(d, &[]);
}

#[test]
fn missing_input_file_names_the_path() {
    let dir = tempdir();
    let d = dir.path();
    run_in(d, &["encode", "missing.y4m", "-o", "out.h264"]).fails_with(3, &["missing.y4m"]);
    run_in(
        d,
        &["encode", "missing.rgba", "--size", "64x64", "-o", "out.mp4"],
    )
    .fails_with(3, &["missing.rgba"]);
    assert_only(d, &[]);
}

// ---------------------------------------------------------------------------------------------
// doctor, help, demo
// ---------------------------------------------------------------------------------------------

#[test]
fn doctor_lists_openh264_and_its_assembly() {
    let dir = tempdir();
    let run = run_in(dir.path(), &["doctor"]).ok();
    let row = run
        .stdout
        .lines()
        .find(|l| l.starts_with("encoder openh264"))
        .unwrap_or_else(|| panic!("no `encoder openh264` row:\n{}", run.stdout));
    let status = row
        .trim_start_matches("encoder openh264")
        .trim_start_matches(" (software)")
        .split_whitespace()
        .next();
    assert_eq!(status, Some("ok"), "openh264 row: {row:?}");
    assert!(
        run.stdout
            .lines()
            .any(|l| l.to_ascii_lowercase().contains("assembly")),
        "no assembly row:\n{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("--backend openh264"),
        "doctor should recommend a backend:\n{}",
        run.stdout
    );
}

/// Symbols that only OpenH264's x86 assembly defines (`codec/common/x86/cpuid.asm`); a plain-C
/// build has none of them.
#[cfg(target_arch = "x86_64")]
const ASM_ONLY_SYMBOLS: &[&str] = &["WelsCPUId", "WelsCPUSupportAVX", "WelsCPUDetectAVX512"];

/// `doctor` must report what the binary really links, not what some build script saw: read the
/// binary's own symbol table and compare. When the test script installed nasm before building
/// (FRAMECAST_REQUIRE_ASM=1), the fast build is also required.
#[cfg(target_arch = "x86_64")]
#[test]
fn doctor_reports_the_assembly_the_binary_really_links() {
    use object::{Object, ObjectSymbol};
    let exe = std::fs::read(env!("CARGO_BIN_EXE_framecast")).expect("read the framecast binary");
    let file = object::File::parse(&*exe).expect("parse the framecast binary");
    let found: Vec<String> = file
        .symbols()
        // nasm's symbols have no ELF type (NOTYPE), so "defined", not `is_definition()`.
        .filter(|s| !s.is_undefined())
        .filter_map(|s| s.name().ok().map(|n| n.trim_start_matches('_').to_string()))
        .filter(|n| ASM_ONLY_SYMBOLS.contains(&n.as_str()))
        .collect();
    assert!(
        file.symbols().count() > 1000,
        "the binary has no symbol table to check against (stripped?)"
    );
    let has_asm = !found.is_empty();

    let dir = tempdir();
    let report = run_in(dir.path(), &["doctor"]).ok();
    let row = report
        .stdout
        .lines()
        .find(|l| l.starts_with("openh264 assembly"))
        .unwrap_or_else(|| panic!("no `openh264 assembly` row:\n{}", report.stdout))
        .to_string();
    let check = run_in(dir.path(), &["doctor", "--require-assembly"]);
    if has_asm {
        assert!(row.contains("yes") && row.contains("SSE2"), "{row}");
        assert!(check.ok().stdout.contains("yes"));
    } else {
        assert!(
            row.contains("NO"),
            "no assembly symbols in the binary, yet: {row}"
        );
        check.fails_with(5, &["without its assembly", "nasm"]);
    }
    if std::env::var_os("FRAMECAST_REQUIRE_ASM").is_some() {
        assert!(
            has_asm,
            "FRAMECAST_REQUIRE_ASM is set but the binary was built without OpenH264's assembly \
             (symbols {ASM_ONLY_SYMBOLS:?} missing): run `cargo clean -p openh264-sys2` with nasm installed"
        );
    }
}

#[test]
fn help_for_every_command() {
    let dir = tempdir();
    let d = dir.path();
    let top = run_in(d, &["--help"]).ok();
    for word in ["encode", "demo", "doctor", "bench", "Exit codes"] {
        assert!(
            top.stdout.contains(word),
            "--help lacks {word:?}:\n{}",
            top.stdout
        );
    }
    let cases: [(&str, &[&str]); 4] = [
        (
            "encode",
            &[
                "--pattern",
                "--output",
                "--size",
                "--frames",
                "--fps",
                "--bitrate",
                "--keyint",
                "--backend",
                "--color",
                "--range",
                "--profile",
                "--format",
                "--psnr",
            ],
        ),
        ("demo", &["--output", "--scene", "--seconds"]),
        ("doctor", &["--help"]),
        ("bench", &["--sizes", "--frames", "--pattern", "--backend"]),
    ];
    for (cmd, options) in cases {
        let run = run_in(d, &[cmd, "--help"]).ok();
        for o in options {
            assert!(
                run.stdout.contains(o),
                "`{cmd} --help` lacks {o}:\n{}",
                run.stdout
            );
        }
    }
    assert!(run_in(d, &["--version"])
        .ok()
        .stdout
        .starts_with("framecast "));
}

#[test]
fn demo_writes_a_playable_one_second_file() {
    let dir = tempdir();
    let out = dir.path().join("X.mp4");
    let run = run_in(dir.path(), &["demo", "-o", s(&out), "--seconds", "1"]).ok();
    assert!(
        run.stdout.contains(s(&out)),
        "demo should say where the file went:\n{}",
        run.describe()
    );
    let (stream, format) = probe(&out);
    assert_common_stream(&stream, "Constrained Baseline", (1280, 720), 30);
    let duration = num(&format["duration"]);
    assert!((duration - 1.0).abs() < 0.01, "duration {duration}");
    assert_decodes_cleanly(&out);
    assert_only(dir.path(), &["X.mp4"]);
}

#[test]
fn demo_to_an_unwritable_path_fails_cleanly() {
    let dir = tempdir();
    let d = dir.path();
    let run = run_in(
        d,
        &[
            "demo",
            "-o",
            "missing/X.mp4",
            "--seconds",
            "1",
            "--scene",
            "bands",
        ],
    );
    run.fails_with(4, &["missing", "X.mp4"]);
    assert_only(d, &[]);
}

/// `--backend x264 --bframes 2 --profile high --preset veryfast` into an `.mp4`: ffprobe sees B-frames
/// (`has_b_frames` > 0, B pictures, packets whose pts is after their dts), the edit list starts
/// the presentation at 0, and ffmpeg's decode of every frame matches the input frame of the
/// same index (testsrc draws a counter, so a frame out of order would not).
#[cfg(feature = "x264")]
#[test]
fn x264_bframes_mp4_has_ctts_and_decodes_in_order() {
    let dir = tempdir();
    let d = dir.path();
    let input = gen_input(d, "in.y4m", "320x240", 30, &["-pix_fmt", "yuv420p"]);
    let out = d.join("b.mp4");
    let line = run_in(
        d,
        &[
            "encode",
            s(&input),
            "-o",
            s(&out),
            "--backend",
            "x264",
            "--bframes",
            "2",
            "--profile",
            "high",
            // ultrafast turns off the High tools (8x8 transform, CABAC) and so writes Main.
            "--preset",
            "veryfast",
        ],
    )
    .ok()
    .last_line()
    .to_string();
    assert!(line.contains("x264"), "{line}");
    let (stream, _) = probe(&out);
    assert_eq!(frame_count(&stream), 30);
    assert!(num(&stream["has_b_frames"]) > 0.0, "{stream:#}");
    assert_eq!(stream["profile"], "High", "{stream:#}");
    assert!(
        frame_types(&out).iter().any(|(_, t)| t == "B"),
        "no B pictures"
    );
    let packets = ffprobe_json(&out, &["-show_packets", "-show_entries", "packet=pts,dts"]);
    let packets = packets["packets"].as_array().expect("packets");
    assert!(
        packets.iter().any(|p| num(&p["pts"]) > num(&p["dts"])),
        "no packet is reordered"
    );
    let frames = ffprobe_json(&out, &["-show_frames", "-show_entries", "frame=pts"]);
    let pts: Vec<f64> = frames["frames"]
        .as_array()
        .expect("frames")
        .iter()
        .map(|f| num(&f["pts"]))
        .collect();
    assert_eq!(pts.len(), 30);
    assert!(pts.windows(2).all(|w| w[0] < w[1]), "{pts:?}");
    // Per-frame PSNR of the decode against the input, frame i against frame i.
    let stats = d.join("psnr.log");
    let filter = format!("psnr=stats_file={}", s(&stats));
    let run = tool(
        "ffmpeg",
        &[
            "-nostdin",
            "-v",
            "error",
            "-i",
            s(&out),
            "-i",
            s(&input),
            "-lavfi",
            &filter,
            "-f",
            "null",
            "-",
        ],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let log = std::fs::read_to_string(&stats).unwrap();
    let per_frame: Vec<f64> = log
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|f| f.strip_prefix("psnr_avg:"))
        })
        .map(|v| v.parse().unwrap_or(f64::INFINITY))
        .collect();
    assert_eq!(per_frame.len(), 30, "{log}");
    assert!(
        per_frame.iter().all(|&p| p > 30.0),
        "a frame decodes far from its input (out of order?): {per_frame:?}"
    );
}

/// A backend without presets or B-frames refuses them, naming x264.
#[test]
fn x264_only_options_are_refused_by_other_backends_with_a_pointer() {
    let dir = tempdir();
    let d = dir.path();
    let out = d.join("x.mp4");
    for extra in [
        &["--bframes", "2", "--profile", "high"][..],
        &["--preset", "slow"][..],
        &["--intra-refresh"][..],
    ] {
        let mut all = vec![
            "encode",
            "--pattern",
            "testcard",
            "--frames",
            "3",
            "-o",
            s(&out),
            "--backend",
            "openh264",
        ];
        all.extend_from_slice(extra);
        run_in(d, &all).fails_with(2, &["openh264", "x264"]);
    }
}
