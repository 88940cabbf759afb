//! SPS parsing and rewriting against x264 fixtures (expected values from
//! `ffmpeg -bsf:v trace_headers`) and synthetic SPS written by h264-reader's own writer.

mod common;

use common::fixtures;
use framecast_h264::nal::NalType;
use framecast_h264::rbsp::{ebsp_to_rbsp, rbsp_to_ebsp};
use framecast_h264::sps::*;
use framecast_h264::H264Error;
use h264_reader::nal::sps::{
    AspectRatioInfo, ChromaLocInfo, CpbSpec, FrameCropping, HrdParameters, OverscanAppropriate,
    PicOrderCntType, ScalingLists4x4, ScalingLists8x8, SeqParameterSet, SeqScalingMatrix,
    TimingInfo,
};
use h264_reader::nal::{NalHeader, WritableNal};
use proptest::prelude::*;

fn bt709() -> SpsRewrite {
    SpsRewrite {
        display_size: None,
        video_full_range_flag: false,
        colour_primaries: 1,
        transfer_characteristics: 1,
        matrix_coefficients: 1,
        max_dec_frame_buffering: None,
        max_num_reorder_frames: 0,
        gaps_in_frame_num_allowed: None,
    }
}

#[test]
fn fixture_hex_matches_stream() {
    for f in fixtures() {
        assert_eq!(f.first(NalType::Sps), &f.sps()[..], "{}", f.name);
        assert_eq!(f.first(NalType::Pps), &f.pps()[..], "{}", f.name);
    }
}

#[test]
fn parse_fixtures_matches_ffmpeg_trace_headers() {
    for f in fixtures() {
        let e = &f.expect;
        let info = parse_sps(&f.sps()).unwrap_or_else(|err| panic!("{}: {err}", f.name));
        let n = f.name;
        assert_eq!(info.profile_idc, e.profile_idc, "{n}");
        assert_eq!(info.constraint_flags, e.constraint_flags, "{n}");
        assert_eq!(info.level_idc, e.level_idc, "{n}");
        assert_eq!(info.sps_id, 0, "{n}");
        assert_eq!(info.chroma_format_idc, e.chroma_format_idc, "{n}");
        assert_eq!(info.bit_depth_luma, e.bit_depth, "{n}");
        assert_eq!(info.bit_depth_chroma, e.bit_depth, "{n}");
        assert_eq!(info.max_num_ref_frames, e.max_num_ref_frames, "{n}");
        assert_eq!(info.frame_mbs_only, e.frame_mbs_only, "{n}");
        assert_eq!(info.pic_order_cnt_type, e.poc_type, "{n}");
        assert_eq!((info.coded_width, info.coded_height), e.coded, "{n}");
        assert_eq!((info.width, info.height), e.display, "{n}");
        assert_eq!(
            info.crop.map(|c| (c.left, c.right, c.top, c.bottom)),
            e.crop,
            "{n}"
        );
        let vui = info.vui.expect("x264 always writes a VUI");
        assert_eq!(
            vui.timing,
            Some(Timing {
                num_units_in_tick: 1,
                time_scale: 60,
                fixed_frame_rate_flag: false
            }),
            "{n}"
        );
        match e.signal {
            None => {
                assert!(!vui.video_signal_type_present, "{n}");
                assert_eq!((vui.video_format, vui.video_full_range_flag), (5, false));
                assert_eq!(vui.colour, None, "{n}");
            }
            Some((format, full, colour)) => {
                assert!(vui.video_signal_type_present, "{n}");
                assert_eq!(vui.video_format, format, "{n}");
                assert_eq!(vui.video_full_range_flag, full, "{n}");
                assert_eq!(
                    vui.colour.map(|c| (
                        c.colour_primaries,
                        c.transfer_characteristics,
                        c.matrix_coefficients
                    )),
                    colour,
                    "{n}"
                );
            }
        }
        let (mv, reorder, dpb) = e.restriction;
        assert_eq!(
            vui.bitstream_restriction,
            Some(BitstreamRestriction {
                motion_vectors_over_pic_boundaries_flag: true,
                max_bytes_per_pic_denom: 0,
                max_bits_per_mb_denom: 0,
                log2_max_mv_length_horizontal: mv,
                log2_max_mv_length_vertical: mv,
                max_num_reorder_frames: reorder,
                max_dec_frame_buffering: dpb,
            }),
            "{n}"
        );
    }
}

