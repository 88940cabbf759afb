//! One viewer's WebSocket: admission ([`Admission`]: `hello`, token), joining the stream, a
//! reader that rate-limits the viewer's messages *before* they reach the stream's queue,
//! and a writer that builds each payload's envelope on its own task.

use crate::hub::Hub;
use crate::protocol::close;
use crate::session::{Admission, Rejection};
use crate::stream::{Cmd, Outbound, StreamShared};
use crate::tcp_info::TcpProbe;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Messages queued for one viewer's socket; a full queue is a stalled viewer (it misses
/// frames, nobody waits for it).
const OUTBOUND_QUEUE: usize = 16;
/// After its close frame the server keeps reading (and discarding) until the viewer's close
/// frame, the end of the stream, or this long: dropping a socket with unread input makes the
/// kernel send a reset, and a browser that sees the reset before the close frame reports 1006
/// instead of the code (4401, 4404, 1003, 1008, 1009), then reconnects.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// The close code and reason for a WebSocket read error, chosen by its kind: 1009 for a
/// message or frame over the size cap, 1008 for anything else.
fn read_error_close(error: axum::Error) -> (u16, &'static str) {
    use tungstenite::error::{CapacityError, Error};
    let inner = error.into_inner();
    match inner.downcast_ref::<Error>() {
        Some(Error::Capacity(
            CapacityError::MessageTooLong { .. } | CapacityError::TooManyHeaders,
        )) => (close::TOO_BIG, "message too big"),
        _ => (close::MALFORMED, "protocol error"),
    }
}

/// A token bucket over a viewer's text messages: `rate` a second, a one-second burst.
struct MessageLimit {
    rate: f64,
    tokens: f64,
    at: tokio::time::Instant,
}

impl MessageLimit {
    fn new(rate: u32) -> Self {
        MessageLimit {
            rate: rate.max(1) as f64,
            tokens: rate.max(1) as f64,
            at: tokio::time::Instant::now(),
        }
    }

