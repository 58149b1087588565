//! Every JSON request body the hub takes, from arbitrary bytes: decoding and
//! the checks that follow it (paths, hashes, lists, inline chunks) never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ssync_common::api::*;
use ssync_common::frames::FrameReader;

fn inline_chunks(inline: &str) {
    if let Ok(frames) = inline_decode(inline) {
        let mut r = FrameReader::default();
        r.push(&frames);
        while let Ok(Some(_)) = r.next_chunk() {}
    }
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the request type, as the route would.
    let Some((&kind, body)) = data.split_first() else { return };
    match kind % 9 {
        0 => {
            if let Ok(r) = serde_json::from_slice::<CommitRequest>(body) {
                let _ = r.list.resolve(None);
                if let Some(i) = &r.inline {
                    inline_chunks(i);
                }
            }
        }
        1 => {
            if let Ok(r) = serde_json::from_slice::<ChunksRequest>(body) {
                let _ = r.chunks.decode();
            }
        }
        2 => {
            if let Ok(r) = serde_json::from_slice::<FetchRequest>(body) {
                let _ = r.chunks.decode();
            }
        }
        3 => drop(serde_json::from_slice::<MkdirRequest>(body)),
        4 => drop(serde_json::from_slice::<DeleteRequest>(body)),
        5 => drop(serde_json::from_slice::<RenameRequest>(body)),
        6 => drop(serde_json::from_slice::<SetAttrRequest>(body)),
        7 => drop(serde_json::from_slice::<RestoreRequest>(body)),
        _ => drop(serde_json::from_slice::<RestoreTreeRequest>(body)),
    }
});
