//! The `ssync-mount` command line.
use crate::cmd::config::MountConfig;
use crate::remote::client::parse_server;
use anyhow::Context;
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

/// Mount an ssync hub's shared folder tree. Files are served from a local
/// cache; what you close is sent to the hub, and changes from other machines
/// appear within a fraction of a second. Runs in the foreground; Ctrl-C (or
/// SIGTERM) sends queued changes and unmounts.
#[derive(Debug, Parser)]
#[command(
    name = "ssync-mount",
    version,
    after_help = "Example:\n  mkdir -p /mnt/shared && ssync-mount /mnt/shared --server hub.lan:7878 --token-file ~/.config/ssync/token\n\nLogs go to stderr; set RUST_LOG=debug for more."
)]
pub struct MountArgs {
    /// An existing, empty folder to mount on.
    pub mountpoint: PathBuf,
    /// The hub: HOST:PORT, http://HOST:PORT or https://HOST:PORT.
    #[arg(long, env = "SSYNC_SERVER", value_name = "HOST:PORT")]
    pub server: String,
    /// The share (folder tree) of the hub to mount [default: the token's
    /// only share, or the one the cache dir holds]. A read-only grant
    /// mounts read-only.
    #[arg(long, env = "SSYNC_SHARE", value_name = "NAME", value_parser = ssync_common::share::parse_share_name)]
    pub share: Option<String>,
    /// Trust only this CA (PEM) for an https:// hub, for a hub with its own
    /// certificate authority [default: the system's trusted roots].
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Where cached contents and the local state live [default: $XDG_CACHE_HOME/ssync/..., one per hub and mountpoint].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Name of this machine in conflict copies [default: the hostname].
    #[arg(long, value_name = "NAME")]
    pub device_name: Option<String>,
    /// Seconds to wait on exit for queued changes to reach the hub (the rest is kept for next time).
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub drain_timeout: u64,
    /// File holding the hub's access token, private to you (chmod 600)
    /// [default: $SSYNC_TOKEN, else $XDG_CONFIG_HOME/ssync/token].
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Let other users access the mount (root, or user_allow_other in /etc/fuse.conf).
    #[arg(long)]
    pub allow_other: bool,
    /// Show files from the hub with the owner and group they have there,
    /// matched by user and group name (by number where this machine lacks
    /// the name). Without it they belong to the user running the mount. Use
    /// it with --allow-other, on machines that share their accounts.
    #[arg(long)]
    pub sync_owners: bool,
    /// Serve every read and write through ssync-mount instead of letting the
    /// kernel use the cache file directly (FUSE passthrough, used when available).
    #[arg(long)]
    pub no_passthrough: bool,
    /// Keep at most SIZE of file contents on this machine (e.g. 20G, 512M).
    /// The whole tree is still listed; files over 1 MiB are fetched when
    /// opened, and the least recently used clean ones are evicted to stay
    /// under SIZE. Pin what must stay local with `ssync pin`. Without it the
    /// mount keeps a full copy.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub cache_max: Option<u64>,
}

/// A size such as 512M, 20G or 1048576 (binary units: K, M, G, T).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = t[digits.len()..].to_ascii_uppercase();
    let shift = match unit.trim_end_matches("IB").trim_end_matches('B') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("unknown unit in '{s}'; use K, M, G or T, as in 512M")),
    };
    let n: u64 = digits.trim().parse().map_err(|_| format!("'{s}' is not a size; write it as 512M or 20G"))?;
    let bytes = n.checked_shl(shift).filter(|b| b >> shift == n).ok_or_else(|| format!("'{s}' is too large"))?;
    if bytes < 16 << 20 {
        return Err(format!("'{s}' is below the smallest cache limit, 16M"));
    }
    Ok(bytes)
}

impl MountArgs {
    pub fn into_config(self) -> anyhow::Result<MountConfig> {
        let server = parse_server(&self.server)?;
        let mountpoint = std::path::absolute(&self.mountpoint)
            .with_context(|| format!("cannot resolve mountpoint {}", self.mountpoint.display()))?;
        let token = crate::remote::token::load(self.token_file.as_deref())?;
        let token_file = self.token_file.clone().map(std::path::absolute).transpose()?;
        let mut cfg = MountConfig::new(mountpoint, server, self.share, token);
        if let Some(ca) = self.ca_cert {
            let ca = std::path::absolute(ca)?;
            if !cfg.server.starts_with("https://") {
                anyhow::bail!("--ca-cert is for an https:// hub; give --server https://HOST:PORT");
            }
            cfg.ca_cert = Some(ca);
        }
        if let Some(dir) = self.cache_dir {
            cfg.cache_dir = std::path::absolute(dir)?;
        }
        if let Some(name) = self.device_name {
            cfg.device_name = name;
        }
        cfg.drain_timeout = Duration::from_secs(self.drain_timeout);
        cfg.allow_other = self.allow_other;
        cfg.sync_owners = self.sync_owners;
        cfg.passthrough = !self.no_passthrough;
        cfg.cache_max = self.cache_max;
        cfg.token_file = token_file;
        Ok(cfg)
    }
}

pub fn cli_main() -> anyhow::Result<()> {
    let args = MountArgs::parse();
    // Whatever the mount creates is its user's alone (see ssync_common::private).
    ssync_common::private::restrict_umask();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal, not in log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    crate::cmd::mount::run(args.into_config()?)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_parse_in_binary_units() {
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("20G"), Ok(20 << 30));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("33554432"), Ok(32 << 20));
        assert!(parse_size("1M").unwrap_err().contains("smallest"));
        assert!(parse_size("12X").unwrap_err().contains("unit"));
        assert!(parse_size("M").unwrap_err().contains("not a size"));
        assert!(parse_size("99999999999T").unwrap_err().contains("too large"));
    }
}
