//! The change feeds' wake-up signals: per share, the latest committed
//! sequence number. Long-polls subscribe before they query, so no commit can
//! slip between; a commit in one share wakes only that share's polls.
use crate::db::ShareId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

#[derive(Clone, Default)]
pub struct ChangeFeed {
    shares: Arc<Mutex<HashMap<ShareId, watch::Sender<u64>>>>,
}

impl ChangeFeed {
    fn sender(&self, share: ShareId) -> watch::Sender<u64> {
        let mut shares = self.shares.lock().unwrap_or_else(|p| p.into_inner());
        shares.entry(share).or_insert_with(|| watch::Sender::new(0)).clone()
    }

    /// Called after a transaction that took `share`'s sequence numbers up
    /// to `seq` committed.
    pub fn published(&self, share: ShareId, seq: u64) {
        self.sender(share).send_if_modified(|cur| {
            let newer = seq > *cur;
            if newer {
                *cur = seq;
            }
            newer
        });
    }

    /// Wakes when `share` commits a change.
    pub fn subscribe(&self, share: ShareId) -> watch::Receiver<u64> {
        self.sender(share).subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_commit_wakes_only_its_own_shares_polls() {
        let feed = ChangeFeed::default();
        let (mut a, mut b) = (feed.subscribe(ShareId(1)), feed.subscribe(ShareId(2)));
        a.borrow_and_update();
        b.borrow_and_update();
        feed.published(ShareId(1), 5);
        assert!(a.has_changed().unwrap());
        assert!(!b.has_changed().unwrap(), "share 2's poll slept through share 1's commit");
        a.borrow_and_update();
        feed.published(ShareId(1), 4);
        assert!(!a.has_changed().unwrap(), "an older number is no news");
    }
}
