//! What the sync engine needs of the hub: carry out one request (with the
//! base it names, so a stale one is refused and changes nothing) and tell
//! what changed after a cursor. The HTTP client is one implementation; the
//! simulation runs the engine against another, the hub's own tree rules
//! over an in-memory database (`memory_hub`).
use super::hub_view::Request;
use ssync_common::api::Entry;

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
}

pub trait Remote {
    /// Carries out `request`; the rows it wrote, for the mount's view.
    fn send(&mut self, request: &Request) -> Result<Vec<Entry>, Refusal>;

    /// Rows changed after `cursor`, oldest first (at most a page of them).
    fn changes_since(&mut self, cursor: u64) -> Result<Vec<Entry>, Refusal>;
}
