//! Raw (headerless) frame reading and `open_input`.

use std::io::Cursor;
use std::path::Path;

use framecast_core::{PixelFormat, Planes};
use framecast_io::{open_input, open_reader, FrameSource, InputHint, IoError, RawReader};

#[test]
fn size_mismatch_says_what_to_fix() {
    let err = RawReader::new(
        Cursor::new(Vec::new()),
        PixelFormat::Rgba8,
        1920,
        1080,
        None,
        Some(1_000_000),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "raw input: size 1000000 bytes is not a multiple of the 1920x1080 rgba frame size \
         8294400 bytes: is --size right?"
    );
}

#[test]
fn stream_with_partial_last_frame_is_truncated() {
    // NV12 5x3: 15 bytes of Y, then 2 rows of 3 CbCr pairs = 12 bytes.
    let frame = 15 + 12;
    let data: Vec<u8> = (0..(2 * frame + 10) as u32).map(|i| i as u8).collect();
    let mut r = RawReader::with_name(
        Cursor::new(data.clone()),
        "<stdin>",
        PixelFormat::Nv12,
        5,
        3,
        Some((30, 1)),
        None,
    )
    .unwrap();
    assert_eq!(r.frame_count_hint(), None);
    assert_eq!(r.fps(), Some((30, 1)));
    let f0 = r.next_frame().unwrap().unwrap();
    assert_eq!(f0.format(), PixelFormat::Nv12);
    assert_eq!(f0.data(), &data[..frame]);
    match f0.as_frame().planes() {
        Planes::Nv12 {
            y,
            y_stride,
            uv,
            uv_stride,
        } => {
            assert_eq!((*y_stride, *uv_stride), (5, 6));
            assert_eq!(y, &&data[..15]);
            assert_eq!(uv, &&data[15..27]);
        }
        other => panic!("{other:?}"),
    }
    assert!(r.next_frame().unwrap().is_some());
    let err = r.next_frame().unwrap_err();
    assert_eq!(
        err.to_string(),
        "<stdin>: frame 2 is truncated: got 10 of 27 bytes"
    );
    assert!(r.next_frame().unwrap().is_none());
}

#[test]
fn exact_stream_ends_cleanly() {
    let data = vec![7u8; 3 * 2 * 2 * 4];
    let mut r =
        RawReader::new(Cursor::new(data), PixelFormat::Rgba8, 2, 2, None, Some(48)).unwrap();
    assert_eq!(r.frame_count_hint(), Some(3));
    for _ in 0..3 {
        let f = r.next_frame().unwrap().unwrap();
        assert_eq!((f.width(), f.height(), f.stride()), (2, 2, 8));
    }
    assert!(r.next_frame().unwrap().is_none());
}

