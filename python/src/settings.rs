//! The encoder keywords `Encoder` and `Writer` share (`fps`, `bitrate`, `gop`, `backend`,
//! `color`, `range`), turned into an [`EncoderConfig`] with errors that name the value.

use crate::errors::{encode_error, value_error};
use framecast_core::{ColorSpace, Matrix, Range};
use framecast_encode::EncoderConfig;
use pyo3::prelude::*;

/// The keywords, as Python passed them.
pub(crate) struct EncoderKeywords<'a> {
    pub fps: f64,
    pub bitrate: Option<u32>,
    pub gop: Option<u32>,
    /// `"auto"` or a registry name.
    pub backend: &'a str,
    pub color: &'a str,
    pub range: &'a str,
}

impl EncoderKeywords<'_> {
    /// The config for a `width` x `height` encoder. The bitrate defaults to 8 Mb/s at
    /// 1080p30, scaled; the GOP to two seconds.
    pub fn config(&self, width: u32, height: u32) -> PyResult<EncoderConfig> {
        let mut config = EncoderConfig::new(width, height);
        config.fps = self.fps;
        config.bitrate = self
            .bitrate
            .unwrap_or_else(|| framecast_encode::default_bitrate(width, height, self.fps));
        config.keyframe_interval = self
            .gop
            .unwrap_or_else(|| (self.fps.round().max(1.0) as u32) * 2);
        config.color = color_space(self.color, self.range)?;
        if self.backend != "auto" {
            config.backend = framecast_encode::registry::find(self.backend)
                .map_err(encode_error)?
                .name
                .to_owned();
        }
        Ok(config)
    }
}

pub(crate) fn color_space(color: &str, range: &str) -> PyResult<ColorSpace> {
    let matrix = match color.to_ascii_lowercase().as_str() {
        "bt709" | "709" => Matrix::Bt709,
        "bt601" | "601" => Matrix::Bt601,
        other => {
            return Err(value_error(format!(
                "color {other:?}: use \"bt709\" or \"bt601\""
            )))
        }
    };
    let range = match range.to_ascii_lowercase().as_str() {
        "limited" | "tv" => Range::Limited,
        "full" | "pc" => Range::Full,
        other => {
            return Err(value_error(format!(
                "range {other:?}: use \"limited\" or \"full\""
            )))
        }
    };
    Ok(ColorSpace::new(matrix, range))
}
