//! A pool of VTR1 servers: connect and configure on the first one that takes the session.
//!
//! A farm of encoders (Macs running `vtremoted`, or framecast servers) behind an ordinary TCP
//! load balancer answers some connections with BUSY, some servers refuse a configuration
//! others accept (their capabilities differ), and some addresses are simply dead. The client
//! tries the servers in the order given; a server that fails the handshake or CONFIGURE for
//! any reason is passed over (logged once, kept in the error if none takes the session).
//! When every server of a round was busy or unreachable, the pool waits `backoff` (doubling)
//! and tries another round, up to `rounds`; a round in which every server refused outright
//! (token, configuration) is not repeated, since asking again would get the same answer.
//!
//! Failover happens while establishing a session. A session that dies mid-stream is reported
//! to the caller (its frames in flight would have to be sent again to another server, which
//! starts a new stream with an IDR); the caller may establish a new one through the pool.

use crate::client::{Client, ClientOptions};
use crate::error::{RemoteError, ServerAttempt};
use crate::wire::{Configure, ConfigureAck, HelloAck};
use std::time::Duration;

/// How often and how patiently a [`ServerPool`] goes round its servers.
#[derive(Debug, Clone)]
pub struct Failover {
    /// Rounds over the whole list while every failure is BUSY or a dead connection (>= 1).
    pub rounds: u32,
    /// Wait before the second round; doubled for each later one.
    pub backoff: Duration,
}

impl Default for Failover {
    fn default() -> Self {
        Failover {
            rounds: 3,
            backoff: Duration::from_millis(250),
        }
    }
}

/// Servers to try, in order (the same address may appear more than once: a load balancer).
#[derive(Debug, Clone)]
pub struct ServerPool {
    servers: Vec<String>,
    failover: Failover,
}

/// A configured session and how it was reached.
#[derive(Debug)]
pub struct Established {
    /// The connected, configured client.
    pub client: Client,
    /// The server's CONFIGURE_ACK.
    pub ack: ConfigureAck,
    /// The address that took the session.
    pub server: String,
    /// The servers passed over on the way, with why.
    pub passed_over: Vec<ServerAttempt>,
}

impl ServerPool {
    /// A pool of `servers` (host:port each). Empty names are ignored; none at all is an error.
    pub fn new(
        servers: impl IntoIterator<Item = impl Into<String>>,
        failover: Failover,
    ) -> Result<Self, RemoteError> {
        let servers: Vec<String> = servers
            .into_iter()
            .map(Into::into)
            .map(|s: String| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if servers.is_empty() {
            return Err(RemoteError::Unsupported("no VTR1 server given".into()));
        }
        Ok(ServerPool {
            servers,
            failover: Failover {
                rounds: failover.rounds.max(1),
                ..failover
            },
        })
    }

    /// A pool from a comma-separated list (`mac1:5555,mac2:5555`).
    pub fn parse(list: &str, failover: Failover) -> Result<Self, RemoteError> {
        Self::new(list.split(','), failover)
    }

    /// The servers, in the order they are tried.
    pub fn servers(&self) -> &[String] {
        &self.servers
    }

    /// Connect and configure on the first server that takes the session. `configure` builds
    /// the CONFIGURE from that server's HELLO_ACK (its capabilities decide, say, BGRA or
    /// NV12). Every failure is kept; when no server takes the session the error is
    /// [`RemoteError::NoServer`] with each attempt (with a single server, its last error as
    /// it is). Servers passed over are logged at debug level and returned in
    /// [`Established::passed_over`] for the caller to report.
    pub async fn establish(
        &self,
        opts: &ClientOptions,
        configure: impl Fn(&HelloAck) -> Configure,
    ) -> Result<Established, RemoteError> {
        let mut attempts = Vec::new();
        let mut backoff = self.failover.backoff;
        for round in 0..self.failover.rounds {
            if round > 0 {
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
            }
            let mut worth_another_round = false;
            for server in &self.servers {
                match try_server(server, opts, &configure).await {
                    Ok((client, ack)) => {
                        if !attempts.is_empty() {
                            tracing::info!(
                                server = %server,
                                passed_over = attempts.len(),
                                "VTR1 session established after failover"
                            );
                        }
                        return Ok(Established {
                            client,
                            ack,
                            server: server.clone(),
                            passed_over: attempts,
                        });
                    }
                    Err(error) => {
                        worth_another_round |= is_transient(&error);
                        tracing::debug!(server = %server, error = %error, "VTR1 server passed over");
                        attempts.push(ServerAttempt {
                            server: server.clone(),
                            error: Box::new(error),
                        });
                    }
                }
            }
            if !worth_another_round {
                break;
            }
        }
        if self.servers.len() == 1 {
            // One server: its own (last) answer says it best.
            if let Some(last) = attempts.pop() {
                return Err(*last.error);
            }
        }
        Err(RemoteError::NoServer { attempts })
    }
}

async fn try_server(
    server: &str,
    opts: &ClientOptions,
    configure: &impl Fn(&HelloAck) -> Configure,
) -> Result<(Client, ConfigureAck), RemoteError> {
    let mut client = Client::connect(server, opts.clone()).await?;
    let cfg = configure(client.hello_ack());
    let ack = client.configure(cfg).await?;
    Ok((client, ack))
}

/// Whether asking the same server again later may succeed: it was busy, or the connection
/// failed or stalled. A refused token or configuration is an answer, not an accident.
fn is_transient(e: &RemoteError) -> bool {
    matches!(
        e,
        RemoteError::Busy { .. }
            | RemoteError::Io { .. }
            | RemoteError::Closed(_)
            | RemoteError::Timeout { .. }
    )
}
