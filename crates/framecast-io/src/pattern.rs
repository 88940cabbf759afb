//! Synthetic, deterministic, animated test patterns (RGBA8).
//!
//! Every pattern is a pure function of `(kind, frame_index, width, height)`: no clocks and no
//! randomness, so two renders of the same frame are byte-identical on one machine, and tests can
//! check exact pixels. [`render_into`] writes into a caller's buffer without allocating, for live
//! servers; [`PatternSource`] wraps it as a [`FrameSource`].

use std::str::FromStr;
use std::sync::OnceLock;

use framecast_core::PixelFormat;

use crate::{FrameSource, IoError, OwnedFrame};

/// Which synthetic pattern to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatternKind {
    /// Flat 75% colour-bar and grey patches (see [`test_card_patches`]) that stay put, plus a
    /// bouncing box, a frame counter and a scrolling ramp that change every frame.
    TestCard,
    /// Diagonal colour bands scrolling across the picture.
    MovingBands,
    /// A smooth 2D gradient whose hues rotate with time.
    Gradient,
    /// The classic sum-of-sines plasma.
    Plasma,
}

impl PatternKind {
    /// Every pattern, in a stable order.
    pub const ALL: [PatternKind; 4] = [
        PatternKind::TestCard,
        PatternKind::MovingBands,
        PatternKind::Gradient,
        PatternKind::Plasma,
    ];

    /// The canonical command-line name.
    pub fn name(self) -> &'static str {
        match self {
            PatternKind::TestCard => "testcard",
            PatternKind::MovingBands => "bands",
            PatternKind::Gradient => "gradient",
            PatternKind::Plasma => "plasma",
        }
    }
}

impl std::fmt::Display for PatternKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PatternKind {
    type Err = IoError;

    /// Accepts `testcard`/`test-card`, `bands`/`moving-bands`, `gradient` and `plasma`
    /// (case-insensitive).
    fn from_str(s: &str) -> Result<Self, IoError> {
        match s.to_ascii_lowercase().as_str() {
            "testcard" | "test-card" => Ok(PatternKind::TestCard),
            "bands" | "moving-bands" => Ok(PatternKind::MovingBands),
            "gradient" => Ok(PatternKind::Gradient),
            "plasma" => Ok(PatternKind::Plasma),
            _ => Err(IoError::UnknownPattern { name: s.to_owned() }),
        }
    }
}

/// One flat rectangle of the test card, drawn with exactly `rgb` in every frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColourPatch {
    /// What the colour is ("yellow", "mid-grey", ...).
    pub name: &'static str,
    /// Its exact 8-bit RGB.
    pub rgb: [u8; 3],
    /// Left edge in pixels.
    pub x: u32,
    /// Top edge in pixels.
    pub y: u32,
    /// Width in pixels (0 on tiny pictures).
    pub w: u32,
    /// Height in pixels (0 on tiny pictures).
    pub h: u32,
}

/// The eight 75% bars (top row) and three greys (second row).
const PATCH_COLOURS: [(&str, [u8; 3]); 11] = [
    ("white", [191, 191, 191]),
    ("yellow", [191, 191, 0]),
    ("cyan", [0, 191, 191]),
    ("green", [0, 191, 0]),
    ("magenta", [191, 0, 191]),
    ("red", [191, 0, 0]),
    ("blue", [0, 0, 191]),
    ("black", [0, 0, 0]),
    ("mid-grey", [128, 128, 128]),
    ("dark-grey", [64, 64, 64]),
    ("near-white", [235, 235, 235]),
];

const BACKGROUND: [u8; 3] = [48, 48, 56];
const BAND_BACKGROUND: [u8; 3] = [20, 20, 20];
const MOVER: [u8; 3] = [255, 128, 0];

/// Test-card geometry in pixels, all derived from the picture size by integer arithmetic.
struct CardLayout {
    margin_x: u32,
    cell_w: u32,
    patch_w: u32,
    row_h: u32,
    row1_y: u32,
    row2_y: u32,
    band_y: u32,
    band_h: u32,
    ramp_y: u32,
    ramp_h: u32,
}

