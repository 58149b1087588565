//! `ssync pin`, `ssync unpin` and `ssync ls`: they talk to the mount through
//! control attributes on the path itself (see `fs/xattr_ops.rs`), so they
//! work on any path inside a mount with no other channel to the daemon.
use anyhow::{bail, Context};
use std::path::Path;

const PIN: &str = "user.ssync.pin";
const LOCAL: &str = "user.ssync.local";

pub fn pin(path: &Path, on: bool) -> anyhow::Result<()> {
    let shown = path.display();
    let local = local_state(path)?; // also checks that the path is inside a mount
    let done = if on { xattr::set(path, PIN, b"1") } else { xattr::remove(path, PIN) };
    match done {
        Ok(()) => {}
        Err(e) if !on && e.raw_os_error() == Some(libc::ENODATA) => {
            println!("{shown} was not pinned");
            return Ok(());
        }
        Err(e) if !on && e.raw_os_error() == Some(libc::EINVAL) => {
            bail!("{shown} is pinned through a folder above it; unpin that folder instead")
        }
        Err(e) if on && e.raw_os_error() == Some(libc::ENOSPC) => bail!(
            "cannot pin {shown}: with what is already pinned, it is more than this mount's cache limit \
             (--cache-max), and pinned files are never evicted. Unpin something, or mount with a larger limit"
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot {} {shown}", if on { "pin" } else { "unpin" })),
    }
    if on {
        let note = if local.state == "full" || path.is_dir() { "" } else { "; fetching it now" };
        println!("pinned {shown}: kept on this machine{note}");
    } else {
        println!("unpinned {shown}: it may be evicted when the cache needs room");
    }
    Ok(())
}

pub fn ls(path: &Path) -> anyhow::Result<()> {
    let mut entries = Vec::new();
    if path.is_dir() {
        local_state(path)?;
        for e in std::fs::read_dir(path).with_context(|| format!("cannot list {}", path.display()))? {
            entries.push(e?.path());
        }
        entries.sort();
    } else {
        entries.push(path.to_path_buf());
    }
    for p in entries {
        let name = p.file_name().map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into_owned());
        let name = if p.is_dir() { format!("{name}/") } else { name };
        match local_state(&p) {
            Ok(l) if p.is_dir() => println!("{:<8} {:>10}  {:<8} {name}", "folder", "", l.pin),
            Ok(l) => {
                let held = match l.state.as_str() {
                    "partial" => format!("{}/{}", crate::cmd::units::size(l.held), crate::cmd::units::size(l.size)),
                    _ => crate::cmd::units::size(l.size),
                };
                println!("{:<8} {:>10}  {:<8} {name}", l.state, held, l.pin)
            }
            Err(_) => println!("{:<8} {:>10}  {:<8} {name}", "local", "", ""), // a FIFO or socket
        }
    }
    Ok(())
}

struct Local {
    state: String,
    held: u64,
    size: u64,
    pin: String,
}

/// What the mount says of `path`'s content (`user.ssync.local`).
fn local_state(path: &Path) -> anyhow::Result<Local> {
    let raw = match xattr::get(path, LOCAL) {
        Ok(Some(v)) => v,
        Ok(None) => bail!("{} is not inside an ssync mount", path.display()),
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) || e.raw_os_error() == Some(libc::ENODATA) => {
            bail!("{} is not inside an ssync mount", path.display())
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let text = String::from_utf8_lossy(&raw).into_owned();
    let f: Vec<&str> = text.split(' ').collect();
    match f.as_slice() {
        [state, held, size, pin] => Ok(Local {
            state: state.to_string(),
            held: held.parse().unwrap_or(0),
            size: size.parse().unwrap_or(0),
            pin: pin.to_string(),
        }),
        _ => bail!("the mount answered '{text}' for {}; is ssync-mount older than this ssync?", path.display()),
    }
}
