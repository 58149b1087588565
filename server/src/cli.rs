//! The `ssync-server` command line.
use crate::{serve, AppState, Limits, Retention};
use anyhow::Context;
use clap::Parser;
use ssync_common::PathLimits;
use std::path::PathBuf;
use std::time::Duration;

/// The ssync hub: keeps the shared folder tree and pushes every change to the mounts.
#[derive(Debug, Parser)]
#[command(
    name = "ssync-server",
    version,
    after_help = "On first start the hub makes an admin token and prints it once, with the\nssync-mount line to use. More tokens, one per device:\n  ssync-server token add laptop --data DIR\nLogs go to stderr; set RUST_LOG=debug for more."
)]
pub struct ServerArgs {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Address and port to listen on.
    #[arg(long, default_value = "0.0.0.0:7878", value_name = "ADDR")]
    pub listen: String,
    /// Folder for the metadata database (meta.db) and file contents (packs/).
    #[arg(long, default_value = "./ssync-data", value_name = "DIR", global = true)]
    pub data: PathBuf,
    /// Longest time, in seconds, a change-feed request is held open.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub max_wait: u64,
    /// Keep earlier versions (deleted files included) for this many days.
    #[arg(long, default_value_t = 30, value_name = "DAYS")]
    pub keep_days: u64,
    /// Keep at most this many versions of each path.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub keep_versions: u32,
    /// Seconds between prunes of old versions and deletions of unreferenced contents.
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub gc_interval: u64,
    /// Seconds an uploaded chunk no version names yet is kept: an upload cut
    /// off (network loss, kill -9) resumes within this time without re-sending it.
    #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
    pub gc_grace: u64,
    /// Largest JSON request body, in MiB.
    #[arg(long, default_value_t = 32, value_name = "MIB")]
    pub max_body_mib: u64,
    /// Largest chunk upload request, in MiB (mounts send 4 MiB).
    #[arg(long, default_value_t = 64, value_name = "MIB")]
    pub max_upload_mib: u64,
    /// Longest path a request may name, in bytes (at most 4096, Linux's PATH_MAX).
    #[arg(long, default_value_t = 4096, value_name = "BYTES",
          value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub max_path_bytes: u16,
    /// Longest file or folder name, in bytes (at most 255, Linux's NAME_MAX).
    #[arg(long, default_value_t = 255, value_name = "BYTES",
          value_parser = clap::value_parser!(u16).range(1..=255))]
    pub max_name_bytes: u16,
    /// Most chunk hashes one request may name.
    #[arg(long, default_value_t = 16_384, value_name = "N")]
    pub max_hashes: usize,
    /// Seconds a request body may stall before the request is ended (408).
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub body_idle_timeout: u64,
    /// Change-feed requests one token may hold open at once (more get 429).
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub max_polls_per_token: usize,
    /// Seconds a client may take to send a request's headers, or to finish a
    /// TLS handshake, before its connection is closed. A kept-alive connection
    /// idle this long is closed too (mounts drop theirs after 20 s idle).
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub header_timeout: u64,
    /// Serve HTTPS with this PEM certificate chain (leaf first); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Manage access tokens (also while the hub runs).
    #[command(subcommand)]
    Token(crate::token_cli::TokenCommand),
    /// See the shares (folder trees) the hub holds (also while it runs).
    #[command(subcommand)]
    Share(crate::share_cli::ShareCommand),
}

pub fn cli_main() -> anyhow::Result<()> {
    let mut args = ServerArgs::parse();
    // Whatever the hub creates is its user's alone (see ssync_common::private).
    ssync_common::private::restrict_umask();
    match args.command.take() {
        Some(Command::Token(cmd)) => return crate::token_cli::run(&args.data, cmd),
        Some(Command::Share(cmd)) => return crate::share_cli::run(&args.data, cmd),
        None => {}
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal, not in log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(run(args))
}

async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let limits = Limits {
        max_wait: Duration::from_secs(args.max_wait),
        max_json_bytes: (args.max_body_mib.max(1) << 20) as usize,
        max_upload_bytes: args.max_upload_mib.max(1) << 20,
        max_hashes: args.max_hashes.max(1),
        body_idle: Duration::from_secs(args.body_idle_timeout.max(1)),
        max_polls_per_token: args.max_polls_per_token.max(1),
        header_timeout: Duration::from_secs(args.header_timeout.max(1)),
        paths: PathLimits { max_path_bytes: args.max_path_bytes.into(), max_name_bytes: args.max_name_bytes.into() },
        ..Limits::default()
    };
    let retention = Retention {
        keep: Duration::from_secs(args.keep_days.saturating_mul(86_400)),
        keep_versions: args.keep_versions.max(1),
        gc_interval: Duration::from_secs(args.gc_interval.max(1)),
        grace: Duration::from_secs(args.gc_grace),
    };
    // A bad certificate or key is found before anything else starts.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(crate::listen::load_tls(cert, key)?),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let state = AppState::open_with(&args.data, limits, retention)
        .await
        .with_context(|| format!("opening the data dir {}", args.data.display()))?;
    let listener = tokio::net::TcpListener::bind(&args.listen).await.with_context(|| {
        format!("cannot listen on {}: is another ssync-server running there? Pick another with --listen", args.listen)
    })?;
    let addr = listener.local_addr()?;
    // Plain stdout line: scripts and tests read the bound port from it.
    println!("ssync-server listening on {scheme}://{addr} (data in {})", args.data.display());
    print_admin_token_if_new(&state, addr, scheme, &args.data).await?;
    tracing::info!(%addr, data = %args.data.display(), tls = tls.is_some(), "hub started");
    if tls.is_none() && !addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "serving plain HTTP beyond this machine: tokens and file contents cross the network unencrypted; \
             give --tls-cert and --tls-key, or listen on 127.0.0.1"
        );
    }
    serve(listener, state, tls, shutdown_signal()).await.context("serving")?;
    tracing::info!("hub stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    tracing::info!("shutdown requested");
}

/// On first start (no token yet) makes the admin token and prints it, once,
/// with the lines that mount the hub.
async fn print_admin_token_if_new(
    state: &AppState,
    addr: std::net::SocketAddr,
    scheme: &str,
    data: &std::path::Path,
) -> anyhow::Result<()> {
    let db = state.db.clone();
    let token = tokio::task::spawn_blocking(move || -> anyhow::Result<Option<String>> {
        if db.with_conn(crate::db::tokens::count)? > 0 {
            return Ok(None);
        }
        crate::token_cli::add_with(&db, "admin", true, &[]).map(Some)
    })
    .await??;
    let Some(token) = token else { return Ok(()) };
    let host = match addr.ip() {
        ip if ip.is_unspecified() => {
            nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "THIS-HOST".into())
        }
        ip => ip.to_string(),
    };
    println!(
        "Created the admin token. It is shown only now; only its hash is kept.\n\
         On each machine, store it and mount:\n  \
         mkdir -p ~/.config/ssync && (umask 077 && echo {token} > ~/.config/ssync/token)\n  \
         ssync-mount /mnt/shared --server {scheme}://{host}:{port} --token-file ~/.config/ssync/token\n\
         Better, one token per device: ssync-server token add NAME --data {data}",
        port = addr.port(),
        data = data.display(),
    );
    Ok(())
}
