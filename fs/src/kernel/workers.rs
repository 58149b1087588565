//! Worker threads for the FUSE requests that may block: fsync and large
//! reads and writes.
//!
//! One thread reads the kernel's requests and answers the rest itself. The
//! state lock serializes metadata operations anyway, and several readers of
//! /dev/fuse cost more than they give: the kernel hands each request to the
//! reader that has waited longest, so a sequential program (tar, cp, git)
//! wakes a cold thread on every request. Measured with 5,000 creates on 2
//! cores: 4 readers 340-400 µs per file, 1 reader 170-205 µs. What can wait
//! on the disk for long goes here instead, so that one slow fsync never holds
//! up another process's `ls`.
use crossbeam_channel::Sender;

type Job = Box<dyn FnOnce() + Send>;

pub struct Workers {
    jobs: Sender<Job>,
}

impl Workers {
    /// Starts `n` threads; they end when this is dropped (after the jobs queued).
    pub fn start(n: usize) -> std::io::Result<Workers> {
        let (jobs, rx) = crossbeam_channel::unbounded::<Job>();
        for i in 0..n.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new().name(format!("ssync-worker-{i}")).spawn(move || {
                for job in rx {
                    job();
                }
            })?;
        }
        Ok(Workers { jobs })
    }

    /// Runs `job` on a worker. Every request gets its answer: a job the
    /// workers cannot take (they are gone) runs here.
    pub fn run(&self, job: impl FnOnce() + Send + 'static) {
        if let Err(e) = self.jobs.send(Box::new(job)) {
            (e.into_inner())();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_blocked_job_does_not_hold_up_the_next() {
        let w = Workers::start(2).unwrap();
        let (release_tx, release_rx) = crossbeam_channel::bounded::<()>(0);
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        w.run(move || {
            let _ = release_rx.recv_timeout(Duration::from_secs(10));
        });
        w.run(move || done_tx.send(()).unwrap());
        assert!(done_rx.recv_timeout(Duration::from_secs(5)).is_ok(), "the second job waited for the first");
        let _ = release_tx.send_timeout((), Duration::from_secs(1));
    }
}
