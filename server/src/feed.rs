//! The change feed's wake-up signal: the latest committed sequence number.
//! Long-polls subscribe before they query, so no commit can slip between.
use tokio::sync::watch;

#[derive(Clone)]
pub struct ChangeFeed {
    tx: watch::Sender<u64>,
}

impl ChangeFeed {
    pub fn new(last_seq: u64) -> Self {
        ChangeFeed { tx: watch::Sender::new(last_seq) }
    }

    /// Called after a transaction that took sequence numbers up to `seq` committed.
    pub fn published(&self, seq: u64) {
        self.tx.send_if_modified(|cur| {
            let newer = seq > *cur;
            if newer {
                *cur = seq;
            }
            newer
        });
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }
}
