//! `framecast demo` and `framecast serve`: live streaming to browsers (framecast-stream).
//!
//! `demo` serves animated scenes (test card, moving bands, gradient, plasma and a paint scene
//! that draws where the pointer is) at http://127.0.0.1:8765; the page can switch scene,
//! backend, transport and bitrate live through `POST /control`. `demo -o FILE` still writes
//! the scene to a file, as before the server existed.
//!
//! `serve` streams a y4m/raw file (or stdin) or a built-in pattern.

use crate::args::{parse_bitrate, parse_fps, parse_size};
use crate::{exit, Failure, WithCode};
use anyhow::anyhow;
use clap::Args;
use framecast_core::PixelFormat;
use framecast_io::{open_input, render_into, FrameSource, InputHint, PatternKind};
use framecast_stream::protocol::ViewerEvent;
use framecast_stream::{BlockingDisplay, ServerConfig, StreamConfig, TransportPolicy};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options shared by `demo` and `serve`.
#[derive(Args, Debug, Clone)]
pub struct LiveArgs {
    /// Address to listen on (loopback by default; use 0.0.0.0:PORT to expose it).
    #[arg(long, default_value = framecast_stream::DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Frame size, e.g. 1280x720 or 1080p.
    #[arg(long, value_parser = parse_size)]
    size: Option<(u32, u32)>,
    /// Frames per second published (with --no-adaptive also the GOP: one keyframe a second).
    #[arg(long, value_parser = parse_fps, default_value = "30")]
    fps: f64,
    /// H.264 bitrate, e.g. 8M or 2500k (default: scaled from 8 Mb/s at 1080p30).
    #[arg(long, value_parser = parse_bitrate)]
    bitrate: Option<u32>,
    /// Encoder backend (see `framecast doctor`).
    #[arg(long)]
    backend: Option<String>,
    /// Transport: video (H.264 via WebCodecs), image (JPEG) or auto (video when the browser can).
    #[arg(long, default_value = "auto")]
    transport: TransportPolicy,
    /// Viewers must present this token (?token=, Authorization: Bearer, or hello.token).
    #[command(flatten)]
    token: crate::args::TokenArgs,
    /// Allow WebSocket connections from this page origin (repeatable; `*` allows any).
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origin: Vec<String>,
    /// Open the viewer in a browser (xdg-open / open).
    #[arg(long)]
    open: bool,
    /// Push `stats` (RTT, fps, bitrate, encode ms, drops) to viewers every this many seconds; 0 = never.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    stats_interval: f64,
    /// Send the resting frame once more, losslessly, after this many seconds without a change.
    #[arg(long, value_name = "SECONDS")]
    still_after: Option<f64>,
    /// Turn congestion control off: every viewer gets --bitrate and --fps whatever its link
    /// (by default each viewer's link sets its rate, frame rate and in-flight window, and a
    /// viewer on a much slower link gets a lower encoder tier of its own).
    #[arg(long)]
    no_adaptive: bool,
    #[command(flatten)]
    tuning: crate::args::TuningArgs,
    /// Convert frames to NV12 on the GPU (wgpu) and read back only NV12, without blocking the
    /// frame loop; `demo` adds a `gpu` scene rendered there by a WGSL shader. Needs a build
    /// with `--features gpu` and an adapter; without either, says so once and uses the CPU.
    #[arg(long)]
    gpu: bool,
    #[command(flatten)]
    fanout: crate::fanout::FanoutArgs,
}

/// Arguments of `framecast demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Scene: testcard, bands, gradient, plasma or paint (switchable live from the page).
    #[arg(long)]
    scene: Option<String>,
    /// Write the scene to this file (.mp4/.h264) instead of serving it live.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// With --output: seconds of video.
    #[arg(long, default_value_t = 10, requires = "output")]
    seconds: u64,
    #[command(flatten)]
    live: LiveArgs,
}

