//! Decode timestamps for a stream whose access units may come out of the encoder in decode
//! order (B-frames), from the presentation times frames were submitted with.
//!
//! With a reordering depth `d`, the `k`-th access unit in decode order is displayed no earlier
//! than the `(k - d)`-th submitted frame. So `dts(k) = pts_in(k - d)` is monotonic (submitted
//! times increase) and never later than the unit's own pts; the first `d` units, which have no
//! such frame, step back from the first pts by whole frame durations, as FFmpeg does. With
//! `d = 0` this is `dts == pts`.

use std::collections::VecDeque;

/// See the module docs.
#[derive(Debug, Clone)]
pub(crate) struct DtsClock {
    depth: u32,
    duration_ns: i64,
    /// Presentation times of submitted frames not yet used as a decode time.
    submitted: VecDeque<i64>,
    first_pts: Option<i64>,
    /// Access units out so far.
    out: u64,
}

impl DtsClock {
    pub(crate) fn new(depth: u32, duration_ns: i64) -> Self {
        DtsClock {
            depth,
            duration_ns,
            submitted: VecDeque::new(),
            first_pts: None,
            out: 0,
        }
    }

    /// A frame went into the encoder with this presentation time.
    pub(crate) fn submitted(&mut self, pts_ns: i64) {
        self.first_pts.get_or_insert(pts_ns);
        self.submitted.push_back(pts_ns);
    }

    /// The decode time of the next access unit out.
    pub(crate) fn next(&mut self) -> i64 {
        let k = self.out;
        self.out += 1;
        let d = u64::from(self.depth);
        if k < d {
            let first = self.first_pts.unwrap_or(0);
            let step = match (self.submitted.front(), self.submitted.get(1)) {
                (Some(a), Some(b)) if b > a => b - a,
                _ => self.duration_ns,
            };
            return first - (d - k) as i64 * step;
        }
        // Every output was submitted first, so there is a front once k >= d.
        self.submitted.pop_front().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_reordering_dts_is_pts() {
        let mut c = DtsClock::new(0, 10);
        for pts in [0, 10, 25, 30] {
            c.submitted(pts);
            assert_eq!(c.next(), pts);
        }
    }

    #[test]
    fn the_step_before_the_first_pts_follows_the_callers_units() {
        // A remote client's time base: 1/30 s per tick, one tick per frame.
        let mut c = DtsClock::new(1, 33_333_333);
        for pts in [0, 1, 2] {
            c.submitted(pts);
        }
        assert_eq!([c.next(), c.next(), c.next()], [-1, 0, 1]);
    }

    #[test]
    fn b_pyramid_decode_order_gets_monotonic_dts_no_later_than_pts() {
        // Display order I0 B1 B2 B3 P4, coded I0 P4 B2 B1 B3 with depth 2 (pyramid).
        let mut c = DtsClock::new(2, 10);
        for i in 0..5 {
            c.submitted(100 + 10 * i);
        }
        let decode_order = [0, 4, 2, 1, 3];
        let dts: Vec<i64> = decode_order.iter().map(|_| c.next()).collect();
        assert_eq!(dts, vec![80, 90, 100, 110, 120]);
        for (d, i) in dts.iter().zip(decode_order) {
            assert!(*d <= 100 + 10 * i as i64);
        }
    }
}
