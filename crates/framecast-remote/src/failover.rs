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
//! An encode session whose connection dies mid-stream (closed, reset, silent past the
//! deadline) is resumed by [`ServerPool::run_encode`]: the same CONFIGURE goes to the pool
//! again, and the frames whose packets had not come back are sent again, the first as a forced
//! keyframe, so the output goes on from an IDR with no frame lost or repeated (see
//! [`crate::resume`] for when that holds: not with B-frames). A server's own ERROR is an
//! answer and ends the run; so does a resume that gets no packet back before the next failure,
//! `rounds` times in a row.

use crate::client::{drive, Client, ClientOptions, Credit, Feed, RunError, StreamStats};
use crate::error::{RemoteError, ServerAttempt};
use crate::resume::Journal;
use crate::wire::{Configure, ConfigureAck, HelloAck, Message};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

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
    /// The CONFIGURE it accepted (a resumed session sends the same).
    pub configure: Configure,
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
                    Ok((client, ack, configure)) => {
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
                            configure,
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

/// An encode session that lost its server mid-stream and went on elsewhere.
#[derive(Debug)]
pub struct Resumed {
    /// The server whose connection died.
    pub lost: String,
    /// How it died.
    pub error: RemoteError,
    /// The server that took the session up.
    pub server: String,
    /// Servers passed over on the way.
    pub passed_over: Vec<ServerAttempt>,
    /// Frames sent again (those whose packets had not come back).
    pub resent: usize,
}

/// The one line every front end reports a move with.
impl std::fmt::Display for Resumed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "lost {} mid-stream ({}); resumed on {}, sending {} frame(s) again",
            self.lost, self.error, self.server, self.resent
        )
    }
}

impl ServerPool {
    /// Run an encode session (FRAME in, PACKET out) established by [`ServerPool::establish`]
    /// as [`crate::client::run_stream`] does, resuming it through the pool when its
    /// connection dies mid-stream: `on_resume` hears of each move, `on_output` sees every
    /// packet once, in order. Packets out of pts order (B-frames) make a session
    /// unresumable, and its failure is returned as it is. `StreamStats` counts the inputs
    /// taken from `inputs` and the packets handed on; bytes are those of every connection.
    pub async fn run_encode<E>(
        &self,
        opts: &ClientOptions,
        first: Established,
        mut inputs: mpsc::Receiver<Message>,
        window: usize,
        mut on_output: impl FnMut(Message) -> Result<(), E>,
        mut on_resume: impl FnMut(&Resumed),
    ) -> Result<StreamStats, RunError<E>> {
        let started = Instant::now();
        let Established {
            mut client,
            configure,
            mut server,
            ..
        } = first;
        let mut feed = Feed::new(&mut inputs);
        let mut journal = Journal::default();
        let mut stats = StreamStats::default();
        let mut outputs = 0u64;
        let mut fruitless = 0u32;
        loop {
            let ran = drive(
                &mut client,
                &mut feed,
                window,
                Credit::PerOutput,
                Some(&mut journal),
                &mut |m| {
                    outputs += 1;
                    on_output(m)
                },
            )
            .await;
            let (sent, received) = client.wire_bytes();
            stats.bytes_sent += sent;
            stats.bytes_received += received;
            let error = match ran {
                Ok(()) => break,
                Err(RunError::Remote(e)) if is_transient(&e) => e,
                Err(e) => return Err(e),
            };
            if journal.not_resumable().is_some() {
                return Err(error.into());
            }
            fruitless = if journal.progressed() {
                1
            } else {
                fruitless + 1
            };
            if fruitless > self.failover.rounds {
                return Err(error.into());
            }
            tracing::info!(server = %server, error = %error, owed = journal.unanswered(), "VTR1 session lost mid-stream; resuming");
            let next = match self.establish(opts, |_| configure.clone()).await {
                Ok(next) => next,
                Err(resume) => {
                    return Err(RemoteError::Lost {
                        server,
                        error: Box::new(error),
                        resume: Box::new(resume),
                    }
                    .into())
                }
            };
            let not_yet_resent = std::mem::take(&mut feed.again);
            feed.again = journal.take_for_resume(not_yet_resent);
            on_resume(&Resumed {
                lost: std::mem::replace(&mut server, next.server),
                error,
                server: server.clone(),
                passed_over: next.passed_over,
                resent: feed.again.len(),
            });
            client = next.client;
        }
        stats.inputs = feed.taken;
        stats.outputs = outputs;
        stats.seconds = started.elapsed().as_secs_f64();
        Ok(stats)
    }
}

async fn try_server(
    server: &str,
    opts: &ClientOptions,
    configure: &impl Fn(&HelloAck) -> Configure,
) -> Result<(Client, ConfigureAck, Configure), RemoteError> {
    let mut client = Client::connect(server, opts.clone()).await?;
    let cfg = configure(client.hello_ack());
    let ack = client.configure(cfg.clone()).await?;
    Ok((client, ack, cfg))
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
