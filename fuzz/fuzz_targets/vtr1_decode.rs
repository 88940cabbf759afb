#![no_main]
//! The VTR1 decoder survives arbitrary byte streams, split anywhere: it yields messages or a
//! clean error, never panics, never allocates past its caps, and what it yields re-encodes to
//! a message that decodes the same.

use framecast_remote::compress::{decompress_plane, Compression};
use framecast_remote::wire::{Limits, Message, Vtr1Codec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (split, rest) = match data.split_first() {
        Some((s, r)) => ((*s as usize).max(1), r),
        None => return,
    };
    let mut codec = Vtr1Codec::new(Limits::server(1 << 20));
    'outer: for chunk in rest.chunks(split) {
        codec.feed(chunk);
        loop {
            match codec.poll() {
                Ok(Some(m)) => {
                    if matches!(m, Message::Unknown { .. }) {
                        continue;
                    }
                    let bytes = m.encode().expect("a decoded message re-encodes");
                    let mut again = Vtr1Codec::new(Limits::server(u32::MAX));
                    again.feed(&bytes);
                    assert_eq!(again.poll().expect("re-decodes"), Some(m.clone()));
                    if let Message::Frame(f) = &m {
                        for (i, p) in f.planes.iter().enumerate() {
                            let n = (p.stride as usize).saturating_mul(p.height as usize).min(1 << 16);
                            for &c in &Compression::ALL[1..] {
                                let _ = decompress_plane(c, i, &p.data, n);
                            }
                        }
                    }
                }
                Ok(None) => break,
                Err(_) => break 'outer,
            }
        }
    }
});