/// Arguments of `framecast serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Input file (.y4m, raw .rgba/.bgra/.rgb/.nv12/.yuv with --size/--format), or - for stdin.
    #[arg(required_unless_present = "pattern", conflicts_with = "pattern")]
    input: Option<PathBuf>,
    /// Stream a built-in pattern instead: testcard, bands, gradient, plasma.
    #[arg(long, value_name = "NAME")]
    pattern: Option<String>,
    /// Pixel format of a raw input: rgba, bgra, rgb24, nv12, i420.
    #[arg(long, value_name = "FMT", value_parser = crate::args::parse_format)]
    format: Option<PixelFormat>,
    /// Stream name: the viewer is at /NAME (default: /).
    #[arg(long)]
    name: Option<String>,
    /// Start the file again at its end.
    #[arg(long = "loop")]
    looping: bool,
    #[command(flatten)]
    live: LiveArgs,
}

const SCENES: [&str; 5] = ["testcard", "bands", "gradient", "plasma", "paint"];
/// The scene rendered on the GPU (`demo --gpu`).
const GPU_SCENE: &str = "gpu";

/// What the demo draws.
#[derive(Debug, Clone, Copy)]
enum Scene {
    Pattern(PatternKind),
    Paint,
    Gpu,
}

fn configs(
    a: &LiveArgs,
    (w, h): (u32, u32),
    control: bool,
) -> Result<(ServerConfig, StreamConfig), Failure> {
    let mut stream = StreamConfig::new(w, h);
    stream.fps = a.fps;
    stream.bitrate = a
        .bitrate
        .unwrap_or_else(|| framecast_encode::default_bitrate(w, h, a.fps));
    if let Some(b) = &a.backend {
        let found = framecast_encode::registry::find(b).code(exit::ENCODER)?;
        stream.backend = found.name.to_owned();
    }
    stream.transports = a.transport;
    stream.token = a.token.load()?;
    stream.stats_interval = (a.stats_interval > 0.0 && a.stats_interval.is_finite())
        .then(|| Duration::from_secs_f64(a.stats_interval));
    stream.still_after = a.still_after.map(Duration::from_secs_f64);
    stream.adaptive = !a.no_adaptive;
    a.tuning.check(&stream.backend)?;
    stream.encoder_preset = a.tuning.preset.clone();
    stream.intra_refresh = a.tuning.intra_refresh;
    let server = ServerConfig {
        listen: a.listen,
        allowed_origins: a.allow_origin.clone(),
        remote_control: control,
        ..ServerConfig::default()
    };
    Ok((server, stream))
}

/// The server (a [`BlockingDisplay`] on its own runtime) plus a Ctrl-C flag.
struct Live {
    display: BlockingDisplay,
    stop: Arc<AtomicBool>,
    fanout: Option<crate::fanout::Fanout>,
}

impl Live {
    fn start(
        server: ServerConfig,
        stream: StreamConfig,
        name: Option<&str>,
        live: &LiveArgs,
    ) -> Result<Live, Failure> {
        let display = BlockingDisplay::serve_named(server, name, stream).code(exit::OUTPUT)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = display
            .handle()
            .ok_or_else(|| anyhow!("the server's runtime is gone"))
            .code(exit::OUTPUT)?;
        handle.spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                flag.store(true, Ordering::SeqCst);
            }
        });
        let url = display.url();
        println!("Serving at {url}  (Ctrl-C to stop)");
        let fanout = crate::fanout::Fanout::start(&live.fanout, display.display(), handle)?;
        let open = live.open;
        if open {
            let opener = if cfg!(target_os = "macos") {
                "open"
            } else {
                "xdg-open"
            };
            if let Err(e) = std::process::Command::new(opener).arg(&url).spawn() {
                eprintln!("warning: could not run {opener}: {e}");
            }
        }
        Ok(Live {
            display,
            stop,
            fanout: Some(fanout),
        })
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn finish(mut self) {
        println!("Shutting down.");
        if let Some(f) = self.fanout.take() {
            f.finish();
        }
        self.display.close();
    }
}

/// Sleep until the next frame time; returns false when Ctrl-C was pressed.
fn pace(live: &Live, next: &mut Instant, period: Duration) -> bool {
    *next += period;
    let now = Instant::now();
    if *next > now {
        std::thread::sleep(*next - now);
    } else if now - *next > period * 4 {
        *next = now; // fell behind: do not try to catch up
    }
    !live.stopped()
}

