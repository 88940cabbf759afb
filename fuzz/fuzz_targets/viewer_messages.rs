#![no_main]
//! What a viewer sends and what the server sends a viewer: control messages parse or fail
//! cleanly, and a binary envelope that decodes re-encodes to the same header and payload.

use framecast_stream::protocol::{decode_envelope, encode_envelope, parse_client_message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_client_message(text);
    }
    if let Ok((header, payload)) = decode_envelope(data) {
        let again = encode_envelope(&header, payload);
        let (h2, p2) = decode_envelope(&again).expect("our own envelope decodes");
        assert_eq!(h2, header);
        assert_eq!(p2, payload);
    }
});
