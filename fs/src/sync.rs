//! The sync engine on stable identities and three trees, in the manner of
//! Dropbox's Nucleus (see docs/sync-engine.md). The layer above `local/`
//! and `remote/`, below `kernel/` (see `fs/tests/layers.rs`):
//!
//! - `canopy`: the three trees a mount persists: Local (what its users did),
//!   Remote (the hub, as its feed said) and Synced (per node, the last state
//!   both agreed on). Nodes are keyed by an id that never changes; paths are
//!   derived.
//! - `merge`: the tree both sides must end at, a pure function of the three:
//!   each node's location, mode and content merged on their own against the
//!   merge base, then the whole made a valid tree (no orphan, no cycle, one
//!   node per name in a folder).
//! - `planner`: the next operations that bring Local and Remote to it, each
//!   valid on the tree it changes as it is now. Nothing is persisted but the
//!   trees: after a refusal or a crash the planner runs again.
//! - `engine`: the loop over any `Remote`: feed, merge, plan, carry out.
//! - `hub_view`: the Remote tree as the hub's rows (answers and the feed)
//!   build it, and the hub's request for each planned Remote operation.
//! - `remote`: what the engine needs of the hub (`Remote`); the simulation's
//!   `memory_hub` runs the hub's own tree rules behind it, `http_remote` is
//!   the hub over HTTP.
//! - On the mount: `local_tree` (Local, read from the mount's own tree;
//!   `local_reader` reads what changed),
//!   `content_ids` (what a closed file holds), `mount_side` (Local
//!   operations on the tree and cache), `conflict` (conflict copies' names),
//!   `keeper` (the engine's state in the mount's database) and `driver`
//!   (the sync thread).
mod agreement;
pub mod canopy;
mod conflict;
pub mod content_ids;
pub mod driver;
pub mod engine;
pub mod heal;
pub mod http_remote;
pub mod hub_view;
pub mod inode_map;
pub mod keeper;
pub mod local_reader;
pub mod local_tree;
pub mod merge;
pub mod mount_keeper;
pub mod mount_side;
pub mod planner;
pub mod remote;
pub mod upload_lane;

#[cfg(test)]
mod canopy_check;
#[cfg(test)]
mod memory_hub;
