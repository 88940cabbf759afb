//! The accept loop: HTTP/1.1 through hyper with a deadline on every request head and a cap
//! on connections that have not upgraded to a WebSocket yet, so clients that open sockets
//! and trickle (or never finish) a request cannot use up the server's descriptors and lock
//! viewers out. (`axum::serve` has neither knob; this is the same hyper stack with both.)

use crate::hub::Hub;
use crate::stream::raised;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Accept connections until the hub shuts down (run it on the hub's task tracker).
pub(crate) async fn accept_loop(hub: Arc<Hub>, listener: TcpListener, app: axum::Router) {
    let pending = Arc::new(Semaphore::new(hub.config.max_pending_connections.max(1)));
    let refused = AtomicU64::new(0);
    let mut shutdown = hub.shutdown.subscribe();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = raised(&mut shutdown) => break,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = pending.clone().try_acquire_owned() else {
            let n = refused.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(
                    %peer,
                    refused = n,
                    max = hub.config.max_pending_connections,
                    "too many connections waiting for a complete request; closing new ones"
                );
            }
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let app = match crate::tcp_info::TcpProbe::new(&tcp) {
            Some(probe) => app.clone().layer(axum::Extension(probe)),
            None => app.clone(),
        };
        let service = TowerToHyperService::new(app);
        let header_timeout = hub.config.header_timeout;
        let mut stop = hub.shutdown.subscribe();
        hub.tasks.spawn(async move {
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades();
            tokio::pin!(conn);
            // The future ends when the connection closes or upgrades to a WebSocket (which
            // then runs on its own task): either way it no longer counts as pending.
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = raised(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            drop(permit);
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
            }
        });
    }
}
