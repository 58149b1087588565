//! The hub's HTTP API, `/v1/...`: request and response bodies and the one error body.
//!
//! Every mutating request names the `base` version the client last saw for the
//! path (0: "I believe it does not exist"). A stale base gets 409 with the
//! current entry and changes nothing.
use crate::bounded;
use crate::chunks::{ChunkList, ListDelta, MAX_CHUNK};
use crate::xattrs::Xattrs;
use crate::{ContentHash, NodeId, RelPath};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// One entry of the tree as the hub stores it. `version` is the hub-wide
/// sequence number of the change that last touched it; deleted entries stay as
/// tombstones so the change feed can report them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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
    /// The mount that made this change (from the `X-Ssync-Mount` header): a
    /// mount recognizes its own changes coming back through the feed by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Owner and group, recorded like the mode (absent: never sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    /// Its `user.` extended attributes (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xattrs: Option<Xattrs>,
    /// The node this entry is a state of: the same through every rename and
    /// move (its earlier names are in its versions). Absent from hubs older
    /// than node ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, pattern = "^[0-9a-f]{32}$")]
    pub node: Option<NodeId>,
    /// The node of the folder it is in (32 zeros: the root). The tree is
    /// `(node, parent, name)`: a folder's rename is one change to one entry,
    /// and what is below it keeps its rows. Absent from hubs older than that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, pattern = "^[0-9a-f]{32}$")]
    pub parent: Option<NodeId>,
}

/// Who owns an entry, as the machine that last set it saw it: numeric ids,
/// and names where that machine has them. Another mount started with
/// `--sync-owners` maps the names to its own ids, falling back to the numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::bounded::account_name")]
    #[schema(max_length = 64)]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::bounded::account_name")]
    #[schema(max_length = 64)]
    pub group: Option<String>,
}

/// Header naming the device a request comes from; recorded with each change.
pub const DEVICE_HEADER: &str = "x-ssync-device";

/// Header naming the mount a request comes from (random, one per cache dir):
/// two mounts on one machine share a device name but never a mount id.
pub const MOUNT_HEADER: &str = "x-ssync-mount";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    /// A symbolic link, kept as data: its content is the target path's bytes.
    /// Neither the hub nor a mount ever resolves it; the kernel of the machine
    /// reading it does, as with any symlink.
    Symlink,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Dir => "dir",
            EntryKind::Symlink => "symlink",
        }
    }

    pub fn parse(s: &str) -> Option<EntryKind> {
        [EntryKind::File, EntryKind::Dir, EntryKind::Symlink].into_iter().find(|k| k.as_str() == s)
    }

    pub fn is_dir(self) -> bool {
        self == EntryKind::Dir
    }
}

/// What a commit makes: an entry with content (folders come from mkdir).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ContentKind {
    #[default]
    File,
    Symlink,
}

impl ContentKind {
    /// The kind a commit of an entry of `kind` makes; `None` for a folder.
    pub fn of(kind: EntryKind) -> Option<ContentKind> {
        match kind {
            EntryKind::File => Some(ContentKind::File),
            EntryKind::Symlink => Some(ContentKind::Symlink),
            EntryKind::Dir => None,
        }
    }
}

impl From<ContentKind> for EntryKind {
    fn from(k: ContentKind) -> EntryKind {
        match k {
            ContentKind::File => EntryKind::File,
            ContentKind::Symlink => EntryKind::Symlink,
        }
    }
}

/// The longest symlink target, in bytes (Linux's PATH_MAX less the NUL).
pub const MAX_SYMLINK_TARGET: u64 = 4095;

/// `GET /v1/tree`: every live entry, and the cursor to follow the feed from.
/// `GET /v1/changes`: entries whose version is above `since`, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EntriesPage {
    pub cursor: u64,
    pub entries: Vec<Entry>,
}

