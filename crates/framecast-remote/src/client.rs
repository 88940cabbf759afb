//! The async VTR1 client: handshake, CONFIGURE, then a full-duplex stream with an in-flight
//! window so the network and the remote encoder overlap.

use crate::error::RemoteError;
use crate::wire::{
    status, Configure, ConfigureAck, Hello, HelloAck, Limits, Message, Vtr1Codec,
    DEFAULT_MAX_MESSAGE_BYTES,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio::sync::{mpsc, Notify, Semaphore};

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Shared secret (empty: none).
    pub token: String,
    /// Codec asked for in HELLO.
    pub codec: String,
    /// Client name sent in HELLO.
    pub client_name: String,
    /// Build string sent in HELLO.
    pub build: String,
    /// Deadline for connecting, for each handshake reply, for each write, and for each
    /// message while draining after FLUSH.
    pub timeout: Duration,
    /// Largest FRAME/PACKET accepted from the server.
    pub max_media_bytes: u32,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            token: String::new(),
            codec: "h264".into(),
            client_name: "framecast".into(),
            build: env!("CARGO_PKG_VERSION").into(),
            timeout: Duration::from_secs(10),
            max_media_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

/// Sending half of a connection.
#[derive(Debug)]
pub struct MessageSender {
    wr: OwnedWriteHalf,
    buf: Vec<u8>,
    timeout: Duration,
    bytes_sent: Arc<AtomicU64>,
}

impl MessageSender {
    /// Encode and write one message within the write deadline.
    pub async fn send(&mut self, m: &Message) -> Result<(), RemoteError> {
        self.buf.clear();
        m.encode_into(&mut self.buf)?;
        match tokio::time::timeout(self.timeout, self.wr.write_all(&self.buf)).await {
            Ok(Ok(())) => {
                self.bytes_sent
                    .fetch_add(self.buf.len() as u64, Ordering::Relaxed);
                Ok(())
            }
            Ok(Err(e)) => Err(RemoteError::io(format!("sending {}", m.kind()), e)),
            Err(_) => Err(RemoteError::Timeout {
                what: "writing to the server",
                after: self.timeout,
            }),
        }
    }

    /// Bytes written so far.
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent.load(Ordering::Relaxed)
    }

    /// Close the write side.
    pub async fn shutdown(&mut self) {
        let _ = self.wr.shutdown().await;
    }
}

/// Receiving half of a connection.
#[derive(Debug)]
pub struct MessageReceiver {
    rd: OwnedReadHalf,
    codec: Vtr1Codec,
    bytes_received: u64,
}

impl MessageReceiver {
    /// The next message (an ERROR from the server becomes [`RemoteError::Server`]). Cancel-safe:
    /// partial reads stay buffered.
    pub async fn recv(&mut self) -> Result<Message, RemoteError> {
        loop {
            if let Some(m) = self.codec.poll()? {
                if let Message::Error(e) = m {
                    return Err(RemoteError::Server {
                        code: e.code,
                        message: e.message,
                    });
                }
                return Ok(m);
            }
            let n = self
                .rd
                .read_buf(self.codec.buffer_mut())
                .await
                .map_err(|e| RemoteError::io("reading from the server", e))?;
            if n == 0 {
                return Err(RemoteError::Closed(if self.codec.mid_message() {
                    "in the middle of a message"
                } else {
                    "between messages"
                }));
            }
            self.bytes_received += n as u64;
        }
    }

    /// [`Self::recv`] within `deadline`.
    pub async fn recv_within(
        &mut self,
        deadline: Duration,
        what: &'static str,
    ) -> Result<Message, RemoteError> {
        tokio::time::timeout(deadline, self.recv())
            .await
            .map_err(|_| RemoteError::Timeout {
                what,
                after: deadline,
            })?
    }

    /// Bytes read so far.
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received
    }
}

/// A connected, greeted client.
#[derive(Debug)]
pub struct Client {
    tx: MessageSender,
    rx: MessageReceiver,
    hello_ack: HelloAck,
    timeout: Duration,
}

