//! Repeated warnings, rate-limited and counted: a mount that fails the same
//! call thousands of times (a program retrying an unsupported operation) or
//! a hub refusing the same request in a loop writes a few lines a minute of
//! each kind, and the next line shown says how many were left out. A log of
//! 29 MB in four minutes hides the one line that matters.
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Kinds of warning remembered at once; past this the record starts over
/// (keys are meant to come from a small set: an operation and an errno).
const MAX_KINDS: usize = 1024;

pub struct LogLimiter {
    window: Duration,
    per_window: u32,
    kinds: Mutex<BTreeMap<String, Slot>>,
}

struct Slot {
    since: Instant,
    shown: u32,
    left_out: u64,
}

impl LogLimiter {
    /// At most `per_window` lines of each kind every `window`.
    pub const fn new(window: Duration, per_window: u32) -> Self {
        LogLimiter { window, per_window, kinds: Mutex::new(BTreeMap::new()) }
    }

    /// Whether a warning of kind `key` may be logged now: `Some(n)` with the
    /// number of its kind left out since the last one shown, or `None` (log
    /// it at debug, or not at all; it is counted).
    pub fn admit(&self, key: &str) -> Option<u64> {
        self.admit_at(key, Instant::now())
    }

    fn admit_at(&self, key: &str, now: Instant) -> Option<u64> {
        let mut kinds = self.kinds.lock().unwrap_or_else(|p| p.into_inner());
        if kinds.len() >= MAX_KINDS && !kinds.contains_key(key) {
            kinds.clear();
        }
        let slot = kinds.entry(key.to_owned()).or_insert(Slot { since: now, shown: 0, left_out: 0 });
        if now.duration_since(slot.since) >= self.window {
            slot.since = now;
            slot.shown = 0;
        }
        if slot.shown < self.per_window {
            slot.shown += 1;
            Some(std::mem::take(&mut slot.left_out))
        } else {
            slot.left_out += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_of_each_kind_per_window_and_the_rest_counted() {
        let limiter = LogLimiter::new(Duration::from_secs(60), 3);
        let t0 = Instant::now();
        let shown: Vec<Option<u64>> = (0..10).map(|_| limiter.admit_at("fallocate:95", t0)).collect();
        assert_eq!(shown, [Some(0), Some(0), Some(0), None, None, None, None, None, None, None]);
        assert_eq!(limiter.admit_at("write:5", t0), Some(0), "another kind has its own allowance");
        let later = t0 + Duration::from_secs(61);
        assert_eq!(limiter.admit_at("fallocate:95", later), Some(7), "the next line shown counts those left out");
        assert_eq!(limiter.admit_at("fallocate:95", later), Some(0));
    }
}
