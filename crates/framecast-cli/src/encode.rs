//! `framecast encode` and (for now) `framecast demo`.

use crate::args::{color_space, parse_bitrate, ColorArg, RangeArg, SourceArgs};
use crate::output::{display_path, frame_progress, Container, PacketWriter};
use crate::psnr::{PsnrCheck, PsnrReport};
use crate::{exit, Failure, WithCode};
use anyhow::anyhow;
use clap::Args;
use framecast_core::ColorSpace;
use framecast_encode::{
    BackpressurePolicy, EncodeError, EncodeMode, Encoder, EncoderConfig, EncoderEvent, FrameMeta,
    ProfileHint, SendOutcome,
};
use framecast_io::{FrameSource, PatternKind, PatternSource};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Profile on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ProfileArg {
    /// Constrained Baseline (plays everywhere; the default).
    Baseline,
    /// Main.
    Main,
    /// High.
    High,
}

#[derive(Args, Debug)]
pub struct EncodeArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Output file; the extension picks the container: .h264 (Annex B) or .mp4.
    #[arg(short, long, value_name = "OUT")]
    output: PathBuf,
    /// Target bitrate (e.g. 8M, 2.5M, 800k); default scales with size: 8M at 1080p30.
    #[arg(long, value_parser = parse_bitrate)]
    bitrate: Option<u32>,
    /// Keyframe interval in frames (0 = first frame only); default 2 seconds.
    #[arg(long, value_name = "N")]
    keyint: Option<u32>,
    /// Encoder backend (see `framecast doctor`).
    #[arg(long, default_value_t = framecast_encode::registry::default_backend_name().to_string())]
    backend: String,
    /// Colour matrix used for RGB→YUV and written to the stream.
    #[arg(long, value_enum, default_value = "bt709")]
    color: ColorArg,
    /// Sample range used for RGB→YUV and written to the stream.
    #[arg(long, value_enum, default_value = "limited")]
    range: RangeArg,
    /// H.264 profile: the most the encoder may use (x264's ultrafast preset has no High tools,
    /// so it writes Main; the summary line shows the codec string actually written).
    #[arg(long, value_enum, default_value = "baseline")]
    profile: ProfileArg,
    /// B-frames between reference frames (x264; needs --profile main or high). Better
    /// compression for files where latency does not matter: packets then carry dts < pts and
    /// the .mp4 a ctts box.
    #[arg(long, value_name = "N", default_value_t = 0)]
    bframes: u32,
    #[command(flatten)]
    tuning: crate::args::TuningArgs,
    /// Encoder threads (0 = the backend's choice: x264 spreads each frame over every core
    /// with sliced threads; OpenH264 uses one).
    #[arg(long, value_name = "N", default_value_t = 0)]
    threads: u32,
    /// Encode on a worker thread with up to N frames in flight (reading, conversion and encoding overlap).
    #[arg(long, value_name = "N")]
    pipelined: Option<usize>,
    /// Decode the output back and report PSNR against the input.
    #[arg(long)]
    psnr: bool,
    /// Convert RGB to YUV on the GPU (wgpu) instead of the CPU; needs a build with `--features gpu`.
    #[arg(long)]
    gpu: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Where to write the demo video.
    #[arg(short, long, default_value = "demo.mp4")]
    output: PathBuf,
    /// Scene: testcard, bands, gradient, plasma.
    #[arg(long, default_value = "plasma")]
    scene: String,
    /// Seconds of video.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Draw the `gpu` scene on the GPU (a WGSL shader), convert it to NV12 there and encode
    /// what the readback ring delivers; without a GPU build or adapter, says so and encodes
    /// the CPU scene.
    #[arg(long)]
    gpu: bool,
}

/// The GPU-drawn scene as a frame source, or `None` after saying once why not.
fn open_gpu_scene(w: u32, h: u32, frames: u64) -> Option<Box<dyn framecast_io::FrameSource>> {
    #[cfg(feature = "gpu")]
    {
        use crate::gpu_live::{announce, SceneSource};
        let opened = SceneSource::open(w, h, frames);
        let doing = "Drawing and converting on the GPU";
        announce(
            opened,
            doing,
            SceneSource::adapter,
            "encoding the CPU scene",
        )
        .map(|s| Box::new(s) as Box<dyn framecast_io::FrameSource>)
    }
    #[cfg(not(feature = "gpu"))]
    {
        let _ = (w, h, frames);
        crate::gpu_live::not_built("encoding the CPU scene")
    }
}

fn encoder_code(e: &EncodeError) -> u8 {
    match e {
        EncodeError::Frame(_) => exit::INPUT,
        EncodeError::InvalidConfig(_) => exit::USAGE,
        _ => exit::ENCODER,
    }
}

/// What one encode run produced.
pub struct Summary {
    pub frames: u64,
    pub dropped: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub codec: String,
    pub psnr: Option<PsnrReport>,
}