/// Our serialiser reproduces every fixture bit for bit, and agrees with h264-reader's writer.
#[test]
fn serialiser_is_identity_on_fixtures() {
    for f in fixtures() {
        let sps = f.sps();
        let parsed = parse_sps_full(&sps).unwrap();
        let ours = write_sps_rbsp(&parsed).unwrap();
        assert_eq!(ours, ebsp_to_rbsp(&sps[1..]).as_ref(), "{}", f.name);
        let theirs = parsed.to_vec_with_header(NalHeader::new(sps[0]).unwrap());
        assert_eq!(theirs, sps, "{}: h264-reader's writer", f.name);
    }
}

/// Blank out what the rewriter is allowed to change, so the rest can be compared whole.
fn without_rewritten_fields(mut sps: SeqParameterSet, crop_changed: bool) -> SeqParameterSet {
    if crop_changed {
        sps.frame_cropping = None;
    }
    if let Some(vui) = &mut sps.vui_parameters {
        vui.video_signal_type = None;
        if let Some(b) = &mut vui.bitstream_restrictions {
            b.max_num_reorder_frames = 0;
            b.max_dec_frame_buffering = 0;
        }
    }
    sps
}

fn check_rewrite(name: &str, nal: &[u8], rw: &SpsRewrite) -> SpsInfo {
    let before = parse_sps_full(nal).unwrap();
    let before_info = parse_sps(nal).unwrap();
    let out = rewrite_sps(nal, rw).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(out[0], nal[0], "{name}: NAL header kept");
    let after = parse_sps_full(&out).unwrap();
    let info = parse_sps(&out).unwrap();

    // (a) Everything the rewriter does not set is unchanged.
    let had_vui = before.vui_parameters.is_some();
    let had_restriction = before
        .vui_parameters
        .as_ref()
        .is_some_and(|v| v.bitstream_restrictions.is_some());
    let mut expected = without_rewritten_fields(before.clone(), rw.display_size.is_some());
    let mut got = without_rewritten_fields(after.clone(), rw.display_size.is_some());
    if !had_vui {
        // The rewriter had to add a VUI: everything in it but what it sets must be absent/default.
        let vui = got.vui_parameters.take().unwrap();
        assert_eq!(vui.aspect_ratio_info, None);
        assert_eq!(vui.overscan_appropriate, OverscanAppropriate::Unspecified);
        assert_eq!(vui.chroma_loc_info, None);
        assert_eq!(vui.timing_info, None);
        assert_eq!(vui.nal_hrd_parameters, None);
        assert_eq!(vui.vcl_hrd_parameters, None);
        assert!(!vui.pic_struct_present_flag);
    }
    if had_vui && !had_restriction {
        let b = got
            .vui_parameters
            .as_mut()
            .unwrap()
            .bitstream_restrictions
            .take()
            .unwrap();
        assert!(b.motion_vectors_over_pic_boundaries_flag);
        assert_eq!((b.max_bytes_per_pic_denom, b.max_bits_per_mb_denom), (2, 1));
        assert_eq!(b.log2_max_mv_length_horizontal, 15);
        assert_eq!(b.log2_max_mv_length_vertical, 15);
    }
    if !had_vui {
        expected.vui_parameters = None;
    }
    assert_eq!(got, expected, "{name}: preserved fields");

    // (b) What it sets.
    let vui = info.vui.clone().unwrap();
    assert!(vui.video_signal_type_present);
    let old_format = before_info
        .vui
        .as_ref()
        .filter(|v| v.video_signal_type_present)
        .map_or(5, |v| v.video_format);
    assert_eq!(vui.video_format, old_format, "{name}");
    assert_eq!(vui.video_full_range_flag, rw.video_full_range_flag);
    assert_eq!(
        vui.colour,
        Some(ColourDescription {
            colour_primaries: rw.colour_primaries,
            transfer_characteristics: rw.transfer_characteristics,
            matrix_coefficients: rw.matrix_coefficients,
        })
    );
    let b = vui.bitstream_restriction.unwrap();
    assert_eq!(b.max_num_reorder_frames, 0);
    assert_eq!(
        b.max_dec_frame_buffering,
        rw.max_dec_frame_buffering
            .unwrap_or(before.max_num_ref_frames)
    );
    match rw.display_size {
        None => {
            assert_eq!(after.frame_cropping, before.frame_cropping);
            assert_eq!(
                (info.width, info.height),
                (before_info.width, before_info.height)
            );
        }
        Some((w, h)) => {
            let (ux, uy) = before_info.crop_units();
            assert_eq!(
                (info.width, info.height),
                (w.div_ceil(ux) * ux, h.div_ceil(uy) * uy),
                "{name}: rounded up to crop units {ux}x{uy}"
            );
            assert_eq!(
                (info.width, info.height),
                representable_display_size(&before_info, w, h)
            );
            assert!(info.width >= w && info.width - w < ux);
            assert!(info.height >= h && info.height - h < uy);
        }
    }
    // Idempotent.
    assert_eq!(rewrite_sps(&out, rw).unwrap(), out, "{name}: idempotent");
    info
}

