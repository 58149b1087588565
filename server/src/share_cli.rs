//! `ssync-server share list`: the shares a data dir holds (docs/shares.md),
//! also while the hub runs.
use crate::db::{shares, Db};
use anyhow::{bail, Context};
use clap::Subcommand;
use std::path::Path;

#[derive(Debug, Subcommand)]
pub enum ShareCommand {
    /// List the shares: live entries, bytes of live files, latest change,
    /// and retention where a share has its own.
    List,
}

pub fn run(data: &Path, cmd: ShareCommand) -> anyhow::Result<()> {
    if !data.join("meta.db").exists() {
        bail!("no hub data in {}: pass the hub's --data DIR", data.display());
    }
    let db = Db::open(&data.join("meta.db")).with_context(|| format!("opening {}", data.display()))?;
    match cmd {
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
