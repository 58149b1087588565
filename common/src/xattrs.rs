//! Extended attributes of one file or folder, with the limits every machine
//! keeps. The mount holds every namespace; only `user.` attributes travel
//! (the others name this machine's users, labels or capabilities: see
//! SEMANTICS.md). On the wire they are an object of name to base64 value.
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

/// Longest attribute name, in bytes (Linux's XATTR_NAME_MAX).
pub const MAX_NAME: usize = 255;
/// Most bytes all names and values of one entry may take: Linux's largest
/// single value (XATTR_SIZE_MAX), which no local filesystem's total exceeds
/// by much (ext4 keeps them in one 4 KiB block).
pub const MAX_TOTAL: usize = 65536;
/// The namespace that travels between machines.
pub const SYNCED_PREFIX: &str = "user.";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum XattrError {
    #[error("an attribute name is a namespace, a dot and a name (user.NAME), without NUL, not {0:?}")]
    BadName(String),
    #[error("an attribute name is at most {MAX_NAME} bytes, not {0}")]
    NameTooLong(usize),
    #[error("extended attributes of one entry take at most {MAX_TOTAL} bytes (names and values); these take {0}")]
    NoSpace(usize),
    #[error("only '{SYNCED_PREFIX}' attributes travel, not {0:?}")]
    NotSynced(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Xattrs(BTreeMap<String, Vec<u8>>);

impl Xattrs {
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.0.get(name).map(Vec::as_slice)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The bytes the names and values take, as counted against `MAX_TOTAL`.
    pub fn bytes(&self) -> usize {
        self.0.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// Sets `name` to `value`, unless that breaks a limit (then nothing changes).
    pub fn set(&mut self, name: &str, value: &[u8]) -> Result<(), XattrError> {
        check_name(name)?;
        let after = self.bytes() - self.0.get(name).map_or(0, |v| name.len() + v.len()) + name.len() + value.len();
        if after > MAX_TOTAL {
            return Err(XattrError::NoSpace(after));
        }
        self.0.insert(name.to_owned(), value.to_vec());
        Ok(())
    }

    /// Whether `name` was there.
    pub fn remove(&mut self, name: &str) -> bool {
        self.0.remove(name).is_some()
    }

    /// The attributes that travel.
    pub fn synced(&self) -> Xattrs {
        Xattrs(self.0.iter().filter(|(k, _)| is_synced(k)).map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    /// These, with the travelling ones replaced by `from_hub`'s.
    pub fn with_synced(&self, from_hub: &Xattrs) -> Xattrs {
        let local = self.0.iter().filter(|(k, _)| !is_synced(k)).map(|(k, v)| (k.clone(), v.clone()));
        Xattrs(local.chain(from_hub.synced().0).collect())
    }

    /// Refuses a set with a name outside the travelling namespace.
    pub fn check_synced(&self) -> Result<(), XattrError> {
        match self.names().find(|n| !is_synced(n)) {
            Some(n) => Err(XattrError::NotSynced(n.to_owned())),
            None => Ok(()),
        }
    }
}

pub fn is_synced(name: &str) -> bool {
    name.starts_with(SYNCED_PREFIX)
}

/// A name is a namespace, a dot and at least one more byte (`user.` alone is
/// what Linux refuses with EINVAL), at most `MAX_NAME` bytes, without NUL.
fn check_name(name: &str) -> Result<(), XattrError> {
    if name.len() > MAX_NAME {
        return Err(XattrError::NameTooLong(name.len()));
    }
    let named = name.split_once('.').is_some_and(|(ns, rest)| !ns.is_empty() && !rest.is_empty());
    if !named || name.contains('\0') {
        return Err(XattrError::BadName(name.chars().take(64).collect()));
    }
    Ok(())
}

impl Serialize for Xattrs {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, B64.encode(v))))
    }
}

impl<'de> Deserialize<'de> for Xattrs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = BTreeMap::<String, String>::deserialize(d)?;
        let mut out = Xattrs::default();
        for (name, value) in raw {
            let value =
                B64.decode(&value).map_err(|e| D::Error::custom(format!("xattr {name:?} is not base64: {e}")))?;
            out.set(&name, &value).map_err(D::Error::custom)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_hold_and_a_refused_set_changes_nothing() {
        let mut x = Xattrs::default();
        x.set("user.a", b"1").unwrap();
        assert_eq!(x.set("", b"v"), Err(XattrError::BadName(String::new())));
        assert_eq!(x.set(&"n".repeat(256), b"v"), Err(XattrError::NameTooLong(256)));
        for bad in ["user.", ".x", "noprefix", "trusted."] {
            assert!(matches!(x.set(bad, b"v"), Err(XattrError::BadName(_))), "{bad}");
        }
        let e = serde_json::from_value::<Xattrs>(serde_json::json!({"user.": ""})).unwrap_err();
        assert!(e.to_string().contains("user.NAME"), "{e}");
        assert!(matches!(x.set("user.big", &vec![0; MAX_TOTAL]), Err(XattrError::NoSpace(_))));
        x.set("user.fits", &vec![0; MAX_TOTAL - "user.a1user.fits".len()]).unwrap();
        x.set("user.fits", b"smaller").unwrap();
        assert_eq!(x.get("user.a"), Some(&b"1"[..]));
        assert_eq!(x.bytes(), "user.a1user.fitssmaller".len());
    }

    #[test]
    fn only_user_attributes_travel_and_local_ones_stay() {
        let mut local = Xattrs::default();
        local.set("user.old", b"o").unwrap();
        local.set("security.selinux", b"label").unwrap();
        assert_eq!(local.synced().names().collect::<Vec<_>>(), ["user.old"]);
        assert!(matches!(local.check_synced(), Err(XattrError::NotSynced(n)) if n == "security.selinux"));
        let mut hub = Xattrs::default();
        hub.set("user.new", b"n").unwrap();
        let merged = local.with_synced(&hub);
        assert_eq!(merged.names().collect::<Vec<_>>(), ["security.selinux", "user.new"]);
    }

    #[test]
    fn wire_form_is_base64_and_checked() {
        let mut x = Xattrs::default();
        x.set("user.bin", &[0, 255, 10]).unwrap();
        let json = serde_json::to_value(&x).unwrap();
        assert_eq!(json, serde_json::json!({"user.bin": "AP8K"}));
        assert_eq!(serde_json::from_value::<Xattrs>(json).unwrap(), x);
        let e = serde_json::from_value::<Xattrs>(serde_json::json!({"user.x": "!!"})).unwrap_err();
        assert!(e.to_string().contains("not base64"), "{e}");
        let big = B64.encode(vec![1; MAX_TOTAL]);
        let e = serde_json::from_value::<Xattrs>(serde_json::json!({ "user.x": big })).unwrap_err();
        assert!(e.to_string().contains("at most 65536 bytes"), "{e}");
    }
}