    fn allow(&mut self) -> bool {
        let now = tokio::time::Instant::now();
        self.tokens = (self.tokens + (now - self.at).as_secs_f64() * self.rate).min(self.rate);
        self.at = now;
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

/// Serve one upgraded WebSocket for stream `name`.
pub(crate) async fn run(
    hub: Arc<Hub>,
    name: String,
    url_token: Option<String>,
    mut socket: WebSocket,
    probe: Option<TcpProbe>,
) {
    let Some(stream) = hub.stream(&name) else {
        tracing::info!(stream = %name, "connection to an unknown stream closed (4404)");
        let reason = close::unknown_stream_reason(&name);
        close_socket(&mut socket, close::UNKNOWN_STREAM, &reason).await;
        return;
    };
    let supported = match admit(&hub, &stream, url_token, &mut socket).await {
        Ok(Some(s)) => s,
        Ok(None) => return,
        Err(rejection) => {
            tracing::warn!(stream = %name, code = rejection.code, reason = %rejection.reason, "viewer refused");
            close_socket(&mut socket, rejection.code, &rejection.reason).await;
            return;
        }
    };
    let id = hub.next_viewer.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
    let (reply_tx, reply_rx) = oneshot::channel();
    let join = Cmd::Join {
        id,
        supported,
        tx: tx.clone(),
        reply: reply_tx,
    };
    let joined = match stream.cmd.send(join).await {
        Ok(()) => reply_rx.await.ok(),
        Err(_) => None,
    };
    match joined {
        Some(Ok(())) => {}
        Some(Err(rejection)) => {
            tracing::info!(stream = %name, code = rejection.code, reason = %rejection.reason, "viewer rejected");
            close_socket(&mut socket, rejection.code, &rejection.reason).await;
            return;
        }
        None => {
            close_socket(&mut socket, close::GOING_AWAY, "stream closed").await;
            return;
        }
    }
    tracing::info!(stream = %name, viewer = id, "viewer connected");
    let probe = probe.map(|p| (p, stream.cmd.clone(), id));
    let linger = read_loop(&hub, &stream, id, socket, tx, rx, probe).await;
    let _ = stream.cmd.send(Cmd::Leave { id }).await;
    linger.await;
    tracing::info!(stream = %name, viewer = id, "viewer disconnected");
}

/// Wait for `hello` under the admission deadline. `Ok(None)`: the peer went away.
async fn admit(
    hub: &Hub,
    stream: &StreamShared,
    url_token: Option<String>,
    socket: &mut WebSocket,
) -> Result<Option<Vec<String>>, Rejection> {
    let now = || stream.start.elapsed();
    let admission = Admission::new(now(), hub.config.hello_timeout, url_token);
    let deadline = tokio::time::Instant::from_std(stream.start + admission.poll_timeout());
    loop {
        let next = match tokio::time::timeout_at(deadline, socket.recv()).await {
            Ok(next) => next,
            Err(_) => {
                return Err(admission
                    .handle_timeout(now())
                    .expect("the admission deadline has passed"))
            }
        };
        match next {
            Some(Ok(Message::Text(t))) => {
                return admission
                    .handle_text(&t, stream.config.token.as_deref())
                    .map(Some)
            }
            Some(Ok(Message::Close(_))) | None => return Ok(None),
            Some(Ok(_)) => continue, // binary, ping, pong before hello: ignored
            Some(Err(e)) => {
                let (code, reason) = read_error_close(e);
                tracing::warn!(stream = %stream.name, code, "closing connection: read error before hello");
                let _ = socket
                    .send(Message::Close(Some(CloseFrame {
                        code,
                        reason: reason.into(),
                    })))
                    .await;
                // The input cannot be parsed any more: hold the socket for the close frame.
                tokio::time::sleep(CLOSE_LINGER).await;
                return Ok(None);
            }
        }
    }
}

/// Read the viewer's messages until it leaves or is closed; returns what is left to do
/// for a clean closing handshake.
async fn read_loop(
    hub: &Hub,
    stream: &StreamShared,
    id: u64,
    socket: WebSocket,
    tx: mpsc::Sender<Outbound>,
    rx: mpsc::Receiver<Outbound>,
    probe: Option<TransportFeed>,
) -> impl std::future::Future<Output = ()> {
    let (sink, mut source) = socket.split();
    let (closing_tx, mut closing_rx) = oneshot::channel();
    let writer = tokio::spawn(write_loop(sink, rx, closing_tx, probe));
    let mut limit = MessageLimit::new(hub.config.max_messages_per_second);
    let mut linger = Linger::None;
    loop {
        let next = tokio::select! {
            next = source.next() => next,
            _ = &mut closing_rx => {
                linger = Linger::Drain(tokio::time::Instant::now() + CLOSE_LINGER);
                break;
            }
        };
        match next {
            Some(Ok(Message::Text(t))) => {
                if !limit.allow() {
                    tracing::warn!(stream = %stream.name, viewer = id, "closing viewer: over {} messages/s", hub.config.max_messages_per_second);
                    let _ = tx.try_send(Outbound::Close(
                        close::MALFORMED,
                        "too many messages".into(),
                    ));
                    linger = Linger::Drain(tokio::time::Instant::now() + CLOSE_LINGER);
                    break;
                }
                let text = Cmd::Text {
                    id,
                    text: t.to_string(),
                };
                if stream.cmd.send(text).await.is_err() {
                    break;
                }
            }
            Some(Ok(Message::Close(_))) | None => break,
            Some(Ok(_)) => {} // binary, ping, pong: ignored
            Some(Err(e)) => {
                let (code, reason) = read_error_close(e);
                tracing::warn!(stream = %stream.name, viewer = id, code, "closing viewer: read error");
                let _ = tx.try_send(Outbound::Close(code, reason.into()));
                linger = Linger::Hold(tokio::time::Instant::now() + CLOSE_LINGER);
                break;
            }
        }
    }
    drop(tx);
    async move {
        let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
        match linger {
            Linger::Drain(deadline) => drain_until_close(&mut source, deadline).await,
            // After a read error the input cannot be parsed any more (the stream has ended):
            // just hold the socket open for the peer to read our close frame.
            Linger::Hold(deadline) => tokio::time::sleep_until(deadline).await,
            Linger::None => {}
        }
    }
}

/// How a connection ends after the server's close frame (see [`CLOSE_LINGER`]).
enum Linger {
    None,
    /// Read and discard until the peer's close frame or the deadline.
    Drain(tokio::time::Instant),
    /// The input is unusable (read error): keep the socket open until the deadline.
    Hold(tokio::time::Instant),
}

/// Send a close frame, then finish the closing handshake (see [`CLOSE_LINGER`]).
pub(crate) async fn close_socket(socket: &mut WebSocket, code: u16, reason: &str) {
    let sent = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
    if sent.is_ok() {
        drain_until_close(socket, tokio::time::Instant::now() + CLOSE_LINGER).await;
    }
}

/// Read and discard until the peer's close frame, the end of the stream, or `deadline`. A
/// read error (an oversized or broken frame) repeats without consuming input, so after one
/// the socket is just held open until `deadline`, time for the peer to read our close frame.
async fn drain_until_close<S>(source: &mut S, deadline: tokio::time::Instant)
where
    S: futures_util::Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    loop {
        match tokio::time::timeout_at(deadline, source.next()).await {
            Err(_) | Ok(None) | Ok(Some(Ok(Message::Close(_)))) => return,
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_))) => {
                tokio::time::sleep_until(deadline).await;
                return;
            }
        }
    }
}

/// The least time between two `TCP_INFO` samples of one connection.
const SAMPLE_EVERY: Duration = Duration::from_millis(30);

/// Where a connection's `TCP_INFO` samples go: its reader, the stream task, its viewer id.
type TransportFeed = (TcpProbe, mpsc::Sender<Cmd>, u64);

/// Writes a connection's outbound queue; `closing` fires once its close frame is out. After
/// a payload it reads the connection's `TCP_INFO` for congestion control (at most every
/// [`SAMPLE_EVERY`]).
async fn write_loop(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Outbound>,
    closing: oneshot::Sender<()>,
    probe: Option<TransportFeed>,
) {
    let mut sampled: Option<tokio::time::Instant> = None;
    while let Some(m) = rx.recv().await {
        let r = match m {
            Outbound::Text(t) => sink.send(Message::Text(t.into())).await,
            Outbound::Payload { chunk, seq } => {
                let r = sink.send(Message::Binary(chunk.envelope(seq))).await;
                // At most one sample (a syscall and a command) per SAMPLE_EVERY, however
                // high the frame rate.
                let due = sampled.is_none_or(|t| t.elapsed() >= SAMPLE_EVERY);
                if let Some((p, cmd, id)) = probe.as_ref().filter(|_| due) {
                    sampled = Some(tokio::time::Instant::now());
                    if let Some(sample) = p.sample() {
                        // A full command queue just loses a sample; the next send brings one.
                        let _ = cmd.try_send(Cmd::Transport { id: *id, sample });
                    }
                }
                r
            }
            Outbound::Close(code, reason) => {
                let _ = sink
                    .send(Message::Close(Some(CloseFrame {
                        code,
                        reason: reason.into(),
                    })))
                    .await;
                let _ = closing.send(());
                break;
            }
        };
        if r.is_err() {
            break;
        }
    }
    let _ = sink.close().await;
}
