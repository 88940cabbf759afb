#![no_main]
//! The slice-header reader (long-term references, for recovery without a keyframe) never
//! panics on any access unit, with or without parameter sets before it, and what it reports
//! is consistent: frame_num below MaxFrameNum, marks within it too.

use framecast_h264::slice::RefReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut reader = RefReader::new();
    // The input may hold several access units; feed it whole and then split at its middle
    // (parameter sets learned from the first half apply to the second).
    for part in [data, &data[..data.len() / 2], &data[data.len() / 2..]] {
        if let Ok(Some(refs)) = reader.read_annexb(part) {
            assert!(u32::from(refs.frame_num) < refs.max_frame_num);
            for m in &refs.long_term_marks {
                assert!(u32::from(m.frame_num) < refs.max_frame_num);
            }
        }
    }
});