impl CardLayout {
    fn new(width: u32, height: u32) -> Self {
        let margin_x = width / 24;
        let cell_w = (width - 2 * margin_x) / 8;
        let patch_w = cell_w - cell_w / 8;
        let row_h = height / 4;
        let gap_y = height / 24;
        let row1_y = height / 12;
        let row2_y = row1_y + row_h + gap_y;
        let band_y = row2_y + row_h + gap_y;
        let band_h = height / 8;
        let ramp_y = band_y + band_h + gap_y;
        let ramp_h = height / 12;
        CardLayout {
            margin_x,
            cell_w,
            patch_w,
            row_h,
            row1_y,
            row2_y,
            band_y,
            band_h,
            ramp_y,
            ramp_h,
        }
    }

    fn cell_x(&self, col: u32) -> u32 {
        self.margin_x + col * self.cell_w
    }
}

/// The flat patches of the [`PatternKind::TestCard`] at `width x height`.
///
/// Eight 75% colour bars (white, yellow, cyan, green, magenta, red, blue, black) across the top
/// row and mid-grey, dark-grey and near-white at the left of the second row. Each patch is about
/// a tenth of the width wide (more than 1/12) and a quarter of the height tall, with margins
/// between patches, so the centre of each survives 4:2:0 subsampling and H.264 coding. Patches
/// are at the same place in every frame; on tiny pictures they may be empty (`w` or `h` 0).
pub fn test_card_patches(width: u32, height: u32) -> Vec<ColourPatch> {
    let l = CardLayout::new(width, height);
    PATCH_COLOURS
        .iter()
        .enumerate()
        .map(|(i, &(name, rgb))| {
            let (col, y) = if i < 8 {
                (i as u32, l.row1_y)
            } else {
                (i as u32 - 8, l.row2_y)
            };
            ColourPatch {
                name,
                rgb,
                x: l.cell_x(col) + (l.cell_w - l.patch_w) / 2,
                y,
                w: l.patch_w,
                h: l.row_h,
            }
        })
        .collect()
}

/// Where a decoded picture of the test card differs from it: the first patch (of those at
/// least 8x8) whose centre pixel is more than `tolerance` off in a channel, described; `None`
/// when every one matches. `pixels` is tightly packed, `channels` bytes a pixel (3 for RGB,
/// 4 for RGBA), `width x height`. For tests that decode what went through a codec or network.
pub fn test_card_mismatch(
    pixels: &[u8],
    width: u32,
    height: u32,
    channels: usize,
    tolerance: i32,
) -> Option<String> {
    for p in test_card_patches(width, height) {
        if p.w < 8 || p.h < 8 {
            continue;
        }
        let (cx, cy) = ((p.x + p.w / 2) as usize, (p.y + p.h / 2) as usize);
        let i = (cy * width as usize + cx) * channels;
        let Some(got) = pixels.get(i..i + 3) else {
            return Some(format!("the picture is too small for patch {}", p.name));
        };
        if (0..3).any(|c| (got[c] as i32 - p.rgb[c] as i32).abs() > tolerance) {
            return Some(format!(
                "patch {} at ({cx}, {cy}): got {got:?}, want {:?} (±{tolerance})",
                p.name, p.rgb
            ));
        }
    }
    None
}

/// Draws frame `frame_index` of `kind` into `rgba`, a tightly packed `width x height` RGBA8
/// buffer (stride `4 * width`; alpha is set to 255). Allocates nothing.
///
/// Errors when `rgba` is shorter than `4 * width * height` bytes.
pub fn render_into(
    kind: PatternKind,
    frame_index: u64,
    width: u32,
    height: u32,
    rgba: &mut [u8],
) -> Result<(), IoError> {
    let needed = 4 * width as u64 * height as u64;
    if (rgba.len() as u64) < needed {
        return Err(IoError::InvalidArgument(format!(
            "pattern buffer holds {} bytes but a {width}x{height} RGBA frame needs {needed}",
            rgba.len()
        )));
    }
    if width == 0 || height == 0 {
        return Ok(());
    }
    let mut canvas = Canvas {
        data: &mut rgba[..needed as usize],
        width,
        height,
    };
    match kind {
        PatternKind::TestCard => test_card(&mut canvas, frame_index),
        PatternKind::MovingBands => moving_bands(&mut canvas, frame_index),
        PatternKind::Gradient => gradient(&mut canvas, frame_index),
        PatternKind::Plasma => plasma(&mut canvas, frame_index),
    }
    Ok(())
}

struct Canvas<'a> {
    data: &'a mut [u8],
    width: u32,
    height: u32,
}

