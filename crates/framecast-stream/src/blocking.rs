//! [`BlockingDisplay`]: a [`Display`] for applications without an async runtime.

use crate::config::{ServerConfig, StreamConfig};
use crate::display::Display;
use crate::error::StreamError;
use crate::session::{InputEvent, StreamMetrics};

/// [`Display`] for applications without async: owns a small tokio runtime on its own
/// threads. Everything that is not `async` on [`Display`] is available through `Deref`.
///
/// ```no_run
/// use framecast_stream::{BlockingDisplay, ServerConfig, StreamConfig};
/// let display = BlockingDisplay::serve(ServerConfig::default(), StreamConfig::new(640, 360))?;
/// let rgba = vec![128u8; 640 * 360 * 4];
/// display.publish_rgba(&rgba, 640, 360)?;
/// display.close();
/// # Ok::<(), framecast_stream::StreamError>(())
/// ```
pub struct BlockingDisplay {
    display: Display,
    runtime: Option<tokio::runtime::Runtime>,
}

impl BlockingDisplay {
    /// Start a server with one `default` stream on a private runtime.
    pub fn serve(server: ServerConfig, stream: StreamConfig) -> Result<Self, StreamError> {
        Self::serve_named(server, None, stream)
    }

    /// Start a server with one stream called `name` (served at `/<name>`; `None` or
    /// `default`: at `/`). Closing the display stops the server.
    pub fn serve_named(
        server: ServerConfig,
        name: Option<&str>,
        stream: StreamConfig,
    ) -> Result<Self, StreamError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("framecast-net")
            .enable_all()
            .build()
            .map_err(StreamError::Runtime)?;
        let display = runtime.block_on(async {
            match name {
                None => crate::serve(server, stream).await,
                Some(n) => {
                    let s = crate::Server::bind(server).await?;
                    let shared = s.hub.add_stream(n, stream)?;
                    Ok(Display::new(shared, s.hub, true))
                }
            }
        })?;
        Ok(BlockingDisplay {
            display,
            runtime: Some(runtime),
        })
    }

    /// The async handle (its methods that are not `async` work from any thread).
    pub fn display(&self) -> &Display {
        &self.display
    }

    /// The runtime the server runs on (to spawn work next to it, e.g. a Ctrl-C watcher).
    pub fn handle(&self) -> Option<tokio::runtime::Handle> {
        self.runtime.as_ref().map(|r| r.handle().clone())
    }

    /// Block until an input event arrives or `timeout` passes.
    pub fn wait_event(&self, timeout: std::time::Duration) -> Option<InputEvent> {
        let rt = self.runtime.as_ref()?;
        rt.block_on(async {
            tokio::time::timeout(timeout, self.display.next_event())
                .await
                .ok()
                .flatten()
        })
    }

    /// See [`Display::metrics`].
    pub fn metrics(&self) -> Option<StreamMetrics> {
        let rt = self.runtime.as_ref()?;
        rt.block_on(self.display.metrics())
    }

    /// Close the server and stop the runtime.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.block_on(self.display.close());
            rt.shutdown_timeout(std::time::Duration::from_secs(2));
        }
    }
}

impl Drop for BlockingDisplay {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl std::ops::Deref for BlockingDisplay {
    type Target = Display;
    fn deref(&self) -> &Display {
        &self.display
    }
}
