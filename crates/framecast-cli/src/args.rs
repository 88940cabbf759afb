//! Parsers for command-line values.

use framecast_core::{ColorSpace, Matrix, Range};

/// `1920x1080` → (1920, 1080).
pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let named = match s.to_ascii_lowercase().as_str() {
        "360p" => Some((640, 360)),
        "720p" => Some((1280, 720)),
        "1080p" => Some((1920, 1080)),
        "1440p" => Some((2560, 1440)),
        "4k" | "2160p" => Some((3840, 2160)),
        _ => None,
    };
    if let Some(v) = named {
        return Ok(v);
    }
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("size {s:?} should look like 1280x720"))?;
    let w: u32 = w
        .trim()
        .parse()
        .map_err(|_| format!("width {w:?} in {s:?} is not a number"))?;
    let h: u32 = h
        .trim()
        .parse()
        .map_err(|_| format!("height {h:?} in {s:?} is not a number"))?;
    if w == 0 || h == 0 {
        return Err(format!("size {s}: width and height must be at least 1"));
    }
    if w > framecast_core::MAX_DIMENSION || h > framecast_core::MAX_DIMENSION {
        return Err(format!(
            "size {s} exceeds the maximum of {} per side",
            framecast_core::MAX_DIMENSION
        ));
    }
    Ok((w, h))
}

/// `8M`, `2.5M`, `800k`, `1000000` → bits per second.
pub fn parse_bitrate(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let (num, mul) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1e3),
        Some('m' | 'M') => (&t[..t.len() - 1], 1e6),
        Some('g' | 'G') => (&t[..t.len() - 1], 1e9),
        _ => (t, 1.0),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("bitrate {s:?} should look like 8M, 800k or 2500000"))?;
    let bps = v * mul;
    if !(10_000.0..=1e9).contains(&bps) {
        return Err(format!("bitrate {s} is outside 10k..1G"));
    }
    Ok(bps as u32)
}

/// `30`, `29.97`, `30000/1001` → fps as f64.
pub fn parse_fps(s: &str) -> Result<f64, String> {
    let v = match s.split_once('/') {
        Some((n, d)) => {
            let n: f64 = n
                .parse()
                .map_err(|_| format!("fps {s:?} is not a number"))?;
            let d: f64 = d
                .parse()
                .map_err(|_| format!("fps {s:?} is not a number"))?;
            n / d
        }
        None => s
            .parse()
            .map_err(|_| format!("fps {s:?} is not a number"))?,
    };
    if !(v.is_finite() && v > 0.0 && v <= 1000.0) {
        return Err(format!("fps {s} must be between 0 and 1000"));
    }
    Ok(v)
}

/// Colour matrix on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ColorArg {
    /// ITU-R BT.709 (HD; the default).
    Bt709,
    /// ITU-R BT.601 (SD).
    Bt601,
}

/// Range on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RangeArg {
    /// 16-235 video range (the default; every decoder handles it).
    Limited,
    /// 0-255 full range.
    Full,
}

/// The colour space for the two flags.
pub fn color_space(c: ColorArg, r: RangeArg) -> ColorSpace {
    let matrix = match c {
        ColorArg::Bt709 => Matrix::Bt709,
        ColorArg::Bt601 => Matrix::Bt601,
    };
    let range = match r {
        RangeArg::Limited => Range::Limited,
        RangeArg::Full => Range::Full,
    };
    ColorSpace::new(matrix, range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1280x720"), Ok((1280, 720)));
        assert_eq!(parse_size("33X17"), Ok((33, 17)));
        assert_eq!(parse_size("4k"), Ok((3840, 2160)));
        assert!(parse_size("0x10").unwrap_err().contains("at least 1"));
        assert!(parse_size("99999x10").unwrap_err().contains("maximum"));
        assert!(parse_size("abc").unwrap_err().contains("1280x720"));
    }

    #[test]
    fn bitrates() {
        assert_eq!(parse_bitrate("8M"), Ok(8_000_000));
        assert_eq!(parse_bitrate("2.5m"), Ok(2_500_000));
        assert_eq!(parse_bitrate("800k"), Ok(800_000));
        assert_eq!(parse_bitrate("123456"), Ok(123_456));
        assert!(parse_bitrate("fast").is_err());
        assert!(parse_bitrate("5").is_err());
    }

    #[test]
    fn fps() {
        assert_eq!(parse_fps("30"), Ok(30.0));
        assert!((parse_fps("30000/1001").unwrap() - 29.97).abs() < 0.01);
        assert!(parse_fps("0").is_err());
    }
}

/// `rgba`, `bgra`, `rgb24`, `nv12`, `i420` → the pixel format of a raw input (a clap value parser).
pub fn parse_format(s: &str) -> Result<framecast_core::PixelFormat, String> {
    use framecast_core::PixelFormat::*;
    Ok(match s.to_ascii_lowercase().as_str() {
        "rgba" => Rgba8,
        "bgra" => Bgra8,
        "rgb" | "rgb24" => Rgb8,
        "nv12" => Nv12,
        "i420" | "yuv420p" | "yuv" => I420,
        other => {
            return Err(format!(
                "unknown raw format {other:?}: use rgba, bgra, rgb24, nv12 or i420"
            ))
        }
    })
}

pub use framecast_core::fps_ratio;

/// A shared secret from a file or an environment variable (`serve`, `demo`, `remote`).
#[derive(clap::Args, Debug, Clone)]
pub struct TokenArgs {
    /// Read the token from this file (its first line; surrounding white space is dropped).
    #[arg(long, value_name = "FILE", conflicts_with = "token_env")]
    pub token_file: Option<std::path::PathBuf>,
    /// Read the token from this environment variable.
    #[arg(long, value_name = "VAR")]
    pub token_env: Option<String>,
}

