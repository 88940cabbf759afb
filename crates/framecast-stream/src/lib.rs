//! framecast-stream: live streaming of rendered frames to browsers, wire-compatible with
//! pdum.rfb 0.3.
//!
//! * [`protocol`] (pure): the binary envelope, `image_frame`/`video_chunk` headers, control
//!   messages both ways, the input-event vocabulary and close codes, byte-identical to
//!   pdum.rfb's Python (golden fixtures in `tests/fixtures/protocol/`).
//! * [`session`] (pure, sans-IO): [`StreamCore`], the per-stream/per-viewer delivery state
//!   machine — keyframe rules that follow the reference chain, drop-before-encode with
//!   `max_inflight`, latest-frame-wins, the 2 s backstop, still-after-settle, stats, and
//!   encoders shared by viewers that negotiate the same transport — and
//!   [`session::Admission`], a connection's `hello`/token step. Time goes in, [`Action`]s and
//!   the next deadline come out.
//! * The shell, one idea per file: `hub` (the named streams, orderly shutdown), `stream`
//!   (the task that drives one `StreamCore`, sleeping until its next deadline), `connection`
//!   (one viewer's WebSocket), `http` and `control` (routes), `listener` (accept loop with a
//!   request-head deadline and a cap on not-yet-upgraded connections), `worker` (one OS
//!   thread per encoder group, never the async runtime), [`Server`] / [`serve`], [`Display`]
//!   to publish frames and read input, [`BlockingDisplay`] for non-async apps.
//!
//! # HTTP and WebSocket endpoints (one port, default `127.0.0.1:8765`)
//!
//! | Path | |
//! |---|---|
//! | `GET /` , `GET /<stream>` | the embedded viewer page (`viewer/index.html`); with `Upgrade: websocket`, the viewer WebSocket of stream `default` / `<stream>` (unknown → close 4404) |
//! | `GET /viewer/<path>` | any file of the embedded viewer directory |
//! | `GET /health` | `{"status":"ok","streams":N}` |
//! | `GET /streams` | `[{"name","width","height","fps","clients"}]`: streams without a token, and those whose token the request presents (`?token=` or `Authorization: Bearer`) |
//! | `GET /streams/<name>/metrics`, `GET /metrics` | (the stream's token required when it has one; 401 otherwise) counters: frames published, per-group encode ms (EMA, p50, p95), per-viewer sent/acked/dropped/RTT/fps/bitrate; `clock` (below) |
//! | `GET /streams/<name>/time`, `GET /time` | the clock pair `{"timestamp_us","unix_us"}`: the stream clock of frame headers' `timestamp_us` and the wall clock (µs since the Unix epoch), read back to back ([`Display::clock`]); `unix_us - timestamp_us` maps a header to wall-clock time |
//! | `GET /control` | (only with [`ServerConfig::remote_control`]) `{"stream","backend","bitrate","fps","transport","backends":[..],"transports":["auto","video","image"], ...app state}` |
//! | `POST /control` | JSON `{"stream"?, "backend"?, "bitrate"?, "transport"?, ...}`: backend/bitrate/transport are applied (encoders rebuilt, `config` re-sent, keyframe forced); the whole object is queued for the application ([`Display::poll_control`], e.g. `scene`); answers like `GET`. 400 on bad values, 401 without the stream's token, 403 for a foreign origin, 404 when disabled |
//!
//! # Wire notes
//!
//! * A frame header's `timestamp_us` is the frame's **publish** time (the [`Display::publish`]
//!   call) on the stream clock: µs since the stream started, monotonic, shared by every viewer
//!   (pdum.rfb: "shared monotonic µs"). Encode and send times are not in it; with the clock
//!   pair above a viewer measures publish → displayed latency.
//! * `config` carries one field pdum.rfb 0.3 does not define, `backend` (`openh264`, ... for
//!   video; `jpeg` or `png` for images); pdum's viewer ignores unknown fields. Without it the
//!   message is byte-identical to pdum's (golden fixtures).
//! * Closing: after a close frame (4401, 4404, 1003, 1008, 1009, 1001) the server keeps
//!   reading until the viewer's close frame or 1 s, so a TCP reset never hides the code.
//!
//! # Example
//!
//! ```no_run
//! use framecast_stream::{BlockingDisplay, ServerConfig, StreamConfig};
//! use framecast_core::PixelFormat;
//! let display = BlockingDisplay::serve(ServerConfig::default(), StreamConfig::new(1280, 720))?;
//! println!("open {}", display.url());
//! for i in 0.. {
//!     display.publish_with(PixelFormat::Rgba8, 1280, 720, |rgba| {
//!         framecast_io::render_into(framecast_io::PatternKind::TestCard, i, 1280, 720, rgba).ok();
//!     })?;
//!     for e in display.poll_events() { println!("{:?}", e.event); }
//!     std::thread::sleep(std::time::Duration::from_millis(33));
//! #   break;
//! }
//! # Ok::<(), framecast_stream::StreamError>(())
//! ```

#![warn(missing_docs)]

mod access;
pub mod assets;
mod blocking;
mod config;
mod congestion_report;
mod connection;
mod control;
mod display;
mod error;
mod http;
mod hub;
mod image;
mod listener;
pub mod protocol;
mod publish_state;
mod server;
pub mod session;
mod stream;
mod tap;
mod tcp_info;
#[cfg(feature = "gpu")]
mod texture;
mod worker;

pub use blocking::BlockingDisplay;
pub use config::{ServerConfig, StreamConfig, DEFAULT_LISTEN};
pub use display::Display;
pub use error::StreamError;
pub use hub::DEFAULT_STREAM;
pub use image::{encode_jpeg, encode_png};
pub use publish_state::{PublishState, StateLog, StateReporter, StateWatch};
pub use server::{serve, Server};
pub use session::{
    Action, EncoderSettings, FrameTags, GroupKind, ImageFormat, InputEvent, ResizePolicy,
    StreamCore, StreamMetrics, StreamSnapshot, TransportPolicy,
};
pub use tap::{PacketTap, TapOptions, TappedFrame};
pub use worker::SharedFrame;