#[test]
fn rewrite_fixtures_preserves_everything_else() {
    for f in fixtures() {
        let sps = f.sps();
        let info = parse_sps(&sps).unwrap();
        check_rewrite(f.name, &sps, &bt709());
        check_rewrite(
            f.name,
            &sps,
            &SpsRewrite {
                display_size: Some((info.width - 1, info.height - 1)),
                video_full_range_flag: true,
                colour_primaries: 9,
                transfer_characteristics: 16,
                matrix_coefficients: 9,
                max_dec_frame_buffering: Some(info.max_num_ref_frames),
                max_num_reorder_frames: 0,
                gaps_in_frame_num_allowed: None,
            },
        );
        check_rewrite(
            f.name,
            &sps,
            &SpsRewrite {
                display_size: Some((info.coded_width, info.coded_height)),
                ..bt709()
            },
        );
    }
}

#[test]
fn rewrite_1080p_sets_no_reordering_and_keeps_cropping() {
    let f = &fixtures()[2];
    assert_eq!(f.name, "high_1920x1080");
    let out = rewrite_sps(&f.sps(), &bt709()).unwrap();
    let info = parse_sps(&out).unwrap();
    assert_eq!((info.width, info.height), (1920, 1080));
    let vui = info.vui.unwrap();
    let b = vui.bitstream_restriction.unwrap();
    assert_eq!(
        (b.max_num_reorder_frames, b.max_dec_frame_buffering),
        (0, 4)
    );
    assert_eq!(
        b.log2_max_mv_length_horizontal, 11,
        "existing mv fields kept"
    );
}

#[test]
fn odd_display_sizes_round_up_to_crop_units() {
    let by_name = |n: &str| fixtures().into_iter().find(|f| f.name == n).unwrap().sps();
    // (fixture, requested, expected): 4:2:0 progressive has 2x2 crop units, 4:2:0 interlaced
    // 2x4, 4:2:2 2x1, 4:4:4 and monochrome 1x1.
    for (name, req, want) in [
        ("baseline_1280x720", (33, 17), (34, 18)),
        ("baseline_1280x720", (641, 359), (642, 360)),
        ("high_interlaced_320x240", (319, 237), (320, 240)),
        ("high_interlaced_320x240", (33, 17), (34, 20)),
        ("high422_330x250", (33, 17), (34, 17)),
        ("high444_330x250", (33, 17), (33, 17)),
        ("high_gray_200x100", (33, 17), (33, 17)),
    ] {
        let sps = by_name(name);
        let info = parse_sps(&sps).unwrap();
        assert_eq!(
            representable_display_size(&info, req.0, req.1),
            want,
            "{name}"
        );
        let out = rewrite_sps(
            &sps,
            &SpsRewrite {
                display_size: Some(req),
                ..bt709()
            },
        )
        .unwrap();
        let after = parse_sps(&out).unwrap();
        assert_eq!((after.width, after.height), want, "{name} {req:?}");
        let crop = after.crop.unwrap();
        assert_eq!((crop.left, crop.top), (0, 0), "anchored top-left");
    }
}

