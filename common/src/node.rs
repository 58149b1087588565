//! A node's identity: 128 random bits, kept through every rename and move of
//! the file, folder or symlink it names, on the hub and on every mount
//! (docs/sync-engine.md). On the wire and in SQLite it is 32 hex digits.
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u128);

impl NodeId {
    /// The root folder's id: it has no entry of its own.
    pub const ROOT: NodeId = NodeId(0);

    /// A new id, from the operating system's random source.
    pub fn random() -> NodeId {
        let mut raw = [0u8; 16];
        getrandom::getrandom(&mut raw).expect("the operating system's random source works");
        NodeId(u128::from_le_bytes(raw).max(1))
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a node id is 32 hex digits, not {0:?}")]
pub struct BadNodeId(String);

impl FromStr for NodeId {
    type Err = BadNodeId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit());
        let bad = || BadNodeId(s.chars().take(40).collect());
        if !ok {
            return Err(bad());
        }
        u128::from_str_radix(s, 16).map(NodeId).map_err(|_| bad())
    }
}

impl Serialize for NodeId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_32_hex_digits_both_ways() {
        let id = NodeId::random();
        let text = id.to_string();
        assert_eq!(text.len(), 32);
        assert_eq!(text.parse::<NodeId>().unwrap(), id);
        assert_eq!(serde_json::from_value::<NodeId>(serde_json::to_value(id).unwrap()).unwrap(), id);
        assert!("12".parse::<NodeId>().is_err());
        assert!("g".repeat(32).parse::<NodeId>().is_err());
        assert_ne!(NodeId::random(), NodeId::random());
    }
}
