//! Colour-space description shared by the converter, the encoders and the VUI rewriter.

/// YCbCr matrix coefficients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Matrix {
    /// ITU-R BT.601 (SD).
    Bt601,
    /// ITU-R BT.709 (HD). The default.
    #[default]
    Bt709,
}

/// Sample range of the Y'CbCr signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Range {
    /// "Video" range: Y 16..=235, Cb/Cr 16..=240. The default; every decoder handles it.
    #[default]
    Limited,
    /// "Full"/"PC" range: 0..=255.
    Full,
}

/// Colour primaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Primaries {
    /// BT.709 / sRGB primaries.
    #[default]
    Bt709,
    /// BT.601 625-line (PAL) primaries, "bt470bg".
    Bt601Pal,
    /// BT.601 525-line (NTSC) primaries, "smpte170m".
    Bt601Ntsc,
}

/// Transfer characteristics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Transfer {
    /// BT.709 transfer (also what BT.601 uses).
    #[default]
    Bt709,
    /// IEC 61966-2-1 sRGB.
    Srgb,
    /// SMPTE 170M (BT.601 525).
    Smpte170m,
}

/// How RGB maps to the encoded Y'CbCr and how that is signalled in the bitstream.
///
/// The default is BT.709 limited range, the combination every browser decoder handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ColorSpace {
    /// Matrix coefficients used by the RGB→YUV conversion.
    pub matrix: Matrix,
    /// Sample range.
    pub range: Range,
    /// Primaries written to the VUI.
    pub primaries: Primaries,
    /// Transfer characteristics written to the VUI.
    pub transfer: Transfer,
}

impl ColorSpace {
    /// BT.709, limited range (the default).
    pub const BT709_LIMITED: ColorSpace = ColorSpace {
        matrix: Matrix::Bt709,
        range: Range::Limited,
        primaries: Primaries::Bt709,
        transfer: Transfer::Bt709,
    };

    /// BT.601 (525-line/NTSC primaries, SMPTE 170M transfer), limited range: what pdum.vtenc emits.
    pub const BT601_LIMITED: ColorSpace = ColorSpace {
        matrix: Matrix::Bt601,
        range: Range::Limited,
        primaries: Primaries::Bt601Ntsc,
        transfer: Transfer::Smpte170m,
    };

    /// A colour space for `matrix` and `range` with the primaries and transfer that conventionally
    /// go with that matrix.
    pub fn new(matrix: Matrix, range: Range) -> Self {
        let base = match matrix {
            Matrix::Bt601 => Self::BT601_LIMITED,
            Matrix::Bt709 => Self::BT709_LIMITED,
        };
        ColorSpace { range, ..base }
    }

    /// H.264 `matrix_coefficients` (Table E-5).
    pub fn matrix_code(&self) -> u8 {
        match self.matrix {
            Matrix::Bt709 => 1,
            Matrix::Bt601 => 6,
        }
    }

    /// H.264 `colour_primaries` (Table E-3).
    pub fn primaries_code(&self) -> u8 {
        match self.primaries {
            Primaries::Bt709 => 1,
            Primaries::Bt601Pal => 5,
            Primaries::Bt601Ntsc => 6,
        }
    }

    /// H.264 `transfer_characteristics` (Table E-4).
    pub fn transfer_code(&self) -> u8 {
        match self.transfer {
            Transfer::Bt709 => 1,
            Transfer::Smpte170m => 6,
            Transfer::Srgb => 13,
        }
    }

    /// H.264 `video_full_range_flag`.
    pub fn full_range(&self) -> bool {
        self.range == Range::Full
    }

    /// The luma weights (Kr, Kb) of the matrix.
    pub fn kr_kb(&self) -> (f64, f64) {
        match self.matrix {
            Matrix::Bt601 => (0.299, 0.114),
            Matrix::Bt709 => (0.2126, 0.0722),
        }
    }

    /// The ffmpeg/ffprobe names of (color_space, color_range), as `ffprobe -show_streams` prints them.
    pub fn ffmpeg_names(&self) -> (&'static str, &'static str) {
        let space = match self.matrix {
            Matrix::Bt709 => "bt709",
            Matrix::Bt601 => "smpte170m",
        };
        let range = match self.range {
            Range::Limited => "tv",
            Range::Full => "pc",
        };
        (space, range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_bt709_limited() {
        let cs = ColorSpace::default();
        assert_eq!(cs, ColorSpace::BT709_LIMITED);
        assert_eq!(
            (cs.matrix_code(), cs.primaries_code(), cs.transfer_code()),
            (1, 1, 1)
        );
        assert!(!cs.full_range());
    }

    #[test]
    fn bt601_codes() {
        let cs = ColorSpace::new(Matrix::Bt601, Range::Full);
        assert_eq!(
            (cs.matrix_code(), cs.primaries_code(), cs.transfer_code()),
            (6, 6, 6)
        );
        assert!(cs.full_range());
        assert_eq!(cs.ffmpeg_names(), ("smpte170m", "pc"));
    }
}
