//! The chunk frame stream of uploads and fetches, cut at arbitrary places:
//! decoding never panics, and every chunk it yields has the bytes its hash names.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ssync_common::frames::FrameReader;
use ssync_common::ContentHash;

fuzz_target!(|data: &[u8]| {
    // The first byte picks where the network cuts the stream.
    let Some((&cut, stream)) = data.split_first() else { return };
    let step = cut as usize + 1;
    let mut reader = FrameReader::default();
    for piece in stream.chunks(step) {
        reader.push(piece);
        loop {
            match reader.next_chunk() {
                Ok(Some(c)) => assert_eq!(ContentHash::of(&c.data), c.hash),
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    let _ = reader.finish();
});
