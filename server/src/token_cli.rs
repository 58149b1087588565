//! `ssync-server token add|list|revoke|grant|revoke-grant`: manage access
//! tokens and their grants in a data dir, also while the hub runs (the hub
//! reads tokens and grants from SQLite on each request, and a held
//! long-poll rechecks them twice a second).
use crate::auth;
use crate::db::{grants, shares, tokens, Db};
use anyhow::{bail, Context};
use clap::Subcommand;
use ssync_common::share::{parse_share_name, DEFAULT_SHARE};
use std::path::Path;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token for a device; prints the token alone on stdout, once.
    /// Without --share it may read and write the share `default`.
    Add {
        /// A name for the device (1-64 of A-Z a-z 0-9 . _ -).
        name: String,
        /// A share the token may use: NAME (read-write), NAME:rw or NAME:ro.
        /// Repeat it for several shares.
        #[arg(long = "share", value_name = "NAME[:ro|:rw]", value_parser = parse_grant)]
        shares: Vec<Grant>,
        /// An admin token: it may use every share, read-write.
        #[arg(long, conflicts_with = "shares")]
        admin: bool,
    },
    /// List tokens by name, with their grants (tokens themselves are not
    /// stored, only their hashes).
    List,
    /// Revoke a token: its requests fail at once, its long-polls within a second.
    Revoke {
        /// The token's name (see 'token list').
        name: String,
    },
    /// Give a token access to shares, or change it (ro to rw or back); a
    /// running hub applies it at the token's next request.
    Grant {
        /// The token's name (see 'token list').
        name: String,
        #[arg(long = "share", value_name = "NAME[:ro|:rw]", value_parser = parse_grant, required = true)]
        shares: Vec<Grant>,
    },
    /// Take a token's access to shares away: its requests there get 403 at
    /// once, its long-polls within a second; a mount of it stops syncing
    /// and keeps its unsent changes.
    RevokeGrant {
        /// The token's name (see 'token list').
        name: String,
        #[arg(long = "share", value_name = "NAME", value_parser = parse_share_name, required = true)]
        shares: Vec<String>,
    },
}

/// A share and the access given on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub share: String,
    pub writable: bool,
}

fn parse_grant(s: &str) -> Result<Grant, String> {
    let (name, writable) = match s.rsplit_once(':') {
        Some((name, "rw")) => (name, true),
        Some((name, "ro")) => (name, false),
        Some((_, other)) => return Err(format!("'{other}' is not an access: write NAME:ro or NAME:rw")),
        None => (s, true),
    };
    Ok(Grant { share: parse_share_name(name)?, writable })
}

pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Adds a device token named `name`, read-write on the default share;
/// returns it.
pub fn add(db: &Db, name: &str) -> anyhow::Result<String> {
    add_with(db, name, false, &[Grant { share: DEFAULT_SHARE.into(), writable: true }])
}

/// Adds a token named `name`, an admin's if `admin`, with `grants`; returns it.
pub fn add_with(db: &Db, name: &str, admin: bool, grants: &[Grant]) -> anyhow::Result<String> {
    if !valid_name(name) {
        bail!("token names are 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'; '{name}' is not");
    }
    let token = auth::new_token().context("reading random bytes for the token")?;
    db.locked(|c| {
        let tx = c.unchecked_transaction()?;
        if !tokens::add(&tx, name, &auth::hash(&token), now_ns(), admin)? {
            bail!("a token named '{name}' exists; revoke it first or pick another name");
        }
        give(&tx, name, grants)?;
        tx.commit()?;
        Ok(())
    })?;
    Ok(token)
}

/// Sets `grants` for token `name`, naming a share that does not exist.
fn give(c: &rusqlite::Connection, name: &str, given: &[Grant]) -> anyhow::Result<()> {
    for g in given {
        let Some(id) = shares::id_of(c, &g.share)? else {
            bail!("no share named '{}' (see 'ssync-server share list'; make it with 'share add')", g.share);
        };
        grants::set(c, name, id, g.writable)?;
    }
    Ok(())
}

fn access(writable: bool) -> &'static str {
    if writable {
        "rw"
    } else {
        "ro"
    }
}

