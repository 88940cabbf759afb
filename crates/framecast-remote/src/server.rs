//! The VTR1 server: a thin tokio shell around [`crate::wire::Vtr1Codec`] and
//! [`crate::session::MediaSession`].
//!
//! One task per connection reads messages, each under a deadline that covers the whole
//! message (header and body), so a client that trickles bytes is cut off; one writer task per
//! connection writes each message under a write deadline; the media work (decompression,
//! conversion, encoding, decoding) runs on a dedicated thread per session, never on the async
//! runtime. A session that fails sends ERROR and closes; it never affects another session.

use crate::error::{RemoteError, WireError};
use crate::session::{parse_configure, MediaSession, ServerCaps, SessionFailure};
use crate::wire::{
    error_code, status, ErrorMsg, HelloAck, Limits, Message, MessageType, Vtr1Codec,
    DEFAULT_MAX_MESSAGE_BYTES,
};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tracing::{debug, info, warn};

/// Server settings (the `framecast remote serve` flags).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on (default `127.0.0.1:5555`).
    pub listen: SocketAddr,
    /// Shared secret clients must send in HELLO (`None`: no authentication).
    pub token: Option<String>,
    /// Concurrent sessions; more get HELLO_ACK status 1 (busy).
    pub max_sessions: usize,
    /// Deadline for each of HELLO and CONFIGURE.
    pub handshake_timeout: Duration,
    /// Deadline for each message after the handshake.
    pub idle_timeout: Duration,
    /// Deadline for writing each message.
    pub write_timeout: Duration,
    /// Size cap for messages other than HELLO (64 KiB) and CONFIGURE (4 MiB).
    pub max_message_bytes: u32,
    /// Encoder backend (`None`: the first available).
    pub backend: Option<String>,
    /// Name sent in HELLO_ACK.
    pub server_name: String,
    /// Version sent in HELLO_ACK.
    pub server_version: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 5555)),
            token: None,
            max_sessions: 4,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(10),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            backend: None,
            server_name: "framecast".into(),
            server_version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

struct Shared {
    config: ServerConfig,
    caps: ServerCaps,
    slots: Arc<Semaphore>,
    next_id: AtomicU64,
}

/// A bound server; [`Server::run`] serves until the task is dropped.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.shared.config)
            .field("caps", &self.shared.caps)
            .finish()
    }
}

impl Server {
    /// Probe the machine's capabilities and bind the listening socket.
    pub async fn bind(config: ServerConfig) -> Result<Server, RemoteError> {
        if config.max_sessions == 0 || config.max_sessions > u16::MAX as usize {
            return Err(RemoteError::Unsupported(format!(
                "max-sessions {} must be between 1 and 65535",
                config.max_sessions
            )));
        }
        let caps = ServerCaps::probe(config.backend.as_deref());
        if config.backend.is_some() && caps.backend.is_none() {
            return Err(RemoteError::Unsupported(format!(
                "encoder backend {:?} is not available here (see `framecast doctor`)",
                config.backend.as_deref().unwrap_or("")
            )));
        }
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| RemoteError::io(format!("cannot listen on {}", config.listen), e))?;
        Ok(Server {
            listener,
            shared: Arc::new(Shared {
                slots: Arc::new(Semaphore::new(config.max_sessions)),
                config,
                caps,
                next_id: AtomicU64::new(1),
            }),
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.shared.config.listen)
    }

    /// What HELLO_ACK advertises.
    pub fn capabilities(&self) -> &ServerCaps {
        &self.shared.caps
    }

    /// Accept and serve connections forever (each on its own task).
    pub async fn run(self) -> Result<(), RemoteError> {
        info!(
            addr = %self.local_addr(),
            caps = ?self.shared.caps.capabilities,
            max_sessions = self.shared.config.max_sessions,
            "VTR1 server listening"
        );
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let shared = self.shared.clone();
            let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                connection(shared, stream, peer, id).await;
            });
        }
    }
}

/// What goes to the writer task.
struct Outgoing {
    bytes: Vec<u8>,
    /// Close the connection after this message.
    close: bool,
}

