//! Fast-start MP4 writing, checked with ffprobe and ffmpeg.
//!
//! The H.264 comes from ffmpeg/libx264 (the project's own encoders live in another crate), is
//! split into access units on its access unit delimiters and converted to AVCC here with small
//! helpers, so this crate's tests depend on nothing else in the workspace.

mod common;

use std::path::Path;
use std::process::Command;

use framecast_io::{IoError, Mp4Config, Mp4Writer};

/// NAL units of an Annex B stream (start codes removed).
fn split_nals(annex_b: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new(); // (start code position, payload position)
    let mut i = 0;
    while i + 3 <= annex_b.len() {
        if annex_b[i..i + 3] == [0, 0, 1] {
            let sc = if i > 0 && annex_b[i - 1] == 0 {
                i - 1
            } else {
                i
            };
            starts.push((sc, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals = Vec::new();
    for (k, &(_, payload)) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map_or(annex_b.len(), |&(sc, _)| sc);
        // Trailing zero bytes before the next start code belong to neither NAL.
        let mut end = end;
        while end > payload && annex_b[end - 1] == 0 {
            end -= 1;
        }
        nals.push(&annex_b[payload..end]);
    }
    nals
}

struct AccessUnit {
    avcc: Vec<u8>,
    keyframe: bool,
}

/// Splits on AUD NAL units (type 9, present thanks to `-x264-params aud=1`), drops the AUDs and
/// length-prefixes the rest. Returns the AUs and the first SPS and PPS seen.
fn access_units(annex_b: &[u8]) -> (Vec<AccessUnit>, Vec<u8>, Vec<u8>) {
    let mut aus: Vec<AccessUnit> = Vec::new();
    let (mut sps, mut pps) = (None, None);
    for nal in split_nals(annex_b) {
        let kind = nal[0] & 0x1f;
        match kind {
            9 => {
                aus.push(AccessUnit {
                    avcc: Vec::new(),
                    keyframe: false,
                });
                continue;
            }
            7 => {
                sps.get_or_insert_with(|| nal.to_vec());
            }
            8 => {
                pps.get_or_insert_with(|| nal.to_vec());
            }
            5 => aus.last_mut().expect("AUD first").keyframe = true,
            _ => {}
        }
        let au = aus.last_mut().expect("stream starts with an AUD");
        au.avcc.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        au.avcc.extend_from_slice(nal);
    }
    (aus, sps.expect("an SPS"), pps.expect("a PPS"))
}

/// AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1) for one SPS and one PPS.
fn avcc(sps: &[u8], pps: &[u8]) -> Vec<u8> {
    let mut v = vec![1, sps[1], sps[2], sps[3], 0xFC | 3, 0xE0 | 1];
    v.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    v.extend_from_slice(sps);
    v.push(1);
    v.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    v.extend_from_slice(pps);
    if matches!(sps[1], 100 | 110 | 122 | 144) {
        // High profiles: chroma_format_idc 1 (4:2:0), 8-bit luma and chroma, no SPS extensions.
        v.extend_from_slice(&[0xFC | 1, 0xF8, 0xF8, 0]);
    }
    v
}

/// Top-level boxes of an MP4 as (type, size).
fn top_level_boxes(data: &[u8]) -> Vec<(String, u64)> {
    let mut boxes = Vec::new();
    let mut pos = 0usize;
    while pos + 8 <= data.len() {
        let mut size = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as u64;
        let kind = String::from_utf8_lossy(&data[pos + 4..pos + 8]).into_owned();
        if size == 1 {
            size = u64::from_be_bytes(data[pos + 8..pos + 16].try_into().unwrap());
        } else if size == 0 {
            size = (data.len() - pos) as u64;
        }
        assert!(size >= 8, "box {kind} at {pos} has size {size}");
        boxes.push((kind, size));
        pos += size as usize;
    }
    assert_eq!(pos, data.len(), "boxes do not tile the file");
    boxes
}

/// The value of `"key": value` in ffprobe's JSON (first occurrence), without quotes.
fn json_value(json: &str, key: &str) -> String {
    let needle = format!("\"{key}\": ");
    let start = json
        .find(&needle)
        .unwrap_or_else(|| panic!("{key} missing from ffprobe output:\n{json}"))
        + needle.len();
    let rest = &json[start..];
    let end = rest.find([',', '\n']).unwrap_or(rest.len());
    rest[..end].trim().trim_matches('"').to_owned()
}

fn decode_to_raw(input: &Path, out: &Path) -> Vec<u8> {
    common::ffmpeg(&[
        "-i",
        input.to_str().unwrap(),
        "-pix_fmt",
        "yuv420p",
        "-f",
        "rawvideo",
        out.to_str().unwrap(),
    ]);
    std::fs::read(out).unwrap()
}

fn mp4_roundtrip(width: u32, height: u32, late_avcc: bool) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.h264");
    let size = format!("testsrc=size={width}x{height}:rate=30");
    common::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &size,
        "-frames:v",
        "30",
        "-c:v",
        "libx264",
        "-bf",
        "0",
        "-g",
        "10",
        "-pix_fmt",
        "yuv420p",
        "-x264-params",
        "aud=1",
        "-bsf:v",
        "h264_mp4toannexb",
        "-f",
        "h264",
        src.to_str().unwrap(),
    ]);
    let (aus, sps, pps) = access_units(&std::fs::read(&src).unwrap());
    assert_eq!(aus.len(), 30);
    assert!(aus[0].keyframe && aus[10].keyframe && !aus[1].keyframe);

    let out = dir.path().join("out.mp4");
    let config = Mp4Config {
        width,
        height,
        timescale: 90_000,
        avcc: if late_avcc {
            Vec::new()
        } else {
            avcc(&sps, &pps)
        },
        color: Some((1, 1, 1, false)),
    };
    let mut writer = Mp4Writer::create(&out, config).unwrap();
    for (i, au) in aus.iter().enumerate() {
        writer
            .write_sample(&au.avcc, 1000 + i as u64 * 3000, 3000, au.keyframe)
            .unwrap();
        if late_avcc && i == 0 {
            writer.set_avcc(avcc(&sps, &pps)).unwrap();
        }
    }
    assert!(!out.exists(), "nothing at the final path before finish");
    let summary = writer.finish().unwrap();
    assert_eq!(summary.frames, 30);
    assert_eq!(summary.duration, std::time::Duration::from_secs(1));
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(summary.bytes, bytes.len() as u64);

    // Fast start: ftyp, moov, mdat, nothing else; and no temporary files left behind.
    let boxes: Vec<String> = top_level_boxes(&bytes).into_iter().map(|b| b.0).collect();
    assert_eq!(boxes, ["ftyp", "moov", "mdat"]);
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["out.mp4", "src.h264"]);

    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_streams",
            "-show_format",
            "-count_frames",
        ])
        .args(["-of", "json"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        probe.status.success() && probe.stderr.is_empty(),
        "{probe:?}"
    );
    let json = String::from_utf8(probe.stdout).unwrap();
    assert_eq!(json_value(&json, "codec_name"), "h264");
    assert_eq!(json_value(&json, "width"), width.to_string());
    assert_eq!(json_value(&json, "height"), height.to_string());
    assert_eq!(json_value(&json, "nb_read_frames"), "30");
    assert_eq!(json_value(&json, "nb_frames"), "30");
    assert_eq!(json_value(&json, "r_frame_rate"), "30/1");
    assert_eq!(json_value(&json, "sample_aspect_ratio"), "1:1");
    assert_eq!(json_value(&json, "color_primaries"), "bt709");
    let duration: f64 = json_value(&json, "duration").parse().unwrap();
    assert!((duration - 1.0).abs() < 1e-6, "duration {duration}");

    let check = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&out)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
    assert!(
        check.stderr.is_empty(),
        "ffmpeg complained: {}",
        String::from_utf8_lossy(&check.stderr)
    );

    // The container changes nothing about the pictures: decode both and compare every frame.
    let from_h264 = decode_to_raw(&src, &dir.path().join("a.yuv"));
    let from_mp4 = decode_to_raw(&out, &dir.path().join("b.yuv"));
    let frame = (width * height + 2 * width.div_ceil(2) * height.div_ceil(2)) as usize;
    assert_eq!(from_h264.len(), 30 * frame);
    assert_eq!(
        &from_mp4[..frame],
        &from_h264[..frame],
        "first frame differs"
    );
    assert!(from_mp4 == from_h264, "decoded frames differ");
}

