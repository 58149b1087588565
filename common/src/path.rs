//! `RelPath`: a path inside the synced tree, validated once and trusted after.
//!
//! Invariants: relative, `/`-separated, at least one component, no `.`/`..`/empty
//! components, no NUL or backslash, no control or bidirectional-override
//! characters, no component that Unicode compatibility normalisation (NFKC)
//! would turn into `.`, `..` or something holding a separator (full-width dots,
//! fraction slashes: tools that normalise names would walk out of the tree),
//! each component at most 255 bytes, the whole at most 4096 bytes. Both the hub and the mount parse every path through here,
//! so a path that reaches storage or the local tree can never escape it.
use serde::{Deserialize, Serialize};
use std::fmt;

pub const MAX_COMPONENT_BYTES: usize = 255;
pub const MAX_PATH_BYTES: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path is empty")]
    Empty,
    #[error("path must be relative, not start with '/'")]
    Absolute,
    #[error("path has an empty component ('//' or a trailing '/')")]
    EmptyComponent,
    #[error("path component '{0}' is not allowed")]
    DotComponent(String),
    #[error("path contains a NUL byte")]
    Nul,
    #[error("path contains a backslash")]
    Backslash,
    #[error("path contains a control character")]
    Control,
    #[error("path component '{0}' reads as '.', '..' or a separator once Unicode is normalised")]
    Lookalike(String),
    #[error("path component is {len} bytes long; the limit is {max}")]
    ComponentTooLong { len: usize, max: usize },
    #[error("path is {len} bytes long; the limit is {max}")]
    TooLong { len: usize, max: usize },
}

/// Length limits at or below the parser's: a hub may be run with narrower
/// ones (`--max-path-bytes`, `--max-name-bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathLimits {
    pub max_path_bytes: usize,
    pub max_name_bytes: usize,
}

impl Default for PathLimits {
    fn default() -> Self {
        PathLimits { max_path_bytes: MAX_PATH_BYTES, max_name_bytes: MAX_COMPONENT_BYTES }
    }
}

impl PathLimits {
    pub fn check(&self, path: &RelPath) -> Result<(), PathError> {
        let len = path.as_str().len();
        if len > self.max_path_bytes {
            return Err(PathError::TooLong { len, max: self.max_path_bytes });
        }
        match path.components().map(str::len).max() {
            Some(len) if len > self.max_name_bytes => {
                Err(PathError::ComponentTooLong { len, max: self.max_name_bytes })
            }
            _ => Ok(()),
        }
    }
}

/// Checks one file name (a single path component).
pub fn validate_name(name: &str) -> Result<(), PathError> {
    match name {
        "" => Err(PathError::EmptyComponent),
        "." | ".." => Err(PathError::DotComponent(name.to_string())),
        _ if name.contains('\0') => Err(PathError::Nul),
        _ if name.contains('\\') => Err(PathError::Backslash),
        _ if name.contains('/') => Err(PathError::EmptyComponent),
        _ if name.len() > MAX_COMPONENT_BYTES => {
            Err(PathError::ComponentTooLong { len: name.len(), max: MAX_COMPONENT_BYTES })
        }
        _ if name.chars().any(is_control) => Err(PathError::Control),
        _ if !name.is_ascii() && is_lookalike(name) => Err(PathError::Lookalike(name.to_string())),
        _ => Ok(()),
    }
}