/// One change of a batch: what its own endpoint takes, tagged with `op`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Change {
    Commit(CommitRequest),
    Mkdir(MkdirRequest),
    Delete(DeleteRequest),
    Rename(RenameRequest),
    Exchange(ExchangeRequest),
    Setattr(SetAttrRequest),
}

/// Most changes one batch may hold.
pub const MAX_BATCH: usize = 1000;

/// `POST /v1/batch`: changes applied in order, in one transaction (one
/// fsync), each checked as its own endpoint would.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BatchRequest {
    #[schema(max_items = 1000)]
    pub changes: Vec<Change>,
}

/// Why a change of a batch was refused: the status and body its own
/// endpoint would have answered.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Refusal {
    pub status: u16,
    pub error: ErrorBody,
}

/// The answer to a batch: what each applied change changed, in order. If a
/// change was refused, `refused` says why, and the changes after it were not
/// applied (the ones before it were).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BatchResponse {
    pub done: Vec<MutationResponse>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<Refusal>,
}

#[derive(Debug, Clone, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    #[serde(deserialize_with = "bounded::u63")]
    pub since: u64,
    /// Seconds to hold the request open when nothing is newer than `since`.
    #[serde(default)]
    pub wait: u64,
    #[serde(default)]
    pub limit: Option<u32>,
    /// Leave out entries this mount made (its `x-ssync-mount` id): it has
    /// them already. The cursor still moves past them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub omit_origin: Option<String>,
}

/// Chunk hashes, 32 bytes each, concatenated and base64-encoded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HashList(pub String);

impl HashList {
    pub fn encode(hashes: &[ContentHash]) -> Self {
        let mut raw = Vec::with_capacity(hashes.len() * 32);
        for h in hashes {
            raw.extend_from_slice(h.as_bytes());
        }
        HashList(B64.encode(raw))
    }

    pub fn decode(&self) -> Result<Vec<ContentHash>, WireError> {
        let raw = B64.decode(&self.0).map_err(|e| WireError(format!("hash list is not base64: {e}")))?;
        if raw.len() % 32 != 0 {
            return Err(WireError(format!("hash list of {} bytes is not a multiple of 32", raw.len())));
        }
        Ok(raw.chunks_exact(32).map(|c| ContentHash::from_bytes(c.try_into().expect("32 bytes"))).collect())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct WireError(pub String);

/// A chunk list on the wire: whole (`from` absent), or as the difference
/// from the list of file `from` (keep `prefix` and `suffix` chunks of it,
/// `chunks` in between). Chunks: the binary list encoding, base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WireList {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<ContentHash>,
    #[serde(default)]
    pub prefix: u32,
    #[serde(default)]
    pub suffix: u32,
    pub chunks: String,
}

impl WireList {
    pub fn whole(list: &ChunkList) -> Self {
        WireList { from: None, prefix: 0, suffix: 0, chunks: B64.encode(list.to_bytes()) }
    }

    pub fn delta(from: ContentHash, d: &ListDelta) -> Self {
        WireList { from: Some(from), prefix: d.prefix, suffix: d.suffix, chunks: B64.encode(d.middle.to_bytes()) }
    }

