#![no_main]
//! The avcC (AVCDecoderConfigurationRecord) reader never panics, and what it accepts
//! re-serialises to a record that parses to the same parameter sets.

use framecast_h264::avcc::AvcDecoderConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(config) = AvcDecoderConfig::parse(data) {
        let bytes = config.to_bytes();
        let again = AvcDecoderConfig::parse(&bytes).expect("our own avcC parses");
        assert_eq!(again.sps, config.sps);
        assert_eq!(again.pps, config.pps);
        assert_eq!(again.length_size, config.length_size);
        let _ = config.parameter_sets_annexb();
    }
});
