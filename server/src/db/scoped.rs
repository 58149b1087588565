//! A connection scoped to one share. The tree's rows (`entries`,
//! `versions`, `dir_digests`) are read and written only through it, so no
//! rule of the tree can reach another share's rows: every query of
//! `entries.rs` and `digests.rs` names `share`.
use rusqlite::types::{ToSql, ToSqlOutput};
use rusqlite::Connection;
use std::ops::Deref;

/// A share's row id in `shares`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShareId(pub i64);

impl ShareId {
    /// The share a hub's tree became when shares came (schema step 15).
    pub const DEFAULT: ShareId = ShareId(1);
}

impl ToSql for ShareId {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        self.0.to_sql()
    }
}

impl std::fmt::Display for ShareId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A connection (or transaction) and the share its tree rows belong to.
pub struct Scoped<'c> {
    conn: &'c Connection,
    pub share: ShareId,
}

impl<'c> Scoped<'c> {
    pub fn new(conn: &'c Connection, share: ShareId) -> Scoped<'c> {
        Scoped { conn, share }
    }
}

impl Deref for Scoped<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}
