// Encodes with OpenH264.
#![cfg(feature = "openh264")]
//! A client given several VTR1 servers lands on the first that takes the session: BUSY,
//! a refused token, a refused CONFIGURE and a dead address are passed over, and the stream
//! encoded by the server it lands on decodes to the test card.

mod common;

use common::*;
use framecast_remote::client::{run_stream, Client, ClientOptions, Credit};
use framecast_remote::failover::{Failover, ServerPool};
use framecast_remote::wire::{pix_fmt, Configure, Message};
use framecast_remote::{Compression, RemoteError};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;

const W: u32 = 320;
const H: u32 = 240;
const TOKEN: &str = "pool-token";

fn token_opts() -> ClientOptions {
    ClientOptions {
        token: TOKEN.into(),
        ..opts()
    }
}

fn encode_cfg() -> Configure {
    encode_configure(
        W,
        H,
        pix_fmt::NV12,
        &[("mode", "encode"), ("gop", "30"), ("bitrate", "1500000")],
    )
}

/// A server with the pool's token that allows one session, and a client holding it.
async fn busy_server() -> (SocketAddr, Client) {
    let mut cfg = config();
    cfg.max_sessions = 1;
    cfg.token = Some(TOKEN.into());
    let addr = start(cfg).await;
    let holder = Client::connect(addr, token_opts()).await.unwrap();
    (addr, holder)
}

/// A server that asks another token.
async fn refusing_server() -> SocketAddr {
    let mut cfg = config();
    cfg.token = Some("another-token".into());
    start(cfg).await
}

async fn good_server() -> SocketAddr {
    let mut cfg = config();
    cfg.token = Some(TOKEN.into());
    start(cfg).await
}

/// A loopback address nothing listens on (bound, then closed).
fn dead_address() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// Encode the test card through an established session and check what comes back.
async fn encode_and_check(client: Client) {
    let frames = nv12_frames(W, H, 10);
    let (tx, rx) = mpsc::channel(4);
    let msgs: Vec<Message> = frames
        .iter()
        .enumerate()
        .map(|(i, (y, uv))| nv12_msg(W, y, uv, i as i64, Compression::None))
        .collect();
    tokio::spawn(async move {
        for m in msgs {
            tx.send(m).await.unwrap();
        }
    });
    let mut stream = Vec::new();
    run_stream(client, rx, 3, Credit::PerOutput, |m| {
        if let Message::Packet(p) = m {
            stream.extend_from_slice(&p.data);
        }
        Ok::<(), std::convert::Infallible>(())
    })
    .await
    .unwrap();
    if !have_ffmpeg() {
        eprintln!("SKIP pixel check: ffmpeg not installed");
        return;
    }
    let decoded = ffmpeg_decode_rgb(&stream, W, H);
    assert_eq!(decoded.len(), 10);
    check_patches(decoded.last().unwrap(), W, H, 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lands_on_the_third_server_past_busy_and_refusing() {
    let (busy, _holder) = busy_server().await;
    let refusing = refusing_server().await;
    let good = good_server().await;
    let pool = ServerPool::new(
        [busy.to_string(), refusing.to_string(), good.to_string()],
        Failover::default(),
    )
    .unwrap();
    let e = pool
        .establish(&token_opts(), |_| encode_cfg())
        .await
        .expect("the third server takes the session");
    assert_eq!(e.server, good.to_string());
    assert_eq!(e.passed_over.len(), 2);
    assert_eq!(e.passed_over[0].server, busy.to_string());
    assert!(
        matches!(*e.passed_over[0].error, RemoteError::Busy { .. }),
        "{}",
        e.passed_over[0].error
    );
    assert_eq!(e.passed_over[1].server, refusing.to_string());
    assert!(
        matches!(*e.passed_over[1].error, RemoteError::AuthFailed { .. }),
        "{}",
        e.passed_over[1].error
    );
    assert!(
        !e.ack.extradata.is_empty(),
        "CONFIGURE_ACK carries the avcC"
    );
    encode_and_check(e.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_address_and_a_refused_configure_are_passed_over() {
    // This server cannot take a 320x240 NV12 FRAME (115 200 bytes) in one message.
    let mut small = config();
    small.token = Some(TOKEN.into());
    small.max_message_bytes = 64 * 1024;
    let small = start(small).await;
    let dead = dead_address();
    let good = good_server().await;
    let pool = ServerPool::parse(&format!("{dead}, {small},{good}"), Failover::default()).unwrap();
    assert_eq!(pool.servers().len(), 3);
    let e = pool
        .establish(&token_opts(), |_| encode_cfg())
        .await
        .unwrap();
    assert_eq!(e.server, good.to_string());
    assert!(
        matches!(*e.passed_over[0].error, RemoteError::Io { .. }),
        "{}",
        e.passed_over[0].error
    );
    assert!(
        matches!(
            *e.passed_over[1].error,
            RemoteError::Server { .. } | RemoteError::ConfigureRefused(_)
        ),
        "{}",
        e.passed_over[1].error
    );
    encode_and_check(e.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_everywhere_is_retried_after_a_backoff() {
    let (busy, holder) = busy_server().await;
    let pool = ServerPool::new(
        [busy.to_string()],
        Failover {
            rounds: 3,
            backoff: Duration::from_millis(400),
        },
    )
    .unwrap();
    // The holder leaves during the first backoff: the second round gets the slot.
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(holder);
    });
    let e = pool
        .establish(&token_opts(), |_| encode_cfg())
        .await
        .expect("the slot comes back for the second round");
    assert_eq!(e.passed_over.len(), 1);
    assert!(matches!(*e.passed_over[0].error, RemoteError::Busy { .. }));
    encode_and_check(e.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_server_names_every_attempt_and_refusals_are_not_retried() {
    let refusing = refusing_server().await;
    let refusing_too = refusing_server().await;
    let dead = dead_address();
    let five_rounds = Failover {
        rounds: 5,
        backoff: Duration::from_millis(10),
    };
    // Refusals are answers, not accidents: one round only.
    let pool = ServerPool::new(
        [refusing.to_string(), refusing_too.to_string()],
        five_rounds.clone(),
    )
    .unwrap();
    match pool.establish(&token_opts(), |_| encode_cfg()).await {
        Err(RemoteError::NoServer { attempts }) => assert_eq!(attempts.len(), 2),
        other => panic!("expected NoServer, got {:?}", other.map(|e| e.server)),
    }
    // A pool of one gives that server's own answer.
    let pool = ServerPool::new([refusing.to_string()], five_rounds).unwrap();
    match pool.establish(&token_opts(), |_| encode_cfg()).await {
        Err(RemoteError::AuthFailed { .. }) => {}
        other => panic!("expected AuthFailed, got {:?}", other.map(|e| e.server)),
    }
    let pool = ServerPool::new(
        [refusing.to_string(), dead.to_string()],
        Failover {
            rounds: 2,
            backoff: Duration::from_millis(10),
        },
    )
    .unwrap();
    let err = pool
        .establish(&token_opts(), |_| encode_cfg())
        .await
        .unwrap_err();
    let text = err.to_string();
    match err {
        RemoteError::NoServer { attempts } => {
            // The dead address may come back: two rounds over both servers.
            assert_eq!(attempts.len(), 4, "{text}");
            assert!(text.contains(&refusing.to_string()) && text.contains(&dead.to_string()));
            assert!(text.contains("authentication failed"), "{text}");
        }
        other => panic!("expected NoServer, got {other}"),
    }
    assert!(matches!(
        ServerPool::parse(" , ", Failover::default()),
        Err(RemoteError::Unsupported(_))
    ));
}
