//! What the ssync hub and mount share: the HTTP API's wire types, the validated
//! relative path both sides use, and BLAKE3 content hashes.
#![deny(unsafe_code)]

pub mod api;
mod bounded;
pub mod chunks;
pub mod digest;
pub mod frames;
pub mod hash;
pub mod log_limit;
pub mod node;
pub mod path;
pub mod private;
mod schema;
pub mod share;
pub mod wait;
pub mod writeback;
pub mod xattrs;

pub use chunks::{ChunkList, ChunkRef};
pub use hash::{ContentHash, ContentHasher};
pub use node::NodeId;
pub use path::{PathError, PathLimits, RelPath};