/// Optional GPU colour conversion in front of the encoder: frames are converted to NV12 on the
/// GPU and handed to the encoder as NV12, which it only copies.
enum GpuStage {
    Off,
    #[cfg(feature = "gpu")]
    On {
        gpu: Box<framecast_gpu::GpuConverter>,
        nv12: framecast_core::Yuv420Image,
    },
}

impl GpuStage {
    fn new(enabled: bool, width: u32, height: u32) -> Result<Self, Failure> {
        if !enabled {
            return Ok(GpuStage::Off);
        }
        #[cfg(feature = "gpu")]
        {
            let gpu = framecast_gpu::GpuConverter::new().code(exit::ENCODER)?;
            tracing::info!("converting on {}", gpu.adapter_summary());
            let nv12 =
                framecast_core::Yuv420Image::new(width, height, framecast_core::YuvLayout::Nv12)
                    .code(exit::USAGE)?;
            Ok(GpuStage::On {
                gpu: Box::new(gpu),
                nv12,
            })
        }
        #[cfg(not(feature = "gpu"))]
        {
            let _ = (width, height);
            Err(anyhow!(
                "--gpu needs a build with GPU support: cargo build --release --features gpu"
            ))
            .code(exit::USAGE)
        }
    }

    /// The frame the encoder should see: `frame` itself, or its NV12 conversion.
    #[cfg_attr(
        not(feature = "gpu"),
        expect(unused_variables, reason = "colour is for the GPU")
    )]
    fn convert<'a>(
        &'a mut self,
        frame: framecast_core::Frame<'a>,
        color: ColorSpace,
    ) -> Result<framecast_core::Frame<'a>, Failure> {
        match self {
            GpuStage::Off => Ok(frame),
            #[cfg(feature = "gpu")]
            GpuStage::On { gpu, nv12 } => {
                gpu.convert(&frame, color, nv12).code(exit::ENCODER)?;
                let (y, uv, _) = nv12.planes();
                framecast_core::Frame::nv12(
                    y,
                    nv12.y_stride(),
                    uv,
                    nv12.chroma_stride(),
                    nv12.width(),
                    nv12.height(),
                )
                .code(exit::ENCODER)
            }
        }
    }
}

/// Everything the encode loop needs.
pub struct Job<'a> {
    pub source: Box<dyn FrameSource>,
    pub config: EncoderConfig,
    pub output: &'a Path,
    pub max_frames: Option<u64>,
    pub psnr: bool,
    pub progress: bool,
    /// Convert on the GPU.
    pub gpu: bool,
}

/// Encode `job.source` into `job.output`.
pub fn encode_to_file(job: Job<'_>) -> Result<Summary, Failure> {
    let Job {
        mut source,
        mut config,
        output,
        max_frames,
        psnr,
        progress,
        gpu,
    } = job;
    let mut gpu = GpuStage::new(gpu, config.width, config.height)?;
    let container = Container::from_path(output).code(exit::USAGE)?;
    config.output = container.packet_format();
    let mut encoder = Encoder::new(config.clone()).map_err(|e| {
        let code = encoder_code(&e);
        Failure {
            error: e.into(),
            code,
        }
    })?;
    let mut writer =
        PacketWriter::create(output, container, config.width, config.height, config.color)
            .code(exit::OUTPUT)?;
    let total = match (max_frames, source.frame_count_hint()) {
        (Some(m), Some(h)) => Some(m.min(h)),
        (m, h) => m.or(h),
    };
    let bar = frame_progress(total, progress);
    let mut check = if psnr {
        Some(PsnrCheck::new(config.color)?)
    } else {
        None
    };
    let started = Instant::now();
    let (mut frames, mut dropped, mut submitted) = (0u64, 0u64, 0u64);
    let dur = config.frame_duration_ns();
    let mut handle = |ev: EncoderEvent,
                      enc: &Encoder,
                      writer: &mut PacketWriter,
                      check: &mut Option<PsnrCheck>| {
        match ev {
            EncoderEvent::Packet(p) => {
                writer.write(&p, || enc.avcc()).code(exit::OUTPUT)?;
                if let Some(c) = check.as_mut() {
                    c.packet(&p).code(exit::ENCODER)?;
                }
                frames += 1;
                bar.inc(1);
            }
            EncoderEvent::Dropped(_) => dropped += 1,
        }
        Ok::<(), Failure>(())
    };
    while max_frames.is_none_or(|m| submitted < m) {
        let Some(frame) = source.next_frame().code(exit::INPUT)? else {
            break;
        };
        let source_view = frame.as_frame();
        if let Some(c) = check.as_mut() {
            c.push_source(submitted, &source_view).code(exit::INPUT)?;
        }
        let view = gpu.convert(source_view, config.color)?;
        let meta = FrameMeta {
            token: submitted,
            pts_ns: submitted as i64 * dur,
            force_keyframe: false,
        };
        loop {
            let outcome = encoder.send_frame(&view, meta).map_err(|e| {
                let code = encoder_code(&e);
                Failure {
                    error: anyhow::Error::new(e).context(format!("frame {submitted}")),
                    code,
                }
            })?;
            if outcome != SendOutcome::Busy {
                break;
            }
            if let Some(ev) = encoder.receive_blocking().code(exit::ENCODER)? {
                handle(ev, &encoder, &mut writer, &mut check)?;
            }
        }
        submitted += 1;
        while let Some(ev) = encoder.receive().code(exit::ENCODER)? {
            handle(ev, &encoder, &mut writer, &mut check)?;
        }
    }
    for ev in encoder.flush().code(exit::ENCODER)? {
        handle(ev, &encoder, &mut writer, &mut check)?;
    }
    bar.finish_and_clear();
    if frames == 0 {
        return Err(Failure {
            error: anyhow!("the input has no frames; nothing was written"),
            code: exit::INPUT,
        });
    }
    let codec = encoder
        .codec_string()
        .map(|c| c.to_string())
        .unwrap_or_default();
    let bytes = writer.finish().code(exit::OUTPUT)?;
    Ok(Summary {
        frames,
        dropped,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
        codec,
        psnr: check.map(|c| c.result()),
    })
}