#[test]
fn rewrite_errors() {
    let f = &fixtures()[0]; // baseline 1280x720, 3 ref frames
    let sps = f.sps();
    for size in [(1281, 720), (1280, 721), (0, 720), (16, 0)] {
        let err = rewrite_sps(
            &sps,
            &SpsRewrite {
                display_size: Some(size),
                ..bt709()
            },
        )
        .unwrap_err();
        assert!(
            matches!(err, H264Error::DisplaySizeNotRepresentable { width, height, .. } if (width, height) == size),
            "{err}"
        );
        assert!(err.to_string().contains(&format!("{}x{}", size.0, size.1)));
    }
    let err = rewrite_sps(
        &sps,
        &SpsRewrite {
            max_dec_frame_buffering: Some(2),
            max_num_reorder_frames: 0,
            gaps_in_frame_num_allowed: None,
            ..bt709()
        },
    )
    .unwrap_err();
    assert_eq!(
        err,
        H264Error::DecFrameBufferingTooSmall {
            requested: 2,
            max_num_ref_frames: 3
        }
    );
    // Level 3.1 at 720p allows MaxDpbFrames = min(18000 / 3600, 16) = 5.
    assert!(rewrite_sps(
        &sps,
        &SpsRewrite {
            max_dec_frame_buffering: Some(5),
            max_num_reorder_frames: 0,
            gaps_in_frame_num_allowed: None,
            ..bt709()
        }
    )
    .is_ok());
    let err = rewrite_sps(
        &sps,
        &SpsRewrite {
            max_dec_frame_buffering: Some(6),
            max_num_reorder_frames: 0,
            gaps_in_frame_num_allowed: None,
            ..bt709()
        },
    )
    .unwrap_err();
    assert!(matches!(err, H264Error::RewriteInvalid(_)), "{err}");

    // Not an SPS, empty, truncated, garbage.
    assert!(matches!(
        rewrite_sps(&f.pps(), &bt709()),
        Err(H264Error::UnexpectedNalType { .. })
    ));
    assert_eq!(parse_sps(&[]), Err(H264Error::EmptyNal));
    for cut in 1..sps.len() - 1 {
        assert!(parse_sps(&sps[..cut]).is_err(), "truncated at {cut}");
        assert!(rewrite_sps(&sps[..cut], &bt709()).is_err());
    }
    assert!(parse_sps(&[0x67, 0xff, 0xff, 0xff, 0xff]).is_err());
}

#[test]
fn bit_writer_reader_round_trip() {
    use framecast_h264::rbsp::{BitReader, BitWriter};
    let ues = [0u32, 1, 2, 3, 7, 8, 255, 65535, 1 << 31, u32::MAX - 1];
    let ses = [0i32, 1, -1, 2, -2, 127, -128, i32::MAX, i32::MIN + 1];
    let mut w = BitWriter::new();
    for &v in &ues {
        w.write_ue(v);
    }
    for &v in &ses {
        w.write_se(v);
    }
    w.write_bits(0x5a5a_5a5a, 32);
    w.write_flag(true);
    w.write_rbsp_trailing_bits();
    assert!(w.is_byte_aligned());
    let bytes = w.into_bytes();
    let mut r = BitReader::new(&bytes);
    for &v in &ues {
        assert_eq!(r.read_ue().unwrap(), v);
    }
    for &v in &ses {
        assert_eq!(r.read_se().unwrap(), v);
    }
    assert_eq!(r.read_bits(32).unwrap(), 0x5a5a_5a5a);
    assert!(r.read_flag().unwrap());
    assert!(!r.more_rbsp_data());
    assert!(r.read_flag().unwrap(), "stop bit");
    assert!(r.bits_left() < 8);
    assert!(r.read_bits(8).is_err());
    // Known exp-Golomb codes (H.264 Table 9-2): 3 -> 00100, -2 -> 00101.
    let mut w = BitWriter::new();
    w.write_ue(3);
    w.write_se(-2);
    assert_eq!(w.bit_len(), 10);
    assert_eq!(w.into_bytes(), [0b0010_0001, 0b0100_0000]);
    // 32 leading zeros is more than any ue(v) may have.
    assert!(BitReader::new(&[0, 0, 0, 0, 0x80]).read_ue().is_err());
}