impl Canvas<'_> {
    /// Fills a rectangle, clipped to the picture.
    fn fill(&mut self, x: u32, y: u32, w: u32, h: u32, rgb: [u8; 3]) {
        let x1 = x.saturating_add(w).min(self.width) as usize;
        let y1 = y.saturating_add(h).min(self.height) as usize;
        let (x0, y0) = (x as usize, y as usize);
        if x0 >= x1 || y0 >= y1 {
            return;
        }
        let stride = 4 * self.width as usize;
        let px = [rgb[0], rgb[1], rgb[2], 255];
        for row in self.data.chunks_exact_mut(stride).take(y1).skip(y0) {
            for p in row[4 * x0..4 * x1].chunks_exact_mut(4) {
                p.copy_from_slice(&px);
            }
        }
    }

    /// Calls `f(x, y)` for every pixel and stores the colour it returns.
    fn shade(&mut self, mut f: impl FnMut(u32, u32) -> [u8; 3]) {
        let stride = 4 * self.width as usize;
        for (y, row) in self.data.chunks_exact_mut(stride).enumerate() {
            for (x, p) in row.chunks_exact_mut(4).enumerate() {
                let [r, g, b] = f(x as u32, y as u32);
                p.copy_from_slice(&[r, g, b, 255]);
            }
        }
    }
}

/// 3x5 digit glyphs, row-major, most significant bit first.
const DIGITS: [u16; 10] = [
    0b111_101_101_101_111,
    0b010_110_010_010_111,
    0b111_001_111_100_111,
    0b111_001_111_001_111,
    0b101_101_111_001_001,
    0b111_100_111_001_111,
    0b111_100_111_101_111,
    0b111_001_001_001_001,
    0b111_101_111_101_111,
    0b111_101_111_001_111,
];

fn test_card(c: &mut Canvas<'_>, t: u64) {
    let (w, h) = (c.width, c.height);
    let l = CardLayout::new(w, h);
    c.fill(0, 0, w, h, BACKGROUND);

    // A box bouncing around the free part of the second row (columns 3..8).
    let region_x = l.cell_x(3);
    let region_w = 5 * l.cell_w;
    let box_w = (l.patch_w / 2).max(1);
    let box_h = (l.row_h / 2).max(1);
    if region_w > box_w && l.row_h > box_h {
        let step = (region_w / 40).max(1) as u64;
        let bx = triangle(t, step, (region_w - box_w) as u64) as u32;
        let by = triangle(t, (l.row_h as u64 / 20).max(1), (l.row_h - box_h) as u64) as u32;
        c.fill(region_x + bx, l.row2_y + by, box_w, box_h, MOVER);
    }

    // The frame counter band: six decimal digits, then the low 16 bits as lit squares.
    c.fill(0, l.band_y, w, l.band_h, BAND_BACKGROUND);
    let scale = l.band_h / 7;
    if scale > 0 {
        let mut x = l.margin_x + scale;
        let y = l.band_y + scale;
        let mut n = t % 1_000_000;
        let mut digits = [0u8; 6];
        for d in digits.iter_mut().rev() {
            *d = (n % 10) as u8;
            n /= 10;
        }
        for d in digits {
            let glyph = DIGITS[d as usize];
            for gy in 0..5 {
                for gx in 0..3 {
                    if glyph >> (14 - (gy * 3 + gx)) & 1 == 1 {
                        c.fill(
                            x + gx * scale,
                            y + gy * scale,
                            scale,
                            scale,
                            [255, 255, 255],
                        );
                    }
                }
            }
            x += 4 * scale;
        }
        let sq = (l.band_h / 2).max(1);
        x += sq;
        for bit in (0..16).rev() {
            let on = (t >> bit) & 1 == 1;
            let rgb = if on { [0, 255, 0] } else { [60, 60, 60] };
            c.fill(x, l.band_y + l.band_h / 4, sq - sq / 4, sq, rgb);
            x += sq;
        }
    }

    // A grey ramp scrolling one step per frame, so every frame differs everywhere in the strip.
    if l.ramp_h > 0 {
        let stride = 4 * w as usize;
        let y1 = (l.ramp_y + l.ramp_h).min(h) as usize;
        for row in c
            .data
            .chunks_exact_mut(stride)
            .take(y1)
            .skip(l.ramp_y as usize)
        {
            for (x, p) in row.chunks_exact_mut(4).enumerate() {
                let v = ((x as u64 * 256 / w as u64 + (t % 64) * 4) % 256) as u8;
                p.copy_from_slice(&[v, v, v, 255]);
            }
        }
    }

    for p in test_card_patches(w, h) {
        c.fill(p.x, p.y, p.w, p.h, p.rgb);
    }
}

