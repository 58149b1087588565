//! Chunk lists and list deltas as a commit or manifest carries them: decoding
//! and applying a delta never panics, and what comes out round-trips.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ssync_common::api::WireList;
use ssync_common::ChunkList;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (counts, rest) = data.split_at(8);
    let prefix = u32::from_le_bytes(counts[..4].try_into().unwrap());
    let suffix = u32::from_le_bytes(counts[4..].try_into().unwrap());
    let (base_bytes, middle_bytes) = rest.split_at(rest.len() / 2);
    let Ok(base) = ChunkList::from_bytes(base_bytes) else { return };
    assert_eq!(ChunkList::from_bytes(&base.to_bytes()).unwrap(), base);
    let Ok(middle) = ChunkList::from_bytes(middle_bytes) else { return };
    let mut wire = WireList::whole(&middle);
    wire.from = Some(base.id());
    wire.prefix = prefix;
    wire.suffix = suffix;
    if let Ok(list) = wire.resolve(Some(&base)) {
        assert_eq!(list.len(), prefix as usize + suffix as usize + middle.len());
        let d = list.delta_from(&base);
        assert_eq!(ChunkList::apply_delta(&base, &d).unwrap(), list);
    }
    assert!(wire.resolve(None).is_err(), "a delta needs its base");
});
