//! `framecast remote`: the VTR1 remote-encode service (byte-compatible with VideoToolbox
//! Remote's `vtremoted`) and its client.

use crate::args::{fps_ratio, parse_bitrate, parse_fps, parse_size, SourceArgs};
use crate::output::{display_path, frame_progress, Container, PacketWriter};
use crate::{exit, Failure, WithCode};
use anyhow::{anyhow, Context};
use bytes::Bytes;
use clap::{Args, Subcommand};
use framecast_core::{ColorSpace, Frame, PixelFormat};
use framecast_encode::{EncodedPacket, OutputFormat, PacketTimings};
use framecast_io::{FrameSource, Y4mWriter};
use framecast_remote::client::{run_stream, ClientOptions, Credit, RunError, StreamStats};
use framecast_remote::compress::decompress_plane;
use framecast_remote::failover::{Established, Failover, ServerPool};
use framecast_remote::planes::FramePlanes;
use framecast_remote::server::{Server, ServerConfig, ServerError};
use framecast_remote::wire::{
    pix_fmt, Configure, FrameMsg, HelloAck, Message, PacketMsg, FLAG_KEYFRAME,
};
use framecast_remote::{Compression, RemoteError, ServerAttempt};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Arguments of `framecast remote`.
#[derive(Args, Debug)]
pub struct RemoteArgs {
    #[command(subcommand)]
    command: RemoteCommand,
}

#[derive(Subcommand, Debug)]
enum RemoteCommand {
    /// Run a VTR1 server (FFmpeg's *_videotoolbox_remote codecs can use it). Set
    /// RUST_LOG=framecast_remote=info to see one SUMMARY line per session.
    Serve(ServeArgs),
    /// Encode a file or pattern on a remote server to .h264 or .mp4.
    Encode(EncodeArgs),
    /// Decode an .h264 file on a remote server to .y4m.
    Decode(DecodeArgs),
    /// Re-encode an .h264 file on a remote server (optionally resized) to .h264 or .mp4.
    Transcode(TranscodeArgs),
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:5555")]
    listen: SocketAddr,
    #[command(flatten)]
    token: crate::args::TokenArgs,
    /// Concurrent sessions; more get BUSY.
    #[arg(long, default_value_t = 4)]
    max_sessions: usize,
    /// Seconds allowed for each of HELLO and CONFIGURE.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    handshake_timeout: f64,
    /// Seconds allowed for each message after the handshake.
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    idle_timeout: f64,
    /// Seconds allowed for writing each message.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    write_timeout: f64,
    /// Largest FRAME/PACKET accepted (HELLO is capped at 64 KiB, CONFIGURE at 4 MiB).
    #[arg(long, default_value_t = framecast_remote::wire::DEFAULT_MAX_MESSAGE_BYTES, value_name = "N")]
    max_message_bytes: u32,
    /// Encoder backend (default: the first available; see `framecast doctor`).
    #[arg(long)]
    backend: Option<String>,
}

#[derive(Args, Debug)]
struct ConnectArgs {
    /// Server address; several (repeat the flag, or separate with commas) make a pool: the
    /// session goes to the first that takes it, passing over BUSY, refusing and dead servers.
    /// An `encode` whose server dies mid-stream goes on on the next one (frames in flight are
    /// sent again).
    #[arg(long, value_name = "HOST:PORT", required = true, value_delimiter = ',')]
    server: Vec<String>,
    /// Rounds over the pool while every server is busy or unreachable (with a doubling
    /// backoff from 0.25 s).
    #[arg(long, default_value_t = 3, value_name = "N")]
    rounds: u32,
    #[command(flatten)]
    token: crate::args::TokenArgs,
    /// FRAME plane compression on the wire.
    #[arg(long, default_value = "lz4")]
    compression: Compression,
    /// Inputs in flight before waiting for the server (network and encoder overlap).
    #[arg(long, default_value_t = 8, value_name = "N")]
    window: usize,
    /// Seconds to wait for the server at each step.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    timeout: f64,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args, Debug)]
struct EncodeArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Output .h264 or .mp4.
    #[arg(short, long, value_name = "OUT")]
    output: PathBuf,
    /// Target bitrate (e.g. 8M, 800k).
    #[arg(long, value_parser = parse_bitrate)]
    bitrate: Option<u32>,
    /// Keyframe interval in frames (CONFIGURE option `gop`).
    #[arg(long, value_name = "N")]
    keyint: Option<u32>,
    #[command(flatten)]
    connect: ConnectArgs,
}

