//! `ssync-server token add|list|revoke`: manage access tokens in a data dir,
//! also while the hub runs (the hub reads tokens from SQLite on each request).
use crate::auth;
use crate::db::{tokens, Db};
use anyhow::{bail, Context};
use clap::Subcommand;
use std::path::Path;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token for a device; prints the token alone on stdout, once.
    Add {
        /// A name for the device (1-64 of A-Z a-z 0-9 . _ -).
        name: String,
    },
    /// List tokens by name (tokens themselves are not stored, only their hashes).
    List,
    /// Revoke a token: its requests fail at once, its long-polls within a second.
    Revoke { name: String },
}

fn now_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Adds a device token named `name` (read-write on the default share);
/// returns it.
pub fn add(db: &Db, name: &str) -> anyhow::Result<String> {
    add_as(db, name, false)
}

/// Adds a token named `name`, an admin's if `admin`; returns it.
pub fn add_as(db: &Db, name: &str, admin: bool) -> anyhow::Result<String> {
    if !valid_name(name) {
        bail!("token names are 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'; '{name}' is not");
    }
    let token = auth::new_token().context("reading random bytes for the token")?;
    let added = db.with_conn(|c| tokens::add(c, name, &auth::hash(&token), now_ns(), admin))?;
    if !added {
        bail!("a token named '{name}' exists; revoke it first or pick another name");
    }
    Ok(token)
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
        TokenCommand::Add { name } => println!("{}", add(&db, &name)?),
        TokenCommand::List => {
            for t in db.with_conn(tokens::list)? {
                let created = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(t.created_ns.max(0) as u64);
                println!("{}\tcreated {}", t.name, humantime::format_rfc3339_seconds(created));
            }
        }
        TokenCommand::Revoke { name } => {
            if !db.with_conn(|c| tokens::revoke(c, &name))? {
                bail!("no token named '{name}' (see 'ssync-server token list')");
            }
            eprintln!("revoked '{name}'");
        }
    }
    Ok(())
}
