//! Any string either is refused by `RelPath::parse` or is a path that keeps
//! every rule the hub relies on to stay inside its tree.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ssync_common::RelPath;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let Ok(p) = RelPath::parse(s) else { return };
    assert_eq!(p.as_str(), s);
    assert!(!s.is_empty() && s.len() <= 4096 && !s.starts_with('/'));
    assert!(!s.contains('\0') && !s.contains('\\'));
    for c in p.components() {
        assert!(!c.is_empty() && c != "." && c != ".." && c.len() <= 255, "component {c:?} of {s:?}");
    }
    // What serde accepts is what parse accepts.
    let json = serde_json::to_string(&p).unwrap();
    assert_eq!(serde_json::from_str::<RelPath>(&json).unwrap(), p);
    for a in p.ancestors() {
        assert!(p.is_within(&a) && RelPath::parse(a.as_str()).is_ok());
    }
    if let Some(parent) = p.parent() {
        assert_eq!(RelPath::child_of(Some(&parent), p.file_name()).unwrap(), p);
    }
});