/// The triangle wave 0, step, 2*step, ..., max, ..., 0 of `t * step` (period `2 * max`),
/// exact for any frame index.
fn triangle(t: u64, step: u64, max: u64) -> u64 {
    if max == 0 {
        return 0;
    }
    let p = (t as u128 * step as u128 % (2 * max as u128)) as u64;
    if p <= max {
        p
    } else {
        2 * max - p
    }
}

const BAND_COLOURS: [[u8; 3]; 7] = [
    [230, 40, 40],
    [240, 150, 30],
    [230, 220, 40],
    [50, 200, 70],
    [40, 170, 220],
    [60, 70, 220],
    [170, 60, 210],
];

fn moving_bands(c: &mut Canvas<'_>, t: u64) {
    let band = ((c.width as u64 + c.height as u64) / 12).max(4);
    // The picture repeats every `band * colours` pixels along the diagonal.
    let cycle = band * BAND_COLOURS.len() as u64;
    let offset = (t as u128 * (band / 8).max(1) as u128 % cycle as u128) as u64;
    c.shade(|x, y| {
        let i = (x as u64 + y as u64 + offset) / band;
        BAND_COLOURS[(i % BAND_COLOURS.len() as u64) as usize]
    });
}

fn gradient(c: &mut Canvas<'_>, t: u64) {
    // Four corner colours whose hues rotate (one turn per 600 frames), interpolated bilinearly
    // in 16.16 fixed point: a few integer additions per pixel.
    let shift = (t % 600) as f32 / 600.0;
    let corner =
        |dh: f32, s: f32, v: f32| hsv_to_rgb((shift + dh).fract(), s, v).map(|c| (c as i64) << 16);
    let (tl, tr) = (corner(0.0, 0.55, 0.55), corner(0.25, 0.7, 0.95));
    let (bl, br) = (corner(0.5, 0.9, 0.6), corner(0.75, 0.8, 0.9));
    let (w, h) = (c.width as i64, c.height as i64);
    let lerp = |a: [i64; 3], b: [i64; 3], num: i64, den: i64| {
        if den == 0 {
            a
        } else {
            [0, 1, 2].map(|i| a[i] + (b[i] - a[i]) * num / den)
        }
    };
    let stride = 4 * c.width as usize;
    for (y, row) in c.data.chunks_exact_mut(stride).enumerate() {
        let left = lerp(tl, bl, y as i64, h - 1);
        let right = lerp(tr, br, y as i64, h - 1);
        let step = if w > 1 {
            [0, 1, 2].map(|i| (right[i] - left[i]) / (w - 1))
        } else {
            [0; 3]
        };
        let mut acc = left;
        for p in row.chunks_exact_mut(4) {
            p.copy_from_slice(&[
                (acc[0] >> 16) as u8,
                (acc[1] >> 16) as u8,
                (acc[2] >> 16) as u8,
                255,
            ]);
            for i in 0..3 {
                acc[i] += step[i];
            }
        }
    }
}

fn hsv_to_rgb(h: f32, s: f32, v: f32) -> [u8; 3] {
    let h6 = h * 6.0;
    let i = h6.floor();
    let f = h6 - i;
    let p = v * (1.0 - s);
    let q = v * (1.0 - s * f);
    let r = v * (1.0 - s * (1.0 - f));
    let (r, g, b) = match i as i32 % 6 {
        0 => (v, r, p),
        1 => (q, v, p),
        2 => (p, v, r),
        3 => (p, q, v),
        4 => (r, p, v),
        _ => (v, p, q),
    };
    let q8 = |c: f32| (c * 255.0 + 0.5).clamp(0.0, 255.0) as u8;
    [q8(r), q8(g), q8(b)]
}

const SIN_STEPS: usize = 4096;

/// sin over one turn, tabulated once so the plasma costs a few lookups per pixel.
fn sin_table() -> &'static [f32; SIN_STEPS] {
    static TABLE: OnceLock<Box<[f32; SIN_STEPS]>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = Box::new([0f32; SIN_STEPS]);
        for (i, v) in t.iter_mut().enumerate() {
            *v = (i as f64 / SIN_STEPS as f64 * std::f64::consts::TAU).sin() as f32;
        }
        t
    })
}

