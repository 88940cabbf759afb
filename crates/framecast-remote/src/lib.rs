//! framecast-remote: the VTR1 ("VideoToolbox Remote" protocol v1) remote-encode service.
//!
//! framecast speaks VTR1 byte for byte, so FFmpeg builds with the `*_videotoolbox_remote`
//! codecs can encode and decode through a framecast server, and framecast's client can use a
//! stock `vtremoted`. Unlike `vtremoted`, the server is not tied to macOS: it serves whatever
//! encoder backends this machine has (OpenH264 everywhere).
//!
//! * [`wire`]: the sans-IO codec — every message, the header, [`wire::Vtr1Codec`] (incremental
//!   decoding, size caps checked on the header before allocating).
//! * [`compress`]: per-plane LZ4 (raw block) / Zstd (frame) FRAME compression; [`planes`]:
//!   FRAME plane geometry, validation and building.
//! * [`settings`]: CONFIGURE options → session settings, checked against [`settings::ServerCaps`].
//! * [`server_session`] and [`client_session`]: each side's protocol, sans-IO — handshake,
//!   PING, FLUSH/DONE, the in-flight window and every deadline, with time passed in. The tests
//!   drive a client and a server session as a pair in simulated time.
//! * [`media`]: the synchronous media side of a server session (encode/decode/transcode,
//!   timestamp rules), no sockets; [`timing`]: its encode times in constant space.
//! * [`server`] and [`client`]: thin tokio shells around the sessions (sockets, the session
//!   limit, the media thread).
//! * [`failover`]: a pool of servers; the session goes to the first that takes it (BUSY,
//!   refusals and dead addresses are passed over), and an encode session whose connection
//!   dies mid-stream is resumed on the next, with the frames still owed sent again
//!   ([`resume`]: which frames those are).
//!
//! ```no_run
//! # async fn demo() -> Result<(), framecast_remote::RemoteError> {
//! use framecast_remote::{client::{Client, ClientOptions}, wire::{Configure, pix_fmt}};
//! let mut client = Client::connect("127.0.0.1:5555", ClientOptions::default()).await?;
//! let ack = client
//!     .configure(Configure {
//!         width: 1280, height: 720, pix_fmt: pix_fmt::NV12,
//!         tb_num: 1, tb_den: 30, fr_num: 30, fr_den: 1,
//!         options: vec![("mode".into(), "encode".into())],
//!         ..Configure::default()
//!     })
//!     .await?;
//! println!("avcC: {} bytes", ack.extradata.len());
//! # Ok(()) }
//! ```
//!
//! Error codes: the reference documents 1 auth, 2 busy, 3 unsupported, 4 bad request,
//! 5 internal, but its newer server actually sends 1 for any CONFIGURE failure, 2 for a
//! failure while processing media and 4 for an oversize or unexpected message. framecast sends
//! what the reference sends ([`wire::error_code`]).

#![warn(missing_docs)]

pub mod annexb;
pub mod client;
pub mod client_session;
mod codes;
pub mod compress;
mod error;
pub mod failover;
pub mod media;
pub mod planes;
pub mod resume;
pub mod server;
pub mod server_session;
pub mod settings;
pub mod timing;
pub mod wire;

pub use compress::Compression;
pub use error::{
    CompressionError, ConfigureError, PlaneError, RemoteError, ServerAttempt, SessionFailure,
    WireError,
};
