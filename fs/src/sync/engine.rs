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
use super::hub_view::{HubView, ViewError};
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
                self.view.fold_answer(&rows).map_err(|e| e.to_string())?;
                self.canopy.remote = self.view.tree().clone();
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
