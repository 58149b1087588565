//! Contents on this machine's disk: `file_chunks` cuts a file into its
//! chunk list without reading its holes, and `chunk_index` records where
//! each chunk of the cache files is, so downloads reuse local bytes.
pub mod chunk_index;
pub mod file_chunks;
