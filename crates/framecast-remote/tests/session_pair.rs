//! The client and server protocol sessions as a pair in simulated time (after quinn-proto's
//! `tests/util.rs` `Pair`): bytes go through the real wire codec with a one-way latency, no
//! sockets, no threads, no sleeps. The media side is a stand-in that answers CONFIGURE with
//! CONFIGURE_ACK, each FRAME with a PACKET, and FLUSH with DONE.

use bytes::Bytes;
use framecast_remote::client_session::{ClientHello, ClientOutput, Credit, Vtr1ClientSession};
use framecast_remote::server_session::{
    ReadFailure, ServerOutput, ServerSessionConfig, Vtr1ServerSession,
};
use framecast_remote::settings::ServerCaps;
use framecast_remote::wire::*;
use framecast_remote::RemoteError;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);
const S: Duration = Duration::from_secs(1);

fn server_config(token: Option<&str>) -> Arc<ServerSessionConfig> {
    Arc::new(ServerSessionConfig {
        token: token.map(Into::into),
        caps: ServerCaps {
            capabilities: vec!["h264".into(), "pixfmt.nv12".into()],
            backend: Some("openh264".into()),
            decoder: framecast_encode::decode::best_info(),
        },
        handshake_timeout: 10 * S,
        idle_timeout: 60 * S,
        max_message_bytes: 1 << 24,
        server_name: "pair".into(),
        server_version: "1".into(),
        max_sessions: 4,
    })
}

fn hello(token: &str) -> ClientHello {
    ClientHello {
        token: token.into(),
        codec: "h264".into(),
        client_name: "pair-test".into(),
        build: "0".into(),
    }
}

fn configure() -> Configure {
    let mut c = Configure {
        width: 64,
        height: 48,
        pix_fmt: pix_fmt::NV12,
        tb_num: 1,
        tb_den: 30,
        fr_num: 30,
        fr_den: 1,
        ..Configure::default()
    };
    c.set_option("mode", "encode");
    c
}

fn frame(pts: i64) -> Message {
    Message::Frame(FrameMsg {
        pts,
        duration: 1,
        flags: 0,
        planes: vec![
            Plane {
                stride: 64,
                height: 48,
                data: Bytes::from(vec![16u8; 64 * 48]),
            },
            Plane {
                stride: 64,
                height: 24,
                data: Bytes::from(vec![128u8; 64 * 24]),
            },
        ],
        side_data: vec![],
    })
}

/// The two sessions, the bytes in flight each way, and what each side saw.
struct Pair {
    now: Duration,
    latency: Duration,
    client: Vtr1ClientSession,
    server: Vtr1ServerSession,
    to_server: VecDeque<(Duration, Vec<u8>)>,
    to_client: VecDeque<(Duration, Vec<u8>)>,
    server_codec: Vtr1Codec,
    client_codec: Vtr1Codec,
    /// Whether the stand-in media side answers at all.
    media_answers: bool,
    media_started: bool,
    client_seen: Vec<ClientOutput>,
    client_error: Option<RemoteError>,
    server_sent: Vec<MessageType>,
    server_closed: bool,
}

impl Pair {
    fn new(token: Option<&str>, client_token: &str) -> Self {
        Pair {
            now: Duration::ZERO,
            latency: 5 * MS,
            client: Vtr1ClientSession::new(hello(client_token), 5 * S, Duration::ZERO),
            server: Vtr1ServerSession::new(server_config(token), Duration::ZERO, 1),
            to_server: VecDeque::new(),
            to_client: VecDeque::new(),
            server_codec: Vtr1Codec::new(Limits::server(1 << 24)),
            client_codec: Vtr1Codec::new(Limits::client(1 << 24)),
            media_answers: true,
            media_started: false,
            client_seen: Vec::new(),
            client_error: None,
            server_sent: Vec::new(),
            server_closed: false,
        }
    }

    fn server_send(&mut self, m: &Message) {
        self.server_sent.push(m.kind());
        self.to_client
            .push_back((self.now + self.latency, m.encode().unwrap()));
    }

