//! The hub: `client` is the one place that talks HTTP to it, `token` finds
//! the access token, and `chunk_upload` and `chunk_download` move contents
//! as chunks.
pub mod chunk_download;
pub mod chunk_upload;
pub mod client;
pub mod token;
