//! Golden bytes for every VTR1 message (hand-derived from the layouts in
//! `vtr1-protocol.md` §2–§3), round-trip property tests, and the incremental decoder's
//! behaviour on split, oversize, malformed and unknown input.

use bytes::Bytes;
use framecast_remote::wire::*;
use framecast_remote::WireError;
use proptest::prelude::*;

fn hdr(kind: u16, len: u32) -> Vec<u8> {
    let mut v = vec![0x56, 0x54, 0x52, 0x31, 0x00, 0x01];
    v.extend_from_slice(&kind.to_be_bytes());
    v.extend_from_slice(&len.to_be_bytes());
    v
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn check(msg: Message, expected: Vec<u8>) {
    let bytes = msg.encode().unwrap();
    assert_eq!(bytes, expected, "encoding of {:?}", msg.kind());
    let mut codec = Vtr1Codec::new(Limits::default());
    codec.feed(&bytes);
    assert_eq!(codec.poll().unwrap(), Some(msg.clone()));
    assert_eq!(codec.poll().unwrap(), None);
    // Byte by byte.
    let mut codec = Vtr1Codec::new(Limits::default());
    for (i, b) in bytes.iter().enumerate() {
        codec.feed(&[*b]);
        let got = codec.poll().unwrap();
        if i + 1 < bytes.len() {
            assert_eq!(got, None, "message complete early at byte {i}");
        } else {
            assert_eq!(got, Some(msg.clone()));
        }
    }
}

#[test]
fn golden_hello() {
    let m = Message::Hello(Hello {
        token: "s3".into(),
        codec: "h264".into(),
        client_name: "ffmpeg-vtremote".into(),
        build: "7.1".into(),
    });
    let body = cat(&[
        &[0, 2],
        b"s3",
        &[0, 4],
        b"h264",
        &[0, 15],
        b"ffmpeg-vtremote",
        &[0, 3],
        b"7.1",
    ]);
    check(m, cat(&[&hdr(1, body.len() as u32), &body]));
}

#[test]
fn golden_hello_ack() {
    let m = Message::HelloAck(HelloAck {
        status: 0,
        server_name: "fc".into(),
        server_version: "0.1".into(),
        capabilities: vec!["h264".into(), "pixfmt.nv12".into()],
        max_sessions: 4,
        active_sessions: 1,
    });
    let expected = cat(&[
        &hdr(2, 34),
        &[0],
        &[0, 2],
        b"fc",
        &[0, 3],
        b"0.1",
        &[2],
        &[0, 4],
        b"h264",
        &[0, 11],
        b"pixfmt.nv12",
        &[0, 4, 0, 1],
    ]);
    check(m, expected);
}

#[test]
fn legacy_hello_ack_parses_with_empty_name_and_version() {
    // [older] status, u16 0, u16 0, codec list, u16 4, u16 1.
    let body = cat(&[
        &[0],
        &[0, 0],
        &[0, 0],
        &[1],
        &[0, 4],
        b"h264",
        &[0, 4],
        &[0, 1],
    ]);
    let mut codec = Vtr1Codec::new(Limits::client(1 << 20));
    codec.feed(&cat(&[&hdr(2, body.len() as u32), &body]));
    let Some(Message::HelloAck(a)) = codec.poll().unwrap() else {
        panic!("no HELLO_ACK")
    };
    assert_eq!(a.status, 0);
    assert_eq!(a.server_name, "");
    assert_eq!(a.capabilities, vec!["h264".to_string()]);
    assert_eq!((a.max_sessions, a.active_sessions), (4, 1));
}

#[test]
fn golden_configure() {
    let m = Message::Configure(Configure {
        width: 1280,
        height: 720,
        pix_fmt: pix_fmt::NV12,
        tb_num: 1,
        tb_den: 90000,
        fr_num: 30,
        fr_den: 1,
        options: vec![
            ("mode".into(), "encode".into()),
            ("gop".into(), "60".into()),
        ],
        extradata: Bytes::from_static(&[0xAA, 0xBB]),
    });
    let body = cat(&[
        &[0, 0, 0x05, 0x00], // width 1280
        &[0, 0, 0x02, 0xD0], // height 720
        &[1],                // pix_fmt u8
        &[0, 0, 0, 1],       // tb_num
        &[0, 1, 0x5F, 0x90], // tb_den 90000
        &[0, 0, 0, 30],      // fr_num
        &[0, 0, 0, 1],       // fr_den
        &[0, 2],             // opt_count
        &[0, 4],
        b"mode",
        &[0, 6],
        b"encode",
        &[0, 3],
        b"gop",
        &[0, 2],
        b"60",
        &[0, 0, 0, 2, 0xAA, 0xBB], // extradata
    ]);
    assert_eq!(body.len(), 27 + 6 + 8 + 5 + 4 + 6);
    check(m, cat(&[&hdr(3, body.len() as u32), &body]));
}

#[test]
fn configure_without_options_or_extradata_tail_is_accepted() {
    // The reference reads the options map and extradata only when bytes remain.
    let body = cat(&[
        &[0, 0, 0, 64],
        &[0, 0, 0, 48],
        &[1],
        &[0, 0, 0, 1],
        &[0, 0, 0, 30],
        &[0, 0, 0, 30],
        &[0, 0, 0, 1],
    ]);
    let mut codec = Vtr1Codec::new(Limits::default());
    codec.feed(&cat(&[&hdr(3, body.len() as u32), &body]));
    let Some(Message::Configure(c)) = codec.poll().unwrap() else {
        panic!()
    };
    assert!(c.options.is_empty() && c.extradata.is_empty());
    assert_eq!((c.width, c.height, c.fr_num), (64, 48, 30));
}

#[test]
fn golden_configure_ack() {
    let m = Message::ConfigureAck(ConfigureAck {
        status: 0,
        extradata: Bytes::from_static(&[1, 0x42, 0xC0, 0x1F]),
        pix_fmt: 1,
        warnings: vec![],
    });
    let expected = cat(&[
        &hdr(4, 9),
        &[0],
        &[0, 4],
        &[1, 0x42, 0xC0, 0x1F],
        &[1],
        &[0],
    ]);
    check(m, expected);
}

#[test]
fn golden_frame() {
    let m = Message::Frame(FrameMsg {
        pts: 3,
        duration: 1,
        flags: FLAG_KEYFRAME,
        planes: vec![
            Plane {
                stride: 2,
                height: 2,
                data: Bytes::from_static(&[1, 2, 3, 4]),
            },
            Plane {
                stride: 2,
                height: 1,
                data: Bytes::from_static(&[5, 6]),
            },
        ],
        side_data: vec![],
    });
    let expected = cat(&[
        &hdr(5, 8 + 8 + 4 + 1 + 12 + 4 + 12 + 2),
        &[0, 0, 0, 0, 0, 0, 0, 3],
        &[0, 0, 0, 0, 0, 0, 0, 1],
        &[0, 0, 0, 1],
        &[2],
        &[0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 4, 1, 2, 3, 4],
        &[0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2, 5, 6],
    ]);
    check(m, expected);
}

#[test]
fn golden_frame_with_side_data_trailer() {
    let m = Message::Frame(FrameMsg {
        pts: NOPTS,
        duration: 0,
        flags: 0,
        planes: vec![],
        side_data: vec![SideData {
            kind: 21,
            data: Bytes::from_static(b"hi"),
        }],
    });
    let expected = cat(&[
        &hdr(5, 21 + 1 + 8 + 2),
        &[0x80, 0, 0, 0, 0, 0, 0, 0], // INT64_MIN = AV_NOPTS_VALUE
        &[0; 8],
        &[0; 4],
        &[0],
        &[1, 0, 0, 0, 21, 0, 0, 0, 2],
        b"hi",
    ]);
    check(m, expected);
}

#[test]
fn golden_packet() {
    let m = Message::Packet(PacketMsg {
        pts: 1,
        dts: -1,
        duration: 1,
        flags: 1,
        data: Bytes::from_static(&[0, 0, 0, 1, 0x65, 0x88]),
        side_data: vec![],
    });
    let expected = cat(&[
        &hdr(6, 38),
        &[0, 0, 0, 0, 0, 0, 0, 1],
        &[0xFF; 8],
        &[0, 0, 0, 0, 0, 0, 0, 1],
        &[0, 0, 0, 1],
        &[0, 0, 0, 6],
        &[0, 0, 0, 1, 0x65, 0x88],
    ]);
    check(m, expected);
}

#[test]
fn golden_error() {
    let m = Message::Error(ErrorMsg {
        code: 4,
        message: "message too large".into(),
    });
    let expected = cat(&[
        &hdr(9, 4 + 2 + 17),
        &[0, 0, 0, 4],
        &[0, 17],
        b"message too large",
    ]);
    check(m, expected);
}

#[test]
fn error_without_string_length_from_the_older_mock_is_still_readable() {
    let body = cat(&[&[0, 0, 0, 1], b"bad"]);
    let mut codec = Vtr1Codec::new(Limits::default());
    codec.feed(&cat(&[&hdr(9, body.len() as u32), &body]));
    assert_eq!(
        codec.poll().unwrap(),
        Some(Message::Error(ErrorMsg {
            code: 1,
            message: "bad".into()
        }))
    );
}

#[test]
fn golden_empty_messages() {
    check(Message::Flush, hdr(7, 0));
    check(Message::Done, hdr(8, 0));
    check(Message::Ping, hdr(10, 0));
    check(Message::Pong, hdr(11, 0));
    check(Message::PacketAck, hdr(12, 0));
}

#[test]
fn header_checks_happen_before_the_body() {
    let mut c = Vtr1Codec::new(Limits::default());
    c.feed(b"VTR2\x00\x01\x00\x0a\x00\x00\x00\x00");
    assert_eq!(c.poll(), Err(WireError::BadMagic { found: 0x5654_5232 }));
    // The codec stays failed.
    assert!(c.poll().is_err());

    let mut c = Vtr1Codec::new(Limits::default());
    c.feed(&[0x56, 0x54, 0x52, 0x31, 0, 2, 0, 10, 0, 0, 0, 0]);
    assert_eq!(c.poll(), Err(WireError::BadVersion { found: 2 }));

    // A 4 GiB FRAME is refused from the header alone, with nothing allocated for it.
    let mut c = Vtr1Codec::new(Limits::server(1 << 20));
    c.feed(&hdr(5, u32::MAX));
    assert!(matches!(c.poll(), Err(WireError::TooLarge { limit, .. }) if limit == 1 << 20));
    assert!(c.buffer_mut().capacity() < 1 << 20);
    // HELLO is capped at 64 KiB and CONFIGURE at 4 MiB whatever max-message-bytes says.
    let mut c = Vtr1Codec::new(Limits::server(u32::MAX));
    c.feed(&hdr(1, 64 * 1024 + 1));
    assert!(matches!(c.poll(), Err(WireError::TooLarge { .. })));
    let mut c = Vtr1Codec::new(Limits::server(u32::MAX));
    c.feed(&hdr(3, 4 * 1024 * 1024 + 1));
    assert!(matches!(c.poll(), Err(WireError::TooLarge { .. })));
}

#[test]
fn unknown_types_are_skipped_without_buffering() {
    let mut bytes = hdr(99, 5);
    bytes.extend_from_slice(&[1, 2, 3, 4, 5]);
    bytes.extend(Message::Ping.encode().unwrap());
    let mut c = Vtr1Codec::new(Limits::default());
    c.feed(&bytes[..14]);
    assert_eq!(c.poll().unwrap(), None);
    c.feed(&bytes[14..]);
    assert_eq!(
        c.poll().unwrap(),
        Some(Message::Unknown {
            kind: MessageType(99),
            length: 5
        })
    );
    assert_eq!(c.poll().unwrap(), Some(Message::Ping));
}

#[test]
fn truncated_bodies_and_strings_are_errors() {
    // HELLO whose token length runs past the payload.
    let body = [0u8, 10, b'a'];
    let mut c = Vtr1Codec::new(Limits::default());
    c.feed(&cat(&[&hdr(1, 3), &body]));
    assert!(matches!(
        c.poll(),
        Err(WireError::Truncated { field: "token", .. })
    ));
    // PACKET shorter than its fixed fields.
    let mut c = Vtr1Codec::new(Limits::default());
    c.feed(&cat(&[&hdr(6, 4), &[0, 0, 0, 0]]));
    assert!(matches!(c.poll(), Err(WireError::Truncated { .. })));
    // FRAME plane data_len beyond the payload.
    let mut body = vec![0u8; 20];
    body.push(1);
    body.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9]);
    let mut c = Vtr1Codec::new(Limits::default());
    c.feed(&cat(&[&hdr(5, body.len() as u32), &body]));
    assert!(matches!(
        c.poll(),
        Err(WireError::Truncated {
            field: "plane data",
            ..
        })
    ));
    // Invalid UTF-8.
    let mut c = Vtr1Codec::new(Limits::default());
    c.feed(&cat(&[&hdr(1, 3), &[0, 1, 0xFF]]));
    assert!(matches!(c.poll(), Err(WireError::InvalidUtf8 { .. })));
}

