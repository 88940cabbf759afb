//! Annex B / AVCC framing and emulation prevention, from H.264 Annex B and 7.4.1.

use framecast_h264::nal::*;
use framecast_h264::rbsp::{ebsp_to_rbsp, rbsp_to_ebsp};
use framecast_h264::H264Error;
use proptest::prelude::*;

fn collect(data: &[u8]) -> Vec<Vec<u8>> {
    annexb_nals(data).map(<[u8]>::to_vec).collect()
}

#[test]
fn annexb_three_and_four_byte_start_codes() {
    let data = [
        0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4,
    ];
    assert_eq!(
        collect(&data),
        [vec![0x67, 1, 2], vec![0x68, 3], vec![0x65, 4]]
    );
}

#[test]
fn annexb_leading_and_trailing_zeros() {
    // leading_zero_8bits, then trailing_zero_8bits after the last NAL and between NALs.
    let data = [
        0, 0, 0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 0, 0, 1, 0x67, 0x42, 0, 0, 0,
    ];
    assert_eq!(collect(&data), [vec![0x09, 0xf0], vec![0x67, 0x42]]);
}

#[test]
fn annexb_garbage_before_first_start_code_is_ignored() {
    let data = [0xff, 0x12, 0x01, 0x00, 0x01, 0, 0, 1, 0x41, 0x9a];
    assert_eq!(collect(&data), [vec![0x41, 0x9a]]);
}

#[test]
fn annexb_empty_and_degenerate_inputs() {
    assert!(collect(&[]).is_empty());
    assert!(collect(&[0, 0, 1]).is_empty());
    assert!(collect(&[0, 0, 0, 0]).is_empty());
    assert!(collect(&[0x67, 0x42]).is_empty(), "no start code at all");
    // Empty NALs (back-to-back start codes) are skipped.
    assert_eq!(collect(&[0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0x68]), [vec![0x68]]);
}

#[test]
fn annexb_emulation_prevented_payload_is_kept_whole() {
    let data = [0, 0, 1, 0x67, 0, 0, 3, 1, 0, 0, 3, 0, 0x80];
    assert_eq!(collect(&data), [vec![0x67, 0, 0, 3, 1, 0, 0, 3, 0, 0x80]]);
}

#[test]
fn nal_types() {
    assert_eq!(nal_type(&[]), None);
    assert_eq!(nal_type(&[0x67]), Some(NalType::Sps));
    assert_eq!(nal_type(&[0x68]), Some(NalType::Pps));
    assert_eq!(nal_type(&[0x65]), Some(NalType::IdrSlice));
    assert_eq!(nal_type(&[0x41]), Some(NalType::NonIdrSlice));
    assert_eq!(nal_type(&[0x06]), Some(NalType::Sei));
    assert_eq!(nal_type(&[0x09]), Some(NalType::Aud));
    assert_eq!(nal_type(&[0x0c]), Some(NalType::Filler));
    assert_eq!(nal_type(&[0x14]), Some(NalType::Other(20)));
    for t in 0..32u8 {
        let ty = NalType::from_header(0x60 | t);
        assert_eq!(ty.to_u8(), t);
        assert_eq!(ty.is_vcl(), (1..=5).contains(&t), "type {t}");
    }
}

#[test]
fn avcc_length_sizes() {
    let nals: [&[u8]; 2] = [&[0x67, 1, 2], &[0x68]];
    for (ls, data) in [
        (1u8, vec![3, 0x67, 1, 2, 1, 0x68]),
        (2, vec![0, 3, 0x67, 1, 2, 0, 1, 0x68]),
        (4, vec![0, 0, 0, 3, 0x67, 1, 2, 0, 0, 0, 1, 0x68]),
    ] {
        let got: Vec<&[u8]> = avcc_nals(&data, ls).map(Result::unwrap).collect();
        assert_eq!(got, nals, "length size {ls}");
        let mut annexb = Vec::new();
        write_annexb(nals, &mut annexb);
        assert_eq!(annexb_to_avcc(&annexb, ls).unwrap(), data);
        assert_eq!(avcc_to_annexb(&data, ls).unwrap(), annexb);
    }
}

#[test]
fn avcc_errors() {
    // Truncated length prefix.
    let mut it = avcc_nals(&[0, 0, 0, 1, 0x68, 0, 0], 4);
    assert_eq!(it.next(), Some(Ok(&[0x68][..])));
    assert_eq!(
        it.next(),
        Some(Err(H264Error::TruncatedLengthPrefix { needed: 4, left: 2 }))
    );
    assert_eq!(it.next(), None, "stops after the first error");
    // Length past the end.
    let err = avcc_nals(&[0, 9, 0x67, 1], 2).next().unwrap().unwrap_err();
    assert_eq!(err, H264Error::NalLengthExceedsData { len: 9, left: 2 });
    assert_eq!(
        err.to_string(),
        "AVCC NAL length 9 exceeds the 2 bytes left"
    );
    // Invalid length sizes.
    for ls in [0u8, 3, 5, 8] {
        assert_eq!(
            avcc_nals(&[1, 2, 3], ls).next(),
            Some(Err(H264Error::InvalidLengthSize(ls)))
        );
        assert!(annexb_to_avcc(&[0, 0, 1, 0x68], ls).is_err());
        assert!(avcc_to_annexb(&[1, 0x68], ls).is_err());
    }
    assert_eq!(avcc_nals(&[], 4).count(), 0);
    assert!(avcc_to_annexb(&[0, 0, 0, 5, 0x65], 4).is_err());
}

