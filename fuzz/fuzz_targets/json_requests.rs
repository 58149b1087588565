//! Every JSON request body the hub takes, from arbitrary bytes: decoding and
//! the checks that follow it (paths, hashes, lists, inline chunks) never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ssync_common::api::*;
use ssync_common::frames::FrameReader;
use ssync_common::PathLimits;

/// The hub's length check on every path a request names: what it accepts is
/// within the limits it was given.
fn paths<T: RequestPaths>(r: &T) {
    let limits = PathLimits { max_path_bytes: 64, max_name_bytes: 16 };
    for p in r.paths() {
        if limits.check(p).is_ok() {
            assert!(p.as_str().len() <= 64 && p.components().all(|c| c.len() <= 16), "{p:?}");
        }
    }
}

fn decoded<T: RequestPaths + serde::de::DeserializeOwned>(body: &[u8]) -> Option<T> {
    let r = serde_json::from_slice::<T>(body).ok()?;
    paths(&r);
    Some(r)
}

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
    match kind % 10 {
        0 => {
            if let Some(r) = decoded::<CommitRequest>(body) {
                let _ = r.list.resolve(None);
                if let Some(i) = &r.inline {
                    inline_chunks(i);
                }
            }
        }
        1 => {
            if let Some(r) = decoded::<ChunksRequest>(body) {
                let _ = r.chunks.decode();
            }
        }
        2 => {
            if let Some(r) = decoded::<FetchRequest>(body) {
                let _ = r.chunks.decode();
            }
        }
        3 => drop(decoded::<MkdirRequest>(body)),
        4 => drop(decoded::<DeleteRequest>(body)),
        5 => {
            if let Some(r) = decoded::<RenameRequest>(body) {
                // A folder's own path, moved, is the target: rebase is exact.
                let moved = r.from.rebase(&r.from, &r.to).expect("a path lies within itself");
                assert_eq!(moved.as_ref().ok(), Some(&r.to));
            }
        }
        6 => {
            drop(decoded::<SetAttrRequest>(body));
            drop(decoded::<ExchangeRequest>(body));
        }
        7 => drop(decoded::<RestoreRequest>(body)),
        8 => {
            if let Some(r) = decoded::<BatchRequest>(body) {
                for change in &r.changes {
                    if let Change::Commit(c) = change {
                        let _ = c.list.resolve(None);
                        if let Some(i) = &c.inline {
                            inline_chunks(i);
                        }
                    }
                }
            }
        }
        _ => drop(decoded::<RestoreTreeRequest>(body)),
    }
});
