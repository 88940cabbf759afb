//! Fixture streams (x264 via ffmpeg 5.1, see fixtures/generate.sh) and what
//! `ffmpeg -bsf:v trace_headers` printed for their SPS.
#![allow(dead_code)]

use framecast_h264::nal::{annexb_nals, nal_type, NalType};

pub struct Fixture {
    pub name: &'static str,
    pub stream: &'static [u8],
    /// SPS NAL (header byte + EBSP) as hex, as extracted from the stream.
    pub sps_hex: &'static str,
    pub pps_hex: &'static str,
    pub expect: Expect,
}

/// (video_format, video_full_range_flag, Some((primaries, transfer, matrix)))
pub type Signal = (u8, bool, Option<(u8, u8, u8)>);

/// Values from `ffmpeg -bsf:v trace_headers` for the fixture's SPS.
pub struct Expect {
    pub profile_idc: u8,
    pub constraint_flags: u8,
    pub level_idc: u8,
    pub chroma_format_idc: u32,
    pub bit_depth: u8,
    pub max_num_ref_frames: u32,
    pub frame_mbs_only: bool,
    pub poc_type: u32,
    pub coded: (u32, u32),
    pub display: (u32, u32),
    /// (left, right, top, bottom)
    pub crop: Option<(u32, u32, u32, u32)>,
    /// (video_format, full_range, Some((primaries, transfer, matrix)))
    pub signal: Option<Signal>,
    /// (log2_max_mv_length, max_num_reorder_frames, max_dec_frame_buffering)
    pub restriction: (u32, u32, u32),
    pub codec: &'static str,
}

macro_rules! fixture {
    ($name:literal, $sps:literal, $pps:literal, $expect:expr) => {
        Fixture {
            name: $name,
            stream: include_bytes!(concat!("../fixtures/", $name, ".h264")),
            sps_hex: $sps,
            pps_hex: $pps,
            expect: $expect,
        }
    };
}

const E: Expect = Expect {
    profile_idc: 100,
    constraint_flags: 0,
    level_idc: 13,
    chroma_format_idc: 1,
    bit_depth: 8,
    max_num_ref_frames: 4,
    frame_mbs_only: true,
    poc_type: 0,
    coded: (0, 0),
    display: (0, 0),
    crop: None,
    signal: None,
    restriction: (9, 2, 4),
    codec: "",
};

pub fn fixtures() -> Vec<Fixture> {
    vec![
        fixture!(
            "baseline_1280x720",
            "6742c01fd9005005bb0110000003001000000303c0f1832480",
            "68cb80652c80",
            Expect {
                profile_idc: 66,
                constraint_flags: 0xc0,
                level_idc: 31,
                max_num_ref_frames: 3,
                poc_type: 2,
                coded: (1280, 720),
                display: (1280, 720),
                restriction: (11, 0, 3),
                codec: "avc1.42C01F",
                ..E
            }
        ),
        fixture!(
            "main_642x362",
            "674d401eeca05217f1126022000003000200000300781e2c5b2c",
            "68ebe0652c80",
            Expect {
                profile_idc: 77,
                constraint_flags: 0x40,
                level_idc: 30,
                coded: (656, 368),
                display: (642, 362),
                crop: Some((0, 7, 0, 3)),
                restriction: (10, 2, 4),
                codec: "avc1.4D401E",
                ..E
            }
        ),
        fixture!(
            "high_1920x1080",
            "67640028acd940780227e5c044000003000400000300f03c60c658",
            "68ebe0652c8b",
            Expect {
                level_idc: 40,
                coded: (1920, 1088),
                display: (1920, 1080),
                crop: Some((0, 0, 0, 4)),
                restriction: (11, 2, 4),
                codec: "avc1.640028",
                ..E
            }
        ),
        fixture!(
            "high_bt709_tv_320x240",
            "6764000dacd94141fb016a02020280000003008000001e078a14cb",
            "68ebe0652c8b",
            Expect {
                coded: (320, 240),
                display: (320, 240),
                signal: Some((5, false, Some((1, 1, 1)))),
                codec: "avc1.64000D",
                ..E
            }
        ),
        fixture!(
            "high_full_range_320x240",
            "6764000dacd94141fb016e02020280000003008000001e078a14cb",
            "68ebe0652c8b",
            Expect {
                coded: (320, 240),
                display: (320, 240),
                signal: Some((5, true, Some((1, 1, 1)))),
                codec: "avc1.64000D",
                ..E
            }
        ),
        fixture!(
            "high_interlaced_320x240",
            "67640015acd941410fcb8088000003000800000301e0f8a14cb0",
            "68fba0652c8b",
            Expect {
                level_idc: 21,
                frame_mbs_only: false,
                coded: (320, 256),
                display: (320, 240),
                crop: Some((0, 0, 0, 4)),
                codec: "avc1.640015",
                ..E
            }
        ),
        fixture!(
            "high422_330x250",
            "677a000dbcd9415087927c0440000003004000000f03c50a6580",
            "68ebe0652c8b",
            Expect {
                profile_idc: 122,
                chroma_format_idc: 2,
                coded: (336, 256),
                display: (330, 250),
                crop: Some((0, 3, 0, 6)),
                codec: "avc1.7A000D",
                ..E
            }
        ),
        fixture!(
            "high444_330x250",
            "67f4000d919b282a10f3cf8088000003000800000301e078a14cb0",
            "68ebe065112110",
            Expect {
                profile_idc: 244,
                chroma_format_idc: 3,
                coded: (336, 256),
                display: (330, 250),
                crop: Some((0, 6, 0, 6)),
                codec: "avc1.F4000D",
                ..E
            }
        ),
        fixture!(
            "high10_320x180",
            "676e000da6cd941419f9f0110000030001000003003c0f142996",
            "68ebe0652c8b",
            Expect {
                profile_idc: 110,
                bit_depth: 10,
                coded: (320, 192),
                display: (320, 180),
                crop: Some((0, 0, 0, 6)),
                codec: "avc1.6E000D",
                ..E
            }
        ),
        fixture!(
            "high_gray_200x100",
            "6764000bf3650d3f898dc05b20000003002000000781e28532c0",
            "68ebe0652c8b",
            Expect {
                level_idc: 11,
                chroma_format_idc: 0,
                coded: (208, 112),
                display: (200, 100),
                crop: Some((0, 8, 0, 12)),
                signal: Some((5, true, None)),
                codec: "avc1.64000B",
                ..E
            }
        ),
        fixture!(
            "high_hrd_cbr_640x360",
            "6764001eacd940a02ff970110000030001000003003c602001e840007a12930c01e2c5b2c0",
            "68ebe0652c8b",
            Expect {
                level_idc: 30,
                coded: (640, 368),
                display: (640, 360),
                crop: Some((0, 0, 0, 4)),
                restriction: (10, 2, 4),
                codec: "avc1.64001E",
                ..E
            }
        ),
    ]
}

pub fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

impl Fixture {
    pub fn sps(&self) -> Vec<u8> {
        hex(self.sps_hex)
    }
    pub fn pps(&self) -> Vec<u8> {
        hex(self.pps_hex)
    }
    /// The first NAL of `ty` in the stream.
    pub fn first(&self, ty: NalType) -> &'static [u8] {
        annexb_nals(self.stream)
            .find(|n| nal_type(n) == Some(ty))
            .unwrap()
    }
}
