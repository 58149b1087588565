//! How Synced advances from the operations the planner made: what an
//! operation carried across is agreed by both sides (`Canopy::agree`), and
//! an operation whose answer was lost is agreed once Remote shows it done
//! (`Canopy::confirm_sent`).
use super::canopy::{Canopy, Node, NodeId, Place};
use super::planner::Op;

impl Canopy {
    /// An operation done on either side: the content it gave a node came
    /// from the other side (a download, or an upload of this mount's own
    /// bytes), so both sides have had it and it is the merge base: a later
    /// change on either side is then just that, never a conflict with this
    /// mount's own earlier content, and a node brought here from the hub is
    /// known as the hub's. Other attributes are settled as usual (a name
    /// given for a conflict copy was never either side's before).
    pub fn agree(&mut self, op: &Op) {
        match op {
            // A conflict copy is this mount's own new node: nothing agreed yet.
            Op::Create { copy_of: Some(_), .. } => {}
            Op::Create { id, node, .. } => {
                let agreed = match self.synced.get(*id) {
                    Some(s) => Node { content: node.content, ..s.clone() },
                    None => node.clone(),
                };
                self.synced.set(*id, agreed);
            }
            // Only an edit that changed the content carried it across; one
            // that changed the mode alone carried nothing of the content.
            Op::Edit { id, base, content, .. } if base.content != *content => {
                if let Some(mut s) = self.synced.get(*id).cloned() {
                    s.content = *content;
                    self.synced.set(*id, s);
                }
            }
            Op::Edit { .. } | Op::Move { .. } | Op::Exchange { .. } | Op::Delete { .. } => {}
        }
        for id in op.nodes() {
            self.settle(id);
        }
    }

    /// An operation this mount sent to the hub whose answer was lost (cut
    /// off, or the mount crashed): when Remote, from the feed, shows what it
    /// did, it was done, and is agreed as if answered. Returns whether
    /// Remote showed it.
    pub fn confirm_sent(&mut self, op: &Op) -> bool {
        let shown = match op {
            Op::Edit { id, content, .. } => self.remote.get(*id).is_some_and(|r| r.content == *content),
            // What it made may have been moved or chmodded by others since:
            // the content it carried is what shows it was done.
            Op::Create { id, node, .. } => self.remote.get(*id).is_some_and(|r| r.content == node.content),
            Op::Move { id, to, .. } => self.remote.get(*id).is_some_and(|r| r.place == *to),
            Op::Exchange { a, b, a_base, b_base, .. } => {
                let at = |id: NodeId, place: &Place| self.remote.get(id).is_some_and(|r| r.place == *place);
                at(*a, &b_base.place) && at(*b, &a_base.place)
            }
            Op::Delete { id, .. } => !self.remote.contains(*id),
        };
        match shown {
            true => self.agree(op),
            false => op.nodes().into_iter().for_each(|id| self.settle(id)),
        }
        shown
    }
}
