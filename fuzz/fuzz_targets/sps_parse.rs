#![no_main]
//! SPS, codec string and avcC parsing never panic on garbage.

use framecast_h264::avcc::AvcDecoderConfig;
use framecast_h264::codec::codec_string;
use framecast_h264::sps::parse_sps;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = parse_sps(data) {
        assert!(info.width <= info.coded_width && info.height <= info.coded_height);
        assert!(info.width > 0 && info.height > 0);
        let _ = codec_string(data).expect("parse_sps succeeded");
    }
    if let Ok(config) = AvcDecoderConfig::parse(data) {
        let bytes = config.to_bytes();
        let again = AvcDecoderConfig::parse(&bytes).expect("our own avcC parses");
        assert_eq!(again.sps, config.sps);
        assert_eq!(again.pps, config.pps);
        let _ = config.parameter_sets_annexb();
    }
});
