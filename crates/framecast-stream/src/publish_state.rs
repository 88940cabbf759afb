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

/// The task side of a publisher's state: reports each change once, to its [`StateWatch`]es
/// and to the log (`what` names the publisher, e.g. `MoQ relay https://...`).
#[derive(Debug)]
pub struct StateReporter {
    log: StateLog,
    tx: tokio::sync::watch::Sender<PublishState>,
    what: String,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// The application side: the state now, its changes, and waiting for one.
#[derive(Debug, Clone)]
pub struct StateWatch {
    rx: tokio::sync::watch::Receiver<PublishState>,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl StateReporter {
    /// A reporter starting at [`PublishState::Connecting`] (reported as the first change),
    /// and its watch.
    pub fn new(what: impl Into<String>) -> (StateReporter, StateWatch) {
        let (tx, rx) = tokio::sync::watch::channel(PublishState::Connecting);
        let count = std::sync::Arc::default();
        let mut reporter = StateReporter {
            log: StateLog::default(),
            tx,
            what: what.into(),
            count: std::sync::Arc::clone(&count),
        };
        reporter.report(PublishState::Connecting);
        (reporter, StateWatch { rx, count })
    }

    /// The state is now `state`: logged and sent on when it changed.
    pub fn report(&mut self, state: PublishState) {
        if let Some(s) = self.log.observe(state) {
            // Info level: applications show changes through `StateWatch::changes`.
            tracing::info!(publisher = %self.what, "{s}");
            self.count
                .store(self.log.changes(), std::sync::atomic::Ordering::Relaxed);
            self.tx.send_replace(s);
        }
    }
}

impl StateWatch {
    /// The state now.
    pub fn get(&self) -> PublishState {
        *self.rx.borrow()
    }

    /// The state as it changes (each change once; the state now counts as unseen).
    pub fn changes(&self) -> tokio::sync::watch::Receiver<PublishState> {
        let mut rx = self.rx.clone();
        rx.mark_changed();
        rx
    }

    /// Changes reported so far (the first is `Connecting`).
    pub fn change_count(&self) -> u64 {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Wait until the state is `want`, or [`PublishState::Stopped`]; returns which.
    pub async fn wait_for(&self, want: PublishState) -> PublishState {
        let mut rx = self.rx.clone();
        let r = rx
            .wait_for(|s| *s == want || *s == PublishState::Stopped)
            .await
            .map(|s| *s);
        r.unwrap_or(PublishState::Stopped)
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

    #[tokio::test]
    async fn a_reporter_sends_changes_and_stopped_ends_a_wait() {
        let (mut r, w) = StateReporter::new("test");
        assert_eq!(w.get(), PublishState::Connecting);
        let mut changes = w.changes();
        assert_eq!(*changes.borrow_and_update(), PublishState::Connecting);
        r.report(PublishState::Connected);
        r.report(PublishState::Connected);
        assert_eq!(w.change_count(), 2);
        assert_eq!(
            w.wait_for(PublishState::Connected).await,
            PublishState::Connected
        );
        r.report(PublishState::Stopped);
        assert_eq!(
            w.wait_for(PublishState::Disconnected).await,
            PublishState::Stopped
        );
    }
}