/// sin(2π·turns) from the table.
fn sin_turns(table: &[f32; SIN_STEPS], turns: f32) -> f32 {
    table[((turns * SIN_STEPS as f32) as i64 & (SIN_STEPS as i64 - 1)) as usize]
}

fn plasma(c: &mut Canvas<'_>, t: u64) {
    let table = sin_table();
    // A 256-colour palette on the stack, cycling slowly with time.
    let tt = (t % 100_000) as f32;
    let mut palette = [[0u8; 4]; 256];
    for (i, p) in palette.iter_mut().enumerate() {
        let phase = i as f32 / 256.0 + tt * 0.002;
        let ch = |offset: f32| (127.5 + 127.0 * sin_turns(table, phase + offset)) as u8;
        *p = [ch(0.0), ch(1.0 / 3.0), ch(2.0 / 3.0), 255];
    }
    // Scale so the picture always shows a couple of periods whatever its size.
    let scale = 1.0 / (c.width.max(c.height) as f32).max(1.0);
    let (cx, cy) = (c.width as f32 * 0.5, c.height as f32 * 0.5);
    let stride = 4 * c.width as usize;
    for (y, row) in c.data.chunks_exact_mut(stride).enumerate() {
        let fy = y as f32;
        let row_term = sin_turns(table, fy * scale * 1.3 - tt * 0.007);
        let dy2 = (fy - cy) * (fy - cy);
        for (x, p) in row.chunks_exact_mut(4).enumerate() {
            let fx = x as f32;
            let mut v = row_term + sin_turns(table, fx * scale * 1.7 + tt * 0.011);
            v += sin_turns(table, (fx + fy) * scale * 1.1 + tt * 0.005);
            let dx = fx - cx;
            v += sin_turns(table, (dx * dx + dy2).sqrt() * scale * 2.3 - tt * 0.013);
            // v is in -4..4.
            let index = ((v * 0.125 + 0.5) * 255.0) as u8;
            p.copy_from_slice(&palette[index as usize]);
        }
    }
}

/// A [`FrameSource`] of RGBA8 pattern frames.
#[derive(Debug, Clone)]
pub struct PatternSource {
    kind: PatternKind,
    width: u32,
    height: u32,
    fps: (u32, u32),
    frames: Option<u64>,
    next_index: u64,
}

impl PatternSource {
    /// `frames` frames (endless when `None`) of `kind` at `width x height`, reporting `fps`
    /// (numerator, denominator). Frame `i` is `render_into(kind, i, ...)`.
    pub fn new(
        kind: PatternKind,
        width: u32,
        height: u32,
        fps: (u32, u32),
        frames: Option<u64>,
    ) -> Result<Self, IoError> {
        // Validates the size with framecast-core's messages.
        if width == 0
            || height == 0
            || width > framecast_core::MAX_DIMENSION
            || height > framecast_core::MAX_DIMENSION
        {
            framecast_core::Frame::rgba8(&[], width, height, 0)?;
        }
        if fps.0 == 0 || fps.1 == 0 {
            return Err(IoError::InvalidArgument(format!(
                "pattern frame rate {}/{} is invalid: numerator and denominator must be at least 1",
                fps.0, fps.1
            )));
        }
        Ok(PatternSource {
            kind,
            width,
            height,
            fps,
            frames,
            next_index: 0,
        })
    }

    /// The pattern drawn.
    pub fn kind(&self) -> PatternKind {
        self.kind
    }
}

impl FrameSource for PatternSource {
    fn width(&self) -> u32 {
        self.width
    }
    fn height(&self) -> u32 {
        self.height
    }
    fn fps(&self) -> Option<(u32, u32)> {
        Some(self.fps)
    }
    fn frame_count_hint(&self) -> Option<u64> {
        self.frames
    }
    fn next_frame(&mut self) -> Result<Option<OwnedFrame>, IoError> {
        if self.frames.is_some_and(|n| self.next_index >= n) {
            return Ok(None);
        }
        let mut frame = OwnedFrame::zeroed(PixelFormat::Rgba8, self.width, self.height)?;
        render_into(
            self.kind,
            self.next_index,
            self.width,
            self.height,
            frame.data_mut(),
        )?;
        self.next_index += 1;
        Ok(Some(frame))
    }
}
