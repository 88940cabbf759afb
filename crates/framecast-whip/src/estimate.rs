//! From the SFU's bandwidth estimate to the rate the stream sends the WHIP tap (sans-IO).
//!
//! str0m reports estimates often (TWCC) or whenever the SFU sends REMB. The stream's
//! congestion controller gets a cap below the estimate (RTP, SRTP and FEC overhead) and
//! only when it moves by more than a step, so the encoder is not retuned every few
//! milliseconds.

use std::time::Duration;

/// Share of the estimate left for media (the rest is RTP/SRTP/RTCP overhead and margin).
const MEDIA_SHARE: f64 = 0.9;
/// A change smaller than this (relative) is not passed on...
const STEP: f64 = 0.1;
/// ...unless this long has passed since the last one.
const REFRESH: Duration = Duration::from_secs(2);
/// Lowest cap: below this, video is not worth sending; the controller's own floor applies.
const FLOOR_BPS: u32 = 100_000;

/// Turns estimates into caps.
#[derive(Debug, Default)]
pub struct RateFollower {
    last: Option<(u32, Duration)>,
}

impl RateFollower {
    /// An estimate of `bps` at `now`: the cap to apply, when it should change.
    pub fn estimate(&mut self, bps: u64, now: Duration) -> Option<u32> {
        let cap =
            ((bps as f64 * MEDIA_SHARE) as u64).clamp(FLOOR_BPS as u64, u32::MAX as u64) as u32;
        if let Some((last, at)) = self.last {
            let moved = (cap as f64 - last as f64).abs() / last as f64;
            if moved < STEP && now.saturating_sub(at) < REFRESH {
                return None;
            }
            if cap == last {
                return None;
            }
        }
        self.last = Some((cap, now));
        Some(cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_moves_are_held_large_ones_passed_on() {
        let mut f = RateFollower::default();
        let s = Duration::from_secs;
        assert_eq!(f.estimate(2_000_000, s(0)), Some(1_800_000));
        assert_eq!(f.estimate(2_050_000, s(0)), None, "2.5 % is noise");
        assert_eq!(
            f.estimate(1_000_000, s(0)),
            Some(900_000),
            "a halving passes"
        );
        assert_eq!(
            f.estimate(1_050_000, s(3)),
            Some(945_000),
            "refreshed after 2 s"
        );
        assert_eq!(f.estimate(10_000, s(9)), Some(FLOOR_BPS), "floored");
        assert_eq!(f.estimate(20_000, s(20)), None, "same floor: nothing new");
    }
}
