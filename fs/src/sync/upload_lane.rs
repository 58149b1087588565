//! The lane for big files: their chunks go to the hub in the background, a
//! few files at a time, while the engine's batches go on without them. A
//! big file's create or edit waits in the plan until its chunks are there,
//! then commits by its chunk list in a later batch, without reading the
//! file again. So a small file closed after a large one reaches other
//! machines first.
use crate::remote::chunk_upload::send_content_chunks;
use crate::remote::client::{self, ApiError};
use parking_lot::Mutex;
use ssync_common::{ChunkList, ContentHash};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Files at least this big take the lane; smaller ones go inside their batch.
pub const LANE_MIN: u64 = 4 << 20;
/// Files whose chunks are sent at once (as many as batches sent before the
/// lane; fsstress seed 1 converged 4 s sooner than with 2).
const AT_ONCE: usize = 4;
/// A pushed content not committed within this long (its file changed
/// again first) is forgotten.
const KEPT_FOR: Duration = Duration::from_secs(600);

enum Push {
    Sending,
    /// The chunks are on the hub (the list), or why they are not.
    Done(Result<ChunkList, ApiError>, Instant),
}

pub struct UploadLane {
    client: client::Remote,
    runtime: tokio::runtime::Handle,
    pushes: Arc<Mutex<HashMap<ContentHash, Push>>>,
    slots: Arc<tokio::sync::Semaphore>,
    /// Called when a push ends, so the engine commits it.
    wake: Arc<dyn Fn() + Send + Sync>,
}

impl UploadLane {
    pub fn new(
        client: client::Remote,
        runtime: tokio::runtime::Handle,
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> UploadLane {
        UploadLane {
            client,
            runtime,
            pushes: Arc::default(),
            slots: Arc::new(tokio::sync::Semaphore::new(AT_ONCE)),
            wake,
        }
    }

    /// Whether `content` can be committed now: its chunks are on the hub
    /// (or sending them failed, which its commit then reports). If nobody
    /// is sending them yet, starts sending them from `file`: by `list` when
    /// identifying the content recorded it (only the chunks the hub lacks
    /// are read), else by reading and chunking the whole file.
    pub fn ready(&self, content: ContentHash, file: PathBuf, list: Option<ChunkList>) -> bool {
        let mut pushes = self.pushes.lock();
        match pushes.get(&content) {
            Some(Push::Done(..)) => return true,
            Some(Push::Sending) => return false,
            None => {}
        }
        pushes.retain(|_, p| !matches!(p, Push::Done(_, at) if at.elapsed() > KEPT_FOR));
        pushes.insert(content, Push::Sending);
        let (client, all, slots, wake) =
            (self.client.clone(), self.pushes.clone(), self.slots.clone(), self.wake.clone());
        self.runtime.spawn(async move {
            let sent = match slots.acquire_owned().await {
                // Bytes that are not the content planned (the file changed
                // since) fail: its new content is planned anew.
                Ok(_slot) => send_content_chunks(&client, file, content, list).await,
                Err(e) => Err(ApiError::Local(std::io::Error::other(e))),
            };
            if let Err(e) = &sent {
                tracing::debug!(%content, "the chunks of a big file did not all reach the hub: {e}");
            }
            all.lock().insert(content, Push::Done(sent, Instant::now()));
            wake();
        });
        false
    }

    /// The outcome of `content`'s push, once it ended; taken, so a commit
    /// that fails sends the chunks again (the hub may collect them).
    pub fn take(&self, content: &ContentHash) -> Option<Result<ChunkList, ApiError>> {
        let mut pushes = self.pushes.lock();
        match pushes.get(content) {
            Some(Push::Done(..)) => match pushes.remove(content) {
                Some(Push::Done(r, _)) => Some(r),
                _ => None,
            },
            _ => None,
        }
    }
}