    /// Carry out both sides' outputs until neither has any.
    fn pump(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(o) = self.client.poll_output() {
                progressed = true;
                match o {
                    ClientOutput::Send(m) => self
                        .to_server
                        .push_back((self.now + self.latency, m.encode().unwrap())),
                    other => self.client_seen.push(other),
                }
            }
            while let Some(o) = self.server.poll_output() {
                progressed = true;
                match o {
                    ServerOutput::Send(m) => self.server_send(&m),
                    ServerOutput::StartMedia(_) => {
                        self.media_started = true;
                        if self.media_answers {
                            self.server_send(&Message::ConfigureAck(ConfigureAck::default()));
                        }
                    }
                    ServerOutput::Media(Message::Frame(f)) if self.media_answers => {
                        let p = Message::Packet(PacketMsg {
                            pts: f.pts,
                            dts: f.pts,
                            duration: 1,
                            flags: 0,
                            data: Bytes::from_static(&[0, 0, 0, 1, 0x41]),
                            side_data: vec![],
                        });
                        self.server_send(&p);
                    }
                    ServerOutput::FlushMedia if self.media_answers => {
                        self.server_send(&Message::Done);
                        self.server.handle_media_done();
                    }
                    ServerOutput::Close => self.server_closed = true,
                    _ => {}
                }
            }
            if !progressed {
                return;
            }
        }
    }

    /// Deliver what has arrived by `now`.
    fn deliver(&mut self) {
        while self
            .to_server
            .front()
            .is_some_and(|(at, _)| *at <= self.now)
        {
            let (_, bytes) = self.to_server.pop_front().unwrap();
            if self.server_closed {
                continue;
            }
            self.server_codec.feed(&bytes);
            loop {
                match self.server_codec.poll() {
                    Ok(Some(m)) => self.server.handle_message(m, self.now),
                    Ok(None) => break,
                    Err(e) => {
                        self.server.handle_read_failure(ReadFailure::Wire(e));
                        break;
                    }
                }
                self.pump();
            }
        }
        while self
            .to_client
            .front()
            .is_some_and(|(at, _)| *at <= self.now)
        {
            let (_, bytes) = self.to_client.pop_front().unwrap();
            self.client_codec.feed(&bytes);
            while let Some(m) = self.client_codec.poll().unwrap() {
                if self.client_error.is_none() {
                    if let Err(e) = self.client.handle_message(m, self.now) {
                        self.client_error = Some(e);
                    }
                }
                self.pump();
            }
        }
    }

    /// Run until nothing is in flight and no deadline is due before `until`.
    fn drive_until(&mut self, until: Duration) {
        loop {
            self.pump();
            self.deliver();
            self.pump();
            let client_deadline = self
                .client_error
                .is_none()
                .then(|| self.client.poll_timeout())
                .flatten();
            let next = [
                self.to_server.front().map(|(t, _)| *t),
                self.to_client.front().map(|(t, _)| *t),
                self.server.poll_timeout(),
                client_deadline,
            ]
            .into_iter()
            .flatten()
            .filter(|&t| t <= until)
            .min();
            let Some(t) = next else {
                self.now = self.now.max(until);
                return;
            };
            self.now = self.now.max(t);
            self.deliver();
            self.server
                .handle_timeout(self.now, self.server_codec.mid_message());
            if self.client_error.is_none() {
                if let Err(e) = self.client.handle_timeout(self.now) {
                    self.client_error = Some(e);
                }
            }
            if self.server_closed && self.client_error.is_some() {
                return;
            }
        }
    }

    fn drive(&mut self) {
        let until = self.now + 1000 * S;
        self.drive_until(until);
    }

    fn greeted(&self) -> bool {
        self.client_seen
            .iter()
            .any(|o| matches!(o, ClientOutput::Greeted(_)))
    }
}

#[test]
fn handshake_stream_flush_done() {
    let mut p = Pair::new(Some("t0k"), "t0k");
    p.drive_until(20 * MS);
    assert!(p.greeted(), "{:?}", p.client_seen);
    p.client.configure(configure(), p.now).unwrap();
    p.client.set_window(Credit::PerOutput, 2);
    p.drive_until(p.now + 20 * MS);
    assert!(matches!(
        p.client_seen.last(),
        Some(ClientOutput::Configured(_))
    ));
    // Five frames through a window of two: the third waits for the first packet.
    let mut sent = 0;
    while sent < 5 {
        while sent < 5 && p.client.can_send() {
            p.client.send_input(frame(sent), p.now).unwrap();
            sent += 1;
        }
        assert!(sent < 5 || !p.client.can_send() || sent == 5);
        p.drive_until(p.now + 20 * MS);
    }
    p.client.finish(p.now);
    p.drive();
    let outputs: Vec<i64> = p
        .client_seen
        .iter()
        .filter_map(|o| match o {
            ClientOutput::Output(Message::Packet(pk)) => Some(pk.pts),
            _ => None,
        })
        .collect();
    assert_eq!(outputs, vec![0, 1, 2, 3, 4]);
    assert!(matches!(p.client_seen.last(), Some(ClientOutput::Done)));
    assert!(p.client.is_done() && p.client_error.is_none());
    assert_eq!(p.server.end_reason(), Some("FLUSH"));
    assert!(p.server_closed);
    assert_eq!(p.client.counts(), (5, 5));
}

#[test]
fn a_wrong_token_is_refused_with_hello_ack_status_2() {
    let mut p = Pair::new(Some("right"), "wrong");
    p.drive();
    assert!(
        matches!(p.client_error, Some(RemoteError::AuthFailed { .. })),
        "{:?}",
        p.client_error
    );
    assert_eq!(p.server.end_reason(), Some("authentication failed"));
    assert_eq!(p.server_sent, vec![MessageType::HELLO_ACK]);
}

#[test]
fn ping_is_answered_in_every_phase() {
    let mut p = Pair::new(None, "");
    p.to_server
        .push_back((p.now, Message::Ping.encode().unwrap()));
    p.drive_until(20 * MS);
    assert!(p.server_sent.contains(&MessageType::PONG));
    assert!(p.greeted(), "PONG did not disturb the handshake");
}

