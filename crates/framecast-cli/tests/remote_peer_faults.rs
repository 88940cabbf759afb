//! `framecast remote decode|transcode` against a server that misbehaves the way vtremote's own
//! mock server did (FRAMEs back in transcode mode, planes that do not decompress): every such run
//! fails with one `error:` line and exit 5 (the server's fault, not the output file's), and
//! writes nothing. Also pins what the decode client puts on the wire: the key flag on IDR packets.

use framecast_remote::wire::{
    ConfigureAck, FrameMsg, HelloAck, Limits, Message, Plane, Vtr1Codec, FLAG_KEYFRAME,
};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::mpsc;

/// What the fake server answers to each PACKET.
#[derive(Clone, Copy)]
enum Reply {
    /// A FRAME whose planes claim lz4 but hold garbage.
    GarbageFrame,
    /// A well-formed FRAME (wrong in transcode mode, where PACKETs are due).
    Frame,
}

/// A one-connection VTR1 server on an ephemeral port; sends the key flags of the PACKETs it
/// received down the channel when the client goes away.
fn fake_server(reply: Reply) -> (String, mpsc::Receiver<Vec<u32>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut codec = Vtr1Codec::new(Limits::server(1 << 26));
        let mut flags = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        let send = |s: &mut std::net::TcpStream, m: Message| {
            let _ = s.write_all(&m.encode().unwrap());
        };
        'conn: loop {
            while let Ok(Some(m)) = codec.poll() {
                match m {
                    Message::Hello(_) => send(
                        &mut s,
                        Message::HelloAck(HelloAck {
                            status: 0,
                            server_name: String::new(),
                            server_version: String::new(),
                            capabilities: ["h264", "pixfmt.nv12", "pixfmt.bgra"]
                                .map(String::from)
                                .to_vec(),
                            max_sessions: 1,
                            active_sessions: 0,
                        }),
                    ),
                    Message::Configure(_) => send(
                        &mut s,
                        Message::ConfigureAck(ConfigureAck {
                            status: 0,
                            extradata: Default::default(),
                            pix_fmt: 1,
                            warnings: vec![],
                        }),
                    ),
                    Message::Packet(p) => {
                        flags.push(p.flags);
                        // 64x48 NV12 (grey), or 64 bytes of garbage per plane.
                        let plane = |rows: u32| Plane {
                            stride: 64,
                            height: rows,
                            data: match reply {
                                Reply::GarbageFrame => vec![0xF0; 64],
                                Reply::Frame => vec![128; 64 * rows as usize],
                            }
                            .into(),
                        };
                        send(
                            &mut s,
                            Message::Frame(FrameMsg {
                                pts: p.pts,
                                duration: 1,
                                flags: 0,
                                planes: vec![plane(48), plane(24)],
                                side_data: vec![],
                            }),
                        );
                    }
                    Message::Flush => send(&mut s, Message::Done),
                    _ => {}
                }
            }
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break 'conn,
                Ok(n) => codec.feed(&buf[..n]),
            }
        }
        let _ = tx.send(flags);
    });
    (addr, rx)
}

/// A 3-frame Annex B stream (IDR then two P-frames) from framecast's own encoder.
fn small_stream(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("in.h264");
    let out = Command::new(env!("CARGO_BIN_EXE_framecast"))
        .args([
            "encode",
            "--pattern",
            "testcard",
            "--size",
            "64x48",
            "--frames",
            "3",
            "-q",
            "-o",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

fn run_fails(args: &[&str], needle: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_framecast"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{args:?}:\n{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one error line expected:\n{stderr}");
    assert!(lines[0].starts_with("error:"), "{}", lines[0]);
    assert!(
        lines[0].contains(needle),
        "{:?} should mention {needle:?}",
        lines[0]
    );
    assert!(!lines[0].contains("  "), "double space: {:?}", lines[0]);
}

#[test]
fn decode_with_planes_that_do_not_decompress_exits_5_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = small_stream(dir.path());
    let output = dir.path().join("out.y4m");
    let (addr, flags) = fake_server(Reply::GarbageFrame);
    run_fails(
        &[
            "remote",
            "decode",
            "--server",
            &addr,
            "--compression",
            "lz4",
            "-q",
            input.to_str().unwrap(),
            "-o",
            output.to_str().unwrap(),
        ],
        "do not decompress",
    );
    assert!(!output.exists(), "nothing may be written");
    // The first packet is the IDR: key flag set, as FFmpeg's client sets it.
    let flags = flags.recv().unwrap();
    assert_eq!(
        flags.first().map(|f| f & FLAG_KEYFRAME),
        Some(FLAG_KEYFRAME)
    );
}

#[test]
fn transcode_that_gets_frames_back_exits_5_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = small_stream(dir.path());
    let output = dir.path().join("out.h264");
    let (addr, _) = fake_server(Reply::Frame);
    run_fails(
        &[
            "remote",
            "transcode",
            "--server",
            &addr,
            "-q",
            input.to_str().unwrap(),
            "-o",
            output.to_str().unwrap(),
        ],
        "unexpected FRAME",
    );
    assert!(!output.exists(), "nothing may be written");
}

#[test]
fn the_decode_client_flags_only_idr_packets_as_key() {
    let dir = tempfile::tempdir().unwrap();
    let input = small_stream(dir.path());
    let output = dir.path().join("out.y4m");
    let (addr, flags) = fake_server(Reply::Frame);
    // Raw planes (the fake server does not compress), so the whole run succeeds and every
    // packet reaches the server whatever the timing.
    let run = Command::new(env!("CARGO_BIN_EXE_framecast"))
        .args([
            "remote",
            "decode",
            "--server",
            &addr,
            "--compression",
            "none",
            "-q",
        ])
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let flags = flags.recv().unwrap();
    assert_eq!(flags.len(), 3, "{flags:?}");
    let keys: Vec<bool> = flags.iter().map(|f| f & FLAG_KEYFRAME != 0).collect();
    assert_eq!(keys, [true, false, false]);
}
