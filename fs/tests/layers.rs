//! The mount's code is in folders by layer, and imports point down only:
//!
//! | layer | what it is |
//! | --- | --- |
//! | `cmd/` | the programs: `ssync-mount`'s wiring, the `ssync` CLI, configuration |
//! | `kernel/` | FUSE: the fuser adapter and the filesystem operations |
//! | `sync/` | the sync engine: trees, merge, planner, feed, sender |
//! | `local/` | the mount's state: the inode tree, its database, cache files, residency |
//! | `remote/` | the hub: the HTTP client, chunk transfer, tokens |
//! | `content/` | chunk lists of files on disk and where each chunk is |
//!
//! A file may use its own layer and the ones below it, never one above, and
//! no files use each other in a circle (a circle, even inside one layer,
//! means two files are one part). A file and the files of its own
//! submodules (`kernel/fs.rs` and `kernel/fs/*.rs`) count as one part. Test
//! code (`#[cfg(test)] mod tests`) may use anything. This test reads the sources: `crate::a::b` and `super::`
//! paths, braces included.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module's path (`["local", "db"]`), the files by module, and what each uses.
type Module = Vec<String>;
type Files = BTreeMap<Module, PathBuf>;
type Uses = BTreeMap<Module, BTreeSet<Module>>;

const LAYERS: &[&str] = &["content", "remote", "local", "sync", "kernel", "cmd"];
/// Files at the top of `src/` that are not a layer: the crate root and the
/// binaries' entry points, which may use every layer.
const ROOTS: &[&str] = &["lib", "main"];

/// Every `.rs` file under `dir`, by its module path (`local::db`).
fn modules(src: &Path) -> Files {
    fn walk(dir: &Path, prefix: &[String], out: &mut Files) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_stem().unwrap().to_str().unwrap().to_string();
            if p.is_dir() {
                if name != "bin" {
                    walk(&p, &[prefix, &[name]].concat(), out);
                }
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.insert([prefix, &[name]].concat(), p);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(src, &[], &mut out);
    out
}

/// The code of a source file: without its test module and comment lines.
fn code_of(text: &str) -> String {
    let text = match text.find("\n#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// Each path after `crate::` or `super::` (`super::` resolved against
/// `module`), braces expanded: `use crate::a::{b, c::d}` gives `a::b`, `a::c::d`.
fn paths_used(text: &str, module: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (start, anchor) in [("crate::", None), ("super::", Some(module))] {
        let mut from = 0;
        while let Some(i) = text[from..].find(start) {
            let at = from + i;
            from = at + start.len();
            let before = text[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue; // `foo::super::` or `xcrate::`
            }
            let base: Vec<String> = match anchor {
                None => vec![],
                Some(m) => {
                    // `super::` in `a/b.rs` (module a::b) names module `a`; more
                    // `super::`s go further up.
                    let mut base = m[..m.len() - 1].to_vec();
                    let mut rest = &text[from..];
                    while let Some(r) = rest.strip_prefix("super::") {
                        base.pop();
                        rest = r;
                        from += "super::".len();
                    }
                    base
                }
            };
            expand(&text[from..], base, &mut out);
        }
    }
    out
}

/// Reads one path (with nested braces) at the start of `s`, after `prefix`.
fn expand(s: &str, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let ident_end = s.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(s.len());
    if ident_end == 0 {
        if let Some(inner) = s.strip_prefix('{') {
            let mut depth = 0;
            let mut item_start = 0;
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        expand(inner[item_start..i].trim_start(), prefix.clone(), out);
                        return;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(inner[item_start..i].trim_start(), prefix.clone(), out);
                        item_start = i + 1;
                    }
                    _ => {}
                }
            }
        }
        out.push(prefix);
        return;
    }
    let mut path = prefix;
    path.push(s[..ident_end].to_string());
    match s[ident_end..].strip_prefix("::") {
        Some(rest) => expand(rest, path, out),
        None => out.push(path),
    }
}