impl Client {
    /// Connect, send HELLO and read HELLO_ACK. Busy and authentication failures are errors.
    pub async fn connect(
        addr: impl ToSocketAddrs + std::fmt::Debug,
        opts: ClientOptions,
    ) -> Result<Client, RemoteError> {
        let what = format!("{addr:?}");
        let stream = tokio::time::timeout(opts.timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| RemoteError::Timeout {
                what: "connecting",
                after: opts.timeout,
            })?
            .map_err(|e| RemoteError::io(format!("cannot connect to {what}"), e))?;
        let _ = stream.set_nodelay(true);
        let (rd, wr) = stream.into_split();
        let mut client = Client {
            tx: MessageSender {
                wr,
                buf: Vec::with_capacity(64 * 1024),
                timeout: opts.timeout,
                bytes_sent: Arc::new(AtomicU64::new(0)),
            },
            rx: MessageReceiver {
                rd,
                codec: Vtr1Codec::new(Limits::client(opts.max_media_bytes)),
                bytes_received: 0,
            },
            hello_ack: HelloAck::default(),
            timeout: opts.timeout,
        };
        let hello = Message::Hello(Hello {
            token: opts.token.clone(),
            codec: opts.codec.clone(),
            client_name: opts.client_name.clone(),
            build: opts.build.clone(),
        });
        // A busy server answers before reading HELLO and closes: a failed write is not the
        // story, the HELLO_ACK is.
        let sent = client.tx.send(&hello).await;
        let ack = match client
            .rx
            .recv_within(opts.timeout, "waiting for HELLO_ACK")
            .await
        {
            Ok(Message::HelloAck(a)) => a,
            Ok(other) => {
                return Err(RemoteError::Unexpected {
                    got: other.kind(),
                    expected: "HELLO_ACK",
                })
            }
            Err(e) => {
                sent?;
                return Err(e);
            }
        };
        let server = format!("{} {}", ack.server_name, ack.server_version)
            .trim()
            .to_string();
        match ack.status {
            status::OK => {}
            status::BUSY => {
                return Err(RemoteError::Busy {
                    server,
                    active: ack.active_sessions,
                    max: ack.max_sessions,
                })
            }
            status::AUTH_FAIL => return Err(RemoteError::AuthFailed { server }),
            other => {
                return Err(RemoteError::Unsupported(format!(
                    "server {server} answered HELLO with unknown status {other}"
                )))
            }
        }
        client.hello_ack = ack;
        Ok(client)
    }

    /// The server's HELLO_ACK (capabilities, limits).
    pub fn hello_ack(&self) -> &HelloAck {
        &self.hello_ack
    }

    /// Send CONFIGURE and wait for CONFIGURE_ACK. A pixel format the server did not advertise
    /// is refused here, before anything is sent.
    pub async fn configure(&mut self, c: Configure) -> Result<ConfigureAck, RemoteError> {
        let mode = c.option("mode").unwrap_or("encode");
        if mode == "encode" {
            let cap = match c.pix_fmt {
                crate::wire::pix_fmt::NV12 => Some("pixfmt.nv12"),
                crate::wire::pix_fmt::BGRA => Some("pixfmt.bgra"),
                crate::wire::pix_fmt::P010 => Some("pixfmt.p010"),
                _ => None,
            };
            // Servers that predate capability strings advertise none; do not gate those.
            if let Some(cap) = cap {
                if self
                    .hello_ack
                    .capabilities
                    .iter()
                    .any(|c| c.starts_with("pixfmt."))
                    && !self.hello_ack.has(cap)
                {
                    return Err(RemoteError::Unsupported(format!(
                        "the server does not accept {cap} (it advertises {})",
                        self.hello_ack.capabilities.join(", ")
                    )));
                }
            }
        }
        if c.option("packet_ack.v1") == Some("1") && !self.hello_ack.has("packet_ack.v1") {
            return Err(RemoteError::Unsupported(
                "the server does not advertise packet_ack.v1".into(),
            ));
        }
        self.tx.send(&Message::Configure(c)).await?;
        // Building a session can take a moment (encoder set-up): allow a few deadlines.
        match self
            .rx
            .recv_within(self.timeout * 3, "waiting for CONFIGURE_ACK")
            .await?
        {
            Message::ConfigureAck(a) if a.status == 0 => Ok(a),
            Message::ConfigureAck(a) => Err(RemoteError::Unsupported(format!(
                "the server refused CONFIGURE with status {}",
                a.status
            ))),
            other => Err(RemoteError::Unexpected {
                got: other.kind(),
                expected: "CONFIGURE_ACK",
            }),
        }
    }