/// The paint scene: strokes where a button is held, a ring where the pointer is.
struct Paint {
    w: u32,
    h: u32,
    canvas: Vec<u8>,
    pointer: Option<(f64, f64)>,
    last: Option<(f64, f64)>,
    hue: f64,
}

impl Paint {
    fn new(w: u32, h: u32) -> Self {
        let mut p = Paint {
            w,
            h,
            canvas: vec![0; (w * h * 4) as usize],
            pointer: None,
            last: None,
            hue: 0.0,
        };
        p.clear();
        p
    }

    fn clear(&mut self) {
        for px in self.canvas.chunks_exact_mut(4) {
            px.copy_from_slice(&[24, 26, 32, 255]);
        }
    }

    /// A filled disc (or a 2-pixel ring) of radius `r` at `at`, clipped to `size`.
    fn dot(buf: &mut [u8], size: (u32, u32), at: (f64, f64), r: f64, rgb: [u8; 3], ring: bool) {
        let ((w, h), (x, y)) = (size, at);
        let (x0, x1) = (
            (x - r).floor().max(0.0) as i64,
            (x + r).ceil().min(w as f64 - 1.0) as i64,
        );
        let (y0, y1) = (
            (y - r).floor().max(0.0) as i64,
            (y + r).ceil().min(h as f64 - 1.0) as i64,
        );
        for py in y0..=y1 {
            for px in x0..=x1 {
                let d = ((px as f64 - x).powi(2) + (py as f64 - y).powi(2)).sqrt();
                if d <= r && (!ring || d >= r - 2.0) {
                    let i = ((py as u32 * w + px as u32) * 4) as usize;
                    buf[i..i + 3].copy_from_slice(&rgb);
                }
            }
        }
    }

    fn colour(&self) -> [u8; 3] {
        let h = self.hue / 60.0;
        let x = (1.0 - (h % 2.0 - 1.0).abs()) * 255.0;
        let (r, g, b) = match h as u32 {
            0 => (255.0, x, 0.0),
            1 => (x, 255.0, 0.0),
            2 => (0.0, 255.0, x),
            3 => (0.0, x, 255.0),
            4 => (x, 0.0, 255.0),
            _ => (255.0, 0.0, x),
        };
        [r as u8, g as u8, b as u8]
    }

    fn stroke(&mut self, x: f64, y: f64) {
        let from = self.last.unwrap_or((x, y));
        let steps = ((x - from.0).hypot(y - from.1) / 2.0).ceil().max(1.0) as u32;
        let c = self.colour();
        for i in 0..=steps {
            let t = i as f64 / steps as f64;
            let (px, py) = (from.0 + (x - from.0) * t, from.1 + (y - from.1) * t);
            Self::dot(&mut self.canvas, (self.w, self.h), (px, py), 8.0, c, false);
        }
        self.last = Some((x, y));
        self.hue = (self.hue + 1.5) % 360.0;
    }

    fn handle(&mut self, e: &ViewerEvent) {
        match e {
            ViewerEvent::PointerDown(p) => {
                self.last = None;
                self.pointer = Some((p.x, p.y));
                self.stroke(p.x, p.y);
            }
            ViewerEvent::PointerMove(p) => {
                self.pointer = p.inside.then_some((p.x, p.y));
                if p.buttons.is_empty() {
                    self.last = None;
                } else {
                    self.stroke(p.x, p.y);
                }
            }
            ViewerEvent::PointerUp(_) => self.last = None,
            ViewerEvent::KeyDown(k) if k.key == "c" || k.key == "C" => self.clear(),
            _ => {}
        }
    }

    fn render(&self, out: &mut [u8]) {
        out.copy_from_slice(&self.canvas);
        if let Some((x, y)) = self.pointer {
            Self::dot(out, (self.w, self.h), (x, y), 12.0, [255, 255, 255], true);
        }
    }
}

