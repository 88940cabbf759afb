//! The protocol's numbers: message type ids and their names, HELLO_ACK statuses, ERROR codes.

use std::fmt;

/// A message type id. Unknown ids are kept so they can be reported and skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageType(pub u16);

impl MessageType {
    /// 1, C→S.
    pub const HELLO: Self = Self(1);
    /// 2, S→C.
    pub const HELLO_ACK: Self = Self(2);
    /// 3, C→S.
    pub const CONFIGURE: Self = Self(3);
    /// 4, S→C.
    pub const CONFIGURE_ACK: Self = Self(4);
    /// 5, raw frame (C→S in encode mode, S→C in decode mode).
    pub const FRAME: Self = Self(5);
    /// 6, compressed packet, both directions.
    pub const PACKET: Self = Self(6);
    /// 7, C→S: drain.
    pub const FLUSH: Self = Self(7);
    /// 8, S→C: drained.
    pub const DONE: Self = Self(8);
    /// 9, both.
    pub const ERROR: Self = Self(9);
    /// 10, both.
    pub const PING: Self = Self(10);
    /// 11, both.
    pub const PONG: Self = Self(11);
    /// 12, S→C: one input credit (transcode with `packet_ack.v1`).
    pub const PACKET_ACK: Self = Self(12);

    /// The protocol name, or `None` for an unknown id.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "HELLO",
            2 => "HELLO_ACK",
            3 => "CONFIGURE",
            4 => "CONFIGURE_ACK",
            5 => "FRAME",
            6 => "PACKET",
            7 => "FLUSH",
            8 => "DONE",
            9 => "ERROR",
            10 => "PING",
            11 => "PONG",
            12 => "PACKET_ACK",
            _ => return None,
        })
    }

    /// Whether this implementation knows the id.
    pub fn is_known(self) -> bool {
        self.name().is_some()
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "unknown message type {}", self.0),
        }
    }
}

/// HELLO_ACK status.
pub mod status {
    /// Accepted.
    pub const OK: u8 = 0;
    /// Session limit reached.
    pub const BUSY: u8 = 1;
    /// Token refused.
    pub const AUTH_FAIL: u8 = 2;
}

/// ERROR codes. The documented table and what the reference server actually sends differ; the
/// constants name what is sent (see the crate docs).
pub mod error_code {
    /// Sent for any CONFIGURE failure ("configure failed: ...") (documented as "auth").
    pub const CONFIGURE_FAILED: u32 = 1;
    /// Sent for a failure while processing media (documented as "busy").
    pub const PROCESSING_FAILED: u32 = 2;
    /// Documented "unsupported"; the reference mock sends it for an unadvertised pixel format.
    pub const UNSUPPORTED: u32 = 3;
    /// Oversize message or an unexpected message type (documented "bad request").
    pub const BAD_REQUEST: u32 = 4;
    /// Documented "internal".
    pub const INTERNAL: u32 = 5;
}
