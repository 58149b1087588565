//! ssync-fs: the FUSE mount. A local cache served to the kernel, and a sync
//! engine that keeps it and the hub's tree equal (docs/sync-engine.md).
//!
//! Folders by layer, top first; each uses only the ones below it
//! (`fs/tests/layers.rs` checks it):
//!
//! - `cmd`: the programs: `ssync-mount`'s wiring, the `ssync` CLI, configuration;
//! - `kernel`: FUSE: the fuser adapter and the filesystem operations;
//! - `sync`: the sync engine and the thread that runs it;
//! - `local`: the mount's state: the inode tree, its database, cache files,
//!   residency and files on demand;
//! - `remote`: the hub: the HTTP client, chunk transfer, tokens;
//! - `content`: chunk lists of files on disk, and where each chunk is.
pub mod cmd;
pub mod content;
pub mod kernel;
pub mod local;
pub mod remote;
pub mod sync;

pub use cmd::cli::cli_main;
pub use cmd::config::MountConfig;
