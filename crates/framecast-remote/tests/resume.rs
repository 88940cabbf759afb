// Encodes with OpenH264.
#![cfg(feature = "openh264")]
//! An encode session whose server dies mid-stream goes on on the next server of the pool:
//! every frame's packet comes back once, in order, the stream restarts at an IDR and the
//! whole output decodes. A pool with nowhere to go reports the loss and the failed resume.

mod common;

use common::*;
use framecast_remote::client::ClientOptions;
use framecast_remote::failover::{Established, Failover, ServerPool};
use framecast_remote::wire::{pix_fmt, Configure, Message, FLAG_KEYFRAME};
use framecast_remote::{Compression, RemoteError};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const W: u32 = 320;
const H: u32 = 240;
const FRAMES: u64 = 30;
/// One uncompressed 320x240 NV12 FRAME is about 115 KB: the link dies during frame 12.
const CUT_AFTER_BYTES: u64 = 12 * 115_200 + 50_000;

fn encode_cfg() -> Configure {
    encode_configure(
        W,
        H,
        pix_fmt::NV12,
        &[("mode", "encode"), ("gop", "300"), ("bitrate", "1500000")],
    )
}

fn fast_opts() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_secs(5),
        ..opts()
    }
}

/// A machine that dies: a TCP relay to `server` that takes one connection, and once the
/// client has sent `cut_after` bytes through it drops both sides and stops listening (later
/// connections are refused). Returns its address and the bytes it relayed upstream.
async fn dying_relay(server: SocketAddr, cut_after: u64) -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let relayed = Arc::new(AtomicU64::new(0));
    let up_count = Arc::clone(&relayed);
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        drop(listener); // nothing else gets in
        let upstream = TcpStream::connect(server).await.unwrap();
        let (mut cr, mut cw) = client.into_split();
        let (mut sr, mut sw) = upstream.into_split();
        let up = async {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match cr.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if up_count.fetch_add(n as u64, Ordering::Relaxed) + n as u64 >= cut_after {
                    return; // the machine dies mid-frame
                }
                if sw.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        };
        let down = async {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match sr.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if cw.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        };
        // Whichever ends first ends the connection: both halves are dropped (RST or FIN).
        tokio::select! { _ = up => {}, _ = down => {} }
    });
    (addr, relayed)
}

/// A pool of `servers` (two quick rounds) and a session established on it.
async fn pool_of(servers: &[SocketAddr]) -> (ServerPool, Established) {
    let pool = ServerPool::new(
        servers.iter().map(|s| s.to_string()),
        Failover {
            rounds: 2,
            backoff: Duration::from_millis(50),
        },
    )
    .unwrap();
    let established = pool
        .establish(&fast_opts(), |_| encode_cfg())
        .await
        .unwrap();
    (pool, established)
}

fn frame_messages() -> Vec<Message> {
    nv12_frames(W, H, FRAMES)
        .iter()
        .enumerate()
        .map(|(i, (y, uv))| nv12_msg(W, y, uv, i as i64, Compression::None))
        .collect()
}

fn feed(msgs: Vec<Message>, window: usize) -> mpsc::Receiver<Message> {
    let (tx, rx) = mpsc::channel(window);
    tokio::spawn(async move {
        for m in msgs {
            if tx.send(m).await.is_err() {
                return;
            }
        }
    });
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_lost_mid_stream_is_replaced_and_no_frame_is_lost_or_repeated() {
    let first = start(config()).await;
    let second = start(config()).await;
    let (dying, relayed) = dying_relay(first, CUT_AFTER_BYTES).await;
    let (pool, established) = pool_of(&[dying, second]).await;
    assert_eq!(established.server, dying.to_string());

    let window = 4;
    let mut packets = Vec::new();
    let mut moves = Vec::new();
    let stats = pool
        .run_encode(
            &fast_opts(),
            established,
            feed(frame_messages(), window),
            window,
            |m| {
                let Message::Packet(p) = m else {
                    panic!("not a packet: {}", m.kind())
                };
                packets.push(p);
                Ok::<(), std::convert::Infallible>(())
            },
            |r| {
                moves.push((
                    r.lost.clone(),
                    r.server.clone(),
                    r.resent,
                    r.error.to_string(),
                    r.passed_over.len(),
                ))
            },
        )
        .await
        .expect("the session goes on on the second server");

    assert!(relayed.load(Ordering::Relaxed) >= CUT_AFTER_BYTES);
    assert_eq!(moves.len(), 1, "one move: {moves:?}");
    let (lost, to, resent, error, passed_over) = &moves[0];
    assert_eq!(lost, &dying.to_string());
    assert_eq!(to, &second.to_string(), "{error}");
    assert_eq!(*passed_over, 1, "the dead relay refuses the reconnect");
    assert!(
        (1..=window).contains(resent),
        "the frames in flight are sent again: {resent}"
    );

    // Every frame's packet once, in order.
    let pts: Vec<i64> = packets.iter().map(|p| p.pts).collect();
    assert_eq!(pts, (0..FRAMES as i64).collect::<Vec<_>>());
    assert_eq!(stats.inputs, FRAMES);
    assert_eq!(stats.outputs, FRAMES);
    // The first packet from the second server is a keyframe (gop 300: not a periodic one).
    let keyframes: Vec<i64> = packets
        .iter()
        .filter(|p| p.flags & FLAG_KEYFRAME != 0)
        .map(|p| p.pts)
        .collect();
    assert_eq!(keyframes.len(), 2, "keyframes at {keyframes:?}");
    assert_eq!(keyframes[0], 0);
    let resumed_at = keyframes[1];
    assert!(
        (8..=13).contains(&resumed_at),
        "resumed at frame {resumed_at}"
    );

    if !have_ffmpeg() {
        eprintln!("SKIP pixel check: ffmpeg not installed");
        return;
    }
    let stream: Vec<u8> = packets.iter().flat_map(|p| p.data.to_vec()).collect();
    let decoded = ffmpeg_decode_rgb(&stream, W, H);
    assert_eq!(decoded.len(), FRAMES as usize, "every frame decodes");
    for i in [
        0,
        resumed_at as usize - 1,
        resumed_at as usize,
        FRAMES as usize - 1,
    ] {
        check_patches(&decoded[i], W, H, 12);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_session_with_nowhere_to_go_reports_the_loss_and_the_resume() {
    let only = start(config()).await;
    let (dying, _) = dying_relay(only, CUT_AFTER_BYTES).await;
    let (pool, established) = pool_of(&[dying]).await;
    let mut packets = 0u64;
    let err = pool
        .run_encode(
            &fast_opts(),
            established,
            feed(frame_messages(), 4),
            4,
            |_| {
                packets += 1;
                Ok::<(), std::convert::Infallible>(())
            },
            |r| panic!("nowhere to resume, yet resumed on {}", r.server),
        )
        .await
        .expect_err("the relay is gone");
    assert!(packets > 0 && packets < FRAMES, "{packets} packets");
    match err {
        framecast_remote::client::RunError::Remote(RemoteError::Lost {
            server,
            error,
            resume,
        }) => {
            assert_eq!(server, dying.to_string());
            assert!(
                matches!(*error, RemoteError::Io { .. } | RemoteError::Closed(_)),
                "{error}"
            );
            assert!(
                matches!(*resume, RemoteError::Io { .. }),
                "reconnecting is refused: {resume}"
            );
        }
        other => panic!("expected Lost, got {other}"),
    }
}