#[derive(Args, Debug)]
struct DecodeArgs {
    /// Annex B .h264 input.
    input: PathBuf,
    /// Output .y4m.
    #[arg(short, long, value_name = "OUT")]
    output: PathBuf,
    /// Frame rate written to the y4m header.
    #[arg(long, value_parser = parse_fps, default_value = "30")]
    fps: f64,
    #[command(flatten)]
    connect: ConnectArgs,
}

#[derive(Args, Debug)]
struct TranscodeArgs {
    /// Annex B .h264 input.
    input: PathBuf,
    /// Output .h264 or .mp4.
    #[arg(short, long, value_name = "OUT")]
    output: PathBuf,
    /// Output size WxH (default: the input's).
    #[arg(long, value_parser = parse_size, value_name = "WxH")]
    size: Option<(u32, u32)>,
    /// Target bitrate.
    #[arg(long, value_parser = parse_bitrate)]
    bitrate: Option<u32>,
    /// Keyframe interval in frames.
    #[arg(long, value_name = "N")]
    keyint: Option<u32>,
    /// Input frame rate.
    #[arg(long, value_parser = parse_fps, default_value = "30")]
    fps: f64,
    #[command(flatten)]
    connect: ConnectArgs,
}

/// `framecast remote`.
pub fn run(a: RemoteArgs) -> Result<(), Failure> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .code(exit::ENCODER)?;
    match a.command {
        RemoteCommand::Serve(s) => rt.block_on(serve(s)),
        RemoteCommand::Encode(e) => rt.block_on(encode(e)),
        RemoteCommand::Decode(d) => rt.block_on(decode(d)),
        RemoteCommand::Transcode(t) => rt.block_on(transcode(t)),
    }
}

fn secs(v: f64, what: &str) -> Result<Duration, Failure> {
    if !(v.is_finite() && v > 0.0 && v <= 86_400.0) {
        return Err(anyhow!("{what} {v}: must be between 0 and 86400 seconds")).code(exit::USAGE);
    }
    Ok(Duration::from_secs_f64(v))
}

async fn serve(a: ServeArgs) -> Result<(), Failure> {
    let config = ServerConfig {
        listen: a.listen,
        token: a.token.load()?,
        max_sessions: a.max_sessions,
        handshake_timeout: secs(a.handshake_timeout, "--handshake-timeout")?,
        idle_timeout: secs(a.idle_timeout, "--idle-timeout")?,
        write_timeout: secs(a.write_timeout, "--write-timeout")?,
        max_message_bytes: a.max_message_bytes,
        backend: a.backend,
        ..ServerConfig::default()
    };
    let server = Server::bind(config).await.map_err(|e| {
        let code = match e {
            ServerError::Config(_) => exit::USAGE,
            _ => exit::OUTPUT,
        };
        Failure {
            error: e.into(),
            code,
        }
    })?;
    eprintln!(
        "framecast remote: VTR1 server on {} (capabilities: {})",
        server.local_addr(),
        server.capabilities().capabilities.join(", ")
    );
    server.run().await.code(exit::ENCODER)
}

/// Exit code for a client-side failure.
fn remote_code(e: &RemoteError) -> u8 {
    match e {
        RemoteError::Unsupported(_) => exit::USAGE,
        _ => exit::ENCODER,
    }
}

fn remote_fail(e: RemoteError, server: &str) -> Failure {
    let code = remote_code(&e);
    Failure {
        error: anyhow::Error::new(e).context(format!("remote server {server}")),
        code,
    }
}

/// The servers of `--server` and how to greet them.
struct Pool {
    servers: ServerPool,
    opts: ClientOptions,
    /// All of them, for error messages.
    all: String,
}

/// A session on the first server of `--server` that takes it: `configure` builds CONFIGURE
/// from that server's HELLO_ACK. Returns the session (`server` names the address that took
/// it, for later error messages) and the pool (to resume an encode session elsewhere).
async fn establish(
    c: &ConnectArgs,
    configure: impl Fn(&HelloAck) -> Configure,
) -> Result<(Established, Pool), Failure> {
    let opts = ClientOptions {
        token: c.token.load()?.unwrap_or_default(),
        timeout: secs(c.timeout, "--timeout")?,
        ..ClientOptions::default()
    };
    let all = c.server.join(",");
    let failover = Failover {
        rounds: c.rounds,
        ..Failover::default()
    };
    let servers =
        ServerPool::new(c.server.iter().cloned(), failover).map_err(|e| remote_fail(e, &all))?;
    let e = servers
        .establish(&opts, configure)
        .await
        .map_err(|e| remote_fail(e, &all))?;
    report_passed_over(&e.passed_over);
    Ok((e, Pool { servers, opts, all }))
}