#[test]
fn rejects_float_formats_and_bad_sizes() {
    let err =
        RawReader::new(Cursor::new(vec![]), PixelFormat::RgbaF32, 2, 2, None, None).unwrap_err();
    assert!(err.to_string().contains("rgba-f32"), "{err}");
    let err =
        RawReader::new(Cursor::new(vec![]), PixelFormat::Rgba8, 0, 2, None, None).unwrap_err();
    assert!(err.to_string().contains("0x2"), "{err}");
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn open_input_picks_reader_by_extension() {
    let dir = tempfile::tempdir().unwrap();
    let size = Some((4, 2));

    // .rgba with --size.
    let rgba: Vec<u8> = (0..2 * 4 * 2 * 4).map(|i| i as u8).collect();
    let p = write(dir.path(), "a.rgba", &rgba);
    let mut s = open_input(
        &p,
        InputHint {
            size,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(s.frame_count_hint(), Some(2));
    let f = s.next_frame().unwrap().unwrap();
    assert_eq!(f.format(), PixelFormat::Rgba8);
    assert_eq!(f.data(), &rgba[..32]);

    // .yuv is I420; .bgra, .rgb, .nv12 map to their formats.
    for (name, format, len) in [
        ("b.yuv", PixelFormat::I420, 8 + 2 * 2),
        ("c.bgra", PixelFormat::Bgra8, 32),
        ("d.rgb", PixelFormat::Rgb8, 24),
        ("e.nv12", PixelFormat::Nv12, 12),
    ] {
        let p = write(dir.path(), name, &vec![1u8; len]);
        let mut s = open_input(
            &p,
            InputHint {
                size,
                ..Default::default()
            },
        )
        .unwrap();
        let f = s.next_frame().unwrap().unwrap();
        assert_eq!(f.format(), format, "{name}");
        assert!(s.next_frame().unwrap().is_none());
    }

    // Missing --size names the file and the flag.
    let err = open_input(&p, InputHint::default()).err().unwrap();
    assert!(matches!(err, IoError::MissingSize { .. }));
    assert!(
        err.to_string().contains("a.rgba") && err.to_string().contains("--size"),
        "{err}"
    );

    // .raw needs --format too.
    let raw = write(dir.path(), "f.raw", &[0; 32]);
    let err = open_input(
        &raw,
        InputHint {
            size,
            ..Default::default()
        },
    )
    .err()
    .unwrap();
    assert!(matches!(err, IoError::MissingFormat { .. }), "{err:?}");
    assert!(err.to_string().contains("--format"), "{err}");
    let hint = InputHint {
        size,
        format: Some(PixelFormat::Rgba8),
        fps: Some((25, 1)),
    };
    let s = open_input(&raw, hint).unwrap();
    assert_eq!(s.fps(), Some((25, 1)));

    // Size mismatch on a file is caught up front.
    let err = open_input(
        &raw,
        InputHint {
            size: Some((3, 3)),
            ..hint
        },
    )
    .err()
    .unwrap();
    assert!(
        matches!(err, IoError::RawSizeMismatch { len: 32, .. }),
        "{err:?}"
    );

    // Unknown extension without a format.
    let odd = write(dir.path(), "g.bin", &[0; 32]);
    let err = open_input(&odd, InputHint::default()).err().unwrap();
    assert!(err.to_string().contains(".y4m"), "{err}");
    // ... but fine when both format and size are given.
    assert!(open_input(&odd, hint).is_ok());

    // Missing file.
    let err = open_input(&dir.path().join("nope.y4m"), InputHint::default())
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(
        msg.contains("nope.y4m") && msg.contains("check the path"),
        "{msg}"
    );
}

#[test]
fn stdin_like_streams_are_sniffed() {
    // y4m by its signature; the hint's fps overrides the header.
    let mut y4m = b"YUV4MPEG2 W2 H2 F25:1 Cmono\nFRAME\n".to_vec();
    y4m.extend([1, 2, 3, 4]);
    let hint = InputHint {
        fps: Some((60, 1)),
        ..Default::default()
    };
    let mut s = open_reader(Box::new(Cursor::new(y4m)), "<stdin>", hint).unwrap();
    assert_eq!((s.width(), s.height(), s.fps()), (2, 2, Some((60, 1))));
    let f = s.next_frame().unwrap().unwrap();
    assert_eq!(f.data(), &[1, 2, 3, 4, 128, 128]);
    assert!(s.next_frame().unwrap().is_none());

    // Raw otherwise, which needs the hint.
    let raw = vec![9u8; 4 * 4 + 2];
    let err = open_reader(
        Box::new(Cursor::new(raw.clone())),
        "<stdin>",
        InputHint::default(),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("--format"), "{err}");
    let hint = InputHint {
        format: Some(PixelFormat::Rgba8),
        size: Some((2, 2)),
        fps: None,
    };
    let mut s = open_reader(Box::new(Cursor::new(raw)), "<stdin>", hint).unwrap();
    assert!(s.next_frame().unwrap().is_some());
    let err = s.next_frame().unwrap_err();
    assert_eq!(
        err.to_string(),
        "<stdin>: frame 1 is truncated: got 2 of 16 bytes"
    );

    // A stream shorter than the signature is still read as raw.
    let mut s = open_reader(
        Box::new(Cursor::new(vec![5u8; 4])),
        "<stdin>",
        InputHint {
            format: Some(PixelFormat::Rgba8),
            size: Some((1, 1)),
            fps: None,
        },
    )
    .unwrap();
    assert_eq!(s.next_frame().unwrap().unwrap().data(), &[5, 5, 5, 5]);
}