#[test]
fn annexb_to_avcc_rejects_nal_too_long_for_length_size() {
    let mut data = vec![0, 0, 1, 0x65];
    data.extend(std::iter::repeat_n(0x11, 300));
    assert_eq!(
        annexb_to_avcc(&data, 1),
        Err(H264Error::NalTooLongForLengthSize {
            len: 301,
            length_size: 1
        })
    );
    assert!(annexb_to_avcc(&data, 2).is_ok());
}

#[test]
fn emulation_prevention_known_answers() {
    // 7.4.1: 00 00 0x (x <= 3) gets a 03 inserted before x.
    assert_eq!(rbsp_to_ebsp(&[0, 0, 0]), [0, 0, 3, 0]);
    assert_eq!(rbsp_to_ebsp(&[0, 0, 1]), [0, 0, 3, 1]);
    assert_eq!(rbsp_to_ebsp(&[0, 0, 2]), [0, 0, 3, 2]);
    assert_eq!(rbsp_to_ebsp(&[0, 0, 3]), [0, 0, 3, 3]);
    assert_eq!(rbsp_to_ebsp(&[0, 0, 4]), [0, 0, 4]);
    assert_eq!(rbsp_to_ebsp(&[0, 0, 0, 0]), [0, 0, 3, 0, 0, 3]);
    // Trailing 00 00 (cabac_zero_word) is protected by a final 03.
    assert_eq!(rbsp_to_ebsp(&[0x80, 0, 0]), [0x80, 0, 0, 3]);
    assert_eq!(ebsp_to_rbsp(&[0x80, 0, 0, 3]).as_ref(), [0x80, 0, 0]);
    assert_eq!(rbsp_to_ebsp(&[]), Vec::<u8>::new());
    // Borrowed when there is nothing to remove.
    assert!(matches!(
        ebsp_to_rbsp(&[1, 0, 0, 4]),
        std::borrow::Cow::Borrowed(_)
    ));
    // 00 00 03 03: only the first 03 is an escape.
    assert_eq!(ebsp_to_rbsp(&[0, 0, 3, 3]).as_ref(), [0, 0, 3]);
}

/// An EBSP NAL unit: a non-zero header and an RBSP that ends with a stop bit (so a non-zero
/// last byte), as every real NAL unit has.
fn nal_strategy() -> impl Strategy<Value = Vec<u8>> {
    (
        1u8..=255,
        proptest::collection::vec(any::<u8>(), 0..64),
        1u8..=255,
    )
        .prop_map(|(header, body, last)| {
            let mut rbsp = body;
            rbsp.push(last);
            let mut nal = vec![header & 0x7f | 1];
            nal.extend(rbsp_to_ebsp(&rbsp));
            nal
        })
}

proptest! {
    #[test]
    fn annexb_avcc_round_trip(nals in proptest::collection::vec(nal_strategy(), 0..8), ls in prop_oneof![Just(1u8), Just(2), Just(4)]) {
        let mut annexb = Vec::new();
        write_annexb(nals.iter().map(|n| &n[..]), &mut annexb);
        prop_assert_eq!(collect(&annexb), nals.clone());
        let avcc = annexb_to_avcc(&annexb, ls).unwrap();
        let back: Vec<Vec<u8>> = avcc_nals(&avcc, ls).map(|n| n.unwrap().to_vec()).collect();
        prop_assert_eq!(&back, &nals);
        prop_assert_eq!(avcc_to_annexb(&avcc, ls).unwrap(), annexb);
    }

    #[test]
    fn ebsp_round_trip(x in proptest::collection::vec(prop_oneof![Just(0u8), Just(1), Just(2), Just(3), any::<u8>()], 0..200)) {
        let ebsp = rbsp_to_ebsp(&x);
        let back = ebsp_to_rbsp(&ebsp);
        prop_assert_eq!(back.as_ref(), &x[..]);
    }

    #[test]
    fn ebsp_has_no_start_code_emulation(x in proptest::collection::vec(prop_oneof![Just(0u8), Just(1), Just(2), Just(3), any::<u8>()], 0..200)) {
        let ebsp = rbsp_to_ebsp(&x);
        for w in ebsp.windows(3) {
            prop_assert!(!(w[0] == 0 && w[1] == 0 && w[2] <= 2), "{:02x?} in {:02x?}", w, ebsp);
        }
        // Every 00 00 03 is an escape: removing exactly those gives back the input.
        let escapes = ebsp.windows(3).filter(|w| w == &[0, 0, 3]).count();
        prop_assert_eq!(ebsp.len(), x.len() + escapes);
        prop_assert!(ebsp.len() < 2 || ebsp[ebsp.len() - 2..] != [0, 0], "ends with 00 00");
    }

    #[test]
    fn parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256), ls in 0u8..6) {
        let _ = annexb_nals(&data).count();
        let _ = avcc_nals(&data, ls).count();
        let _ = annexb_to_avcc(&data, ls);
        let _ = avcc_to_annexb(&data, ls);
        let _ = ebsp_to_rbsp(&data);
    }
}
