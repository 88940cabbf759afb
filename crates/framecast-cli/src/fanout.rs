//! `--publish-moq` and `--publish-whip` on `serve` and `demo`: hand the live stream to
//! fan-out infrastructure (a Media over QUIC relay, a WebRTC SFU) next to the local viewers.

use crate::{exit, Failure, WithCode};
use anyhow::anyhow;
use clap::Args;
#[cfg(feature = "moq")]
use framecast_moq::{MoqOptions, MoqPublisher, MoqTarget};
use framecast_stream::Display;
#[cfg(any(feature = "moq", feature = "whip"))]
use framecast_stream::PublishState;
#[cfg(feature = "whip")]
use framecast_whip::{WhipOptions, WhipPublisher};
use tokio::runtime::Handle;

/// Where else the stream goes.
#[derive(Args, Debug, Clone)]
pub struct FanoutArgs {
    /// Also publish the stream's H.264 (no second encode) to a Media over QUIC relay
    /// (moq-relay) as the broadcast named by the URL's last segment, e.g.
    /// https://relay:4443/lab. Browsers watch through the relay (WebTransport + WebCodecs);
    /// the relay never slows local viewers, and a dead relay is redialled with backoff.
    #[arg(long, value_name = "URL")]
    publish_moq: Option<String>,
    /// Trust the relay's certificate by its SHA-256 fingerprint (hex; moq-relay serves it at
    /// http://relay:port/certificate.sha256). Repeatable. Default: the system roots.
    #[arg(long, value_name = "HEX", requires = "publish_moq")]
    moq_fingerprint: Vec<String>,
    /// Accept any relay certificate (testing only).
    #[arg(long, requires = "publish_moq")]
    moq_insecure: bool,
    /// Seconds between the IDRs asked for the relay (its late joiners start at one; local
    /// viewers get them too).
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    publish_keyframe_interval: f64,
    /// Also push the stream's H.264 to a WebRTC SFU's WHIP endpoint (RFC 9725: LiveKit,
    /// Cloudflare, mediamtx, ...). Its keyframe requests (PLI/FIR) reach the encoder and its
    /// bandwidth estimate caps what it is sent; a lost session is set up again with backoff.
    #[arg(long, value_name = "URL")]
    publish_whip: Option<String>,
    /// Bearer token for the WHIP endpoint.
    #[arg(long, value_name = "TOKEN", requires = "publish_whip")]
    whip_token: Option<String>,
}

/// The running publishers of one live stream.
pub struct Fanout {
    #[cfg(feature = "moq")]
    moq: Option<MoqPublisher>,
    #[cfg(feature = "whip")]
    whip: Option<WhipPublisher>,
    handle: Handle,
}

impl Fanout {
    /// Start what `args` asks for on `display` (on the display's runtime).
    pub fn start(args: &FanoutArgs, display: &Display, handle: Handle) -> Result<Fanout, Failure> {
        let every = args.publish_keyframe_interval;
        if !(every.is_finite() && every > 0.0) {
            return Err(anyhow!(
                "--publish-keyframe-interval must be a positive number of seconds, not {every}"
            ))
            .code(exit::USAGE);
        }
        #[cfg(feature = "moq")]
        let moq = match &args.publish_moq {
            Some(url) => Some(start_moq(args, url, every, display, &handle)?),
            None => None,
        };
        #[cfg(not(feature = "moq"))]
        if args.publish_moq.is_some() {
            return Err(anyhow!(
                "--publish-moq needs a framecast built with the `moq` feature (on by default)"
            ))
            .code(exit::USAGE);
        }
        #[cfg(feature = "whip")]
        let whip = match &args.publish_whip {
            Some(url) => Some(start_whip(args, url, display, &handle)?),
            None => None,
        };
        #[cfg(not(feature = "whip"))]
        if args.publish_whip.is_some() {
            return Err(anyhow!(
                "--publish-whip needs a framecast built with the `whip` feature (on by default)"
            ))
            .code(exit::USAGE);
        }
        let _ = display;
        Ok(Fanout {
            #[cfg(feature = "moq")]
            moq,
            #[cfg(feature = "whip")]
            whip,
            handle,
        })
    }

    /// Stop publishing (the relay sees the broadcast end).
    pub fn finish(self) {
        #[cfg(feature = "moq")]
        if let Some(p) = self.moq {
            self.handle.block_on(p.stop());
        }
        #[cfg(feature = "whip")]
        if let Some(p) = self.whip {
            self.handle.block_on(p.stop());
        }
        let _ = self.handle;
    }
}

/// `--publish-moq URL`: tap the stream and publish it, printing each relay state change.
#[cfg(feature = "moq")]
fn start_moq(
    args: &FanoutArgs,
    url: &str,
    every: f64,
    display: &Display,
    handle: &Handle,
) -> Result<MoqPublisher, Failure> {
    let target: MoqTarget = url.parse().code(exit::USAGE)?;
    let opts = MoqOptions {
        fingerprints: args.moq_fingerprint.clone(),
        insecure: args.moq_insecure,
        tap: framecast_stream::TapOptions {
            keyframe_interval: Some(std::time::Duration::from_secs_f64(every)),
            ..framecast_stream::TapOptions::default()
        },
        ..MoqOptions::default()
    };
    let publisher = handle
        .block_on(MoqPublisher::start(display, target.clone(), opts))
        .code(exit::OUTPUT)?;
    println!(
        "Publishing to the MoQ relay {} as broadcast {:?}",
        target.connect, target.broadcast
    );
    print_states(
        handle,
        publisher.state().changes(),
        format!("MoQ relay {target}"),
    );
    Ok(publisher)
}

/// `--publish-whip URL`: tap the stream and push it, printing each session state change.
#[cfg(feature = "whip")]
fn start_whip(
    args: &FanoutArgs,
    url: &str,
    display: &Display,
    handle: &Handle,
) -> Result<WhipPublisher, Failure> {
    let opts = WhipOptions {
        token: args.whip_token.clone(),
        ..WhipOptions::default()
    };
    let publisher = handle
        .block_on(WhipPublisher::start(display, url, opts))
        .code(exit::OUTPUT)?;
    println!("Publishing to the WHIP endpoint {url}");
    print_states(
        handle,
        publisher.state().changes(),
        format!("WHIP endpoint {url}"),
    );
    Ok(publisher)
}

/// One stderr line per state change of a publisher (each change is reported once).
#[cfg(any(feature = "moq", feature = "whip"))]
fn print_states(
    handle: &Handle,
    mut states: tokio::sync::watch::Receiver<PublishState>,
    what: String,
) {
    handle.spawn(async move {
        while states.changed().await.is_ok() {
            let s = *states.borrow_and_update();
            eprintln!("{what}: {s}");
            if s == PublishState::Stopped {
                break;
            }
        }
    });
}
