//! What the sync engine needs of the hub: carry out one request (with the
//! base it names, so a stale one is refused and changes nothing) and tell
//! what changed after a cursor. The HTTP client is one implementation; the
//! simulation runs the engine against another, the hub's own tree rules
//! over an in-memory database (`memory_hub`).
use super::hub_view::Request;
use ssync_common::api::{EntriesPage, Entry};

/// Why the hub did not carry out a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The hub answered no (a stale base, a name taken, a folder not
    /// empty): nothing changed there, and the engine plans again from the
    /// trees once the feed has brought what it lacked.
    #[error("the hub refused: {0}")]
    Refused(String),
    /// No answer: the request may or may not have been carried out; the
    /// feed will tell.
    #[error("no answer from the hub: {0}")]
    NoAnswer(String),
    /// The hub cannot be followed, and syncing must stop until a user acts
    /// (the reason says what to do): it refuses this mount's token, or its
    /// change sequence is behind this mount's (a wiped or restored hub,
    /// whose feed would make this mount delete files it no longer has).
    /// Nothing changed there.
    #[error("{0}")]
    Halt(String),
}

/// What a batch of requests did: the rows each request carried out wrote,
/// in order, and why the ones after those were not. `stopped` None with
/// fewer done than sent: the rest were not sent (this remote sends some
/// requests alone); Refused: the next one was refused and the rest were not
/// carried out; NoAnswer: from the next one on, each may have been.
#[derive(Debug, Default)]
pub struct BatchAnswer {
    pub done: Vec<Vec<Entry>>,
    pub stopped: Option<Refusal>,
}

pub trait Remote {
    /// Carries out `request`; the rows it wrote, for the mount's view.
    fn send(&mut self, request: &Request) -> Result<Vec<Entry>, Refusal>;

    /// Carries out `requests` in order, stopping at the first that is not.
    /// By default one by one; the hub over HTTP sends them in one request.
    fn send_batch(&mut self, requests: &[Request]) -> BatchAnswer {
        send_each(self, requests)
    }

    /// Whether `request` can go now. A big file's content may still be on
    /// its way to the hub: its request waits in the plan, and the requests
    /// after it go on without it.
    fn ready(&mut self, _request: &Request) -> bool {
        true
    }

    /// Rows changed after `cursor`, oldest first (at most a page of them),
    /// and the cursor a reader is at once it has them.
    fn changes_since(&mut self, cursor: u64) -> Result<EntriesPage, Refusal>;
}

/// Sends `requests` one by one, stopping at the first that is not carried out.
pub fn send_each<R: Remote + ?Sized>(remote: &mut R, requests: &[Request]) -> BatchAnswer {
    let mut answer = BatchAnswer::default();
    for r in requests {
        match remote.send(r) {
            Ok(rows) => answer.done.push(rows),
            Err(e) => {
                answer.stopped = Some(e);
                break;
            }
        }
    }
    answer
}