    /// The list itself; `base` gives the list of `from` when there is one.
    /// A list that names a chunk longer than any chunk can be is refused:
    /// no store holds one, and a reader would reserve what it claims.
    pub fn resolve(&self, base: Option<&ChunkList>) -> Result<ChunkList, WireError> {
        let raw = B64.decode(&self.chunks).map_err(|e| WireError(format!("chunk list is not base64: {e}")))?;
        let middle = ChunkList::from_bytes(&raw).map_err(|e| WireError(e.to_string()))?;
        let list = match (self.from, base) {
            (None, _) => middle,
            (Some(_), Some(base)) => {
                let d = ListDelta { prefix: self.prefix, suffix: self.suffix, middle };
                ChunkList::apply_delta(base, &d).map_err(|e| WireError(e.to_string()))?
            }
            (Some(from), None) => return Err(WireError(format!("the list of {from} is not known here"))),
        };
        match list.0.iter().enumerate().find(|(_, c)| c.len > MAX_CHUNK) {
            Some((i, c)) => Err(WireError(format!(
                "chunk {i} of the list ({}) claims {} bytes; a chunk is at most {MAX_CHUNK}",
                c.hash, c.len
            ))),
            None => Ok(list),
        }
    }
}

/// `POST /v1/chunks/missing`: which of these chunks does the hub lack?
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChunksRequest {
    pub chunks: HashList,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MissingResponse {
    pub missing: HashList,
}

/// `POST /v1/chunks/fetch`: these chunks as a frame stream (see `frames`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FetchRequest {
    pub chunks: HashList,
    /// The client decodes zstd frames; the hub compresses chunks when it pays.
    #[serde(default)]
    pub zstd: bool,
}

/// `POST /v1/chunks` answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StoredResponse {
    pub received: u64,
    pub stored: u64,
}

/// `POST /v1/commit`: make `id` (whose chunks the hub already has) the new
/// content of `path`, if `base` is still its version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CommitRequest {
    pub path: RelPath,
    /// `file`, or `symlink` (whose content is its target, at most
    /// `MAX_SYMLINK_TARGET` bytes). Absent: `file`.
    #[serde(default)]
    pub kind: ContentKind,
    #[serde(deserialize_with = "bounded::u63")]
    pub base: u64,
    pub id: ContentHash,
    #[serde(deserialize_with = "bounded::u63")]
    pub size: u64,
    #[serde(deserialize_with = "bounded::mode")]
    #[schema(maximum = 0o7777)]
    pub mode: u32,
    pub mtime_ns: i64,
    /// Absent: the entry keeps the owner it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    /// The `user.` extended attributes, all of them (empty: none); absent:
    /// the entry keeps the ones it has.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::bounded::synced_xattrs")]
    pub xattrs: Option<Xattrs>,
    /// For a new entry: the node id the client chose (32 hex digits), kept
    /// through every rename. Absent: the node there, or a new one. Naming
    /// another node than the one at `path`, or one that lives elsewhere, is
    /// refused (409).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub node: Option<NodeId>,
    pub list: WireList,
    /// Small files: their new chunks as base64 frames, stored before the
    /// commit, so one request does what would take three.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<String>,
}

/// Files up to this size travel with their chunks inline (commit, manifest).
pub const INLINE_MAX: u64 = 256 * 1024;

/// `GET /v1/manifest/{id}?have=OTHER`: a file's chunk list, as a delta from
/// OTHER's list when the hub knows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ManifestQuery {
    #[serde(default)]
    pub have: Option<ContentHash>,
    /// Include the chunks (base64 frames) if the file is at most `INLINE_MAX` bytes.
    #[serde(default)]
    pub inline: bool,
    /// Only the chunks that hold some byte of `[from, to)` (a mount reading
    /// part of a file it does not cache: a 1 GiB file's whole list is ~600 KB).
    #[serde(default)]
    pub from: Option<u64>,
    #[serde(default)]
    pub to: Option<u64>,
}

/// Most ids one `POST /v1/manifests` may name.
pub const MAX_MANIFESTS: usize = 1024;

/// Small files' contents, many at once (a mount taking in `tar x` from another).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ManifestsRequest {
    pub ids: Vec<ContentHash>,
}

