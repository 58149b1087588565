//! The hub's SQLite database: the one place that opens it and owns its schema.
//!
//! One connection behind a mutex serialises every write (the hub is the single
//! serialiser of changes); every call runs on tokio's blocking pool so the async
//! threads never wait on SQLite.
pub mod digests;
pub mod entries;
pub mod grants;
pub mod manifests;
mod migrations;
pub mod packs;
pub mod scoped;
pub mod share_chunks;
pub mod shares;
pub mod small_chunks;
pub mod tokens;

use rusqlite::Connection;
pub use scoped::{Scoped, ShareId};
use std::path::Path;
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "database schema version {found} is newer than this binary understands ({supported}); upgrade ssync-server"
    )]
    TooNew { found: i64, supported: i64 },
    #[error("database task failed: {0}")]
    Join(String),
}

#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    pub fn open(path: &Path) -> Result<Db, DbError> {
        // Created 0600 before SQLite opens it: its -wal and -shm files take the same mode.
        ssync_common::private::precreate(path).map_err(|e| DbError::Join(format!("create {}: {e}", path.display())))?;
        let conn = Connection::open(path)?;
        Self::init(conn)
    }

    pub fn open_in_memory() -> Result<Db, DbError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Db, DbError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a commit the hub acknowledged survives power loss.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrations::migrate(&mut conn)?;
        Ok(Db { conn: Arc::new(Mutex::new(conn)) })
    }

    /// Runs `f` with the connection on this thread (command-line tools).
    pub fn with_conn<R>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<R>) -> Result<R, DbError> {
        let guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        Ok(f(&guard)?)
    }

    /// Runs `f` with the connection on this thread, returning its own error
    /// (command-line tools that check as they go).
    pub fn locked<R, E>(&self, f: impl FnOnce(&Connection) -> Result<R, E>) -> Result<R, E> {
        let guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&guard)
    }

    /// Runs `f` with the connection on the blocking pool.
    pub async fn call<R, E, F>(&self, f: F) -> Result<R, E>
    where
        F: FnOnce(&mut Connection) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| E::from(DbError::Join(e.to_string())))?
    }
}

#[cfg(test)]
pub fn migrate_for_tests(conn: &mut Connection) {
    migrations::migrate(conn).expect("migrations apply to a fresh database");
}
