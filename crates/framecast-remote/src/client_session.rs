//! One client connection's protocol, sans-IO: HELLO and its answer, CONFIGURE (checked against
//! what the server advertised), then a stream of inputs under an in-flight window, FLUSH and
//! DONE, with a deadline on every wait for the server. The shell feeds it whole messages and
//! the time and carries out [`Vtr1ClientSession::poll_output`].

use crate::error::RemoteError;
use crate::wire::{
    pix_fmt, status, Configure, ConfigureAck, Hello, HelloAck, Message, MessageType,
};
use std::collections::VecDeque;
use std::time::Duration;

/// How the sender gets input credit back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credit {
    /// One credit per PACKET or FRAME received (encode mode: one packet per frame).
    PerOutput,
    /// One credit per PACKET_ACK (transcode with `packet_ack.v1`).
    PacketAck,
    /// No window (decode, transcode without acks): TCP backpressure only.
    Unlimited,
}

/// What HELLO says about the client.
#[derive(Debug, Clone)]
pub struct ClientHello {
    /// Shared secret (empty: none).
    pub token: String,
    /// Codec asked for.
    pub codec: String,
    /// Client name.
    pub client_name: String,
    /// Build string.
    pub build: String,
}

/// What the shell must do next.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientOutput {
    /// Write this message to the server.
    Send(Message),
    /// The server accepted HELLO.
    Greeted(HelloAck),
    /// The server accepted CONFIGURE.
    Configured(ConfigureAck),
    /// A PACKET or FRAME for the application.
    Output(Message),
    /// DONE arrived after FLUSH: the session is complete.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Hello,
    Greeted,
    Configuring,
    Streaming,
    Flushing,
    Done,
}

/// One connection's protocol state. Time is a [`Duration`] since any fixed origin.
#[derive(Debug)]
pub struct Vtr1ClientSession {
    phase: Phase,
    timeout: Duration,
    deadline: Option<Duration>,
    hello_ack: Option<HelloAck>,
    /// PACKET or FRAME: what the configured mode returns.
    output_kind: MessageType,
    credit: Credit,
    credits: usize,
    inputs: u64,
    outputs: u64,
    out: VecDeque<ClientOutput>,
}

impl Vtr1ClientSession {
    /// Start at `now`: HELLO goes out first, and HELLO_ACK is due within `timeout`.
    pub fn new(hello: ClientHello, timeout: Duration, now: Duration) -> Self {
        let mut s = Vtr1ClientSession {
            phase: Phase::Hello,
            timeout,
            deadline: Some(now + timeout),
            hello_ack: None,
            output_kind: MessageType::PACKET,
            credit: Credit::Unlimited,
            credits: 0,
            inputs: 0,
            outputs: 0,
            out: VecDeque::new(),
        };
        s.out.push_back(ClientOutput::Send(Message::Hello(Hello {
            token: hello.token,
            codec: hello.codec,
            client_name: hello.client_name,
            build: hello.build,
        })));
        s
    }

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<ClientOutput> {
        self.out.pop_front()
    }