/// The chunk lists of the asked ids that are files of at most `INLINE_MAX`
/// bytes, each with its bytes inline, in the order asked. Ids the hub lacks,
/// and larger files, are left out: a mount fetches those one by one.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ManifestsResponse {
    pub manifests: Vec<ManifestResponse>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ManifestResponse {
    pub id: ContentHash,
    pub size: u64,
    pub list: WireList,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<String>,
    /// Set when the list is a slice (asked with `from`/`to`): the byte
    /// offset of its first chunk in the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

/// Encodes chunk frames for a JSON field.
pub fn inline_encode(frames: &[u8]) -> String {
    B64.encode(frames)
}

pub fn inline_decode(s: &str) -> Result<Vec<u8>, WireError> {
    B64.decode(s).map_err(|e| WireError(format!("inline chunks are not base64: {e}")))
}

/// `GET /v1/stats`: what the hub has moved since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Stats {
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub requests: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MkdirRequest {
    pub path: RelPath,
    #[serde(deserialize_with = "bounded::u63")]
    pub base: u64,
    #[serde(deserialize_with = "bounded::mode")]
    #[schema(maximum = 0o7777)]
    pub mode: u32,
    pub mtime_ns: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::bounded::synced_xattrs")]
    pub xattrs: Option<Xattrs>,
    /// For a new entry: the node id the client chose (32 hex digits), kept
    /// through every rename. Absent: the node there, or a new one. Naming
    /// another node than the one at `path`, or one that lives elsewhere, is
    /// refused (409).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub node: Option<NodeId>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeleteRequest {
    pub path: RelPath,
    #[serde(deserialize_with = "bounded::u63")]
    pub base: u64,
}

/// Moves `from` (at version `base`) to `to`. When `to` exists it must be at
/// `to_base` and is replaced (an empty folder or a file of the same kind).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RenameRequest {
    pub from: RelPath,
    pub to: RelPath,
    #[serde(deserialize_with = "bounded::u63")]
    pub base: u64,
    #[serde(deserialize_with = "bounded::u63", default)]
    pub to_base: u64,
    /// The node the folder of `to` must be (absent: not checked, and a
    /// missing folder is made). A client that names its nodes sends it, so
    /// a move into a folder deleted or replaced meanwhile is refused (409)
    /// instead of landing in a folder made again under a new id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub to_parent: Option<NodeId>,
}

/// Swaps `a` (at version `a_base`) and `b` (at `b_base`), with what is below
/// them, in one change (renameat2 RENAME_EXCHANGE). Both must exist.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExchangeRequest {
    pub a: RelPath,
    pub b: RelPath,
    #[serde(deserialize_with = "bounded::u63")]
    pub a_base: u64,
    #[serde(deserialize_with = "bounded::u63")]
    pub b_base: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SetAttrRequest {
    pub path: RelPath,
    #[serde(deserialize_with = "bounded::u63")]
    pub base: u64,
    #[serde(deserialize_with = "bounded::optional_mode", default)]
    #[schema(maximum = 0o7777)]
    pub mode: Option<u32>,
    #[serde(default)]
    pub mtime_ns: Option<i64>,
    /// Absent: unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    /// All `user.` extended attributes (empty: none); absent: unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::bounded::synced_xattrs")]
    pub xattrs: Option<Xattrs>,
}

/// What a mutation changed, in sequence order: created parent folders, moved
/// entries and tombstones included. Empty when nothing needed to change.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MutationResponse {
    pub entries: Vec<Entry>,
}

impl MutationResponse {
    /// The live entry the response holds for `path` (for a rename: ask for `to`).
    pub fn live_at(&self, path: &RelPath) -> Option<&Entry> {
        self.entries.iter().rev().find(|e| &e.path == path && !e.deleted)
    }
}

/// A folder of the tree; none: the root.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FolderQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<RelPath>,
}

/// A folder, and whether to list its subfolders' digests too.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DigestQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<RelPath>,
    /// Also list the subfolders' digests (asked only when the folder differs:
    /// on a large tree the list is what costs).
    #[serde(default)]
    pub folders: bool,
}

/// A folder's digests (see `ssync_common::digest`): what an idle mount
/// compares instead of the whole tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FolderDigest {
    /// The feed position these digests reflect.
    pub cursor: u64,
    /// Over the live entries directly in the folder.
    pub direct: ContentHash,
    /// Over every live entry below the folder.
    pub subtree: ContentHash,
    /// When asked for: the subfolders with live entries below them, and
    /// their subtree digests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub folders: Vec<SubfolderDigest>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SubfolderDigest {
    pub name: String,
    pub subtree: ContentHash,
}

