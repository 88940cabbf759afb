//! The async VTR1 client: a thin tokio shell around [`Vtr1ClientSession`]. Handshake,
//! CONFIGURE, then a full-duplex stream with an in-flight window so the network and the
//! remote encoder overlap.

use crate::client_session::{ClientHello, ClientOutput, Vtr1ClientSession};
use crate::error::RemoteError;
use crate::resume::Journal;
use crate::wire::{
    Configure, ConfigureAck, HelloAck, Limits, Message, Vtr1Codec, DEFAULT_MAX_MESSAGE_BYTES,
};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio::sync::mpsc;

pub use crate::client_session::Credit;

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
    /// answer the client waits for (window full, or draining after FLUSH).
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

/// A connected, greeted client.
#[derive(Debug)]
pub struct Client {
    stream: TcpStream,
    codec: Vtr1Codec,
    session: Vtr1ClientSession,
    started: Instant,
    timeout: Duration,
    buf: Vec<u8>,
    bytes_sent: u64,
    bytes_received: u64,
    /// Outputs that arrived while waiting for something else.
    pending: Vec<ClientOutput>,
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
        let hello = ClientHello {
            token: opts.token,
            codec: opts.codec,
            client_name: opts.client_name,
            build: opts.build,
        };
        let mut client = Client {
            stream,
            codec: Vtr1Codec::new(Limits::client(opts.max_media_bytes)),
            session: Vtr1ClientSession::new(hello, opts.timeout, Duration::ZERO),
            started: Instant::now(),
            timeout: opts.timeout,
            buf: Vec::with_capacity(64 * 1024),
            bytes_sent: 0,
            bytes_received: 0,
            pending: Vec::new(),
        };
        // A busy server answers before reading HELLO and closes: a failed write is not the
        // story, the HELLO_ACK is.
        let sent = client.flush_outputs().await;
        match client
            .until(|o| matches!(o, ClientOutput::Greeted(_)))
            .await
        {
            Ok(_) => Ok(client),
            Err(e) => {
                sent?;
                Err(e)
            }
        }
    }

    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// The server's HELLO_ACK (capabilities, limits).
    pub fn hello_ack(&self) -> &HelloAck {
        self.session
            .hello_ack()
            .expect("a connected client has been greeted")
    }

    /// Send CONFIGURE and wait for CONFIGURE_ACK. A pixel format the server did not advertise
    /// is refused here, before anything is sent.
    pub async fn configure(&mut self, c: Configure) -> Result<ConfigureAck, RemoteError> {
        let now = self.now();
        self.session.configure(c, now)?;
        self.flush_outputs().await?;
        match self
            .until(|o| matches!(o, ClientOutput::Configured(_)))
            .await?
        {
            ClientOutput::Configured(a) => Ok(a),
            _ => unreachable!("until() returns what it waited for"),
        }
    }

    /// Send one message as it is (below the session: for tests and tools that drive the
    /// protocol by hand).
    pub async fn send(&mut self, m: &Message) -> Result<(), RemoteError> {
        self.write(m).await
    }

    /// Receive one message as it is (an ERROR from the server becomes
    /// [`RemoteError::Server`]).
    pub async fn recv(&mut self) -> Result<Message, RemoteError> {
        match self.read().await? {
            Message::Error(e) => Err(RemoteError::Server {
                code: e.code,
                message: e.message,
            }),
            m => Ok(m),
        }
    }

    /// Bytes written and read on this connection so far.
    pub fn wire_bytes(&self) -> (u64, u64) {
        (self.bytes_sent, self.bytes_received)
    }

    /// The per-operation deadline.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn write(&mut self, m: &Message) -> Result<(), RemoteError> {
        self.buf.clear();
        m.encode_into(&mut self.buf)?;
        match tokio::time::timeout(self.timeout, self.stream.write_all(&self.buf)).await {
            Ok(Ok(())) => {
                self.bytes_sent += self.buf.len() as u64;
                Ok(())
            }
            Ok(Err(e)) => Err(RemoteError::io(format!("sending {}", m.kind()), e)),
            Err(_) => Err(RemoteError::Timeout {
                what: "writing to the server",
                after: self.timeout,
            }),
        }
    }

    /// The next whole message. Cancel-safe: partial reads stay buffered.
    async fn read(&mut self) -> Result<Message, RemoteError> {
        loop {
            if let Some(m) = self.codec.poll()? {
                return Ok(m);
            }
            let n = self
                .stream
                .read_buf(self.codec.buffer_mut())
                .await
                .map_err(|e| RemoteError::io("reading from the server", e))?;
            if n == 0 {
                return Err(self.session.handle_closed(self.codec.mid_message()));
            }
            self.bytes_received += n as u64;
        }
    }

    /// Write what the session wants written; keep the rest for the caller.
    async fn flush_outputs(&mut self) -> Result<(), RemoteError> {
        while let Some(o) = self.session.poll_output() {
            match o {
                ClientOutput::Send(m) => self.write(&m).await?,
                other => self.pending.push(other),
            }
        }
        Ok(())
    }

    /// Read until the session yields an output that `wanted` accepts (under its deadline).
    async fn until(
        &mut self,
        wanted: impl Fn(&ClientOutput) -> bool,
    ) -> Result<ClientOutput, RemoteError> {
        loop {
            if let Some(i) = self.pending.iter().position(&wanted) {
                return Ok(self.pending.remove(i));
            }
            self.step().await?;
            self.flush_outputs().await?;
        }
    }

    /// One message from the server into the session, or its deadline.
    async fn step(&mut self) -> Result<(), RemoteError> {
        let deadline = self
            .session
            .poll_timeout()
            .map(|t| tokio::time::Instant::from_std(self.started + t));
        let m = match deadline {
            Some(at) => match tokio::time::timeout_at(at, self.read()).await {
                Ok(m) => m?,
                Err(_) => {
                    let now = self.now();
                    return self.session.handle_timeout(now);
                }
            },
            None => self.read().await?,
        };
        let now = self.now();
        self.session.handle_message(m, now)
    }
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

