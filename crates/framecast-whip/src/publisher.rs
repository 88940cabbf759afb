//! [`WhipPublisher`]: a stream's encoded H.264 pushed to a WebRTC SFU over WHIP.

use crate::error::WhipError;
use crate::estimate::RateFollower;
use crate::exchange::{self, Answered};
use framecast_stream::{
    Display, PacketTap, PublishState, StateReporter, StateWatch, TapOptions, TappedFrame,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::bwe::{Bitrate, BweKind};
use str0m::change::SdpAnswer;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use url::Url;

/// Settings of a [`WhipPublisher`].
#[derive(Debug, Clone)]
pub struct WhipOptions {
    /// Bearer token for the endpoint (`Authorization: Bearer`), as most SFUs ask.
    pub token: Option<String>,
    /// The stream tap (the SFU asks for keyframes itself: PLI/FIR).
    pub tap: TapOptions,
    /// Cap the rate the stream sends the SFU at its bandwidth estimate (TWCC, or REMB).
    pub follow_estimate: bool,
    /// The bandwidth estimator's starting point, bits/s.
    pub initial_bitrate: u64,
    /// Longest wait between attempts after a failed or lost session (from 1 s, doubling).
    pub backoff_max: Duration,
}

impl Default for WhipOptions {
    fn default() -> Self {
        WhipOptions {
            token: None,
            tap: TapOptions {
                keyframe_interval: None,
                ..TapOptions::default()
            },
            follow_estimate: true,
            initial_bitrate: 2_000_000,
            backoff_max: Duration::from_secs(5),
        }
    }
}

/// Counters of a [`WhipPublisher`].
#[derive(Debug, Default)]
pub struct WhipStats {
    frames: AtomicU64,
    keyframe_requests: AtomicU64,
    estimate_bps: AtomicU64,
    sessions: AtomicU64,
}

impl WhipStats {
    /// Access units handed to WebRTC.
    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }
    /// PLI/FIR received from the SFU (each asked the stream for an IDR).
    pub fn keyframe_requests(&self) -> u64 {
        self.keyframe_requests.load(Ordering::Relaxed)
    }
    /// The latest bandwidth estimate, bits/s (0: none yet).
    pub fn estimate_bps(&self) -> u64 {
        self.estimate_bps.load(Ordering::Relaxed)
    }
    /// Sessions set up so far (1 + reconnects).
    pub fn sessions(&self) -> u64 {
        self.sessions.load(Ordering::Relaxed)
    }
}

/// Pushes one stream to a WHIP endpoint until stopped or the stream closes: one sendonly
/// H.264 video track, RTP over ICE/DTLS-SRTP (str0m). A PLI or FIR from the SFU asks the
/// stream for an IDR; the SFU's bandwidth estimate caps the rate the stream sends it. A
/// failed or lost session is set up again (a new POST) with a backoff of 1 s doubling to
/// [`WhipOptions::backoff_max`]; the local viewers never wait for it.
#[derive(Debug)]
pub struct WhipPublisher {
    endpoint: Url,
    state: StateWatch,
    stats: Arc<WhipStats>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl WhipPublisher {
    /// Tap `display` and publish it to the WHIP `endpoint`. The first offer is posted before
    /// this returns: an endpoint that refuses it (a wrong token, say) is an error here; one
    /// that cannot be reached yet is retried in the background.
    pub async fn start(
        display: &Display,
        endpoint: &str,
        opts: WhipOptions,
    ) -> Result<WhipPublisher, WhipError> {
        let endpoint = exchange::endpoint(endpoint)?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| WhipError::Request {
                url: endpoint.to_string(),
                message: e.to_string(),
            })?;
        let (reporter, state) = StateReporter::new(format!("WHIP endpoint {endpoint}"));
        let stats = Arc::new(WhipStats::default());
        let mut run = Run {
            endpoint: endpoint.clone(),
            http,
            opts: opts.clone(),
            tap: display.tap(opts.tap.clone()).await?,
            state: reporter,
            stats: stats.clone(),
            follower: RateFollower::default(),
            started: Instant::now(),
        };
        let first = match run.open().await {
            Ok(s) => Some(s),
            Err(e @ WhipError::Status { .. }) | Err(e @ WhipError::Answer { .. }) => return Err(e),
            Err(e) => {
                tracing::warn!(endpoint = %endpoint, error = %e, "WHIP endpoint not reachable yet");
                None
            }
        };
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run.supervise(first, stop_rx));
        Ok(WhipPublisher {
            endpoint,
            state,
            stats,
            stop,
            task,
        })
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// The session's state (now, its changes, waiting for one).
    pub fn state(&self) -> &StateWatch {
        &self.state
    }

    /// Counters.
    pub fn stats(&self) -> &WhipStats {
        &self.stats
    }