    /// When [`Vtr1ClientSession::handle_timeout`] fails the session, if the server does not
    /// answer first. `None` while nothing is awaited (the application is producing input).
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.deadline
    }

    /// The server's HELLO_ACK, once greeted.
    pub fn hello_ack(&self) -> Option<&HelloAck> {
        self.hello_ack.as_ref()
    }

    /// Inputs sent and outputs received so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.inputs, self.outputs)
    }

    /// Whether the session is complete (DONE received).
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    fn waiting_for(&self) -> &'static str {
        match self.phase {
            Phase::Hello => "waiting for HELLO_ACK",
            Phase::Configuring => "waiting for CONFIGURE_ACK",
            Phase::Flushing => "waiting for the server to drain after FLUSH",
            _ => "waiting for the server's output",
        }
    }

    /// The deadline passed.
    pub fn handle_timeout(&mut self, now: Duration) -> Result<(), RemoteError> {
        match self.deadline {
            Some(d) if now >= d => Err(RemoteError::Timeout {
                what: self.waiting_for(),
                after: self.timeout,
            }),
            _ => Ok(()),
        }
    }

    /// The server closed the connection.
    pub fn handle_closed(&mut self, mid_message: bool) -> RemoteError {
        RemoteError::Closed(if mid_message {
            "in the middle of a message"
        } else {
            "between messages"
        })
    }

    /// Send CONFIGURE (whose `mode` option says what comes back). A pixel format the server
    /// did not advertise is refused here, before anything is sent.
    pub fn configure(&mut self, c: Configure, now: Duration) -> Result<(), RemoteError> {
        let ack = match (&self.phase, &self.hello_ack) {
            (Phase::Greeted, Some(ack)) => ack,
            _ => {
                return Err(RemoteError::Unsupported(
                    "CONFIGURE before HELLO_ACK".into(),
                ))
            }
        };
        let mode = c.option("mode").unwrap_or("encode").trim().to_owned();
        if mode == "encode" {
            let cap = match c.pix_fmt {
                pix_fmt::NV12 => Some("pixfmt.nv12"),
                pix_fmt::BGRA => Some("pixfmt.bgra"),
                pix_fmt::P010 => Some("pixfmt.p010"),
                _ => None,
            };
            // Servers that predate capability strings advertise none; do not gate those.
            let advertises = ack.capabilities.iter().any(|c| c.starts_with("pixfmt."));
            if let Some(cap) = cap.filter(|cap| advertises && !ack.has(cap)) {
                return Err(RemoteError::Unsupported(format!(
                    "the server does not accept {cap} (it advertises {})",
                    ack.capabilities.join(", ")
                )));
            }
        }
        if c.option("packet_ack.v1") == Some("1") && !ack.has("packet_ack.v1") {
            return Err(RemoteError::Unsupported(
                "the server does not advertise packet_ack.v1".into(),
            ));
        }
        self.output_kind = if mode == "decode" {
            MessageType::FRAME
        } else {
            MessageType::PACKET
        };
        self.out
            .push_back(ClientOutput::Send(Message::Configure(c)));
        self.phase = Phase::Configuring;
        // Building a session takes a moment (encoder set-up): allow a few deadlines.
        self.deadline = Some(now + self.timeout * 3);
        Ok(())
    }

    /// Inputs from now on go at most `window` in flight, credited back under `credit`.
    pub fn set_window(&mut self, credit: Credit, window: usize) {
        self.credit = credit;
        self.credits = window.max(1);
    }

    /// Whether an input may be sent now (the window has room).
    pub fn can_send(&self) -> bool {
        self.phase == Phase::Streaming && (self.credit == Credit::Unlimited || self.credits > 0)
    }

    /// Send one FRAME or PACKET (check [`Vtr1ClientSession::can_send`] first).
    pub fn send_input(&mut self, m: Message, now: Duration) -> Result<(), RemoteError> {
        if !self.can_send() {
            return Err(RemoteError::Unsupported(
                "input sent without room in the window".into(),
            ));
        }
        if self.credit != Credit::Unlimited {
            self.credits -= 1;
            if self.credits == 0 {
                // Nothing more can go out until the server answers: that answer is due.
                self.deadline = Some(now + self.timeout);
            }
        }
        self.inputs += 1;
        self.out.push_back(ClientOutput::Send(m));
        Ok(())
    }

    /// No more input: FLUSH, then every output and DONE are due, each within the deadline.
    pub fn finish(&mut self, now: Duration) {
        if self.phase == Phase::Streaming {
            self.out.push_back(ClientOutput::Send(Message::Flush));
            self.phase = Phase::Flushing;
            self.deadline = Some(now + self.timeout);
        }
    }

    fn expect(&self, got: &Message, expected: &'static str) -> RemoteError {
        RemoteError::Unexpected {
            got: got.kind(),
            expected,
        }
    }

    /// One whole message from the server.
    pub fn handle_message(&mut self, m: Message, now: Duration) -> Result<(), RemoteError> {
        match (self.phase, m) {
            (_, Message::Error(e)) => Err(RemoteError::Server {
                code: e.code,
                message: e.message,
            }),
            (_, Message::Ping) => {
                self.out.push_back(ClientOutput::Send(Message::Pong));
                Ok(())
            }
            (_, Message::Pong | Message::Unknown { .. }) => Ok(()),
            (Phase::Hello, Message::HelloAck(ack)) => {
                // A mock server may send empty names: never print "server  refused".
                let named = format!("{} {}", ack.server_name, ack.server_version);
                let server = match named.trim() {
                    "" => "(unnamed)".to_string(),
                    n => n.to_string(),
                };
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
                        return Err(RemoteError::UnknownStatus {
                            server,
                            status: other,
                        })
                    }
                }
                self.phase = Phase::Greeted;
                self.deadline = None;
                self.hello_ack = Some(ack.clone());
                self.out.push_back(ClientOutput::Greeted(ack));
                Ok(())
            }
            (Phase::Configuring, Message::ConfigureAck(a)) => {
                if a.status != 0 {
                    return Err(RemoteError::ConfigureRefused(a.status));
                }
                self.phase = Phase::Streaming;
                self.deadline = None;
                self.out.push_back(ClientOutput::Configured(a));
                Ok(())
            }
            (Phase::Streaming | Phase::Flushing, m @ (Message::Packet(_) | Message::Frame(_))) => {
                if m.kind() != self.output_kind {
                    let expected = if self.output_kind == MessageType::FRAME {
                        "FRAME (decode mode)"
                    } else {
                        "PACKET"
                    };
                    return Err(self.expect(&m, expected));
                }
                self.outputs += 1;
                if self.credit == Credit::PerOutput {
                    self.credits += 1;
                }
                self.refresh_deadline(now);
                self.out.push_back(ClientOutput::Output(m));
                Ok(())
            }
            (Phase::Streaming | Phase::Flushing, Message::PacketAck) => {
                if self.credit == Credit::PacketAck {
                    self.credits += 1;
                }
                self.refresh_deadline(now);
                Ok(())
            }
            (Phase::Flushing, Message::Done) => {
                self.phase = Phase::Done;
                self.deadline = None;
                self.out.push_back(ClientOutput::Done);
                Ok(())
            }
            (phase, other) => Err(self.expect(
                &other,
                match phase {
                    Phase::Hello => "HELLO_ACK",
                    Phase::Configuring => "CONFIGURE_ACK",
                    Phase::Streaming => "PACKET, FRAME or PACKET_ACK",
                    Phase::Flushing => "PACKET, FRAME, PACKET_ACK or DONE",
                    Phase::Greeted | Phase::Done => "nothing",
                },
            )),
        }
    }

    /// After the server answered: the next answer is due only while the client waits for one
    /// (window full, or flushing).
    fn refresh_deadline(&mut self, now: Duration) {
        let waiting = self.phase == Phase::Flushing
            || (self.credit != Credit::Unlimited && self.credits == 0);
        self.deadline = waiting.then_some(now + self.timeout);
    }
}
