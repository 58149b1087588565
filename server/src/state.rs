//! `AppState`: what every handler shares.
use crate::db::{Db, DbError, Scoped, ShareId};
use crate::error::ApiError;
use crate::feed::ChangeFeed;
use crate::store::ContentStore;
use crate::tree::TreeError;
use rusqlite::TransactionBehavior;
use ssync_common::api::Entry;
use ssync_common::PathLimits;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest a change-feed request may be held open.
    pub max_wait: Duration,
    /// Most entries one change-feed page returns.
    pub max_page: u32,
    /// Largest JSON request body (hash lists and chunk lists included).
    pub max_json_bytes: usize,
    /// Largest chunk upload request.
    pub max_upload_bytes: u64,
    /// Most chunk hashes one request may name.
    pub max_hashes: usize,
    /// Longest a request body may stall between two pieces.
    pub body_idle: Duration,
    /// Most change-feed requests held open at once per token.
    pub max_polls_per_token: usize,
    /// Longest a client may take to send a request's headers (and a TLS handshake).
    pub header_timeout: Duration,
    /// Longest path and name a request may name (or a folder rename make).
    pub paths: PathLimits,
}

/// How much history the hub keeps (see `gc.rs`).
#[derive(Debug, Clone)]
pub struct Retention {
    /// Versions older than this are dropped (the newest of each path is always kept).
    pub keep: Duration,
    /// At most this many versions per path.
    pub keep_versions: u32,
    /// How often old versions are pruned and unreferenced contents deleted.
    pub gc_interval: Duration,
    /// Unreferenced chunks younger than this are kept: an upload may commit them soon.
    pub grace: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            keep: Duration::from_secs(30 * 86_400),
            keep_versions: 100,
            gc_interval: Duration::from_secs(600),
            grace: Duration::from_secs(3600),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_wait: Duration::from_secs(60),
            max_page: 10_000,
            max_json_bytes: 32 << 20,
            max_upload_bytes: 64 << 20,
            max_hashes: 16_384,
            body_idle: Duration::from_secs(30),
            max_polls_per_token: 16,
            header_timeout: Duration::from_secs(30),
            paths: PathLimits::default(),
        }
    }
}

impl axum::extract::FromRef<AppState> for PathLimits {
    fn from_ref(state: &AppState) -> PathLimits {
        state.limits.paths
    }
}

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub store: ContentStore,
    pub feed: ChangeFeed,
    pub shutdown: CancellationToken,
    pub limits: Arc<Limits>,
    pub retention: Arc<Retention>,
    pub traffic: Arc<crate::traffic::Traffic>,
    /// Change-feed requests held open, per token name.
    pub polls: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
}

impl AppState {
    /// Opens (or creates) the hub's data dir: `meta.db` and the content store.
    pub async fn open(data_dir: &Path, limits: Limits) -> Result<AppState, DbError> {
        Self::open_with(data_dir, limits, Retention::default()).await
    }

    pub async fn open_with(data_dir: &Path, limits: Limits, retention: Retention) -> Result<AppState, DbError> {
        ssync_common::private::prepare(data_dir, "the hub's data dir")
            .map_err(|e| DbError::Join(format!("preparing the data dir {}: {e}", data_dir.display())))?;
        let db = Db::open(&data_dir.join("meta.db"))?;
        let store = ContentStore::open(data_dir, db.clone()).map_err(|e| DbError::Join(e.to_string()))?;
        crate::upgrade::convert_old_objects(data_dir, &db, &store).await.map_err(|e| DbError::Join(e.to_string()))?;
        Ok(AppState {
            db,
            store,
            feed: ChangeFeed::default(),
            shutdown: CancellationToken::new(),
            limits: Arc::new(limits),
            retention: Arc::new(retention),
            traffic: Default::default(),
            polls: Default::default(),
        })
    }

    /// Runs one tree mutation of `share` in an IMMEDIATE transaction, commits
    /// it, and wakes the share's change feed.
    pub async fn mutate<F>(&self, share: ShareId, f: F) -> Result<Vec<Entry>, ApiError>
    where
        F: FnOnce(&Scoped) -> Result<Vec<Entry>, TreeError> + Send + 'static,
    {
        let out = self
            .db
            .call(move |c| {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let out = f(&Scoped::new(&tx, share))?;
                tx.commit()?;
                Ok::<_, ApiError>(out)
            })
            .await?;
        if let Some(max) = out.iter().map(|e| e.version).max() {
            self.feed.published(share, max);
        }
        Ok(out)
    }

    /// Applies `items` in order in one IMMEDIATE transaction (one fsync), each
    /// inside a savepoint, stopping at the first one refused: what it wrote is
    /// rolled back, what came before is kept. Returns the entries of each
    /// applied item and the refusal, if any. A database failure undoes all.
    pub async fn mutate_each<T, F>(
        &self,
        share: ShareId,
        items: Vec<T>,
        f: F,
    ) -> Result<(Vec<Vec<Entry>>, Option<TreeError>), ApiError>
    where
        T: Send + 'static,
        F: Fn(&Scoped, T) -> Result<Vec<Entry>, TreeError> + Send + 'static,
    {
        let (done, refused) = self
            .db
            .call(move |c| {
                let mut tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let mut done = Vec::new();
                let mut refused = None;
                for item in items {
                    let sp = tx.savepoint()?;
                    match f(&Scoped::new(&sp, share), item) {
                        Ok(entries) => {
                            sp.commit()?;
                            done.push(entries);
                        }
                        Err(TreeError::Db(e)) => return Err(ApiError::from(e)),
                        Err(e) => {
                            refused = Some(e);
                            break;
                        }
                    }
                }
                tx.commit()?;
                Ok::<_, ApiError>((done, refused))
            })
            .await?;
        if let Some(max) = done.iter().flatten().map(|e| e.version).max() {
            self.feed.published(share, max);
        }
        Ok((done, refused))
    }
}