/// Why [`run_stream`] stopped early: the connection, or the application's own output
/// handler (a file that cannot be written, say), kept apart so each can be reported as what
/// it is.
#[derive(Debug, thiserror::Error)]
pub enum RunError<E> {
    /// The server or the connection failed.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// `on_output` failed.
    #[error("{0}")]
    Output(E),
}

/// Stream `inputs` (FRAME or PACKET messages) to a configured session with at most `window`
/// inputs in flight, hand every PACKET/FRAME the server returns to `on_output` in order (a
/// PACKET in encode and transcode mode, a FRAME in decode mode: anything else is an error),
/// send FLUSH when `inputs` ends and return once DONE arrives.
///
/// For an encode session that should survive its server, see
/// [`crate::failover::ServerPool::run_encode`].
pub async fn run_stream<E>(
    mut client: Client,
    mut inputs: mpsc::Receiver<Message>,
    window: usize,
    credit: Credit,
    mut on_output: impl FnMut(Message) -> Result<(), E>,
) -> Result<StreamStats, RunError<E>> {
    let started = Instant::now();
    let mut feed = Feed::new(&mut inputs);
    drive(&mut client, &mut feed, window, credit, None, &mut on_output).await?;
    let (inputs, outputs) = client.session.counts();
    Ok(StreamStats {
        inputs,
        outputs,
        bytes_sent: client.bytes_sent,
        bytes_received: client.bytes_received,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Where a session's inputs come from: first what must be sent again (a resumed session's
/// frames still owed), then the caller's channel.
pub(crate) struct Feed<'a> {
    inputs: &'a mut mpsc::Receiver<Message>,
    open: bool,
    /// Sent before anything new from `inputs`.
    pub(crate) again: VecDeque<Message>,
    /// Taken from `inputs` so far.
    pub(crate) taken: u64,
}

impl<'a> Feed<'a> {
    pub(crate) fn new(inputs: &'a mut mpsc::Receiver<Message>) -> Self {
        Feed {
            inputs,
            open: true,
            again: VecDeque::new(),
            taken: 0,
        }
    }
}

/// Run one connection's stream until DONE (`Ok`) or its first failure. `journal` (encode
/// sessions that may be resumed) sees every input sent and every output returned.
pub(crate) async fn drive<E>(
    client: &mut Client,
    feed: &mut Feed<'_>,
    window: usize,
    credit: Credit,
    mut journal: Option<&mut Journal>,
    on_output: &mut impl FnMut(Message) -> Result<(), E>,
) -> Result<(), RunError<E>> {
    client.session.set_window(credit, window);
    loop {
        for o in std::mem::take(&mut client.pending) {
            match o {
                ClientOutput::Output(m) => {
                    if let Some(j) = journal.as_deref_mut() {
                        j.answered(&m);
                    }
                    on_output(m).map_err(RunError::Output)?;
                }
                ClientOutput::Done => return Ok(()),
                _ => {}
            }
        }
        let now = client.now();
        if client.session.can_send() {
            if let Some(m) = feed.again.pop_front() {
                if let Some(j) = journal.as_deref_mut() {
                    j.sent(&m);
                }
                client.session.send_input(m, now)?;
                client.flush_outputs().await?;
                continue;
            }
        }
        if !feed.open && feed.again.is_empty() {
            client.session.finish(now); // once: FLUSH after the last input
        }
        let room = feed.open && client.session.can_send();
        let deadline = client
            .session
            .poll_timeout()
            .map(|t| tokio::time::Instant::from_std(client.started + t));
        tokio::select! {
            m = client.read() => {
                let m = m?;
                let now = client.now();
                client.session.handle_message(m, now)?;
            }
            input = feed.inputs.recv(), if room => {
                let now = client.now();
                match input {
                    Some(m) => {
                        feed.taken += 1;
                        if let Some(j) = journal.as_deref_mut() {
                            j.sent(&m);
                        }
                        client.session.send_input(m, now)?;
                    }
                    None => {
                        feed.open = false;
                        client.session.finish(now);
                    }
                }
            }
            _ = sleep_until(deadline) => {
                let now = client.now();
                client.session.handle_timeout(now)?;
            }
        }
        client.flush_outputs().await?;
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
