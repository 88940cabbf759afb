//! One server connection's protocol, sans-IO: HELLO and the token, CONFIGURE, the main loop
//! (FRAME/PACKET to the media side, PING, FLUSH) and the deadlines. The shell feeds it each
//! whole message read ([`Vtr1ServerSession::handle_message`]), read failures and the time,
//! and carries out what [`Vtr1ServerSession::poll_output`] says: write a message, start the
//! media side, hand it an input, flush it, close. The media side (encoding) and its replies
//! stay with the shell; their ERROR/DONE end the session there.

use crate::error::{SessionFailure, WireError};
use crate::settings::{parse_configure, Mode, ServerCaps, SessionSettings};
use crate::wire::{error_code, status, ErrorMsg, HelloAck, Message};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// Constant time in the content; the length is not secret-dependent beyond itself.
fn token_matches(expected: &str, got: &str) -> bool {
    use subtle::ConstantTimeEq;
    expected.as_bytes().ct_eq(got.as_bytes()).into()
}

/// What every session of a server shares.
#[derive(Debug, Clone)]
pub struct ServerSessionConfig {
    /// Token clients must send (`None`: no authentication).
    pub token: Option<String>,
    /// What HELLO_ACK advertises and CONFIGURE is checked against.
    pub caps: ServerCaps,
    /// Deadline for each of HELLO and CONFIGURE.
    pub handshake_timeout: Duration,
    /// Deadline for each message after the handshake.
    pub idle_timeout: Duration,
    /// Size cap for FRAME/PACKET.
    pub max_message_bytes: u32,
    /// HELLO_ACK's server name.
    pub server_name: String,
    /// HELLO_ACK's server version.
    pub server_version: String,
    /// HELLO_ACK's session limit.
    pub max_sessions: u16,
}

impl ServerSessionConfig {
    /// The HELLO_ACK that turns a client away because every session slot is taken.
    pub fn busy_ack(&self) -> Message {
        Message::HelloAck(self.hello_ack(status::BUSY, self.max_sessions, Vec::new()))
    }

    fn hello_ack(&self, status: u8, active: u16, capabilities: Vec<String>) -> HelloAck {
        HelloAck {
            status,
            server_name: self.server_name.clone(),
            server_version: self.server_version.clone(),
            capabilities,
            max_sessions: self.max_sessions,
            active_sessions: active,
        }
    }
}

/// What the shell must do next.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ServerOutput {
    /// Write this message to the client.
    Send(Message),
    /// Build the codecs for these settings on the media side (which answers CONFIGURE_ACK,
    /// or ERROR 1 and ends the session).
    StartMedia(Box<SessionSettings>),
    /// Hand a FRAME or PACKET to the media side.
    Media(Message),
    /// FLUSH: the media side drains its codecs, sends what comes out, then DONE, and ends
    /// the session.
    FlushMedia,
    /// Stop reading and close once everything queued before this is written; the session is
    /// over (see [`Vtr1ServerSession::end_reason`]).
    Close,
}

/// How reading the next message failed.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadFailure {
    /// The bytes do not parse (bad header, too large, malformed body).
    Wire(WireError),
    /// The client closed the connection; `mid_message` when it was part-way through one.
    Closed {
        /// Whether a message was half received.
        mid_message: bool,
    },
    /// The socket failed.
    Io(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Hello,
    Configure,
    Media,
    Flushing,
    Ended,
}

impl Phase {
    fn waiting_for(self) -> &'static str {
        match self {
            Phase::Hello => "HELLO",
            Phase::Configure => "CONFIGURE",
            _ => "the next message",
        }
    }
}

/// One connection's protocol state. Time is a [`Duration`] since any fixed origin.
#[derive(Debug)]
pub struct Vtr1ServerSession {
    config: Arc<ServerSessionConfig>,
    phase: Phase,
    codec: String,
    deadline: Duration,
    active_sessions: u16,
    mode: Option<Mode>,
    out: VecDeque<ServerOutput>,
    end: Option<String>,
}

impl Vtr1ServerSession {
    /// A new connection at `now`, holding one of the server's session slots; `active` is the
    /// number of sessions in use (this one included), for HELLO_ACK.
    pub fn new(config: Arc<ServerSessionConfig>, now: Duration, active: u16) -> Self {
        let deadline = now + config.handshake_timeout;
        Vtr1ServerSession {
            config,
            phase: Phase::Hello,
            codec: String::new(),
            deadline,
            active_sessions: active,
            mode: None,
            out: VecDeque::new(),
            end: None,
        }
    }

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<ServerOutput> {
        self.out.pop_front()
    }

    /// When [`Vtr1ServerSession::handle_timeout`] ends the session, unless a message
    /// completes first (`None` once it has ended).
    pub fn poll_timeout(&self) -> Option<Duration> {
        (self.phase != Phase::Ended).then_some(self.deadline)
    }

    /// Why the session ended, once it has.
    pub fn end_reason(&self) -> Option<&str> {
        self.end.as_deref()
    }

    /// The mode CONFIGURE asked for, once known.
    pub fn mode(&self) -> Option<Mode> {
        self.mode
    }

