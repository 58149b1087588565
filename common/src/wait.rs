//! A bounded wait for a condition another thread ends (a thread's round,
//! work in flight), for shutdowns that must not hang.
use std::time::{Duration, Instant};

/// Waits while `busy` holds, at most `bound`, looking every 10 ms. Whether
/// it ended within the bound.
pub fn wait_while(bound: Duration, mut busy: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while busy() {
        if started.elapsed() >= bound {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_when_the_condition_does_or_at_the_bound() {
        let mut left = 3;
        assert!(wait_while(Duration::from_secs(5), || {
            left -= 1;
            left > 0
        }));
        let started = Instant::now();
        assert!(!wait_while(Duration::from_millis(30), || true));
        assert!(started.elapsed() >= Duration::from_millis(30));
    }
}