/// C0/C1 controls and the bidirectional overrides that make a name display
/// as something else.
fn is_control(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

fn is_lookalike(name: &str) -> bool {
    use unicode_normalization::UnicodeNormalization;
    let folded: String = name.nfkc().collect();
    folded == "." || folded == ".." || folded.contains(['/', '\\', '\0'])
}

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RelPath(String);

impl RelPath {
    pub fn parse(s: &str) -> Result<Self, PathError> {
        if s.is_empty() {
            return Err(PathError::Empty);
        }
        if s.contains('\0') {
            return Err(PathError::Nul);
        }
        if s.len() > MAX_PATH_BYTES {
            return Err(PathError::TooLong { len: s.len(), max: MAX_PATH_BYTES });
        }
        if s.starts_with('/') {
            return Err(PathError::Absolute);
        }
        s.split('/').try_for_each(validate_name)?;
        Ok(RelPath(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The containing folder, or `None` for a top-level entry.
    pub fn parent(&self) -> Option<RelPath> {
        self.0.rsplit_once('/').map(|(p, _)| RelPath(p.to_string()))
    }

    pub fn file_name(&self) -> &str {
        self.0.rsplit_once('/').map_or(&self.0, |(_, n)| n)
    }

    pub fn join(&self, name: &str) -> Result<RelPath, PathError> {
        RelPath::parse(&format!("{}/{}", self.0, name))
    }

    /// Builds `parent/name`, where `None` stands for the root.
    pub fn child_of(parent: Option<&RelPath>, name: &str) -> Result<RelPath, PathError> {
        match parent {
            Some(p) => p.join(name),
            None => RelPath::parse(name),
        }
    }

    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// All proper ancestors, outermost first (`a`, `a/b` for `a/b/c`).
    pub fn ancestors(&self) -> Vec<RelPath> {
        let mut out = Vec::new();
        for (i, c) in self.0.char_indices() {
            if c == '/' {
                out.push(RelPath(self.0[..i].to_string()));
            }
        }
        out
    }

    /// True when `self` is `other` or lies below it, component-wise.
    pub fn is_within(&self, other: &RelPath) -> bool {
        self.0 == other.0 || (self.0.starts_with(&other.0) && self.0.as_bytes().get(other.0.len()) == Some(&b'/'))
    }

    /// Re-roots `self` from under `from` to under `to` (for folder renames):
    /// `None` when `self` is not within `from`, an error when the new path
    /// breaks a rule (it may grow past the length limit).
    pub fn rebase(&self, from: &RelPath, to: &RelPath) -> Option<Result<RelPath, PathError>> {
        if !self.is_within(from) {
            return None;
        }
        let rest = &self.0[from.0.len()..];
        Some(RelPath::parse(&format!("{}{}", to.0, rest)))
    }
}

impl TryFrom<String> for RelPath {
    type Error = PathError;
    fn try_from(s: String) -> Result<Self, PathError> {
        RelPath::parse(&s)
    }
}

impl From<RelPath> for String {
    fn from(p: RelPath) -> String {
        p.0
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_normal_paths() {
        for p in ["a", "a/b", "dir/sub/file.txt", "with space/ünïcode", ".hidden/x..y"] {
            assert_eq!(RelPath::parse(p).unwrap().as_str(), p);
        }
    }

    #[test]
    fn rejects_each_bad_form_with_its_reason() {
        assert_eq!(RelPath::parse(""), Err(PathError::Empty));
        assert_eq!(RelPath::parse("/etc/passwd"), Err(PathError::Absolute));
        assert_eq!(RelPath::parse("a//b"), Err(PathError::EmptyComponent));
        assert_eq!(RelPath::parse("a/"), Err(PathError::EmptyComponent));
        assert_eq!(RelPath::parse("../x"), Err(PathError::DotComponent("..".into())));
        assert_eq!(RelPath::parse("a/./b"), Err(PathError::DotComponent(".".into())));
        assert_eq!(RelPath::parse("a/.."), Err(PathError::DotComponent("..".into())));
        assert_eq!(RelPath::parse("a\0b"), Err(PathError::Nul));
        assert_eq!(RelPath::parse("a\\..\\b"), Err(PathError::Backslash));
        let long = "x".repeat(256);
        assert_eq!(RelPath::parse(&long), Err(PathError::ComponentTooLong { len: 256, max: 255 }));
        assert!(RelPath::parse(&"x".repeat(255)).is_ok());
        assert_eq!(RelPath::parse("a\nb"), Err(PathError::Control));
        assert_eq!(RelPath::parse("evil\u{202e}txt.exe"), Err(PathError::Control));
        assert_eq!(RelPath::parse("\u{ff0e}\u{ff0e}/x"), Err(PathError::Lookalike("\u{ff0e}\u{ff0e}".into())));
        assert_eq!(RelPath::parse("a\u{ff0f}b"), Err(PathError::Lookalike("a\u{ff0f}b".into())));
        assert!(RelPath::parse("caf\u{e9}/na\u{ef}ve \u{2014} \u{65e5}\u{672c}").is_ok(), "ordinary Unicode is fine");
        let deep = vec!["abcdefgh"; 600].join("/");
        assert_eq!(RelPath::parse(&deep), Err(PathError::TooLong { len: deep.len(), max: 4096 }));
    }

    #[test]
    fn parent_name_and_ancestors() {
        let p = RelPath::parse("a/b/c").unwrap();
        assert_eq!(p.parent().unwrap().as_str(), "a/b");
        assert_eq!(p.file_name(), "c");
        let anc: Vec<_> = p.ancestors().into_iter().map(String::from).collect();
        assert_eq!(anc, vec!["a", "a/b"]);
        assert!(RelPath::parse("top").unwrap().parent().is_none());
    }

    #[test]
    fn within_is_component_wise() {
        let d = RelPath::parse("dir").unwrap();
        assert!(RelPath::parse("dir/x").unwrap().is_within(&d));
        assert!(d.is_within(&d));
        assert!(!RelPath::parse("dir2/x").unwrap().is_within(&d));
        let moved = RelPath::parse("dir/x/y").unwrap().rebase(&d, &RelPath::parse("new").unwrap());
        assert_eq!(moved.unwrap().unwrap().as_str(), "new/x/y");
        assert!(RelPath::parse("other").unwrap().rebase(&d, &d).is_none());
        let deep = RelPath::parse(&format!("dir/{}", vec!["x".repeat(200); 20].join("/"))).unwrap();
        let longer = RelPath::parse(&"y".repeat(200)).unwrap();
        assert!(matches!(deep.rebase(&d, &longer), Some(Err(PathError::TooLong { .. }))));
    }

    #[test]
    fn narrower_limits_name_themselves() {
        let limits = PathLimits { max_path_bytes: 10, max_name_bytes: 4 };
        assert_eq!(limits.check(&RelPath::parse("abcd/efgh").unwrap()), Ok(()));
        let e = limits.check(&RelPath::parse("abcd/efghi").unwrap()).unwrap_err();
        assert_eq!(e, PathError::ComponentTooLong { len: 5, max: 4 });
        assert_eq!(e.to_string(), "path component is 5 bytes long; the limit is 4");
        let e = limits.check(&RelPath::parse("abc/def/ghi").unwrap()).unwrap_err();
        assert_eq!(e, PathError::TooLong { len: 11, max: 10 });
        assert_eq!(PathLimits::default().check(&RelPath::parse(&"x".repeat(255)).unwrap()), Ok(()));
    }

    #[test]
    fn serde_rejects_bad_paths() {
        let err = serde_json::from_str::<RelPath>("\"../etc\"").unwrap_err();
        assert!(err.to_string().contains("'..'"), "{err}");
    }

    proptest! {
        #[test]
        fn valid_paths_round_trip(comps in proptest::collection::vec("[a-zA-Z0-9 ._-]{1,20}", 1..6)) {
            let s = comps.join("/");
            match RelPath::parse(&s) {
                Ok(p) => {
                    prop_assert_eq!(p.as_str(), s.as_str());
                    prop_assert!(p.components().all(|c| c != "." && c != ".." && !c.is_empty()));
                    let back: RelPath = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
                    prop_assert_eq!(back, p);
                }
                Err(e) => prop_assert!(matches!(e, PathError::DotComponent(_))),
            }
        }

        #[test]
        fn parse_never_accepts_escapes(s in "\\PC{0,40}") {
            if let Ok(p) = RelPath::parse(&s) {
                prop_assert!(!p.as_str().starts_with('/'));
                prop_assert!(p.components().all(|c| c != ".." && c != "." && !c.is_empty()));
                prop_assert!(!p.as_str().contains('\\') && !p.as_str().contains('\0'));
            }
        }
    }
}
