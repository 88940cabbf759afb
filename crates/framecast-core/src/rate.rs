//! Frame rates as the rationals containers and protocols carry.

/// A frame rate as (numerator, denominator): exact for whole rates and the NTSC family
/// (29.97 → 30000/1001), otherwise to 1/1000 fps.
pub fn fps_ratio(fps: f64) -> (u32, u32) {
    let ntsc = fps * 1.001;
    if (fps - fps.round()).abs() < 1e-9 {
        (fps.round() as u32, 1)
    } else if (ntsc - ntsc.round()).abs() < 1e-3 {
        (ntsc.round() as u32 * 1000, 1001)
    } else {
        ((fps * 1000.0).round() as u32, 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_ntsc_and_other_rates() {
        assert_eq!(fps_ratio(30.0), (30, 1));
        assert_eq!(fps_ratio(29.97), (30000, 1001));
        assert_eq!(fps_ratio(59.94), (60000, 1001));
        assert_eq!(fps_ratio(12.5), (12500, 1000));
    }
}
