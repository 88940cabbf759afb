//! [`Server`]: a running hub of named streams on one port, and [`serve`], the one-stream
//! shortcut (pdum.rfb `serve()`).

use crate::config::{ServerConfig, StreamConfig};
use crate::display::Display;
use crate::error::StreamError;
use crate::hub::{Hub, DEFAULT_STREAM};
use crate::{http, listener};
use std::net::SocketAddr;
use std::sync::Arc;

/// A running hub: several named streams on one port, picked by URL path.
///
/// ```no_run
/// # async fn f() -> Result<(), framecast_stream::StreamError> {
/// use framecast_stream::{Server, ServerConfig, StreamConfig};
/// let server = Server::bind(ServerConfig::default()).await?;
/// let main = server.add_stream("default", StreamConfig::new(1280, 720))?; // ws://host/
/// let aux = server.add_stream("aux", StreamConfig::new(640, 360))?; // ws://host/aux
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Server {
    pub(crate) hub: Arc<Hub>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.hub.local_addr)
            .finish()
    }
}

impl Server {
    /// Listen on `config.listen` and start serving (within the current tokio runtime).
    pub async fn bind(config: ServerConfig) -> Result<Server, StreamError> {
        let bind_error = |source| StreamError::Bind {
            addr: config.listen,
            source,
        };
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let hub = Arc::new(Hub::new(config, local_addr));
        let app = http::router(hub.clone());
        hub.tasks
            .spawn(listener::accept_loop(hub.clone(), listener, app));
        tracing::info!(%local_addr, "framecast server listening");
        Ok(Server { hub })
    }

    /// Add a stream served at `/<name>` (`default` is also `/`).
    pub fn add_stream(&self, name: &str, config: StreamConfig) -> Result<Display, StreamError> {
        let shared = self.hub.add_stream(name, config)?;
        Ok(Display::new(shared, self.hub.clone(), false))
    }

    /// Remove a stream; its viewers are closed with 1001.
    pub fn remove_stream(&self, name: &str) -> bool {
        self.hub.remove_stream(name)
    }

    /// A handle to an existing stream.
    pub fn stream(&self, name: &str) -> Option<Display> {
        self.hub
            .stream(name)
            .map(|s| Display::new(s, self.hub.clone(), false))
    }

    /// Names of the streams.
    pub fn streams(&self) -> Vec<String> {
        self.hub
            .streams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.hub.local_addr
    }

    /// Close every stream (viewers get 1001 and a closing handshake) and stop listening.
    pub async fn close(&self) {
        self.hub.close().await
    }
}

/// Start a server with one stream, `default`, served at `/` (pdum.rfb `serve()`).
/// [`Display::close`] stops the server.
pub async fn serve(server: ServerConfig, stream: StreamConfig) -> Result<Display, StreamError> {
    let s = Server::bind(server).await?;
    let shared = s.hub.add_stream(DEFAULT_STREAM, stream)?;
    Ok(Display::new(shared, s.hub, true))
}
