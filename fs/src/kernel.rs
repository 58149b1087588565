//! FUSE: `fuse` adapts fuser's callbacks to `fs`, the filesystem
//! operations, which work on local state only; `workers` answers the
//! requests that may block.
pub mod fs;
pub(crate) mod fuse;
pub(crate) mod workers;