fn scene_kind(name: &str, gpu: bool) -> Result<Scene, String> {
    if name.eq_ignore_ascii_case("paint") {
        return Ok(Scene::Paint);
    }
    if name.eq_ignore_ascii_case(GPU_SCENE) {
        return if gpu {
            Ok(Scene::Gpu)
        } else {
            Err("the gpu scene needs --gpu, a build with --features gpu and a GPU adapter".into())
        };
    }
    name.parse::<PatternKind>()
        .map(Scene::Pattern)
        .map_err(|_| format!("unknown scene {name:?}: use {}", SCENES.join(", ")))
}

/// `framecast demo`.
pub fn demo(a: DemoArgs) -> Result<(), Failure> {
    if let Some(output) = &a.output {
        return demo_to_file(
            output,
            a.scene.as_deref().unwrap_or("plasma"),
            a.seconds,
            a.live.gpu,
        );
    }
    let (w, h) = a.live.size.unwrap_or((1280, 720));
    let (server, stream) = configs(&a.live, (w, h), true)?;
    let live = Live::start(server, stream, None, &a.live)?;
    let d = live.display.display().clone();
    let mut gpu = crate::gpu_live::open_if(a.live.gpu, &d, w, h);
    let default = if gpu.is_some() { GPU_SCENE } else { "testcard" };
    let mut scene = a.scene.clone().unwrap_or_else(|| default.into());
    let mut kind = scene_kind(&scene, gpu.is_some())
        .map_err(|e| anyhow!(e))
        .code(exit::USAGE)?;
    let scenes: Vec<&str> = gpu
        .as_ref()
        .map(|_| GPU_SCENE)
        .into_iter()
        .chain(SCENES)
        .collect();
    let state = |scene: &str| serde_json::json!({"scene": scene, "scenes": scenes});
    d.set_app_state(state(&scene));
    let mut paint = Paint::new(w, h);
    let period = Duration::from_secs_f64(1.0 / a.live.fps);
    let mut next = Instant::now();
    let mut frame = 0u64;
    loop {
        for req in d.poll_control() {
            if let Some(s) = req.get("scene").and_then(|s| s.as_str()) {
                match scene_kind(s, gpu.is_some()) {
                    Ok(k) => {
                        kind = k;
                        scene = s.to_ascii_lowercase();
                        d.set_app_state(state(&scene));
                        tracing::info!(%scene, "scene switched");
                    }
                    Err(e) => tracing::warn!("{e}"),
                }
            }
        }
        for e in d.poll_events() {
            paint.handle(&e.event);
        }
        let r = match (kind, gpu.as_mut()) {
            (Scene::Gpu, Some(g)) => g.publish_scene(&d, frame),
            _ => d.publish_with(PixelFormat::Rgba8, w, h, |rgba| match kind {
                Scene::Pattern(k) => {
                    let _ = render_into(k, frame, w, h, rgba);
                }
                Scene::Paint | Scene::Gpu => paint.render(rgba),
            }),
        };
        if let Err(e) = r {
            tracing::warn!(error = %e, "publish failed");
            break;
        }
        frame += 1;
        if !pace(&live, &mut next, period) {
            break;
        }
    }
    if let Some(g) = gpu {
        g.finish();
    }
    live.finish();
    Ok(())
}

fn demo_to_file(
    output: &std::path::Path,
    scene: &str,
    seconds: u64,
    gpu: bool,
) -> Result<(), Failure> {
    use clap::{Args as _, FromArgMatches};
    let cmd = crate::encode::DemoArgs::augment_args(clap::Command::new("demo"));
    let out = output.to_string_lossy().into_owned();
    let secs = seconds.to_string();
    let mut argv = vec![
        "demo",
        "--output",
        &out,
        "--scene",
        scene,
        "--seconds",
        &secs,
    ];
    if gpu {
        argv.push("--gpu");
    }
    let m = cmd
        .try_get_matches_from(argv)
        .map_err(|e| anyhow!("{e}"))
        .code(exit::USAGE)?;
    let args = crate::encode::DemoArgs::from_arg_matches(&m)
        .map_err(|e| anyhow!("{e}"))
        .code(exit::USAGE)?;
    crate::encode::demo(args)
}