impl TokenArgs {
    /// The token, if one was asked for. A missing variable, an unreadable file and an empty
    /// token (which would admit anyone) are errors.
    pub fn load(&self) -> Result<Option<String>, crate::Failure> {
        use crate::{exit, WithCode};
        use anyhow::{anyhow, Context};
        let (token, source) = if let Some(f) = &self.token_file {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("--token-file {}", f.display()))
                .code(exit::INPUT)?;
            let first = text.lines().next().unwrap_or("").trim().to_owned();
            (first, format!("--token-file {}", f.display()))
        } else if let Some(var) = &self.token_env {
            let value = std::env::var(var)
                .map_err(|_| anyhow!("--token-env {var}: the variable is not set"))
                .code(exit::USAGE)?;
            (value, format!("--token-env {var}"))
        } else {
            return Ok(None);
        };
        if token.is_empty() {
            return Err(anyhow!(
                "{source}: the token is empty (an empty token would admit anyone)"
            ))
            .code(exit::USAGE);
        }
        Ok(Some(token))
    }
}

/// Where the frames of `encode` and `remote encode` come from: a file or a built-in pattern.
#[derive(clap::Args, Debug)]
pub struct SourceArgs {
    /// Input file: .y4m, raw .rgba/.bgra/.rgb/.nv12/.yuv (needs --size), or - for stdin.
    #[arg(required_unless_present = "pattern", conflicts_with = "pattern")]
    pub input: Option<std::path::PathBuf>,
    /// Use a built-in animated pattern instead of a file: testcard, bands, gradient, plasma.
    #[arg(long, value_name = "NAME")]
    pub pattern: Option<String>,
    /// Frame size WxH (e.g. 1280x720, or 720p/1080p/4k): required for raw input, default 1280x720 for patterns.
    #[arg(long, value_parser = parse_size, value_name = "WxH")]
    pub size: Option<(u32, u32)>,
    /// Stop after N frames (patterns default to 10 s worth).
    #[arg(long, value_name = "N")]
    pub frames: Option<u64>,
    /// Frame rate (e.g. 30, 60, 30000/1001); default: the input's, else 30.
    #[arg(long, value_parser = parse_fps)]
    pub fps: Option<f64>,
    /// Pixel format of raw input when the extension does not say: rgba, bgra, rgb24, nv12, i420.
    #[arg(long, value_name = "FMT", value_parser = parse_format)]
    pub format: Option<framecast_core::PixelFormat>,
}

impl SourceArgs {
    /// Open the source. Patterns run for `--frames`, or 10 s.
    pub fn open(&self) -> Result<Box<dyn framecast_io::FrameSource>, crate::Failure> {
        use crate::{exit, WithCode};
        if let Some(name) = &self.pattern {
            let kind: framecast_io::PatternKind = name.parse().code(exit::USAGE)?;
            let (w, h) = self.size.unwrap_or((1280, 720));
            let fps = self.fps.unwrap_or(30.0);
            let source = framecast_io::PatternSource::new(
                kind,
                w,
                h,
                fps_ratio(fps),
                Some(self.frame_limit().unwrap_or(0)),
            )
            .code(exit::USAGE)?;
            return Ok(Box::new(source));
        }
        let path = self
            .input
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("give an input file or --pattern NAME"))
            .code(exit::USAGE)?;
        let hint = framecast_io::InputHint {
            format: self.format,
            size: self.size,
            fps: self.fps.map(fps_ratio),
        };
        framecast_io::open_input(path, hint).code(exit::INPUT)
    }

    /// Frames to encode at most: `--frames`, or 10 s of a pattern; files run to their end.
    pub fn frame_limit(&self) -> Option<u64> {
        self.frames.or_else(|| {
            self.pattern
                .as_ref()
                .map(|_| (self.fps.unwrap_or(30.0) * 10.0).round() as u64)
        })
    }
}

/// Encoder tuning shared by `encode`, `serve` and `demo`: the x264 backend's options (other
/// backends refuse them with a message naming x264).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TuningArgs {
    /// x264 speed preset: ultrafast (the default, for live), superfast, veryfast, faster, fast,
    /// medium, slow, slower, veryslow, placebo. Slower presets spend more CPU per frame for
    /// fewer bits at the same quality.
    #[arg(long, value_name = "NAME")]
    pub preset: Option<String>,
    /// Periodic intra refresh instead of periodic IDRs (x264): a column of intra blocks sweeps
    /// the picture once per keyframe interval, so no frame is a keyframe-sized spike; a viewer
    /// that joins still gets an IDR.
    #[arg(long)]
    pub intra_refresh: bool,
}

impl TuningArgs {
    /// Put the options into `config`.
    pub fn apply(&self, config: &mut framecast_encode::EncoderConfig) {
        config.preset = self.preset.clone();
        config.intra_refresh = self.intra_refresh;
    }

    /// Refuse options `backend` cannot honour before anything starts, by opening a small
    /// encoder with them (a live server would otherwise fail only when the first viewer
    /// comes).
    pub fn check(&self, backend: &str) -> Result<(), crate::Failure> {
        use crate::{exit, WithCode};
        if self.preset.is_none() && !self.intra_refresh {
            return Ok(());
        }
        let mut config = framecast_encode::EncoderConfig::new(64, 64);
        config.backend = backend.to_owned();
        self.apply(&mut config);
        framecast_encode::Encoder::new(config)
            .map(drop)
            .code(exit::USAGE)
    }
}