    /// Send one message.
    pub async fn send(&mut self, m: &Message) -> Result<(), RemoteError> {
        self.tx.send(m).await
    }

    /// Receive one message.
    pub async fn recv(&mut self) -> Result<Message, RemoteError> {
        self.rx.recv().await
    }

    /// Split into independently usable halves.
    pub fn into_split(self) -> (MessageSender, MessageReceiver) {
        (self.tx, self.rx)
    }

    /// The per-operation deadline.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// How the sender of [`run_stream`] gets input credit back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credit {
    /// One credit per PACKET or FRAME received (encode mode: one packet per frame).
    PerOutput,
    /// One credit per PACKET_ACK (transcode with `packet_ack.v1`).
    PacketAck,
    /// No window (decode, transcode without acks): TCP backpressure only.
    Unlimited,
}

/// Totals of one [`run_stream`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamStats {
    /// Inputs sent.
    pub inputs: u64,
    /// PACKET/FRAME outputs received.
    pub outputs: u64,
    /// Bytes written (the whole connection).
    pub bytes_sent: u64,
    /// Bytes read (the whole connection).
    pub bytes_received: u64,
    /// Seconds from the first input to DONE.
    pub seconds: f64,
}

/// Stream `inputs` (FRAME or PACKET messages) to a configured session with at most `window`
/// inputs in flight, hand every PACKET/FRAME the server returns to `on_output` in order, send
/// FLUSH when `inputs` ends and return once DONE arrives.
pub async fn run_stream(
    client: Client,
    mut inputs: mpsc::Receiver<Message>,
    window: usize,
    credit: Credit,
    mut on_output: impl FnMut(Message) -> Result<(), RemoteError>,
) -> Result<StreamStats, RemoteError> {
    let timeout = client.timeout();
    let (mut tx, mut rx) = client.into_split();
    let credits = Arc::new(Semaphore::new(window.max(1)));
    let flushed = Arc::new(Notify::new());
    let started = Instant::now();
    let sender = {
        let credits = credits.clone();
        let flushed = flushed.clone();
        tokio::spawn(async move {
            let mut sent = 0u64;
            while let Some(m) = inputs.recv().await {
                if credit != Credit::Unlimited {
                    match credits.acquire().await {
                        Ok(p) => p.forget(),
                        Err(_) => break,
                    }
                }
                tx.send(&m).await?;
                sent += 1;
            }
            tx.send(&Message::Flush).await?;
            flushed.notify_one();
            Ok::<(u64, MessageSender), RemoteError>((sent, tx))
        })
    };
    let mut outputs = 0u64;
    let mut draining = false;
    let result: Result<(), RemoteError> = async {
        loop {
            let m = if draining {
                rx.recv_within(timeout, "waiting for the server to drain after FLUSH")
                    .await?
            } else {
                tokio::select! {
                    m = rx.recv() => m?,
                    _ = flushed.notified() => { draining = true; continue; }
                }
            };
            match m {
                Message::Done => return Ok(()),
                m @ (Message::Packet(_) | Message::Frame(_)) => {
                    outputs += 1;
                    if credit == Credit::PerOutput {
                        credits.add_permits(1);
                    }
                    on_output(m)?;
                }
                Message::PacketAck => {
                    if credit == Credit::PacketAck {
                        credits.add_permits(1);
                    }
                }
                Message::Pong | Message::Unknown { .. } => {}
                other => {
                    return Err(RemoteError::Unexpected {
                        got: other.kind(),
                        expected: "PACKET, FRAME, PACKET_ACK or DONE",
                    })
                }
            }
        }
    }
    .await;
    credits.close();
    if let Err(e) = result {
        sender.abort();
        return Err(e);
    }
    let sender_result = sender.await;
    let (sent, tx) = match sender_result {
        Ok(r) => r?,
        Err(e) => return Err(RemoteError::Unsupported(format!("sender task failed: {e}"))),
    };
    Ok(StreamStats {
        inputs: sent,
        outputs,
        bytes_sent: tx.bytes_sent(),
        bytes_received: rx.bytes_received(),
        seconds: started.elapsed().as_secs_f64(),
    })
}
