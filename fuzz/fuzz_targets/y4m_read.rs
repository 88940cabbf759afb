#![no_main]
//! The y4m reader takes any byte stream: frames of the declared size, or a clean error.

use framecast_io::{FrameSource, Y4mReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = Y4mReader::new(std::io::Cursor::new(data)) else {
        return;
    };
    let (w, h) = (reader.width(), reader.height());
    for _ in 0..8 {
        match reader.next_frame() {
            Ok(Some(f)) => {
                assert_eq!((f.width(), f.height()), (w, h));
                let _ = f.as_frame();
            }
            Ok(None) | Err(_) => break,
        }
    }
});
