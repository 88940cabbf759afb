#![no_main]
//! CONFIGURE's options map and header fields, as a client may send them: the server maps
//! them onto its settings or refuses with a configure error, never panics.
//!
//! Input layout: 12 bytes of header fields (width, height as u16; pix_fmt; time base and
//! frame rate as u8 pairs... see below), then `key=value` options separated by NUL bytes.

use framecast_remote::settings::{parse_configure, DecoderInfo, ServerCaps};
use framecast_remote::wire::Configure;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 10 {
        return;
    }
    let (head, rest) = data.split_at(10);
    let u16_at = |i: usize| u16::from_le_bytes([head[i], head[i + 1]]) as u32;
    let options = rest
        .split(|&b| b == 0)
        .filter_map(|kv| {
            let text = std::str::from_utf8(kv).ok()?;
            let (k, v) = text.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect();
    let c = Configure {
        width: u16_at(0),
        height: u16_at(2),
        pix_fmt: head[4],
        tb_num: head[5] as u32,
        tb_den: u16_at(6),
        fr_num: head[8] as u32,
        fr_den: head[9] as u32,
        options,
        ..Configure::default()
    };
    let caps = ServerCaps {
        capabilities: vec![
            "h264".into(),
            "pixfmt.nv12".into(),
            "pixfmt.bgra".into(),
            "packet_ack.v1".into(),
        ],
        backend: Some("openh264".into()),
        decoder: Some(DecoderInfo {
            name: "openh264",
            b_frames: false,
        }),
    };
    if let Ok(s) = parse_configure(&c, "h264", &caps, 1 << 28) {
        assert!(s.width > 0 && s.height > 0);
        assert!(s.frame_duration() >= 1);
    }
});
