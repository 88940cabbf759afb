//! A fan-out publisher's connection state (a MoQ relay session, a WHIP session to an SFU),
//! and reporting it once per change (sans-IO). Shared by the sinks that take a
//! [`crate::PacketTap`].

/// Where a fan-out publisher's session to its relay or SFU stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishState {
    /// Dialling the relay or SFU (first attempt, or again after a drop, with backoff).
    Connecting,
    /// The session is up and frames flow.
    Connected,
    /// The session dropped; a reconnect follows after a backoff.
    Disconnected,
    /// The relay sent GOAWAY (MoQ); the replacement session is being dialled.
    Migrating,
    /// Stopped: the stream closed, the publisher was stopped, or it gave up.
    Stopped,
}

impl std::fmt::Display for PublishState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PublishState::Connecting => "connecting",
            PublishState::Connected => "connected",
            PublishState::Disconnected => "disconnected (reconnecting with backoff)",
            PublishState::Migrating => "migrating (GOAWAY)",
            PublishState::Stopped => "stopped",
        })
    }
}

/// Remembers the last state reported so a relay that flaps, or a status stream that repeats
/// itself, is logged once per change rather than once per event.
#[derive(Debug, Default)]
pub struct StateLog {
    last: Option<PublishState>,
    changes: u64,
}

impl StateLog {
    /// Record `state`; returns it when it differs from the last one (log it then).
    pub fn observe(&mut self, state: PublishState) -> Option<PublishState> {
        if self.last == Some(state) {
            return None;
        }
        self.last = Some(state);
        self.changes += 1;
        Some(state)
    }

    /// How many changes were reported.
    pub fn changes(&self) -> u64 {
        self.changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_change_is_reported_once() {
        let mut log = StateLog::default();
        let seen: Vec<_> = [
            PublishState::Connecting,
            PublishState::Connecting,
            PublishState::Connected,
            PublishState::Connected,
            PublishState::Disconnected,
            PublishState::Disconnected,
            PublishState::Connected,
        ]
        .into_iter()
        .filter_map(|s| log.observe(s))
        .collect();
        assert_eq!(
            seen,
            [
                PublishState::Connecting,
                PublishState::Connected,
                PublishState::Disconnected,
                PublishState::Connected
            ]
        );
        assert_eq!(log.changes(), 4);
    }
}
