//! The hub's HTTP API, `/v1/...`: request and response bodies and the one error body.
//!
//! Every mutating request names the `base` version the client last saw for the
//! path (0: "I believe it does not exist"). A stale base gets 409 with the
//! current entry and changes nothing.
use crate::{ContentHash, RelPath};
use serde::{Deserialize, Serialize};

/// One entry of the tree as the hub stores it. `version` is the hub-wide
/// sequence number of the change that last touched it; deleted entries stay as
/// tombstones so the change feed can report them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub path: RelPath,
    pub kind: EntryKind,
    pub version: u64,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<ContentHash>,
    #[serde(default)]
    pub size: u64,
    pub mode: u32,
    pub mtime_ns: i64,
    /// The device that made this change (from the `X-Ssync-Device` header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// On a tombstone a rename left behind: where the entry went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_to: Option<RelPath>,
}

/// Header naming the device a request comes from; recorded with each change.
pub const DEVICE_HEADER: &str = "x-ssync-device";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
}

/// `GET /v1/tree`: every live entry, and the cursor to follow the feed from.
/// `GET /v1/changes`: entries whose version is above `since`, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntriesPage {
    pub cursor: u64,
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangesQuery {
    pub since: u64,
    /// Seconds to hold the request open when nothing is newer than `since`.
    #[serde(default)]
    pub wait: u64,
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Query of `PUT /v1/file`; the body is the file's bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadQuery {
    pub path: RelPath,
    pub base: u64,
    pub mode: u32,
    pub mtime_ns: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MkdirRequest {
    pub path: RelPath,
    pub base: u64,
    pub mode: u32,
    pub mtime_ns: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeleteRequest {
    pub path: RelPath,
    pub base: u64,
}

/// Moves `from` (at version `base`) to `to`. When `to` exists it must be at
/// `to_base` and is replaced (an empty folder or a file of the same kind).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RenameRequest {
    pub from: RelPath,
    pub to: RelPath,
    pub base: u64,
    #[serde(default)]
    pub to_base: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetAttrRequest {
    pub path: RelPath,
    pub base: u64,
    #[serde(default)]
    pub mode: Option<u32>,
    #[serde(default)]
    pub mtime_ns: Option<i64>,
}

/// What a mutation changed, in sequence order: created parent folders, moved
/// entries and tombstones included. Empty when nothing needed to change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MutationResponse {
    pub entries: Vec<Entry>,
}

impl MutationResponse {
    /// The live entry the response holds for `path` (for a rename: ask for `to`).
    pub fn live_at(&self, path: &RelPath) -> Option<&Entry> {
        self.entries.iter().rev().find(|e| &e.path == path && !e.deleted)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PathQuery {
    pub path: RelPath,
}

/// One kept version of a path: the entry as it was after change `version`,
/// committed by the hub at `at_ns` (Unix time, nanoseconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    pub entry: Entry,
    pub at_ns: i64,
}

/// `GET /v1/versions?path=`: newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionsResponse {
    pub versions: Vec<VersionInfo>,
}

/// `POST /v1/restore`: makes version `version` of `path` current again, at
/// `as` if given; a new change every mount receives.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreRequest {
    pub path: RelPath,
    pub version: u64,
    #[serde(default, rename = "as", skip_serializing_if = "Option::is_none")]
    pub as_path: Option<RelPath>,
}

/// `POST /v1/restore-tree`: brings folder `path` (and all below it) back to
/// how it was at `at_ns`: files and folders that existed then come back with
/// their content of then; what was created later is deleted (and kept in history).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreTreeRequest {
    pub path: RelPath,
    pub at_ns: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    pub version: String,
    pub cursor: u64,
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    /// With `conflict`: the entry as the hub has it now (absent if it never existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<Entry>,
}

/// Values of `ErrorBody::code`.
pub mod codes {
    pub const BAD_PATH: &str = "bad_path";
    pub const BAD_REQUEST: &str = "bad_request";
    pub const BAD_HASH: &str = "bad_hash";
    /// The base version is stale: someone else changed the entry first.
    pub const CONFLICT: &str = "conflict";
    /// The tree's shape forbids it (a parent is a file, a folder is not empty, kinds differ).
    pub const PATH_BLOCKED: &str = "path_blocked";
    pub const NOT_FOUND: &str = "not_found";
    pub const INTERNAL: &str = "internal";
    pub const UNAVAILABLE: &str = "unavailable";
}
