//! `ssync-server share add|list|remove`: the shares a data dir holds
//! (docs/shares.md), also while the hub runs.
use crate::db::{shares, Db};
use crate::token_cli::now_ns;
use anyhow::{bail, Context};
use clap::Subcommand;
use ssync_common::share::parse_share_name;
use std::path::Path;

#[derive(Debug, Subcommand)]
pub enum ShareCommand {
    /// Make an empty share (a folder tree of its own). Give devices access
    /// with 'ssync-server token add DEVICE --share NAME[:ro|:rw]' or
    /// 'token grant'.
    Add {
        /// 1 to 64 of a-z 0-9 . _ -, starting with a letter or digit.
        #[arg(value_parser = parse_share_name)]
        name: String,
        /// Keep its deleted and replaced versions this many days [default: the hub's --keep-days].
        #[arg(long, value_name = "DAYS")]
        keep_days: Option<u32>,
        /// Keep at most this many versions of each path [default: the hub's --keep-versions].
        #[arg(long, value_name = "N")]
        keep_versions: Option<u32>,
    },
    /// List the shares: live entries, bytes of live files, latest change,
    /// and retention where a share has its own.
    List,
    /// Remove a share with its whole tree, its history and its grants.
    /// Mounts of it stop syncing and keep what they hold. Contents no other
    /// share holds are freed at the next collection.
    Remove {
        name: String,
        /// Remove it even though it holds files (they are gone for good).
        #[arg(long)]
        with_contents: bool,
    },
}

pub fn run(data: &Path, cmd: ShareCommand) -> anyhow::Result<()> {
    if !data.join("meta.db").exists() {
        bail!("no hub data in {}: pass the hub's --data DIR", data.display());
    }
    let db = Db::open(&data.join("meta.db")).with_context(|| format!("opening {}", data.display()))?;
    match cmd {
        ShareCommand::Add { name, keep_days, keep_versions } => {
            if db.with_conn(|c| shares::add(c, &name, keep_days, keep_versions, now_ns()))?.is_none() {
                bail!("a share named '{name}' exists (see 'ssync-server share list')");
            }
            eprintln!(
                "added share '{name}'; give a device access with 'ssync-server token add DEVICE --share {name}:rw' \
                 (or :ro), or 'token grant DEVICE --share {name}:rw'"
            );
        }
        ShareCommand::Remove { name, with_contents } => {
            let Some(info) = db.with_conn(shares::list)?.into_iter().find(|s| s.name == name) else {
                bail!("no share named '{name}' (see 'ssync-server share list')");
            };
            if info.entries > 0 && !with_contents {
                bail!(
                    "share '{name}' holds {} entries ({} bytes of files): give --with-contents to remove them \
                     for good",
                    info.entries,
                    info.bytes
                );
            }
            db.locked(|c| -> anyhow::Result<()> {
                let tx = c.unchecked_transaction()?;
                if let Some(id) = shares::id_of(&tx, &name)? {
                    shares::remove(&tx, id)?;
                }
                tx.commit()?;
                Ok(())
            })?;
            eprintln!("removed share '{name}' ({} entries)", info.entries);
        }
        ShareCommand::List => {
            println!("{:<24} {:>10} {:>14} {:>10}  retention", "share", "entries", "bytes", "latest");
            for s in db.with_conn(shares::list)? {
                let retention = match (s.keep_days, s.keep_versions) {
                    (None, None) => "the hub's".to_string(),
                    (days, versions) => format!(
                        "{} days, {} versions",
                        days.map_or("hub's".into(), |d| d.to_string()),
                        versions.map_or("hub's".into(), |v| v.to_string())
                    ),
                };
                println!("{:<24} {:>10} {:>14} {:>10}  {retention}", s.name, s.entries, s.bytes, s.last_seq);
            }
        }
    }
    Ok(())
}
