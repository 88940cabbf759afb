#![no_main]
//! rewrite_sps never panics; whenever it succeeds, the output parses and says the requested
//! max_num_reorder_frames, frame_num gap flag and colour.

use framecast_h264::sps::{SpsRewrite, parse_sps, rewrite_sps};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first 8 bytes choose the rewrite parameters; the rest is the SPS NAL.
    if data.len() < 9 {
        return;
    }
    let (p, nal) = data.split_at(8);
    let rewrite = SpsRewrite {
        display_size: (p[0] & 1 == 1)
            .then(|| (u32::from(p[1]) * 16 + u32::from(p[2] & 15), u32::from(p[3]) * 8 + u32::from(p[2] >> 4))),
        video_full_range_flag: p[0] & 2 != 0,
        colour_primaries: p[4],
        transfer_characteristics: p[5],
        matrix_coefficients: p[6],
        max_dec_frame_buffering: (p[0] & 4 != 0).then_some(u32::from(p[7] & 31)),
        // B-frames: 0 (none) most of the time, up to 3 otherwise.
        max_num_reorder_frames: u32::from((p[0] >> 3) & 3),
        gaps_in_frame_num_allowed: match (p[0] >> 5) & 3 {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        },
    };
    if let Ok(out) = rewrite_sps(nal, &rewrite) {
        let info = parse_sps(&out).expect("rewritten SPS parses");
        let vui = info.vui.expect("rewritten SPS has a VUI");
        let b = vui.bitstream_restriction.expect("bitstream restriction present");
        assert_eq!(b.max_num_reorder_frames, rewrite.max_num_reorder_frames);
        assert!(b.max_dec_frame_buffering >= b.max_num_reorder_frames);
        if let Some(gaps) = rewrite.gaps_in_frame_num_allowed {
            assert_eq!(info.gaps_in_frame_num_allowed, gaps);
        }
        let c = vui.colour.expect("colour description present");
        assert_eq!(
            (c.colour_primaries, c.transfer_characteristics, c.matrix_coefficients),
            (p[4], p[5], p[6])
        );
        assert_eq!(vui.video_full_range_flag, rewrite.video_full_range_flag);
        if let Some((w, h)) = rewrite.display_size {
            assert!(info.width >= w && info.height >= h);
        }
        // Idempotent.
        assert_eq!(rewrite_sps(&out, &rewrite).expect("rewrite of rewrite"), out);
    }
});