#[test]
fn mp4_320x240_plays_and_decodes_identically() {
    if !common::have("ffmpeg") || !common::have("ffprobe") {
        return;
    }
    mp4_roundtrip(320, 240, false);
}

#[test]
fn mp4_small_size_with_avcc_set_after_first_sample() {
    if !common::have("ffmpeg") || !common::have("ffprobe") {
        return;
    }
    mp4_roundtrip(34, 18, true);
}

#[test]
fn mp4_with_no_samples_is_refused_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("empty.mp4");
    let writer = Mp4Writer::create(
        &out,
        Mp4Config {
            width: 64,
            height: 64,
            timescale: 90_000,
            avcc: vec![1, 66, 0, 30, 0xFF, 0xE0, 0],
            color: None,
        },
    )
    .unwrap();
    let err = writer.finish().unwrap_err();
    assert!(matches!(err, IoError::Mp4 { .. }), "{err:?}");
    assert!(err.to_string().contains("no samples") && err.to_string().contains("empty.mp4"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn mp4_rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bad.mp4");
    let config = Mp4Config {
        width: 64,
        height: 64,
        timescale: 90_000,
        avcc: Vec::new(),
        color: None,
    };
    let mut w = Mp4Writer::create(&out, config.clone()).unwrap();
    // Annex B instead of length prefixes.
    let err = w
        .write_sample(&[0, 0, 0, 1, 0x65, 0x88, 0x84, 0x00, 0x10], 0, 3000, true)
        .unwrap_err();
    assert!(err.to_string().contains("length-prefixed"), "{err}");
    w.write_sample(&[0, 0, 0, 2, 0x65, 0x88], 0, 3000, true)
        .unwrap();
    let err = w
        .write_sample(&[0, 0, 0, 1, 0x41], 0, 3000, false)
        .unwrap_err();
    assert!(err.to_string().contains("strictly increase"), "{err}");
    assert!(w.set_avcc(vec![0, 1, 2]).is_err());
    // No avcC by finish.
    let err = w.finish().unwrap_err();
    assert!(err.to_string().contains("avcC"), "{err}");
    assert!(!out.exists());

    let err = Mp4Writer::create(
        &out,
        Mp4Config {
            timescale: 0,
            ..config
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("timescale"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// One numeric field of every decoded frame of `file`, in presentation order (ffprobe's CSV;
/// side data lines, such as x264's SEI, follow some frames: only numbers count).
fn frame_field<T: std::str::FromStr>(file: &Path, field: &str) -> Vec<T> {
    let entry = format!("frame={field}");
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_frames", "-show_entries", &entry])
        .args(["-of", "csv=p=0"])
        .arg(file)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split(',').next()?.trim().parse().ok())
        .collect()
}

/// A stream with B-frames (libx264 `-bf 2`), written in decode order with `write_sample_at`:
/// ffprobe sees `has_b_frames`, a `ctts` box, presentation times that start at 0 (the edit
/// list) and strictly increase, and every decoded frame equals the raw stream's decode.
#[test]
fn mp4_with_b_frames_presents_in_order_and_decodes_identically() {
    if !common::have("ffmpeg") || !common::have("ffprobe") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.h264");
    common::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=30",
        "-frames:v",
        "30",
        "-c:v",
        "libx264",
        "-bf",
        "2",
        "-g",
        "30",
        "-pix_fmt",
        "yuv420p",
        "-x264-params",
        "aud=1",
        "-f",
        "h264",
        src.to_str().unwrap(),
    ]);
    let (aus, sps, pps) = access_units(&std::fs::read(&src).unwrap());
    assert_eq!(aus.len(), 30);
    // Presentation index of each access unit: ffprobe's frames come in presentation order,
    // each naming the byte position of the access unit it came from.
    let positions: Vec<u64> = frame_field(&src, "pkt_pos");
    assert_eq!(positions.len(), 30);
    let mut sorted = positions.clone();
    sorted.sort_unstable();
    // Decode order is file order: the k-th access unit starts at the k-th smallest position.
    let shown_at: Vec<usize> = sorted
        .iter()
        .map(|p| positions.iter().position(|q| q == p).unwrap())
        .collect();
    assert!(
        shown_at.windows(2).any(|w| w[0] > w[1]),
        "libx264 reordered nothing: {shown_at:?}"
    );

    let out = dir.path().join("b.mp4");
    let config = Mp4Config {
        width: 320,
        height: 240,
        timescale: 90_000,
        avcc: avcc(&sps, &pps),
        color: None,
    };
    let mut writer = Mp4Writer::create(&out, config).unwrap();
    for (k, au) in aus.iter().enumerate() {
        // dts = k frames; pts = the presentation index two frames later (depth 2 at most).
        let (dts, pts) = (k as u64 * 3000, (shown_at[k] as u64 + 2) * 3000);
        writer
            .write_sample_at(&au.avcc, dts, pts, 3000, au.keyframe)
            .unwrap();
    }
    writer.finish().unwrap();

    let bytes = std::fs::read(&out).unwrap();
    assert!(
        bytes.windows(4).any(|w| w == b"ctts") && bytes.windows(4).any(|w| w == b"elst"),
        "no ctts or elst box"
    );
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_streams",
            "-count_frames",
            "-of",
            "json",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let json = String::from_utf8(probe.stdout).unwrap();
    assert_eq!(json_value(&json, "nb_read_frames"), "30");
    assert_ne!(json_value(&json, "has_b_frames"), "0", "{json}");
    let pts: Vec<i64> = frame_field(&out, "pts");
    assert_eq!(pts.first(), Some(&0), "{pts:?}");
    assert!(pts.windows(2).all(|w| w[0] < w[1]), "{pts:?}");

    let from_h264 = decode_to_raw(&src, &dir.path().join("a.yuv"));
    let from_mp4 = decode_to_raw(&out, &dir.path().join("b.yuv"));
    assert_eq!(from_h264.len(), 30 * 320 * 240 * 3 / 2);
    assert!(from_mp4 == from_h264, "decoded frames differ");
}
