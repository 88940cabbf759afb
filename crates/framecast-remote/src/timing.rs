//! Per-frame encode times of a session, in constant space: count, sum and maximum, and a
//! log-spaced histogram for the median and 95th percentile. A session that runs for days
//! holds as much as one that just started (it used to keep one `f64` per frame).

/// Buckets of the histogram: 1 µs to ~65 s, four per octave (each within ±9 % of its value).
const BUCKETS: usize = 4 * 26;
const MIN_MS: f64 = 1e-3;

/// Encode-time statistics (milliseconds).
#[derive(Debug, Clone, PartialEq)]
pub struct TimingStats {
    count: u64,
    sum: f64,
    max: f64,
    histogram: [u64; BUCKETS],
}

impl Default for TimingStats {
    fn default() -> Self {
        TimingStats {
            count: 0,
            sum: 0.0,
            max: 0.0,
            histogram: [0; BUCKETS],
        }
    }
}

fn bucket(ms: f64) -> usize {
    let octaves = (ms.max(MIN_MS) / MIN_MS).log2();
    ((octaves * 4.0) as usize).min(BUCKETS - 1)
}

fn bucket_value(i: usize) -> f64 {
    // The geometric middle of the bucket.
    MIN_MS * 2f64.powf((i as f64 + 0.5) / 4.0)
}

impl TimingStats {
    /// Record one sample (negative and non-finite samples count as 0).
    pub fn record(&mut self, ms: f64) {
        let ms = if ms.is_finite() { ms.max(0.0) } else { 0.0 };
        self.count += 1;
        self.sum += ms;
        self.max = self.max.max(ms);
        self.histogram[bucket(ms)] += 1;
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Mean, 0 when empty.
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }

    /// Largest sample, 0 when empty.
    pub fn max(&self) -> f64 {
        self.max
    }

    /// The `q` quantile (0..=1), to within a bucket (±9 %); 0 when empty.
    pub fn quantile(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let rank = ((self.count - 1) as f64 * q.clamp(0.0, 1.0)).round() as u64;
        let mut seen = 0;
        for (i, &n) in self.histogram.iter().enumerate() {
            seen += n;
            if seen > rank {
                return bucket_value(i).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_max_and_quantiles() {
        let mut t = TimingStats::default();
        assert_eq!((t.mean(), t.max(), t.quantile(0.5)), (0.0, 0.0, 0.0));
        for i in 1..=1000 {
            t.record(i as f64 / 100.0); // 0.01 .. 10 ms
        }
        assert_eq!(t.count(), 1000);
        assert!((t.mean() - 5.005).abs() < 1e-9);
        assert_eq!(t.max(), 10.0);
        let near = |got: f64, want: f64| (got / want - 1.0).abs() < 0.1;
        assert!(near(t.quantile(0.5), 5.0), "{}", t.quantile(0.5));
        assert!(near(t.quantile(0.95), 9.5), "{}", t.quantile(0.95));
        t.record(f64::NAN);
        t.record(-3.0);
        assert_eq!(t.count(), 1002);
    }
}