fn print_summary(s: &Summary, config: &EncoderConfig, output: &Path) {
    let media_secs = s.frames as f64 / config.fps;
    let kbps = s.bytes as f64 * 8.0 / media_secs / 1000.0;
    let mut line = format!(
        "{} frames {}x{} in {:.2}s ({:.1} fps), {:.0} kb/s, {}, {} -> {}",
        s.frames,
        config.width,
        config.height,
        s.seconds,
        s.frames as f64 / s.seconds,
        kbps,
        s.codec,
        config.backend,
        display_path(output).display()
    );
    if s.dropped > 0 {
        line.push_str(&format!(", {} dropped", s.dropped));
    }
    if let Some(p) = &s.psnr {
        line.push_str(&format!(
            ", PSNR {:.2} dB (Y {:.2} U {:.2} V {:.2}, worst frame {:.2}; RGB round trip {:.2})",
            p.yuv[3], p.yuv[0], p.yuv[1], p.yuv[2], p.min, p.rgb
        ));
    }
    println!("{line}");
}

pub fn run(a: EncodeArgs) -> Result<(), Failure> {
    let color = color_space(a.color, a.range);
    let source = a.source.open()?;
    let fps = a
        .source
        .fps
        .or_else(|| source.fps().map(|(n, d)| n as f64 / d.max(1) as f64))
        .unwrap_or(30.0);
    let mut config = EncoderConfig::new(source.width(), source.height());
    config.backend = a.backend.clone();
    config.fps = fps;
    config.bitrate = a
        .bitrate
        .unwrap_or_else(|| framecast_encode::default_bitrate(config.width, config.height, fps));
    config.keyframe_interval = a.keyint.unwrap_or((fps * 2.0).round() as u32);
    config.color = color;
    config.profile = match a.profile {
        ProfileArg::Baseline => ProfileHint::ConstrainedBaseline,
        ProfileArg::Main => ProfileHint::Main,
        ProfileArg::High => ProfileHint::High,
    };
    config.bframes = a.bframes;
    config.threads = a.threads;
    a.tuning.apply(&mut config);
    if let Some(n) = a.pipelined {
        config.mode = EncodeMode::Pipelined {
            max_in_flight: n.max(1),
            policy: BackpressurePolicy::Block,
        };
    }
    let progress = !a.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let summary = encode_to_file(Job {
        source,
        config: config.clone(),
        output: &a.output,
        max_frames: a.source.frame_limit(),
        psnr: a.psnr,
        gpu: a.gpu,
        progress,
    })?;
    print_summary(&summary, &config, &a.output);
    Ok(())
}

pub fn demo(a: DemoArgs) -> Result<(), Failure> {
    let (w, h, fps) = (1280, 720, 30.0);
    let frames = a.seconds * 30;
    let gpu_scene: Option<Box<dyn framecast_io::FrameSource>> = if a.gpu {
        open_gpu_scene(w, h, frames)
    } else {
        None
    };
    let (source, name): (Box<dyn framecast_io::FrameSource>, &str) = match gpu_scene {
        Some(s) => (s, "gpu"),
        None => {
            let kind: PatternKind = a.scene.parse().code(exit::USAGE)?;
            let source = PatternSource::new(kind, w, h, (30, 1), Some(frames)).code(exit::USAGE)?;
            (Box::new(source), kind.name())
        }
    };
    let mut config = EncoderConfig::new(w, h);
    config.fps = fps;
    println!("Encoding {} s of the {name} scene at {w}x{h}...", a.seconds);
    let summary = encode_to_file(Job {
        source,
        config: config.clone(),
        output: &a.output,
        max_frames: Some(frames),
        psnr: false,
        gpu: false,
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
    })?;
    print_summary(&summary, &config, &a.output);
    println!(
        "Wrote {}. Play it with `ffplay {}` or open it in a browser; `framecast demo` without \
         -o serves the live demo at http://127.0.0.1:8765.",
        display_path(&a.output).display(),
        a.output.display()
    );
    Ok(())
}
