//! One mount's sync loop over any `Remote`: read the feed into the Remote
//! tree, merge the three trees, plan, and carry the operations out in order
//! (Remote ones as the hub's requests, Local ones on this machine), each
//! completed one advancing Synced. A refusal ends the round: nothing is
//! repaired, the next round plans again from the trees as they are then.
//!
//! An operation whose answer did not come is kept until the feed shows what
//! it did (`Canopy::confirm_sent`), so a change of this mount's own that
//! comes back through the feed is agreed, never a conflict.
use super::canopy::Canopy;
use super::hub_view::{Changed, HubView, ViewError};
use super::merge::{default_namer, merge};
use super::planner::{apply, plan, Op, Side, Stuck};
use super::remote::{Refusal, Remote};

/// This machine's side of the operations the planner makes for Local:
/// bringing content from the hub, making folders, moving and removing what
/// the kernel shows. Called before the op is recorded in the Local tree.
pub trait LocalSide {
    fn carry_out(&mut self, op: &Op) -> Result<(), String>;
}

/// What one round did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Round {
    /// Operations carried out.
    pub done: usize,
    /// What ended the round early, if anything did.
    pub refused: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Stuck(#[from] Stuck),
    #[error("the hub's rows do not fit this mount's view: {0}")]
    View(#[from] ViewError),
    #[error("the hub could not be read: {0}")]
    Feed(Refusal),
}

pub struct Engine<R: Remote> {
    pub canopy: Canopy,
    view: HubView,
    remote: R,
    /// Sent without an answer: confirmed, or not, once the feed shows them.
    unanswered: Vec<Op>,
}

impl<R: Remote> Engine<R> {
    pub fn new(remote: R) -> Engine<R> {
        Engine { canopy: Canopy::default(), view: HubView::default(), remote, unanswered: Vec::new() }
    }

    pub fn remote(&mut self) -> &mut R {
        &mut self.remote
    }

    pub fn view(&self) -> &HubView {
        &self.view
    }

    /// Reads the feed to its end into the Remote tree.
    pub fn read_feed(&mut self) -> Result<(), EngineError> {
        loop {
            let rows = self.remote.changes_since(self.view.cursor()).map_err(EngineError::Feed)?;
            if rows.is_empty() {
                break;
            }
            self.view.fold_feed(&rows)?;
        }
        let c = &mut self.canopy;
        c.remote = self.view.tree().clone();
        // One the feed does not show was not done (or was undone since):
        // the next plan starts from what the hub has.
        for op in std::mem::take(&mut self.unanswered) {
            c.confirm_sent(&op);
        }
        let ids: Vec<_> = c.local.ids().chain(c.remote.ids()).chain(c.synced.ids()).collect();
        ids.into_iter().for_each(|id| c.settle(id));
        Ok(())
    }

    /// Whether Local, Remote and Synced are equal.
    pub fn converged(&self) -> bool {
        self.canopy.converged()
    }

    /// One round: plan from the trees as they are and carry the plan out,
    /// until it ends or something is refused.
    pub fn round(&mut self, local: &mut dyn LocalSide) -> Result<Round, EngineError> {
        let merged = merge(&self.canopy, &default_namer);
        let ops = plan(&self.canopy, &merged)?;
        let mut round = Round::default();
        for op in ops {
            let done = match op.side() {
                Side::Remote => self.send(&op),
                Side::Local => {
                    local.carry_out(&op).and_then(|()| apply(&mut self.canopy.local, &op).map_err(|e| e.to_string()))
                }
            };
            match done {
                Ok(()) => {
                    self.canopy.agree(&op);
                    round.done += 1;
                }
                Err(e) => {
                    round.refused = Some(e);
                    break;
                }
            }
        }
        Ok(round)
    }

    fn send(&mut self, op: &Op) -> Result<(), String> {
        let request = self.view.request_for(op).map_err(|e| e.to_string())?;
        match self.remote.send(&request) {
            Ok(rows) => {
                match self.view.fold_answer(&rows).map_err(|e| e.to_string())? {
                    Changed::Nodes(ids) => {
                        for id in ids {
                            match self.view.tree().get(id) {
                                Some(n) => self.canopy.remote.set(id, n.clone()),
                                None => drop(self.canopy.remote.remove(id)),
                            }
                        }
                    }
                    Changed::Whole => self.canopy.remote = self.view.tree().clone(),
                }
                Ok(())
            }
            Err(Refusal::NoAnswer(e)) => {
                self.unanswered.push(op.clone());
                Err(e)
            }
            Err(Refusal::Refused(e)) => Err(e),
        }
    }

    /// Rounds until the trees are equal or `rounds` have run; reads the feed
    /// before each. Returns the rounds it took.
    pub fn sync(&mut self, local: &mut dyn LocalSide, rounds: usize) -> Result<usize, EngineError> {
        for n in 0..rounds {
            self.read_feed()?;
            if self.converged() {
                return Ok(n);
            }
            self.round(local)?;
        }
        self.read_feed()?;
        Ok(rounds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::canopy::{Kind, Node, Place, ROOT};
    use crate::sync::memory_hub::MemoryHub;
    use ssync_common::ContentHash;

    struct Nothing;
    impl LocalSide for Nothing {
        fn carry_out(&mut self, _: &Op) -> Result<(), String> {
            Ok(())
        }
    }

    /// A `tar x` of 5,000 files in 50 folders goes up, and a second engine
    /// brings it down; then the top folder is renamed. Times are printed
    /// (a figure, not a test of speed); what is checked is the outcome.
    #[test]
    fn a_big_tree_goes_up_comes_down_and_is_renamed_in_one_request() {
        let mut a = Engine::new(MemoryHub::new());
        let top = 1u128 << 100;
        let dir =
            |parent, name: String| Node { place: Place { parent, name }, kind: Kind::Dir, content: None, mode: 0o755 };
        a.canopy.local.set(top, dir(ROOT, "untar".into()));
        let mut id = top;
        for d in 0..50u64 {
            id += 1;
            let sub = id;
            a.canopy.local.set(sub, dir(top, format!("d{d}")));
            for f in 0..100u64 {
                id += 1;
                let content = Some(ContentHash::of(&(d * 1000 + f).to_le_bytes()));
                let place = Place { parent: sub, name: format!("f{f}") };
                a.canopy.local.set(id, Node { place, kind: Kind::File, content, mode: 0o644 });
            }
        }
        let started = std::time::Instant::now();
        let rounds = a.sync(&mut Nothing, 5).unwrap();
        eprintln!("5,050 nodes up in {:?} ({rounds} rounds)", started.elapsed());
        assert!(a.converged());
        // B reads the same hub.
        let hub = std::mem::replace(a.remote(), MemoryHub::new());
        let mut b = Engine::new(hub);
        let started = std::time::Instant::now();
        b.sync(&mut Nothing, 5).unwrap();
        eprintln!("5,050 nodes down in {:?}", started.elapsed());
        assert!(b.converged());
        assert_eq!(b.canopy.local, a.canopy.local);
        // A rename of the top folder on B is one request, whatever lies below.
        let base = b.canopy.local.get(top).unwrap().clone();
        let moved = Node { place: Place { parent: ROOT, name: "renamed".into() }, ..base.clone() };
        b.canopy.local.set(top, moved);
        let started = std::time::Instant::now();
        let before = b.view().cursor();
        let round = {
            b.read_feed().unwrap();
            b.round(&mut Nothing).unwrap()
        };
        eprintln!("a rename of 5,050 nodes planned and sent in {:?}", started.elapsed());
        assert_eq!(round, Round { done: 1, refused: None });
        b.read_feed().unwrap();
        assert!(b.converged());
        assert!(b.view().cursor() > before);
    }
}