fn encoded(m: &Message) -> Vec<u8> {
    // Server messages always fit (strings are ours, planes bounded by the size checks).
    m.encode().unwrap_or_default()
}

fn error_bytes(code: u32, message: impl Into<String>) -> Vec<u8> {
    encoded(&Message::Error(ErrorMsg {
        code,
        message: message.into(),
    }))
}

#[derive(Debug)]
enum ReadFail {
    Wire(WireError),
    Eof { mid_message: bool },
    Timeout { mid_message: bool },
    Io(std::io::Error),
}

struct Reader {
    rd: OwnedReadHalf,
    codec: Vtr1Codec,
    bytes_in: u64,
}

impl Reader {
    /// One whole message within `deadline` (header and body together).
    async fn message(&mut self, deadline: Duration) -> Result<Message, ReadFail> {
        let fut = async {
            loop {
                match self.codec.poll() {
                    Ok(Some(m)) => return Ok(m),
                    Ok(None) => {}
                    Err(e) => return Err(ReadFail::Wire(e)),
                }
                match self.rd.read_buf(self.codec.buffer_mut()).await {
                    Ok(0) => {
                        return Err(ReadFail::Eof {
                            mid_message: self.codec.mid_message(),
                        })
                    }
                    Ok(n) => self.bytes_in += n as u64,
                    Err(e) => return Err(ReadFail::Io(e)),
                }
            }
        };
        match tokio::time::timeout(deadline, fut).await {
            Ok(r) => r,
            Err(_) => Err(ReadFail::Timeout {
                mid_message: self.codec.mid_message(),
            }),
        }
    }