#[derive(Debug, Clone, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PathQuery {
    pub path: RelPath,
}

/// One kept version of a path: the entry as it was after change `version`,
/// committed by the hub at `at_ns` (Unix time, nanoseconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VersionInfo {
    pub entry: Entry,
    pub at_ns: i64,
}

/// `GET /v1/versions?path=`: newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VersionsResponse {
    pub versions: Vec<VersionInfo>,
}

/// `POST /v1/restore`: makes version `version` of `path` current again, at
/// `as` if given; a new change every mount receives.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RestoreRequest {
    pub path: RelPath,
    #[serde(deserialize_with = "bounded::u63")]
    pub version: u64,
    #[serde(default, rename = "as", skip_serializing_if = "Option::is_none")]
    pub as_path: Option<RelPath>,
}

/// `POST /v1/restore-tree`: brings folder `path` (and all below it) back to
/// how it was at `at_ns`: files and folders that existed then come back with
/// their content of then; what was created later is deleted (and kept in history).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RestoreTreeRequest {
    pub path: RelPath,
    pub at_ns: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
    pub version: String,
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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
    /// A commit names chunks (or a base list) the hub does not have: send them, then commit again.
    pub const MISSING_CHUNKS: &str = "missing_chunks";
    pub const TOO_LARGE: &str = "too_large";
    /// No token, or one the hub does not know (mistyped or revoked).
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// A request body stalled past the hub's idle limit.
    pub const TIMEOUT: &str = "timeout";
    /// Too many requests of a kind held open at once for one token.
    pub const TOO_MANY: &str = "too_many";
    /// The endpoint exists but not for this method (the `Allow` header lists those it takes).
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// The token has no grant on the share (or not the read-write one a change needs).
    pub const FORBIDDEN: &str = "forbidden";
}

/// The paths a request names: the hub checks each against its length limits
/// (`--max-path-bytes`, `--max-name-bytes`) where the request is read.
pub trait RequestPaths {
    fn paths(&self) -> Vec<&RelPath>;
}

macro_rules! request_paths {
    ($($t:ty => |$r:ident| $paths:expr;)*) => {
        $(impl RequestPaths for $t {
            fn paths(&self) -> Vec<&RelPath> {
                let $r = self;
                $paths
            }
        })*
    };
}

request_paths! {
    ChangesQuery => |_r| vec![];
    ManifestQuery => |_r| vec![];
    ChunksRequest => |_r| vec![];
    FetchRequest => |_r| vec![];
    ManifestsRequest => |_r| vec![];
    PathQuery => |r| vec![&r.path];
    FolderQuery => |r| r.dir.iter().collect();
    DigestQuery => |r| r.dir.iter().collect();
    CommitRequest => |r| vec![&r.path];
    MkdirRequest => |r| vec![&r.path];
    DeleteRequest => |r| vec![&r.path];
    SetAttrRequest => |r| vec![&r.path];
    RestoreTreeRequest => |r| vec![&r.path];
    RenameRequest => |r| vec![&r.from, &r.to];
    ExchangeRequest => |r| vec![&r.a, &r.b];
    RestoreRequest => |r| std::iter::once(&r.path).chain(&r.as_path).collect();
    BatchRequest => |r| r.changes.iter().flat_map(Change::paths).collect();
}

impl Change {
    fn paths(&self) -> Vec<&RelPath> {
        match self {
            Change::Commit(r) => r.paths(),
            Change::Mkdir(r) => r.paths(),
            Change::Delete(r) => r.paths(),
            Change::Rename(r) => r.paths(),
            Change::Exchange(r) => r.paths(),
            Change::Setattr(r) => r.paths(),
        }
    }
}