    /// End the session (DELETE its resource) and leave the stream.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// One WebRTC session with the endpoint.
struct Session {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    mid: Mid,
    pt: Option<Pt>,
    resource: Option<Url>,
    connected: bool,
    /// When ICE was lost, to give it a moment to come back before starting over.
    lost_at: Option<Instant>,
    /// The endpoint closed the session (DTLS close_notify): start over at once.
    closed: bool,
}

/// How a session ended.
enum Ended {
    Stopped,
    StreamClosed,
    Lost(String),
}

/// How long ICE may stay disconnected before the session is set up again.
const LOST_GRACE: Duration = Duration::from_secs(5);
/// How long a new session may take to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

struct Run {
    endpoint: Url,
    http: reqwest::Client,
    opts: WhipOptions,
    tap: PacketTap,
    state: StateReporter,
    stats: Arc<WhipStats>,
    follower: RateFollower,
    started: Instant,
}

impl Run {
    async fn supervise(mut self, mut session: Option<Session>, mut stop: watch::Receiver<bool>) {
        let mut backoff = Duration::from_secs(1);
        loop {
            let ended = match session.take() {
                Some(s) => {
                    let up = Instant::now();
                    let ended = self.drive(s, &mut stop).await;
                    if up.elapsed() > backoff {
                        backoff = Duration::from_secs(1); // it was healthy for a while
                    }
                    ended
                }
                None => Ended::Lost("no session".into()),
            };
            match ended {
                Ended::Stopped | Ended::StreamClosed => break,
                Ended::Lost(why) => {
                    self.state.report(PublishState::Disconnected);
                    tracing::debug!(endpoint = %self.endpoint, %why, "WHIP session lost");
                }
            }
            // Wait out the backoff (still taking frames, so the tap never backs up).
            let until = tokio::time::Instant::now() + backoff;
            backoff = (backoff * 2).min(self.opts.backoff_max);
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(until) => break,
                    f = self.tap.recv() => if f.is_none() { return self.finish(); },
                    _ = stop.changed() => return self.finish(),
                }
            }
            // Retries stay "disconnected" until one connects: one line per change, not per try.
            match self.open().await {
                Ok(s) => session = Some(s),
                Err(e) => {
                    tracing::debug!(endpoint = %self.endpoint, error = %e, "WHIP attempt failed")
                }
            }
        }
        self.finish();
    }

    fn finish(&mut self) {
        self.state.report(PublishState::Stopped);
    }

    /// POST an offer and apply the answer.
    async fn open(&mut self) -> Result<Session, WhipError> {
        let host = self.endpoint.host_str().unwrap_or_default().to_string();
        let port = self.endpoint.port_or_known_default().unwrap_or(443);
        let remote = tokio::net::lookup_host((host.as_str(), port))
            .await?
            .next()
            .ok_or_else(|| WhipError::Url {
                url: self.endpoint.to_string(),
                why: "the host has no address".into(),
            })?;
        let local_ip = route_to(remote)?;
        let socket = UdpSocket::bind(SocketAddr::new(local_ip, 0)).await?;
        let local = socket.local_addr()?;
        let mut rtc = RtcConfig::new()
            .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
            .clear_codecs()
            .enable_h264(true)
            .enable_bwe(Some(Bitrate::bps(self.opts.initial_bitrate)))
            .build(Instant::now());
        let rtc_err = |e: &dyn std::fmt::Display| WhipError::Rtc(e.to_string());
        let candidate = Candidate::host(local, "udp").map_err(|e| rtc_err(&e))?;
        rtc.add_local_candidate(candidate);
        let mut change = rtc.sdp_api();
        let mid = change.add_media(
            MediaKind::Video,
            Direction::SendOnly,
            Some("framecast".into()),
            Some("video".into()),
            None,
        );
        let (offer, pending) = change
            .apply()
            .ok_or_else(|| WhipError::Rtc("no offer to make".into()))?;
        let Answered { sdp, resource } = exchange::post_offer(
            &self.http,
            &self.endpoint,
            self.opts.token.as_deref(),
            offer.to_sdp_string(),
        )
        .await?;
        let answer = SdpAnswer::from_sdp_string(&sdp).map_err(|e| WhipError::Answer {
            url: self.endpoint.to_string(),
            message: e.to_string(),
        })?;
        rtc.sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| WhipError::Answer {
                url: self.endpoint.to_string(),
                message: e.to_string(),
            })?;
        self.stats.sessions.fetch_add(1, Ordering::Relaxed);
        Ok(Session {
            rtc,
            socket,
            local,
            mid,
            pt: None,
            resource,
            connected: false,
            lost_at: None,
            closed: false,
        })
    }

    /// Run one session until it is lost, the stream closes or the publisher stops.
    async fn drive(&mut self, mut s: Session, stop: &mut watch::Receiver<bool>) -> Ended {
        let opened = Instant::now();
        let mut buf = vec![0u8; 2000];
        let ended = loop {
            let timeout = match self.drain(&mut s).await {
                Ok(t) => t,
                Err(e) => break Ended::Lost(e),
            };
            if !s.connected && opened.elapsed() > CONNECT_TIMEOUT {
                break Ended::Lost("ICE did not connect".into());
            }
            if s.lost_at.is_some_and(|t| t.elapsed() > LOST_GRACE) {
                break Ended::Lost("ICE disconnected".into());
            }
            if s.closed {
                break Ended::Lost("the endpoint closed the session".into());
            }
            let sleep = tokio::time::Instant::from_std(
                timeout.min(Instant::now() + Duration::from_secs(1)),
            );
            let input = tokio::select! {
                _ = tokio::time::sleep_until(sleep) => Input::Timeout(Instant::now()),
                r = s.socket.recv_from(&mut buf) => match r {
                    Ok((n, source)) => match Receive::new(Protocol::Udp, source, s.local, &buf[..n]) {
                        Ok(r) => Input::Receive(Instant::now(), r),
                        Err(_) => continue, // not STUN/DTLS/RTP: ignore
                    },
                    Err(e) => break Ended::Lost(format!("socket: {e}")),
                },
                f = self.tap.recv() => match f {
                    Some(f) => {
                        self.write(&mut s, f);
                        continue;
                    }
                    None => break Ended::StreamClosed,
                },
                _ = stop.changed() => break Ended::Stopped,
            };
            if let Err(e) = s.rtc.handle_input(input) {
                break Ended::Lost(format!("WebRTC: {e}"));
            }
        };
        s.rtc.disconnect();
        let _ = self.drain(&mut s).await;
        if let Some(r) = &s.resource {
            exchange::delete(&self.http, r, self.opts.token.as_deref()).await;
        }
        ended
    }

    /// Poll the session until it only waits: send what it sends, act on its events.
    async fn drain(&mut self, s: &mut Session) -> Result<Instant, String> {
        loop {
            match s.rtc.poll_output().map_err(|e| format!("WebRTC: {e}"))? {
                Output::Timeout(t) => return Ok(t),
                Output::Transmit(t) => {
                    let _ = s.socket.send_to(&t.contents, t.destination).await;
                }
                Output::Event(e) => self.event(s, e),
            }
        }
    }

    fn event(&mut self, s: &mut Session, e: Event) {
        match e {
            Event::Connected => {
                s.connected = true;
                s.lost_at = None;
                s.pt = h264_pt(&mut s.rtc, s.mid);
                self.state.report(PublishState::Connected);
                // The SFU's first picture must be an IDR.
                self.tap.request_keyframe("WHIP session connected");
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                s.lost_at.get_or_insert_with(Instant::now);
                self.state.report(PublishState::Disconnected);
            }
            Event::IceConnectionStateChange(
                IceConnectionState::Connected | IceConnectionState::Completed,
            ) if s.connected && s.lost_at.is_some() => {
                s.lost_at = None;
                self.state.report(PublishState::Connected);
            }
            Event::Closed => s.closed = true,
            Event::KeyframeRequest(req) => {
                self.stats.keyframe_requests.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(kind = ?req.kind, "keyframe request from the SFU");
                self.tap.request_keyframe("PLI/FIR from the WHIP endpoint");
            }
            Event::EgressBitrateEstimate(kind) => {
                let bps = match kind {
                    BweKind::Twcc { estimate, .. } | BweKind::Remb { estimate, .. } => {
                        estimate.as_u64()
                    }
                    #[allow(unreachable_patterns)]
                    _ => return,
                };
                self.stats.estimate_bps.store(bps, Ordering::Relaxed);
                if self.opts.follow_estimate {
                    if let Some(cap) = self.follower.estimate(bps, self.started.elapsed()) {
                        self.tap.set_rate_cap(Some(cap));
                    }
                }
            }
            _ => {}
        }
    }

    fn write(&mut self, s: &mut Session, f: TappedFrame) {
        if !s.connected {
            return;
        }
        let Some(pt) = s.pt else {
            return;
        };
        let Some(writer) = s.rtc.writer(s.mid) else {
            return;
        };
        let rtp_time = MediaTime::from_90khz(f.timestamp_us * 9 / 100);
        match writer.write(pt, Instant::now(), rtp_time, f.data.to_vec()) {
            Ok(()) => {
                self.stats.frames.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::debug!(error = %e, "WebRTC refused a frame"),
        }
    }
}

/// The negotiated H.264 payload type of the video section (packetization-mode 1 first).
fn h264_pt(rtc: &mut Rtc, mid: Mid) -> Option<Pt> {
    let writer = rtc.writer(mid)?;
    let mut h264 = writer
        .payload_params()
        .filter(|p| p.spec().codec == Codec::H264)
        .map(|p| (p.pt(), p.spec().format.packetization_mode))
        .collect::<Vec<_>>();
    h264.sort_by_key(|(_, mode)| std::cmp::Reverse(*mode));
    h264.first().map(|(pt, _)| *pt)
}

/// The local address the kernel would send from to reach `remote` (no packet is sent).
fn route_to(remote: SocketAddr) -> std::io::Result<IpAddr> {
    let any: IpAddr = match remote {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let probe = std::net::UdpSocket::bind(SocketAddr::new(any, 0))?;
    probe.connect(remote)?;
    Ok(probe.local_addr()?.ip())
}