fn report_passed_over(passed_over: &[ServerAttempt]) {
    for skipped in passed_over {
        eprintln!(
            "framecast remote: passed over {}: {}",
            skipped.server, skipped.error
        );
    }
}

fn summary(what: &str, frames: u64, bytes: u64, out: &Path, s: &StreamStats) {
    let secs = s.seconds.max(1e-9);
    println!(
        "remote {what}: {frames} frames in {:.2} s ({:.1} fps), wrote {bytes} bytes to {}; wire {:.1} Mb/s up, {:.1} Mb/s down",
        s.seconds,
        frames as f64 / secs,
        display_path(out).display(),
        s.bytes_sent as f64 * 8.0 / secs / 1e6,
        s.bytes_received as f64 * 8.0 / secs / 1e6,
    );
}

/// Writes remote PACKETs to .h264/.mp4 through the CLI's writer.
struct PacketSink {
    writer: PacketWriter,
    container: Container,
    avcc: Option<Vec<u8>>,
    /// The first SPS/PPS seen in band (Annex B).
    parameter_sets: Option<Vec<u8>>,
    tb: (u32, u32),
    frames: u64,
}

impl PacketSink {
    /// A sink writing `output` (`w x h`, timebase 1/fps) that starts from the avcC the server
    /// returned in CONFIGURE_ACK, if any.
    fn create(
        output: &Path,
        container: Container,
        (w, h): (u32, u32),
        fps: (u32, u32),
        ack_extradata: &[u8],
    ) -> Result<Self, Failure> {
        let writer = PacketWriter::create(output, container, w, h, ColorSpace::default())
            .code(exit::OUTPUT)?;
        Ok(PacketSink {
            writer,
            container,
            avcc: (!ack_extradata.is_empty()).then(|| ack_extradata.to_vec()),
            parameter_sets: None,
            tb: (fps.1, fps.0),
            frames: 0,
        })
    }

    /// What the server sent is wrong: exit 5; the file cannot be written: exit 4.
    fn write(&mut self, p: PacketMsg) -> Result<(), Failure> {
        // SPS/PPS come with keyframes: other packets are not scanned for them (once the avcC
        // is known, in case a server does not flag its keyframes).
        let params = (p.is_keyframe() || self.avcc.is_none())
            .then(|| framecast_remote::annexb::parameter_sets(&p.data))
            .flatten();
        if let Some((sps_pps, _)) = params {
            if self.avcc.is_none() {
                let nals: Vec<&[u8]> = framecast_h264::nal::annexb_nals(&sps_pps).collect();
                self.avcc =
                    framecast_h264::avcc::AvcDecoderConfig::from_parameter_sets(nals[0], nals[1])
                        .ok()
                        .map(|r| r.to_bytes());
            }
            // An .mp4 track has one SPS/PPS; a stream resumed on a server whose encoder
            // differs may bring others. Annex B carries them in band, so .h264 is fine.
            match &self.parameter_sets {
                None => self.parameter_sets = Some(sps_pps),
                Some(first) if *first != sps_pps && self.container == Container::Mp4 => {
                    return Err(anyhow!(
                        "packet {}: the server's SPS/PPS changed mid-stream (a session resumed on \
                         a different encoder?); an .mp4 track takes one set: write .h264 instead",
                        self.frames
                    ))
                    .code(exit::ENCODER);
                }
                Some(_) => {}
            }
        }
        let ns = |t: i64| -> i64 {
            (t as i128 * 1_000_000_000 * self.tb.0 as i128 / self.tb.1.max(1) as i128) as i64
        };
        let (data, format) = match self.container {
            Container::H264 => (p.data.clone(), OutputFormat::AnnexB),
            Container::Mp4 => {
                if self.avcc.is_none() {
                    return Err(anyhow!(
                        "the server sent no SPS/PPS (neither in CONFIGURE_ACK nor in the first \
                         packet), which .mp4 needs; write .h264 instead"
                    ))
                    .code(exit::ENCODER);
                }
                let avcc = framecast_h264::nal::annexb_to_avcc(&p.data, 4)
                    .with_context(|| {
                        format!("packet {} from the server is not Annex B", self.frames)
                    })
                    .code(exit::ENCODER)?;
                (Bytes::from(avcc), OutputFormat::Avcc)
            }
        };
        let packet = EncodedPacket {
            data,
            format,
            pts_ns: ns(p.pts),
            dts_ns: ns(p.dts),
            duration_ns: ns(p.duration.max(1)),
            keyframe: p.is_keyframe(),
            recovery_from: None,
            token: self.frames,
            frame_index: self.frames,
            codec: Arc::from(""),
            timings: PacketTimings::default(),
        };
        let avcc = self.avcc.clone();
        self.writer.write(&packet, || avcc).code(exit::OUTPUT)?;
        self.frames += 1;
        Ok(())
    }