    fn finish(&mut self, reason: impl Into<String>) {
        if self.phase != Phase::Ended {
            self.phase = Phase::Ended;
            self.end = Some(reason.into());
            self.out.push_back(ServerOutput::Close);
        }
    }

    fn fail(&mut self, code: u32, message: String) {
        self.out
            .push_back(ServerOutput::Send(Message::Error(ErrorMsg {
                code,
                message: message.clone(),
            })));
        self.finish(message);
    }

    /// The deadline passed with no whole message; `mid_message` when part of one had arrived
    /// (a client too slow to send it, or trickling bytes on purpose).
    pub fn handle_timeout(&mut self, now: Duration, mid_message: bool) {
        if self.phase == Phase::Ended || now < self.deadline {
            return;
        }
        let waiting = self.phase.waiting_for();
        let reason = if mid_message {
            format!("deadline passed while receiving {waiting} (client too slow)")
        } else {
            format!("deadline passed waiting for {waiting}")
        };
        tracing::info!("{reason}");
        self.finish(reason);
    }

    /// Reading failed: a protocol error gets ERROR 4 before the close.
    pub fn handle_read_failure(&mut self, failure: ReadFailure) {
        if self.phase == Phase::Ended {
            return;
        }
        match failure {
            ReadFailure::Wire(w) => {
                let text = match &w {
                    WireError::TooLarge { .. } => format!("message too large: {w}"),
                    _ => w.to_string(),
                };
                tracing::info!("protocol error: {text}");
                self.fail(error_code::BAD_REQUEST, text);
            }
            ReadFailure::Closed { mid_message } => {
                let waiting = self.phase.waiting_for();
                self.finish(if mid_message {
                    format!("connection closed in the middle of {waiting}")
                } else {
                    "connection closed by the client".into()
                });
            }
            ReadFailure::Io(e) => self.finish(format!("read failed: {e}")),
        }
    }

    /// The media side failed (its ERROR is already on its way): stop.
    pub fn handle_media_failure(&mut self, failure: &SessionFailure) {
        self.finish(format!("error {}: {failure}", failure.code()));
    }

    /// The media side sent DONE after a FLUSH: the session is complete.
    pub fn handle_media_done(&mut self) {
        self.finish("FLUSH");
    }

    /// One whole message from the client.
    pub fn handle_message(&mut self, msg: Message, now: Duration) {
        if self.phase == Phase::Ended {
            return;
        }
        match (&self.phase, msg) {
            (_, Message::Ping) => self.out.push_back(ServerOutput::Send(Message::Pong)),
            (_, Message::Unknown { kind, length }) => {
                tracing::debug!("skipped {kind} ({length} bytes)");
            }
            (_, Message::Pong) => {}
            (Phase::Hello, Message::Hello(hello)) => {
                if let Some(token) = &self.config.token {
                    if !token_matches(token, &hello.token) {
                        let ack = self.config.hello_ack(
                            status::AUTH_FAIL,
                            self.active_sessions,
                            Vec::new(),
                        );
                        self.out.push_back(ServerOutput::Send(ack.into()));
                        self.finish("authentication failed");
                        return;
                    }
                }
                tracing::debug!(client = %hello.client_name, build = %hello.build, codec = %hello.codec, "HELLO");
                let caps = self.config.caps.capabilities.clone();
                let ack = self
                    .config
                    .hello_ack(status::OK, self.active_sessions, caps);
                self.out.push_back(ServerOutput::Send(ack.into()));
                self.codec = hello.codec;
                self.phase = Phase::Configure;
                self.deadline = now + self.config.handshake_timeout;
            }
            (Phase::Configure, Message::Configure(c)) => {
                let parsed = parse_configure(
                    &c,
                    &self.codec,
                    &self.config.caps,
                    self.config.max_message_bytes,
                );
                match parsed {
                    Ok(settings) => {
                        tracing::debug!(?settings, "CONFIGURE");
                        self.mode = Some(settings.mode);
                        self.out
                            .push_back(ServerOutput::StartMedia(Box::new(settings)));
                        self.phase = Phase::Media;
                        self.deadline = now + self.config.idle_timeout;
                    }
                    Err(e) => {
                        let failure = SessionFailure::Configure(e);
                        tracing::info!("{failure}");
                        self.fail(failure.code(), failure.to_string());
                    }
                }
            }
            (Phase::Media, m @ (Message::Frame(_) | Message::Packet(_))) => {
                self.out.push_back(ServerOutput::Media(m));
                self.deadline = now + self.config.idle_timeout;
            }
            (Phase::Media, Message::Flush) => {
                self.out.push_back(ServerOutput::FlushMedia);
                self.phase = Phase::Flushing;
                self.deadline = now + self.config.idle_timeout;
            }
            // FFmpeg's client may send FLUSH again while the first drains: harmless.
            (Phase::Flushing, Message::Flush) => {}
            (_, Message::Error(e)) => {
                self.finish(format!("client error {}: {}", e.code, e.message))
            }
            (phase, other) => {
                let kind = other.kind();
                let text = match phase {
                    Phase::Hello | Phase::Configure => {
                        format!("expected {}, got {kind}", phase.waiting_for())
                    }
                    _ => format!("unexpected message type {} ({kind})", kind.0),
                };
                self.fail(error_code::BAD_REQUEST, text);
            }
        }
    }
}
