//! YUV4MPEG2 reading, checked against ffmpeg's own output.

mod common;

use std::io::Cursor;
use std::path::Path;

use framecast_core::{PixelFormat, Range};
use framecast_io::{
    open_input, FrameSource, InputHint, IoError, OwnedFrame, Y4mColorspace, Y4mReader,
};

fn read_all(path: &Path) -> (Box<dyn FrameSource>, Vec<OwnedFrame>) {
    let mut src = open_input(path, InputHint::default()).unwrap();
    let mut frames = Vec::new();
    while let Some(f) = src.next_frame().unwrap() {
        frames.push(f);
    }
    (src, frames)
}

const W: usize = 33;
const H: usize = 17;
const CW: usize = 17;
const CH: usize = 9;
const I420_LEN: usize = W * H + 2 * CW * CH;

#[test]
fn reads_420_like_ffmpeg() {
    if !common::have("ffmpeg") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let y4m = dir.path().join("a.y4m");
    let raw = dir.path().join("a.yuv");
    common::testsrc(33, 17, 3, &["-pix_fmt", "yuv420p"], &y4m);
    common::ffmpeg(&[
        "-i",
        y4m.to_str().unwrap(),
        "-pix_fmt",
        "yuv420p",
        "-f",
        "rawvideo",
        raw.to_str().unwrap(),
    ]);
    let reference = std::fs::read(&raw).unwrap();
    let (src, frames) = read_all(&y4m);
    assert_eq!((src.width(), src.height()), (33, 17));
    assert_eq!(src.fps(), Some((25, 1)));
    assert_eq!(src.frame_count_hint(), Some(3));
    assert_eq!(frames.len(), 3);
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f.format(), PixelFormat::I420);
        assert_eq!(f.data().len(), I420_LEN);
        assert_eq!(
            f.data(),
            &reference[i * I420_LEN..(i + 1) * I420_LEN],
            "frame {i}"
        );
        let view = f.as_frame();
        assert_eq!((view.width(), view.height()), (33, 17));
    }

    let reader = Y4mReader::new(std::fs::File::open(&y4m).unwrap()).unwrap();
    assert_eq!(reader.colorspace(), Y4mColorspace::C420Jpeg);
    assert_eq!(reader.color_range(), Some(Range::Limited));
    assert_eq!(reader.interlace(), 'p');
    assert_eq!(reader.pixel_aspect(), Some((1, 1)));
}

/// Averages each 2x2 block over the samples that exist, rounding half up.
fn hand_average(plane: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(CW * CH);
    for cy in 0..CH {
        for cx in 0..CW {
            let mut sum = 0u32;
            let mut n = 0u32;
            for y in [2 * cy, 2 * cy + 1] {
                for x in [2 * cx, 2 * cx + 1] {
                    if x < W && y < H {
                        sum += plane[y * W + x] as u32;
                        n += 1;
                    }
                }
            }
            out.push(((sum + n / 2) / n) as u8);
        }
    }
    out
}