pub fn run(data: &Path, cmd: TokenCommand) -> anyhow::Result<()> {
    if !data.join("meta.db").exists() {
        if !matches!(cmd, TokenCommand::Add { .. }) {
            bail!("no hub data in {}: pass the hub's --data DIR", data.display());
        }
        // Tokens made before the first start: that start makes no admin token.
        eprintln!("new hub data dir {}", data.display());
    }
    ssync_common::private::prepare(data, "the hub's data dir")
        .with_context(|| format!("preparing the data dir {}", data.display()))?;
    let db = Db::open(&data.join("meta.db")).with_context(|| format!("opening {}", data.display()))?;
    match cmd {
        TokenCommand::Add { name, shares, admin } => {
            let token = match (admin, shares.is_empty()) {
                (true, _) => add_with(&db, &name, true, &[])?,
                (false, true) => add(&db, &name)?,
                (false, false) => add_with(&db, &name, false, &shares)?,
            };
            println!("{token}");
        }
        TokenCommand::List => {
            let all = db.with_conn(grants::list)?;
            for t in db.with_conn(tokens::list)? {
                let created = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(t.created_ns.max(0) as u64);
                let reach = match t.admin {
                    true => "admin: every share".to_string(),
                    false => {
                        let mine: Vec<String> =
                            all.iter().filter(|g| g.0 == t.name).map(|g| format!("{}:{}", g.1, access(g.2))).collect();
                        if mine.is_empty() {
                            "no share".into()
                        } else {
                            mine.join(" ")
                        }
                    }
                };
                println!("{}\tcreated {}\t{reach}", t.name, humantime::format_rfc3339_seconds(created));
            }
        }
        TokenCommand::Revoke { name } => {
            if !db.with_conn(|c| tokens::revoke(c, &name))? {
                bail!("no token named '{name}' (see 'ssync-server token list')");
            }
            eprintln!("revoked '{name}'");
        }
        TokenCommand::Grant { name, shares } => {
            db.locked(|c| {
                if !tokens::exists(c, &name)? {
                    bail!("no token named '{name}' (see 'ssync-server token list')");
                }
                let tx = c.unchecked_transaction()?;
                give(&tx, &name, &shares)?;
                tx.commit()?;
                Ok(())
            })?;
            for g in shares {
                eprintln!(
                    "'{name}' may now {} share '{}'",
                    if g.writable { "read and write" } else { "read" },
                    g.share
                );
            }
        }
        TokenCommand::RevokeGrant { name, shares: names } => {
            for share in names {
                let removed = db.locked(|c| match shares::id_of(c, &share)? {
                    Some(id) => Ok(grants::remove(c, &name, id)?),
                    None => Ok::<_, anyhow::Error>(false),
                })?;
                if !removed {
                    bail!("token '{name}' has no grant on share '{share}' (see 'ssync-server token list')");
                }
                eprintln!("'{name}' may no longer use share '{share}'");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_names_a_share_and_read_write_unless_told() {
        assert_eq!(parse_grant("photos"), Ok(Grant { share: "photos".into(), writable: true }));
        assert_eq!(parse_grant("photos:rw"), Ok(Grant { share: "photos".into(), writable: true }));
        assert_eq!(parse_grant("photos:ro"), Ok(Grant { share: "photos".into(), writable: false }));
        assert!(parse_grant("photos:rx").unwrap_err().contains("NAME:ro or NAME:rw"));
        assert!(parse_grant("Photos").is_err());
        assert!(parse_grant(":ro").is_err());
    }

    #[test]
    fn a_token_gets_the_shares_given_and_no_share_that_does_not_exist() {
        let db = Db::open_in_memory().unwrap();
        db.with_conn(|c| shares::add(c, "photos", None, None, 0)).unwrap();
        let given = [Grant { share: "photos".into(), writable: false }];
        add_with(&db, "tv", false, &given).unwrap();
        let listed = db.with_conn(grants::list).unwrap();
        assert_eq!(listed, [("tv".to_string(), "photos".to_string(), false)]);
        let nosuch = [Grant { share: "nosuch".into(), writable: true }];
        let err = add_with(&db, "phone", false, &nosuch).unwrap_err();
        assert!(err.to_string().contains("no share named 'nosuch'"), "{err}");
        assert!(!db.with_conn(|c| tokens::exists(c, "phone")).unwrap(), "nothing is added on an error");
    }
}