/// The longest prefix of `path` that is a file's module.
fn file_of(path: &[String], files: &Files) -> Option<Module> {
    (1..=path.len()).rev().map(|n| path[..n].to_vec()).find(|p| files.contains_key(p))
}

fn layer_of(module: &[String]) -> Option<usize> {
    LAYERS.iter().position(|l| module.first().is_some_and(|m| m == l))
}

fn edges(src: &Path) -> (Files, Uses) {
    let files = modules(src);
    let mut uses = BTreeMap::new();
    for (module, path) in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let used: BTreeSet<Vec<String>> = paths_used(&code_of(&text), module)
            .iter()
            .filter_map(|p| file_of(p, &files))
            .filter(|f| f != module && !f.starts_with(module)) // a file's own submodules
            .collect();
        uses.insert(module.clone(), used);
    }
    (files, uses)
}

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn every_file_is_in_a_layer() {
    let (files, _) = edges(&src());
    let outside: Vec<String> = files
        .keys()
        .filter(|m| layer_of(m).is_none() && !(m.len() == 1 && ROOTS.contains(&m[0].as_str())))
        .map(|m| m.join("::"))
        .collect();
    assert!(outside.is_empty(), "files outside the layers {LAYERS:?}: {outside:?}");
}

#[test]
fn imports_point_down_only() {
    let (_, uses) = edges(&src());
    let mut upward = Vec::new();
    for (module, used) in &uses {
        let Some(layer) = layer_of(module) else { continue };
        for u in used {
            if layer_of(u).is_none_or(|l| l > layer) {
                upward.push(format!("{} uses {}", module.join("::"), u.join("::")));
            }
        }
    }
    assert!(upward.is_empty(), "imports that point up (layers, bottom first: {LAYERS:?}):\n{}", upward.join("\n"));
}

#[test]
fn no_files_use_each_other_in_a_circle() {
    let (_, uses) = edges(&src());
    // Depth-first search; a grey node met again closes a circle.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Grey,
        Black,
    }
    fn visit(
        m: &Module,
        uses: &Uses,
        marks: &mut BTreeMap<Module, Mark>,
        stack: &mut Vec<Module>,
        circles: &mut Vec<String>,
    ) {
        marks.insert(m.clone(), Mark::Grey);
        stack.push(m.clone());
        for u in uses.get(m).into_iter().flatten() {
            match marks.get(u) {
                Some(Mark::Grey) => {
                    let from = stack.iter().position(|s| s == u).unwrap();
                    let names: Vec<String> = stack[from..].iter().chain([u]).map(|s| s.join("::")).collect();
                    circles.push(names.join(" -> "));
                }
                Some(Mark::Black) => {}
                None => visit(u, uses, marks, stack, circles),
            }
        }
        stack.pop();
        marks.insert(m.clone(), Mark::Black);
    }
    let (mut marks, mut circles) = (BTreeMap::new(), Vec::new());
    for m in uses.keys() {
        if !marks.contains_key(m) {
            visit(m, &uses, &mut marks, &mut Vec::new(), &mut circles);
        }
    }
    assert!(circles.is_empty(), "files that use each other in a circle:\n{}", circles.join("\n"));
}

/// The reader of paths itself, on a made-up source.
#[test]
fn paths_are_read_with_braces_and_super() {
    let module: Vec<String> = ["sync", "engine"].iter().map(|s| s.to_string()).collect();
    let text = "use crate::local::{state::Shared, tree::{self, Node}};\nuse super::planner::Op;\nlet x = crate::remote::client::Remote::new();\nlet y = super::super::cmd::config::X;";
    let got: BTreeSet<String> = paths_used(text, &module).iter().map(|p| p.join("::")).collect();
    let want: BTreeSet<String> = [
        "local::state::Shared",
        "local::tree::self",
        "local::tree::Node",
        "sync::planner::Op",
        "remote::client::Remote::new",
        "cmd::config::X",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(got, want);
}
