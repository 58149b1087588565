//! ssync-fs: the FUSE mount. A local cache served to the kernel, and a sync
//! engine that keeps it and the hub's tree equal (docs/sync-engine.md).
//!
//! Layout: `fuse` (kernel adapter) -> `fs` (core, local state only) over
//! `tree` (inodes), `handles`, `local_db` (persisted state); the sync thread
//! (`sync`) talks to the hub through `client`, moving contents as chunks
//! (`chunk_upload`, `chunk_download`, `chunk_index`); `invalidate` owns the
//! kernel notifier; `workers` answers the FUSE requests that may block.
mod accounts;
mod cache_limit;
mod chunk_download;
mod chunk_index;
mod chunk_upload;
pub mod cli;
pub mod client;
pub mod config;
mod conflict;
pub mod error;
mod file_chunks;
pub mod fs;
mod fuse;
mod handles;
mod invalidate;
mod journal;
pub mod local_db;
pub mod mount;
mod on_demand;
mod pin_cli;
mod reaper;
mod residency;
mod state;
pub mod status_file;
pub mod sync;
pub mod token;
pub mod tree;
pub mod user_cli;
mod workers;

pub use cli::cli_main;
pub use config::MountConfig;