/// A synthetic SPS written by h264-reader's writer (independent of ours).
fn synthetic(edit: impl FnOnce(&mut SeqParameterSet)) -> Vec<u8> {
    let base = fixtures()
        .into_iter()
        .find(|f| f.name == "high_hrd_cbr_640x360")
        .unwrap()
        .sps();
    let mut sps = parse_sps_full(&base).unwrap();
    edit(&mut sps);
    sps.to_vec_with_header(NalHeader::new(0x67).unwrap())
}

fn explicit_lists() -> SeqScalingMatrix {
    let mut l4 = [None; 6];
    l4[0] = Some([0u8; 16]); // "use default" (first delta brings nextScale to 0)
    let mut ramp = [0u8; 16];
    for (i, v) in ramp.iter_mut().enumerate() {
        *v = 4 + 15 * i as u8; // full list, deltas of 15 (and -4 first)
    }
    l4[2] = Some(ramp);
    let mut short = [0u8; 16];
    short[..3].copy_from_slice(&[20, 255, 1]); // big jumps, then "repeat the rest"
    l4[5] = Some(short);
    let mut l8 = [None; 2];
    let mut down = [0u8; 64];
    for (i, v) in down.iter_mut().enumerate() {
        *v = 250 - 3 * i as u8;
    }
    l8[1] = Some(down);
    SeqScalingMatrix {
        scaling_lists4x4: ScalingLists4x4(l4),
        scaling_lists8x8: ScalingLists8x8::Y(l8),
    }
}

#[test]
fn synthetic_sps_round_trip_through_rewrite() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "poc type 1",
            synthetic(|s| {
                s.pic_order_cnt = PicOrderCntType::TypeOne {
                    delta_pic_order_always_zero_flag: false,
                    offset_for_non_ref_pic: -7,
                    offset_for_top_to_bottom_field: 3,
                    offsets_for_ref_frame: vec![1, -2, 300, -40000],
                };
            }),
        ),
        (
            "poc type 2",
            synthetic(|s| s.pic_order_cnt = PicOrderCntType::TypeTwo),
        ),
        (
            "scaling matrices",
            synthetic(|s| {
                s.chroma_info.scaling_matrix = Some(Box::new(explicit_lists()));
            }),
        ),
        (
            "nal+vcl hrd, aspect, overscan, chroma loc",
            synthetic(|s| {
                let vui = s.vui_parameters.as_mut().unwrap();
                vui.aspect_ratio_info = Some(AspectRatioInfo::Extended(64, 45));
                vui.overscan_appropriate = OverscanAppropriate::Inappropriate;
                vui.chroma_loc_info = Some(ChromaLocInfo {
                    chroma_sample_loc_type_top_field: 2,
                    chroma_sample_loc_type_bottom_field: 3,
                });
                let hrd = HrdParameters {
                    bit_rate_scale: 3,
                    cpb_size_scale: 5,
                    cpb_specs: vec![
                        CpbSpec {
                            bit_rate_value_minus1: 1000,
                            cpb_size_value_minus1: 2000,
                            cbr_flag: false,
                        },
                        CpbSpec {
                            bit_rate_value_minus1: 99999,
                            cpb_size_value_minus1: 0,
                            cbr_flag: true,
                        },
                    ],
                    initial_cpb_removal_delay_length_minus1: 23,
                    cpb_removal_delay_length_minus1: 31,
                    dpb_output_delay_length_minus1: 4,
                    time_offset_length: 24,
                };
                vui.vcl_hrd_parameters = Some(hrd);
                vui.low_delay_hrd_flag = Some(true);
                vui.pic_struct_present_flag = true;
            }),
        ),
        ("no VUI", synthetic(|s| s.vui_parameters = None)),
        (
            "VUI without bitstream restriction",
            synthetic(|s| {
                s.vui_parameters.as_mut().unwrap().bitstream_restrictions = None;
            }),
        ),
        (
            "zeros that need emulation prevention",
            synthetic(|s| {
                // 32-bit zero fields make long zero runs in the RBSP.
                s.vui_parameters.as_mut().unwrap().timing_info = Some(TimingInfo {
                    num_units_in_tick: 0,
                    time_scale: 0x0000_0100,
                    fixed_frame_rate_flag: true,
                });
                s.frame_cropping = Some(FrameCropping {
                    left_offset: 0,
                    right_offset: 0,
                    top_offset: 0,
                    bottom_offset: 4,
                });
            }),
        ),
    ];
    for (name, nal) in cases {
        let identity = write_sps_rbsp(&parse_sps_full(&nal).unwrap()).unwrap();
        assert_eq!(
            identity,
            ebsp_to_rbsp(&nal[1..]).as_ref(),
            "{name}: identity"
        );
        for rw in [
            bt709(),
            SpsRewrite {
                display_size: Some((601, 333)),
                video_full_range_flag: true,
                colour_primaries: 0,
                transfer_characteristics: 0,
                matrix_coefficients: 0,
                max_dec_frame_buffering: Some(5),
                max_num_reorder_frames: 0,
                gaps_in_frame_num_allowed: None,
            },
        ] {
            check_rewrite(name, &nal, &rw);
        }
    }
}