    /// Commit the file; a stream that produced no packet is an error (nothing is written).
    fn finish(self) -> Result<u64, Failure> {
        if self.frames == 0 {
            return Err(RemoteError::NoOutput("packets")).code(exit::ENCODER);
        }
        self.writer.finish().code(exit::OUTPUT)
    }
}

/// A failed stream: a sink's failure carries its own code (4 for the file, 5 for what the
/// server sent), the rest is the server's or the connection's.
fn stream_fail(e: RunError<Failure>, server: &str) -> Failure {
    match e {
        RunError::Output(f) => f,
        RunError::Remote(e) => remote_fail(e, server),
    }
}

/// One input frame as a FRAME message: BGRA goes as is (when the server takes it), anything
/// else is converted to NV12 here.
struct FrameEncoder {
    bgra: bool,
    planes: FramePlanes,
}

impl FrameEncoder {
    fn message(&mut self, f: &framecast_io::OwnedFrame, pts: i64) -> anyhow::Result<Message> {
        let frame = f.as_frame();
        let planes = if self.bgra {
            self.planes.bgra(&frame)?
        } else {
            self.planes.nv12(&frame, ColorSpace::default())?
        };
        Ok(Message::Frame(FrameMsg {
            pts,
            duration: 1,
            flags: 0,
            planes,
            side_data: vec![],
        }))
    }
}

async fn encode(a: EncodeArgs) -> Result<(), Failure> {
    let container = Container::from_path(&a.output).code(exit::USAGE)?;
    let mut source = a.source.open()?;
    let (w, h) = (source.width(), source.height());
    let fps = a
        .source
        .fps
        .map(fps_ratio)
        .or_else(|| source.fps())
        .unwrap_or((30, 1));
    let total = match (a.source.frame_limit(), source.frame_count_hint()) {
        (Some(n), Some(m)) => Some(n.min(m)),
        (n, m) => n.or(m),
    };
    let first = source.next_frame().code(exit::INPUT)?;
    let src_bgra = first
        .as_ref()
        .is_some_and(|f| f.format() == PixelFormat::Bgra8);
    let compression = a.connect.compression.wire_value().to_string();
    let (established, pool) = establish(&a.connect, |hello| {
        let pix = if src_bgra && hello.has("pixfmt.bgra") {
            pix_fmt::BGRA
        } else {
            pix_fmt::NV12
        };
        let mut cfg = configure_msg("encode", (w, h), pix, fps, Bytes::new());
        cfg.set_option("wire_compression", compression.clone());
        if let Some(b) = a.bitrate {
            cfg.set_option("bitrate", b.to_string());
        }
        if let Some(k) = a.keyint {
            cfg.set_option("gop", k.to_string());
        }
        // framecast converts with BT.709 limited range; say so.
        for key in ["colorspace", "color_primaries", "color_trc", "color_range"] {
            cfg.set_option(key, "1");
        }
        cfg
    })
    .await?;
    // What the chosen server was asked for (a server that takes the session up after a
    // failure is asked for the same).
    let bgra = established.configure.pix_fmt == pix_fmt::BGRA;
    let mut sink = PacketSink::create(
        &a.output,
        container,
        (w, h),
        fps,
        &established.ack.extradata,
    )?;

    let window = a.connect.window.max(1);
    let (tx, rx) = mpsc::channel::<Message>(window);
    let mut fe = FrameEncoder {
        bgra,
        planes: FramePlanes::new(a.connect.compression),
    };
    let limit = a.source.frame_limit();
    // Reading, conversion and compression on their own thread: they overlap the network.
    let producer = std::thread::spawn(move || -> anyhow::Result<u64> {
        let mut next = first;
        let mut n = 0u64;
        while let Some(f) = next {
            if limit.is_some_and(|l| n >= l) {
                break;
            }
            let m = fe.message(&f, n as i64)?;
            if tx.blocking_send(m).is_err() {
                break;
            }
            n += 1;
            next = source.next_frame()?;
        }
        Ok(n)
    });
    let bar = frame_progress(total, !a.connect.quiet);
    let mut current = established.server.clone();
    let result = pool
        .servers
        .run_encode(
            &pool.opts,
            established,
            rx,
            window,
            |m| {
                if let Message::Packet(p) = m {
                    sink.write(p)?;
                    bar.inc(1);
                }
                Ok(())
            },
            |r| {
                bar.suspend(|| {
                    report_passed_over(&r.passed_over);
                    eprintln!("framecast remote: {r}");
                });
                current = r.server.clone();
            },
        )
        .await;
    bar.finish_and_clear();
    let produced = producer
        .join()
        .map_err(|_| anyhow!("the frame reader panicked"))
        .code(exit::INPUT)?;
    let stats = result.map_err(|e| match e {
        RunError::Remote(e @ RemoteError::Lost { .. }) => remote_fail(e, &pool.all),
        e => stream_fail(e, &current),
    })?;
    produced.code(exit::INPUT)?;
    let frames = sink.frames;
    let bytes = sink.finish()?;
    summary("encode", frames, bytes, &a.output, &stats);
    Ok(())
}

