//! Share names, as the hub stores them, the CLI takes them and URLs carry
//! them (`/v1/shares/{share}/…`): 1 to 64 of `a-z 0-9 . _ -`, starting with
//! a letter or digit, so a name is safe in a URL path and a file name alike.
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const MAX_SHARE_NAME: usize = 64;

/// The share a hub's tree became when shares came; a mount cache made before
/// them belongs to it.
pub const DEFAULT_SHARE: &str = "default";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a share name: use 1 to 64 of a-z 0-9 . _ -, starting with a letter or digit")]
pub struct BadShareName(pub String);

/// Checks a share name (see the module's note).
pub fn check_share_name(name: &str) -> Result<&str, BadShareName> {
    let ok = (1..=MAX_SHARE_NAME).contains(&name.len())
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    match ok {
        true => Ok(name),
        false => Err(BadShareName(name.to_string())),
    }
}

/// `check_share_name` as a command-line value parser (clap's `value_parser`).
pub fn parse_share_name(s: &str) -> Result<String, String> {
    check_share_name(s).map(str::to_string).map_err(|e| e.to_string())
}

/// A share a token may use, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ShareAccess {
    pub name: String,
    /// Read-write; false: read-only (the mount mounts `ro`).
    pub writable: bool,
}

/// `GET /v1/shares`: the shares the caller's token may use (an admin's: all).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SharesResponse {
    pub shares: Vec<ShareAccess>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_names_are_safe_in_urls_and_file_names() {
        for good in ["default", "photos", "a", "team-2026", "x.y_z", &"a".repeat(64)] {
            assert_eq!(check_share_name(good), Ok(good));
        }
        for bad in ["", "Photos", ".hidden", "-x", "a/b", "a b", "..", "é", &"a".repeat(65), "a%2f"] {
            assert!(check_share_name(bad).is_err(), "{bad:?}");
        }
    }
}
