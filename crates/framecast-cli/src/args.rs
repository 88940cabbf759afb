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
