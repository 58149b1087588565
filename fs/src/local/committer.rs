//! The committer thread: writes the journal (journal.rs) to the mount's
//! database at most `COMMIT_INTERVAL` after a change.
use crate::local::journal::COMMIT_INTERVAL;
use crate::local::state::Shared;
use std::sync::Arc;
use std::time::Duration;

/// Starts the committer thread: woken by the first change after a commit,
/// it waits `COMMIT_INTERVAL` (gathering what else changes) and commits.
pub fn spawn_committer(shared: Arc<Shared>) -> std::io::Result<()> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    shared.state.lock().set_committer(tx);
    std::thread::Builder::new().name("ssync-commit".into()).spawn(move || {
        while rx.recv().is_ok() {
            std::thread::sleep(COMMIT_INTERVAL);
            let committed = shared.state.lock().commit(false);
            if let Err(e) = committed {
                tracing::error!("cannot write the mount's state to its database (retrying in 1 s; changes are kept in memory meanwhile): {e}");
                std::thread::sleep(Duration::from_secs(1));
                shared.state.lock().ask_commit();
            }
        }
    })?;
    Ok(())
}
