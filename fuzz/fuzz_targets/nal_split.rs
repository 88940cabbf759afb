#![no_main]
//! Annex B and AVCC splitting and conversion never panic, and round-trip where they should.

use framecast_h264::nal::{annexb_nals, annexb_to_avcc, avcc_nals, avcc_to_annexb};
use framecast_h264::rbsp::{ebsp_to_rbsp, rbsp_to_ebsp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let nals: Vec<&[u8]> = annexb_nals(data).collect();
    for nal in &nals {
        assert!(!nal.is_empty() && nal[nal.len() - 1] != 0);
    }
    for ls in [1u8, 2, 3, 4] {
        let _ = avcc_nals(data, ls).count();
        let _ = avcc_to_annexb(data, ls);
        if let Ok(avcc) = annexb_to_avcc(data, ls) {
            // Annex B -> AVCC -> Annex B -> NALs gives the same NALs.
            let back = avcc_to_annexb(&avcc, ls).expect("our own AVCC parses");
            let again: Vec<&[u8]> = annexb_nals(&back).collect();
            assert_eq!(again, nals);
        }
    }
    let rbsp = ebsp_to_rbsp(data);
    let ebsp = rbsp_to_ebsp(data);
    assert_eq!(&*ebsp_to_rbsp(&ebsp), data);
    let _ = rbsp;
});