#[test]
fn side_data_keeps_at_most_16_records() {
    let m = Message::Packet(PacketMsg {
        pts: 0,
        dts: 0,
        duration: 0,
        flags: 0,
        data: Bytes::new(),
        side_data: (0..20)
            .map(|i| SideData {
                kind: i,
                data: Bytes::from(vec![i as u8]),
            })
            .collect(),
    });
    let mut c = Vtr1Codec::new(Limits::default());
    c.feed(&m.encode().unwrap());
    let Some(Message::Packet(p)) = c.poll().unwrap() else {
        panic!()
    };
    assert_eq!(p.side_data.len(), MAX_SIDE_DATA);
    assert_eq!(p.side_data[15].kind, 15);
}

fn arb_string() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-zA-Z0-9._=é-]{0,20}").unwrap()
}

fn arb_bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn arb_side() -> impl Strategy<Value = Vec<SideData>> {
    proptest::collection::vec(
        (any::<u32>(), arb_bytes(16)).prop_map(|(kind, data)| SideData { kind, data }),
        0..=16,
    )
}

fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (arb_string(), arb_string(), arb_string(), arb_string()).prop_map(|(a, b, c, d)| {
            Message::Hello(Hello {
                token: a,
                codec: b,
                client_name: c,
                build: d,
            })
        }),
        (
            any::<u8>(),
            arb_string(),
            arb_string(),
            proptest::collection::vec(arb_string(), 0..8),
            any::<u16>(),
            any::<u16>()
        )
            .prop_map(|(s, n, v, c, m, a)| Message::HelloAck(HelloAck {
                status: s,
                server_name: n,
                server_version: v,
                capabilities: c,
                max_sessions: m,
                active_sessions: a
            })),
        (
            any::<(u32, u32, u8, u32, u32, u32, u32)>(),
            proptest::collection::vec((arb_string(), arb_string()), 0..6),
            arb_bytes(40)
        )
            .prop_map(|((w, h, p, tn, td, fnum, fden), options, extradata)| {
                Message::Configure(Configure {
                    width: w,
                    height: h,
                    pix_fmt: p,
                    tb_num: tn,
                    tb_den: td,
                    fr_num: fnum,
                    fr_den: fden,
                    options,
                    extradata,
                })
            }),
        (
            any::<u8>(),
            arb_bytes(40),
            any::<u8>(),
            proptest::collection::vec(arb_string(), 0..4)
        )
            .prop_map(|(status, extradata, pix_fmt, warnings)| {
                Message::ConfigureAck(ConfigureAck {
                    status,
                    extradata,
                    pix_fmt,
                    warnings,
                })
            }),
        (
            any::<(i64, i64, u32)>(),
            proptest::collection::vec(
                (any::<u32>(), any::<u32>(), arb_bytes(64)).prop_map(|(s, h, d)| Plane {
                    stride: s,
                    height: h,
                    data: d
                }),
                0..4
            ),
            arb_side()
        )
            .prop_map(|((pts, duration, flags), planes, side_data)| {
                Message::Frame(FrameMsg {
                    pts,
                    duration,
                    flags,
                    planes,
                    side_data,
                })
            }),
        (any::<(i64, i64, i64, u32)>(), arb_bytes(100), arb_side()).prop_map(
            |((pts, dts, duration, flags), data, side_data)| Message::Packet(PacketMsg {
                pts,
                dts,
                duration,
                flags,
                data,
                side_data
            })
        ),
        (any::<u32>(), arb_string())
            .prop_map(|(code, message)| Message::Error(ErrorMsg { code, message })),
        Just(Message::Flush),
        Just(Message::Done),
        Just(Message::Ping),
        Just(Message::Pong),
        Just(Message::PacketAck),
    ]
}

proptest! {
    #[test]
    fn decode_encode_round_trip(msgs in proptest::collection::vec(arb_message(), 1..6), split in 1usize..50) {
        let mut stream = Vec::new();
        for m in &msgs {
            m.encode_into(&mut stream).unwrap();
        }
        let mut codec = Vtr1Codec::new(Limits::default());
        let mut got = Vec::new();
        for chunk in stream.chunks(split) {
            codec.feed(chunk);
            while let Some(m) = codec.poll().unwrap() {
                got.push(m);
            }
        }
        prop_assert_eq!(got, msgs);
        prop_assert_eq!(codec.buffered(), 0);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400), valid_header in any::<bool>()) {
        let mut codec = Vtr1Codec::new(Limits::server(1 << 16));
        if valid_header && data.len() >= 4 {
            let mut h = hdr(u16::from(data[0] % 14), (data.len() - 4) as u32);
            h.extend_from_slice(&data[4..]);
            codec.feed(&h);
        } else {
            codec.feed(&data);
        }
        for _ in 0..8 {
            if !matches!(codec.poll(), Ok(Some(_))) { break; }
        }
    }
}
