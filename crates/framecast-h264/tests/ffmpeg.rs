//! The rewritten SPS as ffmpeg sees it: `trace_headers` prints the new VUI and cropping, and the
//! stream with the rewritten SPS spliced in still decodes. Skips (with a message) only when
//! ffmpeg is not installed; CI always has it.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::fixtures;
use framecast_h264::nal::{annexb_nals, nal_type, write_annexb, NalType};
use framecast_h264::sps::{rewrite_sps, SpsRewrite};

fn ffmpeg_available() -> bool {
    let ok = |bin: &str| {
        Command::new(bin)
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if ok("ffmpeg") && ok("ffprobe") {
        true
    } else {
        eprintln!("SKIPPED: ffmpeg/ffprobe not found on PATH");
        false
    }
}

/// Run a tool with `stream` on stdin; returns (success, stdout, stderr).
fn run(bin: &str, args: &[&str], stream: &[u8]) -> (bool, String, String) {
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = stream.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every syntax element `trace_headers` printed for the first SPS, as (name, value).
fn traced_sps(stream: &[u8]) -> Vec<(String, i64)> {
    let (ok, _, log) = run(
        "ffmpeg",
        &[
            "-hide_banner",
            "-loglevel",
            "trace",
            "-f",
            "h264",
            "-i",
            "-",
            "-c",
            "copy",
            "-bsf:v",
            "trace_headers",
            "-f",
            "null",
            "-",
        ],
        stream,
    );
    assert!(ok, "trace_headers failed:\n{log}");
    let mut fields = Vec::new();
    let mut in_sps = false;
    for line in log.lines().filter(|l| l.starts_with("[trace_headers")) {
        let text = line.split_once(']').map_or("", |(_, t)| t).trim();
        if text.ends_with("Sequence Parameter Set") {
            if in_sps {
                break;
            }
            in_sps = true;
            continue;
        }
        if in_sps && text.ends_with("Parameter Set") {
            break;
        }
        // "<bit position> <name> <bits> = <value>"
        let mut words = text.split_whitespace();
        if let (Some(_pos), Some(name), Some(value)) =
            (words.next(), words.next(), text.rsplit(' ').next())
        {
            if let Ok(v) = value.parse() {
                if in_sps {
                    fields.push((name.to_string(), v));
                }
            }
        }
    }
    fields
}

fn field(fields: &[(String, i64)], name: &str) -> i64 {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{name} not in trace: {fields:?}"))
        .1
}

fn splice_sps(stream: &[u8], sps: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for nal in annexb_nals(stream) {
        let nal = if nal_type(nal) == Some(NalType::Sps) {
            sps
        } else {
            nal
        };
        write_annexb([nal], &mut out);
    }
    out
}

#[test]
fn ffmpeg_reads_and_decodes_rewritten_sps() {
    if !ffmpeg_available() {
        return;
    }
    for f in fixtures() {
        let info = framecast_h264::sps::parse_sps(&f.sps()).unwrap();
        let (uw, uh) = info.crop_units();
        // Shave one crop unit off each dimension (odd for 4:4:4 / monochrome).
        let display = (info.width - uw, info.height - uh);
        let rw = SpsRewrite {
            display_size: Some(display),
            video_full_range_flag: true,
            colour_primaries: 1,
            transfer_characteristics: 13,
            matrix_coefficients: 6,
            max_dec_frame_buffering: None,
            max_num_reorder_frames: 0,
            gaps_in_frame_num_allowed: None,
        };
        let sps = rewrite_sps(&f.sps(), &rw).unwrap();
        let stream = splice_sps(f.stream, &sps);

        let t = traced_sps(&stream);
        let n = f.name;
        assert_eq!(field(&t, "bitstream_restriction_flag"), 1, "{n}");
        assert_eq!(field(&t, "max_num_reorder_frames"), 0, "{n}");
        assert_eq!(
            field(&t, "max_dec_frame_buffering"),
            i64::from(info.max_num_ref_frames),
            "{n}"
        );
        assert_eq!(field(&t, "video_signal_type_present_flag"), 1, "{n}");
        assert_eq!(field(&t, "video_full_range_flag"), 1, "{n}");
        assert_eq!(field(&t, "colour_primaries"), 1, "{n}");
        assert_eq!(field(&t, "transfer_characteristics"), 13, "{n}");
        assert_eq!(field(&t, "matrix_coefficients"), 6, "{n}");
        assert_eq!(
            field(&t, "profile_idc"),
            i64::from(f.expect.profile_idc),
            "{n}"
        );
        assert_eq!(field(&t, "level_idc"), i64::from(f.expect.level_idc), "{n}");
        let right = field(&t, "frame_crop_right_offset");
        let bottom = field(&t, "frame_crop_bottom_offset");
        assert_eq!(
            i64::from(info.coded_width) - right * i64::from(uw),
            i64::from(display.0),
            "{n}"
        );
        assert_eq!(
            i64::from(info.coded_height) - bottom * i64::from(uh),
            i64::from(display.1),
            "{n}"
        );

        // Decode: every frame comes out, at the cropped size.
        let (ok, out, err) = run(
            "ffprobe",
            &["-v", "error", "-f", "h264", "-i", "-", "-count_frames", "-select_streams", "v:0",
              "-show_entries", "stream=width,height,nb_read_frames,color_range,color_primaries,color_transfer,color_space",
              "-of", "default=noprint_wrappers=1"],
            &stream,
        );
        assert!(ok, "{n}: ffprobe failed: {err}");
        assert!(err.trim().is_empty(), "{n}: decoder complained: {err}");
        let kv = |k: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .unwrap_or_else(|| panic!("{n}: {k} missing in {out}"))
                .to_string()
        };
        assert_eq!(kv("width"), display.0.to_string(), "{n}");
        assert_eq!(kv("height"), display.1.to_string(), "{n}");
        assert_eq!(kv("nb_read_frames"), "2", "{n}");
        assert_eq!(kv("color_range"), "pc", "{n}");
        assert_eq!(kv("color_primaries"), "bt709", "{n}");
        assert_eq!(kv("color_transfer"), "iec61966-2-1", "{n}");
        assert_eq!(kv("color_space"), "smpte170m", "{n}");
    }
}
