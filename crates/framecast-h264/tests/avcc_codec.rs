//! Codec strings and avcC records, checked against what ffmpeg 5.1 writes into MP4.

mod common;

use common::{fixtures, hex};
use framecast_h264::avcc::AvcDecoderConfig;
use framecast_h264::codec::{codec_string, codec_string_from_parts};
use framecast_h264::nal::annexb_nals;
use framecast_h264::H264Error;

#[test]
fn codec_strings_known_answers() {
    for f in fixtures() {
        assert_eq!(
            codec_string(&f.sps()).unwrap(),
            f.expect.codec,
            "{}",
            f.name
        );
    }
    assert_eq!(codec_string_from_parts(0x42, 0xe0, 0x1f), "avc1.42E01F");
    assert_eq!(codec_string_from_parts(100, 0, 40), "avc1.640028");
    assert_eq!(codec_string_from_parts(0, 0, 0), "avc1.000000");
    assert!(matches!(
        codec_string(&hex("68ebe0652c8b")),
        Err(H264Error::UnexpectedNalType { .. })
    ));
}

/// avcC box payloads ffmpeg 5.1 wrote for `-c copy` of the fixtures into MP4.
const FFMPEG_AVCC: [(&str, &str); 4] = [
    ("baseline_1280x720", "0142c01fffe100196742c01fd9005005bb0110000003001000000303c0f183248001000668cb80652c80"),
    ("high_1920x1080", "01640028ffe1001b67640028acd940780227e5c044000003000400000300f03c60c65801000668ebe0652c8bfdf8f800"),
    ("high10_320x180", "016e000dffe1001a676e000da6cd941419f9f0110000030001000003003c0f14299601000668ebe0652c8bfdfafa00"),
    ("high444_330x250", "01f4000dffe1001b67f4000d919b282a10f3cf8088000003000800000301e078a14cb001000768ebe065112110fff8f800"),
];

#[test]
fn avcc_matches_ffmpeg() {
    for (name, want) in FFMPEG_AVCC {
        let f = fixtures().into_iter().find(|f| f.name == name).unwrap();
        let config = AvcDecoderConfig::from_parameter_sets(&f.sps(), &f.pps()).unwrap();
        assert_eq!(config.to_bytes(), hex(want), "{name}");
        let parsed = AvcDecoderConfig::parse(&hex(want)).unwrap();
        assert_eq!(parsed, config, "{name}");
    }
}

#[test]
fn avcc_round_trip_and_annexb() {
    for f in fixtures() {
        let config = AvcDecoderConfig::from_parameter_sets(&f.sps(), &f.pps()).unwrap();
        assert_eq!(config.length_size, 4);
        assert_eq!(config.profile_idc, f.expect.profile_idc);
        assert_eq!(config.level_idc, f.expect.level_idc);
        assert_eq!(AvcDecoderConfig::parse(&config.to_bytes()).unwrap(), config);
        let annexb = config.parameter_sets_annexb();
        let nals: Vec<&[u8]> = annexb_nals(&annexb).collect();
        assert_eq!(nals, [&f.sps()[..], &f.pps()[..]]);
        assert_eq!(&annexb[..4], [0, 0, 0, 1]);
    }
    let f = &fixtures()[0];
    let mut config = AvcDecoderConfig::from_parameter_sets(&f.sps(), &f.pps()).unwrap();
    config.length_size = 2;
    config.sps.push(f.sps());
    config.pps.push(f.pps());
    assert_eq!(AvcDecoderConfig::parse(&config.to_bytes()).unwrap(), config);
}

#[test]
fn avcc_parse_errors() {
    let good = hex(FFMPEG_AVCC[1].1);
    // Every truncation that cuts into the SPS/PPS part fails, naming the field.
    for cut in 0..good.len() - 4 {
        let err = AvcDecoderConfig::parse(&good[..cut]).unwrap_err();
        assert!(
            matches!(err, H264Error::AvccTruncated { .. }),
            "cut {cut}: {err}"
        );
    }
    // Without the high-profile extension (older writers) it still parses.
    let short = AvcDecoderConfig::parse(&good[..good.len() - 4]).unwrap();
    assert_eq!(short.chroma_format_idc, None);
    let mut bad = good.clone();
    bad[0] = 2;
    assert_eq!(
        AvcDecoderConfig::parse(&bad),
        Err(H264Error::AvccVersion(2))
    );
    let mut bad = good.clone();
    bad[4] = 0xfe;
    assert_eq!(
        AvcDecoderConfig::parse(&bad),
        Err(H264Error::AvccLengthSizeMinusOne(2))
    );
    let f = &fixtures()[0];
    assert!(AvcDecoderConfig::from_parameter_sets(&f.pps(), &f.sps()).is_err());
    assert!(AvcDecoderConfig::from_parameter_sets(&f.sps(), &[]).is_err());
}