/// `framecast serve`.
pub fn serve(a: ServeArgs) -> Result<(), Failure> {
    if let Some(name) = &a.pattern {
        let kind: PatternKind = name.parse().code(exit::USAGE)?;
        let (w, h) = a.live.size.unwrap_or((1280, 720));
        let (server, stream) = configs(&a.live, (w, h), false)?;
        let live = Live::start(server, stream, a.name.as_deref(), &a.live)?;
        let d = live.display.display().clone();
        let mut gpu = crate::gpu_live::open_if(a.live.gpu, &d, w, h);
        let period = Duration::from_secs_f64(1.0 / a.live.fps);
        let mut next = Instant::now();
        let mut rgba = vec![0u8; w as usize * h as usize * 4];
        for frame in 0u64.. {
            let r = match gpu.as_mut() {
                Some(g) => {
                    let _ = render_into(kind, frame, w, h, &mut rgba);
                    let f = framecast_core::Frame::rgba8(&rgba, w, h, w as usize * 4)
                        .expect("sized for the frame");
                    g.publish_host(&d, &f).map(|_| ())
                }
                None => live.display.publish_with(PixelFormat::Rgba8, w, h, |rgba| {
                    let _ = render_into(kind, frame, w, h, rgba);
                }),
            };
            if let Err(e) = r {
                tracing::warn!(error = %e, "publish failed");
                break;
            }
            if !pace(&live, &mut next, period) {
                break;
            }
        }
        if let Some(g) = gpu {
            g.finish();
        }
        live.finish();
        return Ok(());
    }
    let path = a.input.clone().expect("clap requires INPUT or --pattern");
    let format = a.format;
    let fps_hint = Some(crate::args::fps_ratio(a.live.fps));
    let hint = InputHint {
        format,
        size: a.live.size,
        fps: fps_hint,
    };
    let open = || open_input(&path, hint).code(exit::INPUT);
    let mut source: Box<dyn FrameSource> = open()?;
    let (w, h) = (source.width(), source.height());
    let fps = source
        .fps()
        .map(|(n, d)| n as f64 / d.max(1) as f64)
        .filter(|f| *f > 0.0)
        .unwrap_or(a.live.fps);
    let mut live_args = a.live.clone();
    live_args.fps = fps;
    let (server, stream) = configs(&live_args, (w, h), false)?;
    let live = Live::start(server, stream, a.name.as_deref(), &a.live)?;
    let d = live.display.display().clone();
    let mut gpu = crate::gpu_live::open_if(a.live.gpu, &d, w, h);
    let period = Duration::from_secs_f64(1.0 / fps);
    let mut next = Instant::now();
    let mut frames = 0u64;
    let result = loop {
        match source.next_frame() {
            Ok(Some(frame)) => {
                frames += 1;
                // RGBA frames go through the GPU with --gpu; other formats (y4m's I420,
                // NV12) are YUV already or convert on the CPU.
                let on_gpu = match gpu.as_mut() {
                    Some(g) => g.publish_host(&d, &frame.as_frame()),
                    None => Ok(false),
                };
                let r = match on_gpu {
                    Ok(true) => Ok(()),
                    Ok(false) => live.display.publish(frame),
                    Err(e) => Err(e),
                };
                if let Err(e) = r {
                    break Err(anyhow!(e)).code(exit::OUTPUT);
                }
            }
            Ok(None) if a.looping && frames > 0 && path.as_os_str() != "-" => {
                source = match open() {
                    Ok(s) => s,
                    Err(e) => break Err(e),
                };
                continue;
            }
            Ok(None) => {
                println!("End of input after {frames} frames; still serving the last one (Ctrl-C to stop).");
                while !live.stopped() {
                    std::thread::sleep(Duration::from_millis(100));
                }
                break Ok(());
            }
            Err(e) => break Err(e).code(exit::INPUT),
        }
        if !pace(&live, &mut next, period) {
            break Ok(());
        }
    };
    if let Some(g) = gpu {
        g.finish();
    }
    live.finish();
    result
}
