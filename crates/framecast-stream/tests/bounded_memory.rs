//! The core holds no more memory after 100,000 frames than after 1,000 (stats off, the
//! library default). Before the hardening issue, every send and every ack added an entry to
//! per-viewer windows that only stats or `/metrics` pruned: this test measured ~5 MB of
//! growth then. It counts live heap bytes with a wrapping global allocator (this file is its
//! own test binary, and runs its one test alone).

use bytes::Bytes;
use framecast_stream::protocol::{client, CAP_H264_ANNEXB};
use framecast_stream::session::{Action, EncodedFrame, FrameInfo, SessionConfig, StreamCore};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: as for `dealloc` and `alloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Run `frames` frames at 240 fps for the viewers, who ack every payload at once.
fn run(core: &mut StreamCore, from: u64, frames: u64, payload: &Bytes) {
    for id in from..from + frames {
        let now = Duration::from_micros(id * 4167);
        core.publish(
            FrameInfo {
                id,
                width: 64,
                height: 48,
                timestamp_us: now.as_micros() as u64,
            },
            now,
        );
        while let Some(a) = core.poll_action() {
            match a {
                Action::Encode(job) => core.encode_done(
                    job.group,
                    job.job,
                    Ok(EncodedFrame {
                        data: payload.clone(),
                        keyframe: job.force_keyframe,
                        codec: None,
                        mime: None,
                        width: 64,
                        height: 48,
                        encode_ms: 1.0,
                        recovery_from: None,
                    }),
                    now,
                ),
                Action::SendPayload { viewer, seq, .. } => {
                    core.handle_text(viewer, &client::ack(seq, 0), now)
                }
                _ => {}
            }
        }
        core.handle_timeout(now);
    }
}

#[test]
fn windows_stay_bounded_with_stats_off() {
    let config = SessionConfig::default();
    assert!(config.stats_interval.is_none(), "the default is stats off");
    let mut core = StreamCore::new(config);
    for viewer in [1, 2] {
        core.add_viewer(viewer, vec![CAP_H264_ANNEXB.into()], Duration::ZERO)
            .unwrap();
    }
    let payload = Bytes::from(vec![0u8; 1000]);
    run(&mut core, 1, 1_000, &payload);
    let warm = LIVE.load(Ordering::Relaxed);
    run(&mut core, 1_001, 99_000, &payload);
    let after = LIVE.load(Ordering::Relaxed);
    let m = core.metrics(Duration::from_micros(100_000 * 4167));
    assert_eq!(m.viewers.len(), 2);
    assert!(m.viewers.iter().all(|v| v.frames_acked == 100_000), "{m:?}");
    let grown = after - warm;
    assert!(
        grown < 4096,
        "the core grew by {grown} bytes over 99,000 frames (from {warm} to {after})"
    );
}