/// Access units, Annex B SPS/PPS extradata and display size of an .h264 file.
type H264Input = (Vec<Vec<u8>>, Vec<u8>, (u32, u32));

fn read_h264(path: &Path) -> Result<H264Input, Failure> {
    let data = std::fs::read(path)
        .with_context(|| format!("cannot read {}", display_path(path).display()))
        .code(exit::INPUT)?;
    let aus = framecast_remote::annexb::access_units(&data);
    let (extradata, size) = aus
        .first()
        .and_then(|au| framecast_remote::annexb::parameter_sets(au))
        .ok_or_else(|| {
            anyhow!(
                "{}: no H.264 access unit with SPS and PPS at the start (is it an Annex B .h264 file?)",
                display_path(path).display()
            )
        })
        .code(exit::INPUT)?;
    Ok((aus, extradata, size))
}

fn packets_channel(aus: Vec<Vec<u8>>, window: usize) -> mpsc::Receiver<Message> {
    let (tx, rx) = mpsc::channel(window.max(1));
    tokio::spawn(async move {
        for (i, au) in aus.into_iter().enumerate() {
            let idr = framecast_remote::annexb::is_idr(&au);
            let m = Message::Packet(PacketMsg {
                pts: i as i64,
                dts: i as i64,
                duration: 1,
                flags: if idr { FLAG_KEYFRAME } else { 0 },
                data: Bytes::from(au),
                side_data: vec![],
            });
            if tx.send(m).await.is_err() {
                break;
            }
        }
    });
    rx
}

/// Writes the decoded NV12 FRAMEs of a remote decode to .y4m.
struct Y4mSink {
    writer: Y4mWriter,
    compression: Compression,
    /// The picture size (from the stream's SPS): FRAME rows are whole strides.
    width: u32,
}

impl Y4mSink {
    /// What the server sent is wrong: exit 5; the file cannot be written: exit 4.
    fn write(&mut self, f: FrameMsg) -> Result<(), Failure> {
        if f.planes.len() != 2 {
            return Err(anyhow!(
                "the server sent a FRAME with {} planes, expected 2 (NV12)",
                f.planes.len()
            ))
            .code(exit::ENCODER);
        }
        let (y, uv) = (&f.planes[0], &f.planes[1]);
        let (ys, h) = (y.stride as usize, y.height as usize);
        let (uvs, ch) = (uv.stride as usize, uv.height as usize);
        let planes = decompress_plane(self.compression, 0, &y.data, ys * h).and_then(|yb| {
            Ok((
                yb,
                decompress_plane(self.compression, 1, &uv.data, uvs * ch)?,
            ))
        });
        let (yb, uvb) = planes
            .context("the server sent a FRAME whose planes do not decompress")
            .code(exit::ENCODER)?;
        let frame = Frame::nv12(&yb, ys, &uvb, uvs, self.width, h as u32)
            .context("the server sent a FRAME that is not a valid NV12 picture")
            .code(exit::ENCODER)?;
        self.writer
            .write(&frame, ColorSpace::default())
            .code(exit::OUTPUT)?;
        Ok(())
    }
}

