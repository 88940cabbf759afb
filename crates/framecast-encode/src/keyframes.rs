//! The keyframe cadence every backend shares: the first frame, forced frames, and every
//! `interval` frames since the last IDR.

/// Decides which frames are IDRs: the first, forced ones, and every `interval` frames since
/// the last IDR.
#[derive(Debug, Clone)]
pub(crate) struct KeyframeScheduler {
    pub interval: u32,
    pub since_idr: Option<u32>,
}

impl KeyframeScheduler {
    pub fn decide(&mut self, forced: bool) -> bool {
        match self.since_idr {
            None => true,
            Some(n) => forced || (self.interval > 0 && n >= self.interval),
        }
    }
    pub fn record(&mut self, keyframe: bool) {
        self.since_idr = Some(if keyframe {
            1
        } else {
            self.since_idr.unwrap_or(0) + 1
        });
    }
}