    /// After the write side is shut: read and discard what the peer still sends, so closing
    /// does not reset the connection before it has read our last message.
    async fn linger(&mut self, max: Duration) {
        let mut sink = vec![0u8; 64 * 1024];
        let _ = tokio::time::timeout(max, async {
            loop {
                match self.rd.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
    }
}

async fn writer_task(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Outgoing>,
    write_timeout: Duration,
    bytes_out: Arc<AtomicU64>,
    closed: watch::Sender<bool>,
) {
    while let Some(out) = rx.recv().await {
        match tokio::time::timeout(write_timeout, wr.write_all(&out.bytes)).await {
            Ok(Ok(())) => {
                bytes_out.fetch_add(out.bytes.len() as u64, Ordering::Relaxed);
            }
            Ok(Err(e)) => {
                debug!("write failed: {e}");
                break;
            }
            Err(_) => {
                warn!("write deadline of {write_timeout:?} passed; closing the session");
                break;
            }
        }
        if out.close {
            break;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), wr.shutdown()).await;
    let _ = closed.send(true);
}

async fn busy(shared: &Shared, mut stream: TcpStream, peer: SocketAddr) {
    let max = shared.config.max_sessions as u16;
    let ack = Message::HelloAck(HelloAck {
        status: status::BUSY,
        server_name: shared.config.server_name.clone(),
        server_version: shared.config.server_version.clone(),
        capabilities: shared.caps.capabilities.clone(),
        max_sessions: max,
        active_sessions: max,
    });
    info!(%peer, "session limit reached: BUSY");
    let t = shared.config.write_timeout;
    let _ = tokio::time::timeout(t, stream.write_all(&encoded(&ack))).await;
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

fn token_matches(expected: &str, got: &str) -> bool {
    // Constant time in the content; the length is not secret-dependent beyond itself.
    expected.as_bytes().ct_eq(got.as_bytes()).into()
}

async fn connection(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr, id: u64) {
    let _ = stream.set_nodelay(true);
    let Ok(permit) = shared.slots.clone().try_acquire_owned() else {
        busy(&shared, stream, peer).await;
        return;
    };
    let cfg = &shared.config;
    let started = Instant::now();
    let (rd, wr) = stream.into_split();
    let mut reader = Reader {
        rd,
        codec: Vtr1Codec::new(Limits::server(cfg.max_message_bytes)),
        bytes_in: 0,
    };
    let bytes_out = Arc::new(AtomicU64::new(0));
    let (out_tx, out_rx) = mpsc::channel::<Outgoing>(64);
    let (closed_tx, mut closed_rx) = watch::channel(false);
    let writer = tokio::spawn(writer_task(
        wr,
        out_rx,
        cfg.write_timeout,
        bytes_out.clone(),
        closed_tx,
    ));
    let mut summary = Summary {
        id,
        peer,
        mode: "-",
        reason: String::new(),
        media: None,
    };

    let end = session(&shared, &mut reader, &out_tx, &mut closed_rx, &mut summary).await;
    summary.reason = end;
    drop(out_tx);
    let _ = writer.await;
    reader.linger(Duration::from_millis(500)).await;
    drop(permit);
    summary.log(
        reader.bytes_in,
        bytes_out.load(Ordering::Relaxed),
        started.elapsed(),
    );
}

struct Summary {
    id: u64,
    peer: SocketAddr,
    mode: &'static str,
    reason: String,
    media: Option<WorkerReport>,
}

impl Summary {
    fn log(&self, bytes_in: u64, bytes_out: u64, elapsed: Duration) {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let (frames, outputs, dropped, avg, max) = match &self.media {
            Some(r) => {
                let n = r.encode_ms.len().max(1) as f64;
                (
                    r.inputs,
                    r.outputs,
                    r.dropped,
                    if r.encode_ms.is_empty() {
                        0.0
                    } else {
                        r.encode_ms.iter().sum::<f64>() / n
                    },
                    r.encode_ms.iter().cloned().fold(0.0, f64::max),
                )
            }
            None => (0, 0, 0, 0.0, 0.0),
        };
        info!(
            "SUMMARY session={} peer={} mode={} frames={frames} outputs={outputs} dropped={dropped} \
             bytes_in={bytes_in} bytes_out={bytes_out} seconds={secs:.3} in_mbps={:.2} out_mbps={:.2} \
             avg_encode_ms={avg:.2} max_encode_ms={max:.2} end={}",
            self.id,
            self.peer,
            self.mode,
            bytes_in as f64 * 8.0 / secs / 1e6,
            bytes_out as f64 * 8.0 / secs / 1e6,
            self.reason
        );
    }
}

struct WorkerReport {
    inputs: u64,
    outputs: u64,
    dropped: u64,
    encode_ms: Vec<f64>,
}

enum Work {
    Media(Message),
    Flush,
}

/// Wait for the handshake message `want` within the handshake deadline, answering PING and
/// skipping unknown types. `pick` takes the wanted message out; any other message gets an
/// ERROR and ends the session (the `Err` is why).
async fn handshake_message<T>(
    reader: &mut Reader,
    cfg: &ServerConfig,
    out: &mpsc::Sender<Outgoing>,
    want: &'static str,
    pick: impl Fn(Message) -> Result<T, Message>,
) -> Result<T, String> {
    loop {
        match reader.message(cfg.handshake_timeout).await {
            Ok(Message::Ping) => {
                let _ = out
                    .send(Outgoing {
                        bytes: encoded(&Message::Pong),
                        close: false,
                    })
                    .await;
            }
            Ok(Message::Unknown { .. }) => {}
            Ok(m) => match pick(m) {
                Ok(wanted) => return Ok(wanted),
                Err(other) => {
                    let bytes = error_bytes(
                        error_code::BAD_REQUEST,
                        format!("expected {want}, got {}", other.kind()),
                    );
                    let _ = out.send(Outgoing { bytes, close: true }).await;
                    return Err(format!("{} before {want}", other.kind()));
                }
            },
            Err(e) => return Err(read_failure(e, out, want).await),
        }
    }
}

/// The handshake and main loop; returns why the session ended.
async fn session(
    shared: &Shared,
    reader: &mut Reader,
    out: &mpsc::Sender<Outgoing>,
    closed: &mut watch::Receiver<bool>,
    summary: &mut Summary,
) -> String {
    let cfg = &shared.config;
    let send_close = |bytes: Vec<u8>| async move {
        let _ = out.send(Outgoing { bytes, close: true }).await;
    };

    // HELLO
    let hello = match handshake_message(reader, cfg, out, "HELLO", |m| match m {
        Message::Hello(h) => Ok(h),
        other => Err(other),
    })
    .await
    {
        Ok(h) => h,
        Err(reason) => return reason,
    };
    if let Some(token) = &cfg.token {
        if !token_matches(token, &hello.token) {
            let ack = HelloAck {
                status: status::AUTH_FAIL,
                server_name: cfg.server_name.clone(),
                server_version: cfg.server_version.clone(),
                capabilities: Vec::new(),
                max_sessions: cfg.max_sessions as u16,
                active_sessions: active(shared),
            };
            send_close(encoded(&Message::HelloAck(ack))).await;
            return "authentication failed".into();
        }
    }
    let ack = HelloAck {
        status: status::OK,
        server_name: cfg.server_name.clone(),
        server_version: cfg.server_version.clone(),
        capabilities: shared.caps.capabilities.clone(),
        max_sessions: cfg.max_sessions as u16,
        active_sessions: active(shared),
    };
    debug!(client = %hello.client_name, build = %hello.build, codec = %hello.codec, "HELLO");
    if out
        .send(Outgoing {
            bytes: encoded(&Message::HelloAck(ack)),
            close: false,
        })
        .await
        .is_err()
    {
        return "writer closed".into();
    }

    // CONFIGURE
    let configure = match handshake_message(reader, cfg, out, "CONFIGURE", |m| match m {
        Message::Configure(c) => Ok(c),
        other => Err(other),
    })
    .await
    {
        Ok(c) => c,
        Err(reason) => return reason,
    };
    let settings = match parse_configure(
        &configure,
        &hello.codec,
        &shared.caps,
        cfg.max_message_bytes,
    ) {
        Ok(s) => s,
        Err(msg) => {
            let text = format!("configure failed: {msg}");
            info!("{text}");
            send_close(error_bytes(error_code::CONFIGURE_FAILED, text.clone())).await;
            return text;
        }
    };
    summary.mode = settings.mode.name();
    debug!(?settings, "CONFIGURE");

    // The media thread builds the codecs (sending CONFIGURE_ACK or ERROR 1) and then processes
    // FRAME/PACKET messages in order.
    let (work_tx, work_rx) = mpsc::channel::<Work>(4);
    let (report_tx, report_rx) = oneshot::channel::<WorkerReport>();
    let worker_out = out.clone();
    let max_bytes = cfg.max_message_bytes;
    let spawned = std::thread::Builder::new()
        .name(format!("vtr1-session-{}", summary.id))
        .spawn(move || media_worker(settings, max_bytes, work_rx, worker_out, report_tx));
    if let Err(e) = spawned {
        send_close(error_bytes(
            error_code::CONFIGURE_FAILED,
            format!("configure failed: cannot start the session thread: {e}"),
        ))
        .await;
        return "thread spawn failed".into();
    }

    let reason = loop {
        let msg = tokio::select! {
            r = reader.message(cfg.idle_timeout) => r,
            _ = closed.changed() => break "closed by the server".to_string(),
        };
        let msg = match msg {
            Ok(m) => m,
            Err(e) => break read_failure(e, out, "the next message").await,
        };
        match msg {
            m @ (Message::Frame(_) | Message::Packet(_)) => {
                if work_tx.send(Work::Media(m)).await.is_err() {
                    break "session failed".into();
                }
            }
            Message::Flush => {
                let _ = work_tx.send(Work::Flush).await;
                break "FLUSH".into();
            }
            Message::Ping => {
                let _ = out
                    .send(Outgoing {
                        bytes: encoded(&Message::Pong),
                        close: false,
                    })
                    .await;
            }
            Message::Pong => {}
            Message::Unknown { kind, length } => {
                debug!("skipped {kind} ({length} bytes)");
            }
            Message::Error(e) => break format!("client error {}: {}", e.code, e.message),
            other => {
                let kind = other.kind();
                send_close(error_bytes(
                    error_code::BAD_REQUEST,
                    format!("unexpected message type {} ({kind})", kind.0),
                ))
                .await;
                break format!("unexpected {kind}");
            }
        }
    };
    drop(work_tx);
    if let Ok(report) = report_rx.await {
        summary.media = Some(report);
    }
    reason
}

fn active(shared: &Shared) -> u16 {
    (shared.config.max_sessions - shared.slots.available_permits()) as u16
}

async fn read_failure(e: ReadFail, out: &mpsc::Sender<Outgoing>, waiting_for: &str) -> String {
    match e {
        ReadFail::Wire(w) => {
            let code = error_code::BAD_REQUEST;
            let text = match &w {
                WireError::TooLarge { .. } => format!("message too large: {w}"),
                _ => w.to_string(),
            };
            let _ = out
                .send(Outgoing {
                    bytes: error_bytes(code, text.clone()),
                    close: true,
                })
                .await;
            info!("protocol error: {text}");
            text
        }
        ReadFail::Eof { mid_message } => {
            if mid_message {
                format!("connection closed in the middle of {waiting_for}")
            } else {
                "connection closed by the client".into()
            }
        }
        ReadFail::Timeout { mid_message } => {
            let text = if mid_message {
                format!("deadline passed while receiving {waiting_for} (client too slow)")
            } else {
                format!("deadline passed waiting for {waiting_for}")
            };
            info!("{text}");
            text
        }
        ReadFail::Io(e) => format!("read failed: {e}"),
    }
}

fn media_worker(
    settings: crate::session::SessionSettings,
    max_message_bytes: u32,
    mut work: mpsc::Receiver<Work>,
    out: mpsc::Sender<Outgoing>,
    report: oneshot::Sender<WorkerReport>,
) {
    let send = |m: &Message, close: bool| {
        out.blocking_send(Outgoing {
            bytes: encoded(m),
            close,
        })
        .is_ok()
    };
    let fail = |f: SessionFailure| {
        info!("session failed: error {}: {}", f.code, f.message);
        let _ = send(
            &Message::Error(ErrorMsg {
                code: f.code,
                message: f.message,
            }),
            true,
        );
    };
    let (mut session, ack) = match MediaSession::new(&settings, max_message_bytes) {
        Ok(x) => x,
        Err(f) => {
            fail(f);
            let _ = report.send(WorkerReport {
                inputs: 0,
                outputs: 0,
                dropped: 0,
                encode_ms: Vec::new(),
            });
            return;
        }
    };
    if send(&Message::ConfigureAck(ack), false) {
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let item = match work.try_recv() {
                Ok(item) => item,
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    // Nothing queued: hand out what the encoder finishes meanwhile.
                    match session.wait_output(&mut buf) {
                        Ok(true) => {
                            if !buf.iter().all(|m| send(m, false)) {
                                break;
                            }
                            continue;
                        }
                        Ok(false) => {}
                        Err(f) => {
                            fail(f);
                            break;
                        }
                    }
                    match work.blocking_recv() {
                        Some(item) => item,
                        None => break,
                    }
                }
            };
            buf.clear();
            let (result, last) = match item {
                Work::Media(m) => (session.handle(m, &mut buf), false),
                Work::Flush => (session.flush(&mut buf), true),
            };
            let mut ok = buf.iter().all(|m| send(m, false));
            if let Err(f) = result {
                fail(f);
                ok = false;
            } else if last {
                let _ = send(&Message::Done, true);
                ok = false;
            }
            if !ok {
                break;
            }
        }
    }
    let s = session.stats().clone();
    let _ = report.send(WorkerReport {
        inputs: s.inputs,
        outputs: s.outputs,
        dropped: s.dropped,
        encode_ms: session.encode_ms().to_vec(),
    });
}

/// The message types a client must not send (answered with ERROR code 4).
pub fn is_server_only(kind: MessageType) -> bool {
    matches!(
        kind,
        MessageType::HELLO_ACK
            | MessageType::CONFIGURE_ACK
            | MessageType::DONE
            | MessageType::PACKET_ACK
    )
}
