//! The mount's state: the inode tree (`tree`), its database (`db`, written
//! behind by `journal`), the cache files (`state::CacheDirs`, `reaper`), open
//! handles, which bytes each cache file holds (`residency`), files on demand
//! (`on_demand`, `cache_limit`), owners by name (`accounts`), what the kernel
//! must forget (`invalidate`), and the one mapping of errors to errno
//! (`error`). `state::Shared` is what the FUSE threads and the sync thread
//! share.
pub mod accounts;
pub mod cache_limit;
pub mod clock;
pub mod committer;
pub mod db;
pub mod error;
pub mod eviction;
pub mod handles;
pub mod invalidate;
pub mod journal;
pub mod on_demand;
pub mod reaper;
pub mod residency;
pub mod state;
pub mod tree;
