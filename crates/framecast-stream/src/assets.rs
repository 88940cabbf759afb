//! The embedded browser viewer (`viewer/`, plain ES modules, no build step).
//!
//! Every file under the crate's `viewer/` directory is compiled in by `build.rs`. The server
//! answers `GET /` and `GET /<stream>` with `viewer/index.html` and `GET /viewer/<path>` with
//! any file, typed by extension.

include!(concat!(env!("OUT_DIR"), "/viewer_files.rs"));

/// The embedded file at `path` (relative to `viewer/`).
pub fn viewer_file(path: &str) -> Option<&'static [u8]> {
    VIEWER_FILES
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, bytes)| *bytes)
}

/// Content type for a file name, by extension.
pub fn mime_for(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Served at `/` when the viewer is not embedded (an empty `viewer/` directory).
pub const NO_VIEWER_PAGE: &str = "<!doctype html><meta charset=utf-8><title>framecast</title>\
<p>framecast is running, but this build embeds no viewer page (<code>viewer/index.html</code>). \
Any pdum.rfb 0.3 viewer can connect to this URL over WebSocket.</p>";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_types() {
        assert_eq!(mime_for("a/b.js"), "text/javascript; charset=utf-8");
        assert_eq!(mime_for("index.html"), "text/html; charset=utf-8");
        assert_eq!(mime_for("x"), "application/octet-stream");
        for (p, _) in VIEWER_FILES {
            assert!(viewer_file(p).is_some());
        }
    }
}