#[test]
fn reads_444_by_averaging_chroma() {
    if !common::have("ffmpeg") {
        return;
    }
    // testsrc has sharp colour edges (where any two downsampling filters disagree a lot), so it
    // checks our exact average; the smooth `gradients` source also checks closeness to swscale.
    // (gradients picks random colours unless c0/c1 are given, whatever its seed.)
    for (source, compare_with_swscale) in [
        ("testsrc=size=33x17:rate=25", false),
        ("gradients=size=33x17:rate=25:c0=0x2040a0:c1=0xe0c020:nb_colors=2:x0=0:y0=0:x1=32:y1=16:seed=1",
            true,),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let y4m = dir.path().join("b.y4m");
        let raw444 = dir.path().join("b444.yuv");
        let raw420 = dir.path().join("b420.yuv");
        common::ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            source,
            "-frames:v",
            "2",
            "-pix_fmt",
            "yuv444p",
            y4m.to_str().unwrap(),
        ]);
        for (fmt, out) in [("yuv444p", &raw444), ("yuv420p", &raw420)] {
            common::ffmpeg(&[
                "-i",
                y4m.to_str().unwrap(),
                "-pix_fmt",
                fmt,
                "-f",
                "rawvideo",
                out.to_str().unwrap(),
            ]);
        }
        let full = std::fs::read(&raw444).unwrap();
        let scaled = std::fs::read(&raw420).unwrap();
        let (_, frames) = read_all(&y4m);
        assert_eq!(frames.len(), 2);
        for (i, f) in frames.iter().enumerate() {
            let d = f.data();
            let src = &full[i * 3 * W * H..(i + 1) * 3 * W * H];
            let ff = &scaled[i * I420_LEN..(i + 1) * I420_LEN];
            // Luma passes through untouched.
            assert_eq!(&d[..W * H], &src[..W * H], "{source} frame {i} Y");
            assert_eq!(&d[..W * H], &ff[..W * H], "{source} frame {i} Y vs ffmpeg");
            // Chroma equals the exact 2x2 average computed here by hand.
            let u = hand_average(&src[W * H..2 * W * H]);
            let v = hand_average(&src[2 * W * H..]);
            assert_eq!(&d[W * H..W * H + CW * CH], &u[..], "{source} frame {i} Cb");
            assert_eq!(&d[W * H + CW * CH..], &v[..], "{source} frame {i} Cr");
            if compare_with_swscale {
                let diffs: Vec<i32> = d[W * H..]
                    .iter()
                    .zip(&ff[W * H..])
                    .map(|(&a, &b)| (a as i32 - b as i32).abs())
                    .collect();
                let mean = diffs.iter().sum::<i32>() as f64 / diffs.len() as f64;
                let max = *diffs.iter().max().unwrap();
                assert!(
                    mean < 2.0 && max <= 4,
                    "{source} frame {i}: chroma differs from swscale by mean {mean}, max {max}"
                );
            }
        }
    }
}

#[test]
fn reads_mono_with_neutral_chroma() {
    if !common::have("ffmpeg") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let y4m = dir.path().join("c.y4m");
    let raw = dir.path().join("c.gray");
    common::testsrc(33, 17, 2, &["-pix_fmt", "gray"], &y4m);
    common::ffmpeg(&[
        "-i",
        y4m.to_str().unwrap(),
        "-pix_fmt",
        "gray",
        "-f",
        "rawvideo",
        raw.to_str().unwrap(),
    ]);
    let gray = std::fs::read(&raw).unwrap();
    let reader = Y4mReader::new(std::fs::File::open(&y4m).unwrap()).unwrap();
    assert_eq!(reader.colorspace(), Y4mColorspace::Mono);
    let (_, frames) = read_all(&y4m);
    assert_eq!(frames.len(), 2);
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(&f.data()[..W * H], &gray[i * W * H..(i + 1) * W * H]);
        assert!(f.data()[W * H..].iter().all(|&c| c == 128));
    }
}

