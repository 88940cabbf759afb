#![no_main]
//! SPS and codec string parsing never panic on garbage (the avcC reader has its own target).

use framecast_h264::codec::codec_string;
use framecast_h264::sps::parse_sps;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = parse_sps(data) {
        assert!(info.width <= info.coded_width && info.height <= info.coded_height);
        assert!(info.width > 0 && info.height > 0);
        let _ = codec_string(data).expect("parse_sps succeeded");
    }
});
