//! Atomic output files and the .h264 writer.

use std::io::Write;

use framecast_io::{AtomicFile, H264FileWriter, IoError};

fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn dropped_writer_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.h264");
    {
        let mut f = AtomicFile::create(&path).unwrap();
        let temp = f.temp_path().to_owned();
        assert_eq!(
            temp.file_name().unwrap().to_string_lossy(),
            format!(".out.h264.{}.tmp", std::process::id())
        );
        f.write_all(b"partial").unwrap();
        assert!(temp.exists());
        assert!(!path.exists());
    }
    assert!(entries(dir.path()).is_empty());

    let mut w = H264FileWriter::create(&path).unwrap();
    w.write_packet(&[0, 0, 0, 1, 0x09, 0xf0]).unwrap();
    drop(w);
    assert!(entries(dir.path()).is_empty());
}

#[test]
fn commit_replaces_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.bin");
    std::fs::write(&path, b"old").unwrap();
    let mut f = AtomicFile::create(&path).unwrap();
    f.write_all(b"new ").unwrap();
    write!(f, "contents").unwrap();
    assert_eq!(f.bytes_written(), 12);
    // A second writer for the same path gets its own temporary file.
    let g = AtomicFile::create(&path).unwrap();
    assert_ne!(g.temp_path(), f.temp_path());
    drop(g);
    assert_eq!(std::fs::read(&path).unwrap(), b"old");
    f.commit().unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"new contents");
    assert_eq!(entries(dir.path()), ["out.bin"]);
}

#[test]
fn h264_writer_appends_packets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.h264");
    let mut w = H264FileWriter::create(&path).unwrap();
    w.write_packet(&[0, 0, 0, 1, 0x67, 1, 2]).unwrap();
    w.write_packet(&[0, 0, 1, 0x65, 3]).unwrap();
    assert_eq!(w.packets(), 2);
    assert_eq!(w.finish().unwrap(), 12);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x65, 3]
    );
    assert_eq!(entries(dir.path()), ["a.h264"]);
}

#[test]
fn unwritable_directory_names_path_and_os_error() {
    let dir = tempfile::tempdir().unwrap();
    // A regular file used as a directory fails even for root.
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"").unwrap();
    let target = file.join("out.mp4");
    let err = AtomicFile::create(&target).unwrap_err();
    assert!(matches!(err, IoError::Write { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("not-a-dir") && msg.contains("os error"),
        "{msg}"
    );

    let missing = dir.path().join("missing").join("out.h264");
    let msg = H264FileWriter::create(&missing).unwrap_err().to_string();
    assert!(
        msg.contains("missing") && msg.contains("No such file"),
        "{msg}"
    );
}