#[test]
fn truncated_frame_names_index_and_bytes() {
    if !common::have("ffmpeg") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let y4m = dir.path().join("t.y4m");
    common::testsrc(33, 17, 3, &["-pix_fmt", "yuv420p"], &y4m);
    let mut bytes = std::fs::read(&y4m).unwrap();
    bytes.truncate(bytes.len() - 100);
    let cut = dir.path().join("cut.y4m");
    std::fs::write(&cut, &bytes).unwrap();
    let mut src = open_input(&cut, InputHint::default()).unwrap();
    assert!(src.next_frame().unwrap().is_some());
    assert!(src.next_frame().unwrap().is_some());
    let err = src.next_frame().unwrap_err();
    let expected = I420_LEN as u64;
    match &err {
        IoError::Truncated {
            frame,
            got,
            expected: e,
            ..
        } => {
            assert_eq!((*frame, *got, *e), (2, expected - 100, expected));
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("cut.y4m")
            && msg.contains(&format!(
                "frame 2 is truncated: got {} of {expected} bytes",
                expected - 100
            )),
        "{msg}"
    );
    // After an error the reader stops instead of reading from the middle of a frame.
    assert!(src.next_frame().unwrap().is_none());
}

#[test]
fn garbage_header_is_an_error() {
    let err = Y4mReader::new(Cursor::new(b"RIFF....WAVEfmt \n".to_vec())).unwrap_err();
    assert!(matches!(err, IoError::Y4mHeader { .. }), "{err:?}");
    assert!(err.to_string().contains("YUV4MPEG2"), "{err}");

    let err = Y4mReader::new(Cursor::new(Vec::new())).unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");

    let err = Y4mReader::new(Cursor::new(b"YUV4MPEG2 W10 F25:1\n".to_vec())).unwrap_err();
    assert!(err.to_string().contains("no height"), "{err}");

    let err = Y4mReader::new(Cursor::new(b"YUV4MPEG2 W10 Habc\n".to_vec())).unwrap_err();
    assert!(err.to_string().contains("\"abc\""), "{err}");

    let err = Y4mReader::new(Cursor::new(b"YUV4MPEG2 W0 H2\n".to_vec())).unwrap_err();
    assert!(err.to_string().contains("width \"0\""), "{err}");

    // A header that never ends.
    let mut endless = b"YUV4MPEG2 ".to_vec();
    endless.extend(std::iter::repeat_n(b'X', 10_000));
    let err = Y4mReader::new(Cursor::new(endless)).unwrap_err();
    assert!(err.to_string().contains("not terminated"), "{err}");

    // A bad FRAME marker.
    let mut data = b"YUV4MPEG2 W2 H2 C420\nFRAME\n".to_vec();
    data.extend([1, 2, 3, 4, 5, 6]);
    data.extend(b"FRAMX\n");
    data.extend([0; 6]);
    let mut r = Y4mReader::new(Cursor::new(data)).unwrap();
    assert_eq!(r.next_frame().unwrap().unwrap().data(), &[1, 2, 3, 4, 5, 6]);
    let err = r.next_frame().unwrap_err();
    assert!(
        err.to_string().contains("frame 1: expected a FRAME header")
            && err.to_string().contains("FRAMX"),
        "{err}"
    );
}

#[test]
fn unsupported_colourspaces_are_named() {
    for tag in ["422", "420p10", "444alpha", "411", "mono16"] {
        let header = format!("YUV4MPEG2 W4 H4 F30:1 C{tag}\n");
        let err = Y4mReader::with_name(Cursor::new(header.into_bytes()), "in.y4m", None)
            .err()
            .unwrap();
        assert!(matches!(err, IoError::Unsupported { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("C{tag}")) && msg.contains("in.y4m"),
            "{msg}"
        );
        assert!(msg.contains("-pix_fmt yuv420p"), "{msg}");
    }
}

#[test]
fn unsupported_colourspace_from_ffmpeg() {
    if !common::have("ffmpeg") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let y4m = dir.path().join("d.y4m");
    common::testsrc(33, 17, 1, &["-pix_fmt", "yuv422p"], &y4m);
    let err = open_input(&y4m, InputHint::default()).err().unwrap();
    assert!(err.to_string().contains("C422"), "{err}");
}

#[test]
fn hand_made_stream_with_frame_params_and_default_colourspace() {
    // 3x3, no C (= 420jpeg), FRAME headers with parameters, unknown stream parameters ignored.
    let mut data = b"YUV4MPEG2 W3 H3 F30000:1001 It A0:0 Zfuture XYSCSS=420JPEG\n".to_vec();
    let frame_len = 9 + 2 * 4;
    for i in 0..2u8 {
        data.extend(b"FRAME Ixyz XFOO=1\n");
        data.extend((0..frame_len as u8).map(|b| b.wrapping_add(i * 50)));
    }
    let total = data.len() as u64;
    let mut r = Y4mReader::with_name(Cursor::new(data), "hand.y4m", Some(total)).unwrap();
    assert_eq!(r.colorspace(), Y4mColorspace::C420Jpeg);
    assert_eq!(r.fps(), Some((30000, 1001)));
    assert_eq!(r.pixel_aspect(), None);
    assert_eq!(r.interlace(), 't');
    assert_eq!(r.color_range(), None);
    let a = r.next_frame().unwrap().unwrap();
    let b = r.next_frame().unwrap().unwrap();
    assert!(r.next_frame().unwrap().is_none());
    assert_eq!(a.data(), (0..frame_len as u8).collect::<Vec<_>>());
    assert_eq!(b.data()[0], 50);
}

#[test]
fn odd_444_edges_average_existing_samples() {
    // 3x3 4:4:4: the right column and bottom row of chroma average 2 or 1 samples.
    let mut data = b"YUV4MPEG2 W3 H3 C444\nFRAME\n".to_vec();
    data.extend([0u8; 9]); // Y
    data.extend([10, 20, 30, 40, 50, 61, 70, 80, 90]); // Cb
    data.extend([255u8; 9]); // Cr
    let mut r = Y4mReader::new(Cursor::new(data)).unwrap();
    let f = r.next_frame().unwrap().unwrap();
    let d = f.data();
    // Cb blocks: (10+20+40+50)/4=30, (30+61)/2=45.5->46, (70+80)/2=75, 90.
    assert_eq!(&d[9..13], &[30, 46, 75, 90]);
    assert_eq!(&d[13..17], &[255; 4]);
}

#[test]
fn writer_round_trips_nv12_through_ffmpeg_and_our_reader() {
    use framecast_core::{ColorSpace, Frame};
    use framecast_io::Y4mWriter;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("w.y4m");
    // Two odd-sized NV12 frames with distinct, position-dependent bytes.
    let frames: Vec<(Vec<u8>, Vec<u8>)> = (0..2u8)
        .map(|k| {
            let y: Vec<u8> = (0..W * H).map(|i| (i * 7 + k as usize) as u8).collect();
            let uv: Vec<u8> = (0..2 * CW * CH)
                .map(|i| (i * 13 + 3 * k as usize) as u8)
                .collect();
            (y, uv)
        })
        .collect();
    let mut w = Y4mWriter::create(&out, (30, 1)).unwrap();
    for (y, uv) in &frames {
        let f = Frame::nv12(y, W, uv, 2 * CW, W as u32, H as u32).unwrap();
        w.write(&f, ColorSpace::default()).unwrap();
    }
    assert!(!out.exists(), "nothing at the path before finish");
    let bytes = w.finish().unwrap();
    assert_eq!(bytes, std::fs::metadata(&out).unwrap().len());
    // The I420 the writer should have produced: Y, then every U, then every V.
    let expected: Vec<u8> = frames
        .iter()
        .flat_map(|(y, uv)| {
            let u = uv.iter().step_by(2).copied();
            let v = uv.iter().skip(1).step_by(2).copied();
            y.iter().copied().chain(u).chain(v).collect::<Vec<u8>>()
        })
        .collect();
    let (src, read) = read_all(&out);
    assert_eq!(
        (src.width(), src.height(), src.fps()),
        (33, 17, Some((30, 1)))
    );
    let ours: Vec<u8> = read.iter().flat_map(|f| f.data().to_vec()).collect();
    assert_eq!(ours, expected, "our reader");
    if common::have("ffmpeg") {
        let raw = dir.path().join("w.yuv");
        common::ffmpeg(&[
            "-i",
            out.to_str().unwrap(),
            "-f",
            "rawvideo",
            "-pix_fmt",
            "yuv420p",
            raw.to_str().unwrap(),
        ]);
        assert_eq!(std::fs::read(&raw).unwrap(), expected, "ffmpeg");
    }
}

#[test]
fn writer_refuses_size_changes_and_empty_streams() {
    use framecast_core::{ColorSpace, Frame};
    use framecast_io::Y4mWriter;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("e.y4m");
    let e = Y4mWriter::create(&out, (30, 1))
        .unwrap()
        .finish()
        .unwrap_err();
    assert!(e.to_string().contains("no frames"), "{e}");
    assert!(!out.exists());
    let mut w = Y4mWriter::create(&out, (30, 1)).unwrap();
    let a = vec![0u8; 4 * 4 * 4];
    w.write(&Frame::rgba8(&a, 4, 4, 16).unwrap(), ColorSpace::default())
        .unwrap();
    let e = w
        .write(&Frame::rgba8(&a, 2, 2, 8).unwrap(), ColorSpace::default())
        .unwrap_err();
    assert!(e.to_string().contains("2x2"), "{e}");
}

/// Found by the y4m_read fuzz target: a header parameter starting with a multi-byte
/// character used to panic (a string split inside a character).
#[test]
fn non_ascii_header_parameters_are_an_error_not_a_panic() {
    for header in [
        "YUV4MPEG2 W4 H4 \u{693}x\nFRAME\n".as_bytes().to_vec(),
        "YUV4MPEG2 \u{e9}W4 H4\n".as_bytes().to_vec(),
    ] {
        let Err(e) = Y4mReader::new(Cursor::new(header)) else {
            panic!("a non-ASCII header was accepted");
        };
        assert!(e.to_string().contains("not ASCII"), "{e}");
    }
}
