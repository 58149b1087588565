//! Which share a mount serves, and whether it may write there: from
//! `--share`, the share its cache dir already holds, and the shares the hub
//! says its token may use (`GET /v1/shares`). A mount that has synced
//! before starts offline on the share its cache holds.
use ssync_common::share::ShareAccess;

/// What the hub said about the token's shares.
pub enum Offered {
    Listed(Vec<ShareAccess>),
    /// Not reached, or it refused the token: the reason.
    NotListed(String),
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChoiceError {
    #[error("this token has no grant on share '{asked}'; it may use: {}", names(.granted))]
    NotGranted { asked: String, granted: Vec<ShareAccess> },
    #[error("this token may use several shares; pick one with --share NAME: {}", names(.0))]
    Several(Vec<ShareAccess>),
    #[error("this token has no grant on any share; an admin gives one with 'ssync-server token grant DEVICE --share NAME:rw'")]
    None,
    #[error(
        "the cache dir holds share '{held}', which this token may no longer use (it may use: {}); \
         give --share NAME and another --cache-dir",
        names(.granted)
    )]
    HeldNotGranted { held: String, granted: Vec<ShareAccess> },
    #[error("the cache dir holds share '{held}', not '{asked}'; give another --cache-dir (the default one differs per share)")]
    CacheHoldsOther { held: String, asked: String },
    #[error("cannot learn this token's shares from the hub ({0}), and this cache has no share to start from")]
    NotListed(String),
}

fn names(shares: &[ShareAccess]) -> String {
    if shares.is_empty() {
        return "none".into();
    }
    let each = shares.iter().map(|s| format!("{} ({})", s.name, if s.writable { "read-write" } else { "read-only" }));
    each.collect::<Vec<_>>().join(", ")
}

/// The share to mount: `asked` (`--share`) if the token may use it; else
/// the one the cache holds (`held`, with the access it had); else the
/// token's only share. Offline, only the share the cache holds.
pub fn choose(asked: Option<&str>, held: Option<&ShareAccess>, offered: Offered) -> Result<ShareAccess, ChoiceError> {
    let granted = match offered {
        Offered::Listed(granted) => granted,
        Offered::NotListed(why) => {
            return match (asked, held) {
                (Some(a), Some(h)) if a != h.name => {
                    Err(ChoiceError::CacheHoldsOther { held: h.name.clone(), asked: a.into() })
                }
                (_, Some(h)) => Ok(h.clone()),
                _ => Err(ChoiceError::NotListed(why)),
            }
        }
    };
    let find = |name: &str| granted.iter().find(|g| g.name == name).cloned();
    match (asked, held) {
        (Some(a), Some(h)) if a != h.name => {
            Err(ChoiceError::CacheHoldsOther { held: h.name.clone(), asked: a.into() })
        }
        (Some(a), _) => find(a).ok_or_else(|| ChoiceError::NotGranted { asked: a.into(), granted: granted.clone() }),
        (None, Some(h)) => {
            find(&h.name).ok_or_else(|| ChoiceError::HeldNotGranted { held: h.name.clone(), granted: granted.clone() })
        }
        (None, None) => match granted.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(ChoiceError::None),
            _ => Err(ChoiceError::Several(granted)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(name: &str, writable: bool) -> ShareAccess {
        ShareAccess { name: name.into(), writable }
    }

    #[test]
    fn the_only_share_is_used_and_several_are_listed() {
        let one = || Offered::Listed(vec![share("photos", false)]);
        assert_eq!(choose(None, None, one()), Ok(share("photos", false)));
        let two = || Offered::Listed(vec![share("photos", false), share("taxes", true)]);
        let err = choose(None, None, two()).unwrap_err();
        assert!(matches!(err, ChoiceError::Several(_)));
        assert!(err.to_string().contains("photos (read-only), taxes (read-write)"), "{err}");
        assert_eq!(choose(Some("taxes"), None, two()), Ok(share("taxes", true)));
        assert_eq!(choose(None, None, Offered::Listed(vec![])), Err(ChoiceError::None));
    }

    #[test]
    fn a_share_not_granted_is_refused_with_the_ones_that_are() {
        let err = choose(Some("taxes"), None, Offered::Listed(vec![share("photos", true)])).unwrap_err();
        assert!(err.to_string().contains("no grant on share 'taxes'; it may use: photos (read-write)"), "{err}");
    }

    #[test]
    fn the_cache_keeps_its_share_and_takes_the_hubs_access_for_it() {
        let held = share("taxes", true);
        let offered = || Offered::Listed(vec![share("photos", true), share("taxes", false)]);
        assert_eq!(choose(None, Some(&held), offered()), Ok(share("taxes", false)), "the grant became read-only");
        let gone = choose(None, Some(&held), Offered::Listed(vec![share("photos", true)])).unwrap_err();
        assert!(matches!(gone, ChoiceError::HeldNotGranted { .. }), "{gone}");
        let other = choose(Some("photos"), Some(&held), offered()).unwrap_err();
        assert!(matches!(other, ChoiceError::CacheHoldsOther { .. }), "{other}");
    }

    #[test]
    fn offline_only_the_share_the_cache_holds_can_start() {
        let held = share("taxes", false);
        let offline = || Offered::NotListed("connection refused".into());
        assert_eq!(choose(None, Some(&held), offline()), Ok(held.clone()));
        assert_eq!(choose(Some("taxes"), Some(&held), offline()), Ok(held.clone()));
        assert!(matches!(choose(Some("photos"), Some(&held), offline()), Err(ChoiceError::CacheHoldsOther { .. })));
        assert!(matches!(choose(None, None, offline()), Err(ChoiceError::NotListed(_))));
    }
}
