//! Shared by the relay tests and the fan-out benchmark: real `moq-relay` processes on
//! loopback, a framecast stream publishing the test card, and a MoQ subscriber.
#![allow(dead_code)] // each binary uses its own subset

use framecast_core::PixelFormat;
use framecast_io::{render_into, PatternKind};
use framecast_stream::{serve, Display, ServerConfig, StreamConfig};
use moq_tokio::moq_net;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const W: u32 = 320;
pub const H: u32 = 240;

/// The `moq-relay` binary: `$MOQ_RELAY`, `.tools/moq-relay/bin/moq-relay` (where
/// `./scripts/test.sh` installs it), or `moq-relay` on `PATH`. `None` (the test skips, saying
/// so) unless `FRAMECAST_REQUIRE_MOQ_RELAY=1`, which `./scripts/test.sh` sets.
pub fn relay_binary() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let candidates = [
        std::env::var_os("MOQ_RELAY").map(PathBuf::from),
        Some(root.join(".tools/moq-relay/bin/moq-relay")),
    ];
    let found = candidates
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
        .or_else(|| {
            Command::new("moq-relay")
                .arg("--help")
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|_| PathBuf::from("moq-relay"))
        });
    if found.is_none() {
        assert!(
            std::env::var("FRAMECAST_REQUIRE_MOQ_RELAY").as_deref() != Ok("1"),
            "FRAMECAST_REQUIRE_MOQ_RELAY=1 but no moq-relay (./scripts/test.sh installs it)"
        );
        eprintln!(
            "SKIP: no moq-relay (cargo install --locked moq-relay --version 0.17.8, or MOQ_RELAY=...)"
        );
    }
    found
}

/// A `moq-relay` process on 127.0.0.1: QUIC (WebTransport) on UDP `port`, HTTP on TCP
/// `port`, a self-signed certificate, anonymous publish and subscribe.
pub struct Relay {
    child: Child,
    pub port: u16,
    /// SHA-256 of its certificate (hex), from `GET /certificate.sha256`.
    pub fingerprint: String,
}

impl Relay {
    /// Start a relay; `peer`: another relay to cluster with (this one dials it).
    pub async fn start(bin: &std::path::Path, peer: Option<&Relay>) -> Relay {
        Self::start_on(bin, free_port(), peer).await
    }

    /// [`Self::start`] on a given port (a relay restarted where it was).
    pub async fn start_on(bin: &std::path::Path, port: u16, peer: Option<&Relay>) -> Relay {
        let addr = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(bin);
        cmd.args(["--listen", &addr, "--listen-tls-generate", "localhost"])
            .args(["--web-http-listen", &addr, "--auth-public", "**"])
            .args(["--log-level", "warn"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(p) = peer {
            cmd.args([
                "--cluster-connect",
                &format!("https://127.0.0.1:{}/", p.port),
            ])
            .args(["--connect-tls-fingerprint", &p.fingerprint]);
        }
        let child = cmd.spawn().expect("moq-relay starts");
        let mut relay = Relay {
            child,
            port,
            fingerprint: String::new(),
        };
        for _ in 0..100 {
            if let Some(f) = http_get(port, "/certificate.sha256").await {
                relay.fingerprint = f.trim().to_string();
                return relay;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("moq-relay on {addr} did not come up");
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}/{path}", self.port)
    }

    /// Stop the process (a dead relay for reconnect tests).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port free on both UDP and TCP loopback (the relay takes both).
fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

async fn http_get(port: u16, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.ok()?;
    let text = String::from_utf8_lossy(&buf);
    if !text.starts_with("HTTP/1.1 200") {
        return None;
    }
    text.split("\r\n\r\n").nth(1).map(str::to_string)
}

/// A framecast stream (no local viewers) publishing the test card at `fps`.
pub async fn test_card_display(w: u32, h: u32, fps: f64) -> Display {
    let mut stream = StreamConfig::new(w, h);
    stream.fps = fps;
    let server = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..ServerConfig::default()
    };
    let display = serve(server, stream).await.unwrap();
    let d = display.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / fps));
        for i in 0u64.. {
            tick.tick().await;
            let r = d.publish_with(PixelFormat::Rgba8, w, h, |rgba| {
                render_into(PatternKind::TestCard, i, w, h, rgba).unwrap();
            });
            if r.is_err() {
                break;
            }
        }
    });
    display
}

/// A MoQ client that trusts `fingerprint`.
pub fn client(fingerprint: &str) -> moq_tokio::Client {
    let mut config = moq_tokio::connect::Config::default();
    config.tls.fingerprint = vec![fingerprint.to_string()];
    config.bind = Some("127.0.0.1:0".parse().unwrap());
    config.init(Default::default()).expect("client init")
}

/// A subscriber's view of the broadcast: its catalog's H.264 rendition and a reader of it.
pub struct Watching {
    pub catalog: hang::Catalog,
    pub video: moq_mux::container::Consumer<moq_mux::catalog::hang::Container>,
    _connection: moq_tokio::Connection,
    _origin: moq_net::origin::Producer,
}

/// Subscribe to broadcast `name` through the relay at `url`, as a viewer would: wait for
/// its announcement, read the catalog, subscribe to the video rendition it names.
pub async fn watch(url: &str, fingerprint: &str, name: &str) -> Watching {
    let origin = moq_tokio::origin::spawn();
    let connection = client(fingerprint)
        .with_subscriber(origin.clone())
        .connect(url::Url::parse(url).unwrap());
    let consumer = origin.consume();
    let mut announced = consumer.announced();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let update = tokio::time::timeout_at(deadline, announced.next())
            .await
            .unwrap_or_else(|_| panic!("{name} was not announced at {url} within 15 s"))
            .expect("announcements");
        if update.prefix.as_str() == name && update.kind.is_active() {
            break;
        }
    }
    let broadcast = consumer.request_broadcast(name).await.expect("broadcast");
    let mut catalogs = hang::Catalog::subscribe(&broadcast).await.expect("catalog");
    let catalog = loop {
        let c = tokio::time::timeout_at(deadline, catalogs.next())
            .await
            .expect("a catalog within 15 s")
            .expect("catalog track")
            .expect("a catalog");
        // The rendition appears once the first IDR's SPS has configured it.
        if c.video.renditions.contains_key(framecast_moq::VIDEO_TRACK) {
            break c;
        }
    };
    let config = &catalog.video.renditions[framecast_moq::VIDEO_TRACK];
    let container = moq_mux::catalog::hang::Container::try_from(config).expect("container");
    let track = broadcast
        .track(framecast_moq::VIDEO_TRACK)
        .expect("track")
        .subscribe(None)
        .await
        .expect("subscribe");
    Watching {
        catalog: catalog.clone(),
        video: moq_mux::container::Consumer::new(track, container),
        _connection: connection,
        _origin: origin,
    }
}
