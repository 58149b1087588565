//! Deserializers for request numbers with a narrower range than their Rust
//! type: versions and sizes live in SQLite integers (at most `i64::MAX`), and
//! a mode is permission bits only. A number out of range is refused where the
//! JSON or query is read, so it is a 400 naming the field, never a wrapped value.
use crate::xattrs::Xattrs;
use serde::de::Error;
use serde::{Deserialize, Deserializer};

/// The largest version or size a request may carry.
pub const MAX_U63: u64 = i64::MAX as u64;
/// Permission bits: rwx for user, group, other, and setuid/setgid/sticky.
pub const MAX_MODE: u32 = 0o7777;

pub fn u63<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = u64::deserialize(d)?;
    if v > MAX_U63 {
        return Err(D::Error::custom(format!("{v} is above the largest allowed, {MAX_U63}")));
    }
    Ok(v)
}

pub fn mode<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = u32::deserialize(d)?;
    if v > MAX_MODE {
        return Err(D::Error::custom(format!("mode {v:#o} has bits beyond the permission bits ({MAX_MODE:#o})")));
    }
    Ok(v)
}

pub fn optional_mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    #[derive(Deserialize)]
    struct Mode(#[serde(deserialize_with = "mode")] u32);
    Ok(Option::<Mode>::deserialize(d)?.map(|m| m.0))
}

/// Longest user or group name a request may carry (Linux allows 32).
pub const MAX_ACCOUNT_NAME: usize = 64;

/// A user or group name: at most `MAX_ACCOUNT_NAME` bytes, no control characters.
pub fn account_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let Some(name) = Option::<String>::deserialize(d)? else { return Ok(None) };
    if name.is_empty() || name.len() > MAX_ACCOUNT_NAME || name.chars().any(char::is_control) {
        return Err(D::Error::custom(format!(
            "an owner or group name must be 1 to {MAX_ACCOUNT_NAME} bytes without control characters"
        )));
    }
    Ok(Some(name))
}

/// Extended attributes a request may set: `user.` ones only (see `xattrs`).
pub fn synced_xattrs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Xattrs>, D::Error> {
    let Some(x) = Option::<Xattrs>::deserialize(d)? else { return Ok(None) };
    x.check_synced().map_err(D::Error::custom)?;
    Ok(Some(x))
}

#[cfg(test)]
mod tests {
    use crate::api::{ChangesQuery, MkdirRequest, SetAttrRequest};

    #[test]
    fn numbers_beyond_their_range_are_refused_naming_the_field() {
        let huge = serde_json::json!({"path": "a", "base": 9223372036854775808u64, "mode": 0o755, "mtime_ns": 0});
        let e = serde_json::from_value::<MkdirRequest>(huge).unwrap_err().to_string();
        assert!(e.contains("largest allowed"), "{e}");
        let top = serde_json::json!({"path": "a", "base": i64::MAX, "mode": 0o7777, "mtime_ns": 0});
        assert!(serde_json::from_value::<MkdirRequest>(top).is_ok());
        let typed = serde_json::json!({"path": "a", "base": 0, "mode": 0o100644, "mtime_ns": 0});
        let e = serde_json::from_value::<MkdirRequest>(typed).unwrap_err().to_string();
        assert!(e.contains("permission bits"), "{e}");

        let set = |v| serde_json::from_value::<SetAttrRequest>(serde_json::json!({"path": "a", "base": 1, "mode": v}));
        assert_eq!(set(serde_json::json!(0o644)).unwrap().mode, Some(0o644));
        assert_eq!(set(serde_json::Value::Null).unwrap().mode, None);
        assert!(set(serde_json::json!(0o10000)).is_err());
        let absent = serde_json::from_value::<SetAttrRequest>(serde_json::json!({"path": "a", "base": 1})).unwrap();
        assert_eq!(absent.mode, None);

        let q: Result<ChangesQuery, _> = serde_json::from_value(serde_json::json!({"since": u64::MAX}));
        assert!(q.is_err());
    }

    #[test]
    fn owner_names_are_bounded() {
        let set = |owner| {
            serde_json::from_value::<SetAttrRequest>(serde_json::json!({"path": "a", "base": 1, "owner": owner}))
        };
        let ok = set(serde_json::json!({"uid": 1001, "gid": 1001, "user": "ann", "group": "staff"})).unwrap();
        assert_eq!(ok.owner.unwrap().user.as_deref(), Some("ann"));
        assert!(set(serde_json::json!({"uid": 1, "gid": 1})).unwrap().owner.unwrap().user.is_none());
        let e = set(serde_json::json!({"uid": 1, "gid": 1, "user": "x".repeat(65)})).unwrap_err().to_string();
        assert!(e.contains("owner or group name"), "{e}");
        assert!(set(serde_json::json!({"uid": 1, "gid": 1, "group": "a\nb"})).is_err());
        assert!(set(serde_json::json!({"uid": -1, "gid": 1})).is_err());
    }
}
