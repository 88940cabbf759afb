//! Fixed-size statistics: rates over the last second and percentiles of recent samples. Both
//! are bounded by construction, so a stream that runs for weeks with stats off holds exactly
//! as much as one that just started.

use std::time::Duration;

const BUCKETS: usize = 10;
const BUCKET: Duration = Duration::from_millis(100);
/// The span [`RateWindow`] reports over.
pub const WINDOW: Duration = Duration::from_secs(1);

/// Events and bytes per second over the last second, in ten 100 ms buckets.
#[derive(Debug, Clone, Default)]
pub struct RateWindow {
    /// Index of the bucket that holds `head` (the newest bucket's start, in bucket units).
    head: u64,
    count: [u32; BUCKETS],
    bytes: [u64; BUCKETS],
}

impl RateWindow {
    fn advance(&mut self, now: Duration) {
        let slot = (now.as_nanos() / BUCKET.as_nanos()) as u64;
        if slot <= self.head {
            return;
        }
        let stale = (slot - self.head).min(BUCKETS as u64);
        for i in 1..=stale {
            let b = ((self.head + i) % BUCKETS as u64) as usize;
            self.count[b] = 0;
            self.bytes[b] = 0;
        }
        self.head = slot;
    }

    /// One event of `bytes` at `now` (times must not go backwards by more than a bucket).
    pub fn push(&mut self, now: Duration, bytes: usize) {
        self.advance(now);
        let b = (self.head % BUCKETS as u64) as usize;
        self.count[b] = self.count[b].saturating_add(1);
        self.bytes[b] = self.bytes[b].saturating_add(bytes as u64);
    }

    /// Bits/s over the last second, without advancing the window (for readers that hold it
    /// shared): buckets older than a second count for nothing.
    pub fn bits_per_second(&self, now: Duration) -> u64 {
        let slot = (now.as_nanos() / BUCKET.as_nanos()) as u64;
        let bytes: u64 = (0..BUCKETS as u64)
            .filter_map(|k| self.head.checked_sub(k))
            .filter(|&s| slot.saturating_sub(s) < BUCKETS as u64)
            .map(|s| self.bytes[(s % BUCKETS as u64) as usize])
            .sum();
        (bytes as f64 * 8.0 / WINDOW.as_secs_f64()).round() as u64
    }

    /// `(events/s, bits/s)` over the last second; `span` (≤ 1 s) is how long the window has
    /// been collecting, so a viewer that joined 0.5 s ago is not reported at half its rate.
    pub fn rates(&mut self, now: Duration, span: Duration) -> (f64, u64) {
        self.advance(now);
        let span = span.min(WINDOW).as_secs_f64().max(1e-3);
        let count: u64 = self.count.iter().map(|&c| c as u64).sum();
        let bytes: u64 = self.bytes.iter().sum();
        (
            (count as f64 / span * 100.0).round() / 100.0,
            (bytes as f64 * 8.0 / span).round() as u64,
        )
    }
}

/// The last [`SampleRing::CAPACITY`] samples, for p50/p95 of recent encode times.
#[derive(Debug, Clone, Default)]
pub struct SampleRing {
    samples: Vec<f64>,
    next: usize,
}

impl SampleRing {
    /// Samples kept.
    pub const CAPACITY: usize = 256;

    /// Add a sample, replacing the oldest once full.
    pub fn push(&mut self, x: f64) {
        if self.samples.len() < Self::CAPACITY {
            self.samples.push(x);
        } else {
            self.samples[self.next] = x;
        }
        self.next = (self.next + 1) % Self::CAPACITY;
    }

    /// The `p` quantile (0..=1) of the samples kept; 0 when empty.
    pub fn quantile(&self, p: f64) -> f64 {
        if self.samples.is_empty() {
            return 0.0;
        }
        let mut s = self.samples.clone();
        s.sort_by(f64::total_cmp);
        s[((s.len() - 1) as f64 * p.clamp(0.0, 1.0)).round() as usize]
    }
}

const EMA: f64 = 0.3;

/// Exponential moving average with weight 0.3 on the new sample.
pub fn ema(old: Option<f64>, sample: f64) -> f64 {
    match old {
        None => sample,
        Some(o) => o + EMA * (sample - o),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn rate_over_the_last_second() {
        let mut w = RateWindow::default();
        for i in 0..100u64 {
            w.push(Duration::from_millis(i * 10), 1000);
        }
        let (fps, bps) = w.rates(990 * MS, WINDOW);
        assert_eq!(fps, 100.0);
        assert_eq!(bps, 800_000);
        // Half a second later only the newer half is inside the window.
        let (fps, _) = w.rates(1490 * MS, WINDOW);
        assert_eq!(fps, 50.0);
        // Long idle: everything gone, even after a gap far longer than the window.
        assert_eq!(w.rates(Duration::from_secs(3600), WINDOW), (0.0, 0));
    }

    #[test]
    fn bits_per_second_reads_without_advancing() {
        let mut w = RateWindow::default();
        for i in 0..100u64 {
            w.push(Duration::from_millis(i * 10), 1000);
        }
        assert_eq!(w.bits_per_second(990 * MS), 800_000);
        // Half a second later only the newer half counts, as `rates` says.
        assert_eq!(w.bits_per_second(1490 * MS), 400_000);
        assert_eq!(w.clone().rates(1490 * MS, WINDOW).1, 400_000);
        assert_eq!(w.bits_per_second(Duration::from_secs(3600)), 0);
    }

    #[test]
    fn young_windows_scale_by_their_span() {
        let mut w = RateWindow::default();
        for i in 0..15u64 {
            w.push(Duration::from_millis(i * 33), 10);
        }
        let (fps, _) = w.rates(500 * MS, 500 * MS);
        assert_eq!(fps, 30.0);
    }

    #[test]
    fn sample_ring_keeps_the_newest() {
        let mut r = SampleRing::default();
        for i in 0..1000 {
            r.push(i as f64);
        }
        assert_eq!(r.samples.len(), SampleRing::CAPACITY);
        assert_eq!(r.quantile(0.0), 744.0);
        assert_eq!(r.quantile(1.0), 999.0);
        assert_eq!(SampleRing::default().quantile(0.5), 0.0);
    }
}
