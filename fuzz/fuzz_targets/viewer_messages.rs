#![no_main]
//! What a viewer sends and what the server sends a viewer: control messages parse or fail
//! cleanly, and a binary envelope that decodes re-encodes to one whose bytes are stable
//! (the first encoding normalises defaults away, e.g. `pixel_ratio: 1`) and whose payload is
//! the same.

use framecast_stream::protocol::{decode_envelope, encode_envelope, parse_client_message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_client_message(text);
    }
    if let Ok((header, payload)) = decode_envelope(data) {
        let once = encode_envelope(&header, payload);
        let (h2, p2) = decode_envelope(&once).expect("our own envelope decodes");
        assert_eq!(p2, payload);
        assert_eq!(h2.seq(), header.seq());
        assert_eq!(encode_envelope(&h2, p2), once, "encoding is stable");
    }
});
