//! The one tokio runtime every server and remote encoder of the process runs on.

use std::sync::OnceLock;

/// The shared runtime (two worker threads named `framecast-net`), started on first use.
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("framecast-net")
            .enable_all()
            .build()
            .expect("cannot start the framecast runtime threads")
    })
}
