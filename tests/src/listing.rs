//! What a mount shows of a tree, to compare two mounts: every entry's kind,
//! permission bits, and content hash or symlink target.
use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

/// What a mount shows below `dir`: path -> kind, permission bits, and the
/// content's hash or the symlink's target (what syncs; special files do not).
pub fn listing(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&p) else { continue };
            let t = meta.file_type();
            if t.is_fifo() || t.is_socket() || t.is_block_device() || t.is_char_device() {
                continue;
            }
            let rel = p.strip_prefix(dir).unwrap_or(&p).to_string_lossy().into_owned();
            let mode = meta.permissions().mode() & 0o7777;
            let what = if t.is_symlink() {
                format!("l {mode:o} -> {}", std::fs::read_link(&p).map(|l| l.display().to_string()).unwrap_or_default())
            } else if t.is_dir() {
                stack.push(p.clone());
                format!("d {mode:o}")
            } else {
                let hash = std::fs::read(&p).map(|b| blake3::hash(&b).to_hex().to_string()).unwrap_or_default();
                format!("f {mode:o} {hash}")
            };
            out.insert(rel, what);
        }
    }
    out
}

/// The lines of `a` and `b` that differ, at most `n` of them.
pub fn differences(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>, n: usize) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .take(n)
        .map(|k| format!("{k}: a={:?} b={:?}", a.get(k), b.get(k)))
        .collect()
}