/// CONFIGURE for `mode` at `w x h`, time base 1/fps (the caller adds the other options).
fn configure_msg(
    mode: &str,
    (w, h): (u32, u32),
    pix: u8,
    fps: (u32, u32),
    extradata: Bytes,
) -> Configure {
    let mut cfg = Configure {
        width: w,
        height: h,
        pix_fmt: pix,
        tb_num: fps.1,
        tb_den: fps.0,
        fr_num: fps.0,
        fr_den: fps.1,
        extradata,
        ..Configure::default()
    };
    cfg.set_option("mode", mode);
    cfg
}

async fn decode(a: DecodeArgs) -> Result<(), Failure> {
    if a.output.extension().and_then(|e| e.to_str()) != Some("y4m") {
        return Err(anyhow!(
            "output {}: use a .y4m file",
            display_path(&a.output).display()
        ))
        .code(exit::USAGE);
    }
    let (aus, extradata, (w, h)) = read_h264(&a.input)?;
    let fps = fps_ratio(a.fps);
    let compression = a.connect.compression.wire_value().to_string();
    let extradata = Bytes::from(extradata);
    let (Established { client, server, .. }, _) = establish(&a.connect, |_| {
        let mut cfg = configure_msg("decode", (w, h), pix_fmt::NV12, fps, extradata.clone());
        cfg.set_option("wire_compression", compression.clone());
        cfg
    })
    .await?;
    let mut sink = Y4mSink {
        writer: Y4mWriter::create(&a.output, fps).code(exit::OUTPUT)?,
        compression: a.connect.compression,
        width: w,
    };
    let bar = frame_progress(Some(aus.len() as u64), !a.connect.quiet);
    let rx = packets_channel(aus, a.connect.window);
    let result = run_stream(client, rx, a.connect.window, Credit::Unlimited, |m| {
        if let Message::Frame(f) = m {
            sink.write(f)?;
            bar.inc(1);
        }
        Ok(())
    })
    .await;
    bar.finish_and_clear();
    let stats = result.map_err(|e| stream_fail(e, &server))?;
    let frames = sink.writer.frames();
    if frames == 0 {
        return Err(RemoteError::NoOutput("frames")).code(exit::ENCODER);
    }
    let bytes = sink.writer.finish().code(exit::OUTPUT)?;
    summary("decode", frames, bytes, &a.output, &stats);
    Ok(())
}

async fn transcode(a: TranscodeArgs) -> Result<(), Failure> {
    let container = Container::from_path(&a.output).code(exit::USAGE)?;
    let (aus, extradata, (w, h)) = read_h264(&a.input)?;
    let fps = fps_ratio(a.fps);
    let (ow, oh) = a.size.unwrap_or((w, h));
    let extradata = Bytes::from(extradata);
    let (
        Established {
            client,
            ack,
            server,
            ..
        },
        _,
    ) = establish(&a.connect, |hello| {
        let mut cfg = configure_msg("transcode", (w, h), pix_fmt::NV12, fps, extradata.clone());
        if a.size.is_some() {
            cfg.set_option("out_width", ow.to_string());
            cfg.set_option("out_height", oh.to_string());
        }
        if let Some(b) = a.bitrate {
            cfg.set_option("bitrate", b.to_string());
        }
        if let Some(k) = a.keyint {
            cfg.set_option("gop", k.to_string());
        }
        if hello.has("packet_ack.v1") {
            cfg.set_option("packet_ack.v1", "1");
        }
        cfg
    })
    .await?;
    let ack_credit = client.hello_ack().has("packet_ack.v1");
    let mut sink = PacketSink::create(&a.output, container, (ow, oh), fps, &ack.extradata)?;
    let bar = frame_progress(Some(aus.len() as u64), !a.connect.quiet);
    let rx = packets_channel(aus, a.connect.window);
    let credit = if ack_credit {
        Credit::PacketAck
    } else {
        Credit::Unlimited
    };
    let result = run_stream(client, rx, a.connect.window, credit, |m| {
        if let Message::Packet(p) = m {
            sink.write(p)?;
            bar.inc(1);
        }
        Ok(())
    })
    .await;
    bar.finish_and_clear();
    let stats = result.map_err(|e| stream_fail(e, &server))?;
    let frames = sink.frames;
    let bytes = sink.finish()?;
    summary("transcode", frames, bytes, &a.output, &stats);
    Ok(())
}