#[test]
fn a_client_that_never_configures_is_cut_off_at_the_handshake_deadline() {
    let mut p = Pair::new(None, "");
    p.drive_until(20 * MS);
    assert!(p.greeted());
    // HELLO_ACK went out at 5 ms (one latency after HELLO): CONFIGURE is due 10 s later.
    assert_eq!(p.server.poll_timeout(), Some(5 * MS + 10 * S));
    p.drive_until(5 * MS + 10 * S - MS);
    assert!(p.server.end_reason().is_none());
    p.drive_until(5 * MS + 10 * S);
    assert_eq!(
        p.server.end_reason(),
        Some("deadline passed waiting for CONFIGURE")
    );
    assert!(p.server_closed);
}

#[test]
fn a_trickling_client_is_cut_off_mid_message() {
    let mut p = Pair::new(None, "");
    // Only the first 5 bytes of HELLO ever arrive.
    let bytes = Message::Hello(Hello {
        token: String::new(),
        codec: "h264".into(),
        client_name: "slow".into(),
        build: "loris".into(),
    })
    .encode()
    .unwrap();
    let _ = p.client.poll_output(); // drop the session's own HELLO
    p.to_server.push_back((MS, bytes[..5].to_vec()));
    p.drive_until(11 * S);
    assert_eq!(
        p.server.end_reason(),
        Some("deadline passed while receiving HELLO (client too slow)")
    );
}

#[test]
fn the_client_times_out_when_the_server_stops_answering() {
    let mut p = Pair::new(None, "");
    p.drive_until(20 * MS);
    p.client.configure(configure(), p.now).unwrap();
    p.client.set_window(Credit::PerOutput, 2);
    p.drive_until(p.now + 20 * MS);
    p.media_answers = false; // the encoder hangs
    let t0 = p.now;
    p.client.send_input(frame(0), p.now).unwrap();
    p.client.send_input(frame(1), p.now).unwrap();
    assert!(!p.client.can_send());
    p.drive_until(t0 + 4 * S);
    assert!(p.client_error.is_none(), "still within the 5 s deadline");
    p.drive_until(t0 + 6 * S);
    match &p.client_error {
        Some(RemoteError::Timeout { what, after }) => {
            assert_eq!(*after, 5 * S);
            assert!(what.contains("output"), "{what}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_second_flush_while_draining_is_harmless() {
    let mut p = Pair::new(None, "");
    p.drive_until(20 * MS);
    p.client.configure(configure(), p.now).unwrap();
    p.client.set_window(Credit::PerOutput, 4);
    p.drive_until(p.now + 20 * MS);
    p.media_answers = false; // the drain takes a while
    p.client.send_input(frame(0), p.now).unwrap();
    p.client.finish(p.now);
    p.pump();
    p.to_server
        .push_back((p.now + p.latency, Message::Flush.encode().unwrap()));
    p.drive_until(p.now + 50 * MS);
    assert!(
        p.server.end_reason().is_none(),
        "{:?}",
        p.server.end_reason()
    );
    assert!(!p.server_sent.contains(&MessageType::ERROR));
}

#[test]
fn messages_a_client_must_not_send_get_error_4() {
    for (m, needle) in [
        (
            Message::HelloAck(HelloAck::default()),
            "expected HELLO, got HELLO_ACK",
        ),
        (Message::Done, "expected HELLO, got DONE"),
    ] {
        let mut p = Pair::new(None, "");
        let _ = p.client.poll_output();
        p.to_server.push_back((MS, m.encode().unwrap()));
        p.drive_until(50 * MS);
        assert_eq!(p.server_sent, vec![MessageType::ERROR]);
        assert_eq!(p.server.end_reason(), Some(needle));
        assert!(
            matches!(&p.client_error, Some(RemoteError::Server { code: 4, .. })),
            "{:?}",
            p.client_error
        );
    }
}

#[test]
fn the_client_refuses_output_of_the_wrong_kind() {
    // A transcode session that gets FRAMEs back (what vtremote's mock server does) fails
    // with a clear error instead of "0 frames".
    let mut p = Pair::new(None, "");
    p.drive_until(20 * MS);
    let mut c = configure();
    c.set_option("mode", "transcode");
    p.client.configure(c, p.now).unwrap();
    p.client.set_window(Credit::Unlimited, 4);
    p.to_client.push_back((
        p.now + p.latency,
        Message::ConfigureAck(ConfigureAck::default())
            .encode()
            .unwrap(),
    ));
    p.to_client
        .push_back((p.now + 2 * p.latency, frame(0).encode().unwrap()));
    p.media_answers = false;
    p.drive_until(p.now + 50 * MS);
    match &p.client_error {
        Some(RemoteError::Unexpected { got, expected }) => {
            assert_eq!(*got, MessageType::FRAME);
            assert_eq!(*expected, "PACKET");
        }
        other => panic!("{other:?}"),
    }
}