#[test]
fn emulation_prevention_in_rewritten_sps() {
    let nal = synthetic(|s| {
        s.vui_parameters.as_mut().unwrap().timing_info = Some(TimingInfo {
            num_units_in_tick: 0,
            time_scale: 0,
            fixed_frame_rate_flag: false,
        });
    });
    let out = rewrite_sps(
        &nal,
        &SpsRewrite {
            colour_primaries: 0,
            transfer_characteristics: 0,
            matrix_coefficients: 0,
            ..bt709()
        },
    )
    .unwrap();
    let escapes = out.windows(3).filter(|w| *w == [0, 0, 3]).count();
    assert!(escapes >= 2, "expected escapes in {out:02x?}");
    for w in out.windows(3) {
        assert!(!(w[0] == 0 && w[1] == 0 && w[2] <= 2), "{out:02x?}");
    }
    let rbsp = ebsp_to_rbsp(&out[1..]);
    assert_eq!(rbsp_to_ebsp(&rbsp), &out[1..]);
    let vui = parse_sps(&out).unwrap().vui.unwrap();
    assert_eq!(vui.timing.unwrap().time_scale, 0);
    assert_eq!(vui.colour.unwrap(), ColourDescription::default());
}

fn rewrite_strategy() -> impl Strategy<Value = (usize, SpsRewrite)> {
    (
        0..fixtures().len(),
        proptest::option::of((1u32..=2000, 1u32..=1200)),
        any::<bool>(),
        any::<[u8; 3]>(),
        proptest::option::of(0u32..=20),
    )
        .prop_map(|(i, size, full, [p, t, m], dpb)| {
            (
                i,
                SpsRewrite {
                    display_size: size,
                    video_full_range_flag: full,
                    colour_primaries: p,
                    transfer_characteristics: t,
                    matrix_coefficients: m,
                    max_dec_frame_buffering: dpb,
                    max_num_reorder_frames: 0,
                    gaps_in_frame_num_allowed: None,
                },
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn rewrite_preserves_everything_else((i, rw) in rewrite_strategy()) {
        let f = &fixtures()[i];
        let sps = f.sps();
        let info = parse_sps(&sps).unwrap();
        let fits = rw.display_size.is_none_or(|(w, h)| w <= info.coded_width && h <= info.coded_height);
        let dpb_ok = rw.max_dec_frame_buffering.is_none_or(|d| d >= info.max_num_ref_frames);
        match rewrite_sps(&sps, &rw) {
            Ok(_) => {
                prop_assert!(fits && dpb_ok);
                check_rewrite(f.name, &sps, &rw);
            }
            Err(H264Error::RewriteInvalid(_)) => {
                // Only a DPB size above the level's MaxDpbFrames may be refused this way.
                prop_assert!(fits && dpb_ok && rw.max_dec_frame_buffering.is_some());
            }
            Err(e) => prop_assert!(!fits || !dpb_ok, "{}", e),
        }
    }

    #[test]
    fn parse_and_rewrite_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut nal = vec![0x67];
        nal.extend(&data);
        let _ = parse_sps(&nal);
        let _ = rewrite_sps(&nal, &bt709());
    }
}
