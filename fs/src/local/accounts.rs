//! Owners across machines: user and group ids differ from one machine to the
//! next, so an owner travels as ids plus the names this machine has for them,
//! and a mount with `--sync-owners` maps names back to its own ids (numbers
//! when it has no such name), as Syncthing's `syncOwnership` does.
use crate::local::tree::Owner;
use nix::unistd::{Gid, Group, Uid, User};
use parking_lot::Mutex;
use ssync_common::api;
use std::collections::HashMap;

/// Name lookups read /etc/passwd and /etc/group (or NSS); they are cached
/// for the life of the mount.
#[derive(Default)]
pub struct Accounts {
    user_names: Mutex<HashMap<u32, Option<String>>>,
    group_names: Mutex<HashMap<u32, Option<String>>>,
    uids: Mutex<HashMap<String, Option<u32>>>,
    gids: Mutex<HashMap<String, Option<u32>>>,
}

impl Accounts {
    /// `o` as it goes to the hub.
    pub fn to_wire(&self, o: Owner) -> api::Owner {
        let user = cached(&self.user_names, o.uid, |id| User::from_uid(Uid::from_raw(id)).ok()?.map(|u| u.name));
        let group = cached(&self.group_names, o.gid, |id| Group::from_gid(Gid::from_raw(id)).ok()?.map(|g| g.name));
        api::Owner { uid: o.uid, gid: o.gid, user, group }
    }

    /// The local ids for an owner from the hub: by name where this machine
    /// has the name, else the numbers as sent.
    pub fn to_local(&self, o: &api::Owner) -> Owner {
        let uid = o
            .user
            .as_ref()
            .and_then(|n| cached(&self.uids, n.clone(), |n| User::from_name(&n).ok()?.map(|u| u.uid.as_raw())));
        let gid = o
            .group
            .as_ref()
            .and_then(|n| cached(&self.gids, n.clone(), |n| Group::from_name(&n).ok()?.map(|g| g.gid.as_raw())));
        Owner { uid: uid.unwrap_or(o.uid), gid: gid.unwrap_or(o.gid) }
    }
}

fn cached<K: Clone + Eq + std::hash::Hash, V: Clone>(
    map: &Mutex<HashMap<K, Option<V>>>,
    key: K,
    look_up: impl FnOnce(K) -> Option<V>,
) -> Option<V> {
    if let Some(v) = map.lock().get(&key) {
        return v.clone();
    }
    let v = look_up(key.clone());
    map.lock().insert(key, v.clone());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_local_ids_and_unknown_names_keep_the_numbers() {
        let a = Accounts::default();
        let root = a.to_wire(Owner { uid: 0, gid: 0 });
        assert_eq!((root.user.as_deref(), root.group.as_deref()), (Some("root"), Some("root")));
        let from_elsewhere = api::Owner { uid: 5000, gid: 5001, user: Some("root".into()), group: None };
        assert_eq!(a.to_local(&from_elsewhere), Owner { uid: 0, gid: 5001 }, "the name wins where it is known");
        let unknown = api::Owner { uid: 1234, gid: 1235, user: Some("no-such-user-here".into()), group: None };
        assert_eq!(a.to_local(&unknown), Owner { uid: 1234, gid: 1235 });
        let nameless = a.to_wire(Owner { uid: 4_000_000, gid: 4_000_000 });
        assert_eq!((nameless.user, nameless.group), (None, None));
    }
}
