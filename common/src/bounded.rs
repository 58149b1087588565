//! Deserializers for request numbers with a narrower range than their Rust
//! type: versions and sizes live in SQLite integers (at most `i64::MAX`), and
//! a mode is permission bits only. A number out of range is refused where the
//! JSON or query is read, so it is a 400 naming the field, never a wrapped value.
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
}
