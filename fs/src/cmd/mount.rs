//! Wires a mount together and runs it until a signal or an outside unmount:
//! local state, the FUSE session, the invalidation thread and the sync
//! thread. On the way out it lets the sync thread send what is unsent
//! (bounded), unmounts, and stops the tasks.
use crate::cmd::config::MountConfig;
use crate::cmd::share_choice::{self, Offered};
use crate::cmd::status_file::{self, MountStatus};
use crate::kernel::fs::SyncFs;
use crate::kernel::fuse::SsyncFuse;
use crate::kernel::workers::Workers;
use crate::local::db::LocalDb;
use crate::local::handles::Handles;
use crate::local::invalidate;
use crate::local::on_demand::OnDemand;
use crate::local::state::{CacheDirs, Shared, State, Status};
use crate::local::tree::{Tree, ROOT};
use crate::remote::client::Remote;
use anyhow::{bail, Context};
use fuser::{Config, MountOption, Session, SessionACL};
use parking_lot::Mutex;
use ssync_common::share::{ShareAccess, DEFAULT_SHARE};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn check_mountpoint(cfg: &MountConfig) -> anyhow::Result<()> {
    let mp = cfg.mountpoint.display();
    let mounted = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|p| Path::new(p) == cfg.mountpoint.as_path()));
    if mounted {
        bail!("{mp} is already a mountpoint (another ssync-mount?); stop that one first, or clear a stale one with: umount -l {mp}");
    }
    match std::fs::metadata(&cfg.mountpoint) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => bail!("{mp} is not a folder; give an empty folder to mount on"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("mountpoint {mp} does not exist; create it first: mkdir -p {mp}")
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            bail!("{mp} is a stale mount left by a stopped ssync-mount; clear it with: umount -l {mp}")
        }
        Err(e) => bail!("cannot use {mp} as a mountpoint: {e}"),
    }
}

/// Loads the persisted tree. Nothing is queued: the sync thread plans from
/// the files and the trees it keeps (sync/driver.rs).
fn load_state(db: LocalDb, cache: &CacheDirs) -> anyhow::Result<State> {
    let mut tree = Tree::from_nodes(db.load_nodes()?);
    if let Some(root) = tree.get_mut(ROOT).filter(|r| r.mtime_ns == 0) {
        root.mtime_ns = crate::local::clock::now_ns(); // the hub has no entry for the root itself
    }
    let mut st = State::new(db, tree)?;
    let lost: Vec<u64> = st
        .tree
        .nodes()
        .filter(|n| n.has_content() && n.parent != 0 && !cache.file(n.ino).exists())
        .map(|n| n.ino)
        .collect();
    for ino in lost {
        st.cache_file_lost(cache, ino);
    }
    let needed = |ino: u64| st.tree.get(ino).is_some_and(|n| n.has_content() && n.parent != 0);
    match crate::local::reaper::sweep(&cache.files, needed) {
        Ok(0) => {}
        Ok(n) => tracing::info!(files = n, "removed cache files the last run left behind"),
        Err(e) => tracing::warn!("cannot list the cache dir for unused files: {e}"),
    }
    st.commit(false)?;
    Ok(st)
}

/// This cache dir's mount id, made on first use: random, so two mounts on
/// one machine (which share a device name) never share it.
fn mount_id(db: &LocalDb) -> anyhow::Result<String> {
    if let Some(id) = db.setting("mount_id")? {
        return Ok(id);
    }
    let mut raw = [0u8; 16];
    getrandom::getrandom(&mut raw).map_err(|e| anyhow::anyhow!("reading random bytes for this mount's id: {e}"))?;
    let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    db.set_setting("mount_id", &id)?;
    Ok(id)
}

pub fn run(cfg: MountConfig) -> anyhow::Result<()> {
    check_mountpoint(&cfg)?;
    // A bad --ca-cert is refused before a cache dir is made.
    let remote = Remote::new(&cfg.server, &cfg.device_name, &cfg.token, cfg.ca_cert.as_deref())?;
    let cache = CacheDirs::create(&cfg.cache_dir).with_context(|| {
        format!("cannot create the cache dir {}; pick another with --cache-dir", cfg.cache_dir.display())
    })?;
    let db = LocalDb::open(&cfg.cache_dir.join("state.db"))?;
    match db.setting("server")? {
        Some(s) if s != cfg.server => bail!(
            "the cache dir {} belongs to the hub at {s}, not {}; use another --cache-dir",
            cfg.cache_dir.display(),
            cfg.server
        ),
        Some(_) => {}
        None => db.set_setting("server", &cfg.server)?,
    }
    // Older releases read this before starting their path-keyed engine on a cache.
    db.set_setting("engine", "nodes")?;
    // A cache that has read the hub's feed (by either engine) can start offline.
    let synced_before = db.setting("cursor")?.is_some() || db.synced_before()?;
    let mount_id = mount_id(&db)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("ssync-io")
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let offered = match rt.block_on(remote.health()) {
        Ok(h) => {
            tracing::info!(hub = %cfg.server, version = %h.version, "hub reachable");
            match rt.block_on(remote.shares()) {
                Ok(shares) => Offered::Listed(shares),
                Err(e) => Offered::NotListed(e.to_string()),
            }
        }
        Err(e) if !synced_before => bail!(
            "cannot reach the hub at {}: {e}\nStart ssync-server there, or check --server. \
             This mount has no local cache yet, so it cannot start offline.",
            cfg.server
        ),
        Err(e) => {
            tracing::warn!("hub at {} unreachable ({e}); starting from the local cache", cfg.server);
            Offered::NotListed(e.to_string())
        }
    };
    // The share the cache holds: a cache made before shares holds the default one.
    let held = match db.setting("share")? {
        Some(name) => Some(ShareAccess { name, writable: db.setting("writable")?.as_deref() != Some("0") }),
        None if synced_before => Some(ShareAccess { name: DEFAULT_SHARE.into(), writable: true }),
        None => None,
    };
    let chosen = share_choice::choose(cfg.share.as_deref(), held.as_ref(), offered).with_context(|| {
        format!("cannot mount a share of the hub at {} (cache {})", cfg.server, cfg.cache_dir.display())
    })?;
    db.set_setting("share", &chosen.name)?;
    db.set_setting("writable", if chosen.writable { "1" } else { "0" })?;
    let access = if chosen.writable { "read-write" } else { "read-only" };
    tracing::info!(share = %chosen.name, access, "mounting share");
    let mut cfg = cfg;
    cfg.share = Some(chosen.name.clone());
    cfg.read_only = !chosen.writable;
    let remote = remote.for_share(&chosen.name);
    // The engine on stable ids reads its own changes in the feed too.
    let hub_client = remote.clone();
    let remote = remote.for_mount(&mount_id);

    let mut state = load_state(db, &cache)?;
    state.limit = cfg.cache_max.map(crate::local::cache_limit::CacheLimit::new);
    if state.limit.is_some() {
        state.order_by_cache_file_age(&cache);
    }
    let chunks = crate::content::chunk_index::ChunkIndex::open(&cfg.cache_dir.join("state.db"))?;
    let (inval_tx, inval_rx) = crossbeam_channel::unbounded();
    let shared = Arc::new(Shared {
        state: Mutex::new(state),
        handles: Mutex::new(Handles::default()),
        cache,
        reaper: crate::local::reaper::Reaper::spawn().context("starting the cache cleanup thread")?,
        chunks,
        inval: inval_tx,
        owner: (nix::unistd::getuid().as_raw(), nix::unistd::getgid().as_raw()),
        sync_owners: cfg.sync_owners,
        accounts: crate::local::accounts::Accounts::default(),
        device: cfg.device_name.clone(),
        mount_id,
        status: Status::default(),
        refused_contents: Mutex::default(),
    });

    let on_demand = Arc::new(OnDemand::new(remote.clone(), rt.handle().clone()));
    let cancel = CancellationToken::new();
    let db_path = cfg.cache_dir.join("state.db");
    let sync_thread = crate::sync::driver::spawn(
        shared.clone(),
        on_demand.clone(),
        &db_path,
        hub_client,
        rt.handle().clone(),
        cancel.clone(),
    )
    .context("starting the sync thread")?;

    let mut options = Config::default();
    options.mount_options = vec![
        MountOption::FSName(format!("ssync:{}", cfg.server)),
        MountOption::Subtype("ssync".into()),
        MountOption::DefaultPermissions,
        MountOption::NoAtime,
    ];
    if cfg.read_only {
        // The kernel answers EROFS to every write, create, rename, delete,
        // chmod and setxattr, and shows `ro` in /proc/mounts: nothing is
        // changed here, so nothing is queued that the token may not send.
        options.mount_options.push(MountOption::RO);
    }
    options.acl = if cfg.allow_other { SessionACL::All } else { SessionACL::Owner };
    // One reader of /dev/fuse; what may block goes to workers (see workers.rs).
    options.n_threads = Some(1);
    let workers = Workers::start(cfg.fuse_workers).context("starting the FUSE worker threads")?;
    let fs = SsyncFuse::new(SyncFs::new(shared.clone(), on_demand.clone()), cfg.passthrough, workers);
    let session = Session::new(fs, &cfg.mountpoint, &options).with_context(|| {
        format!(
            "cannot mount on {}: is /dev/fuse available? As a non-root user install the fuse3 package (fusermount3)",
            cfg.mountpoint.display()
        )
    })?;
    on_demand.start_syncing(Arc::downgrade(&shared)).context("starting the thread that syncs fetched bytes")?;
    invalidate::spawn(session.notifier(), inval_rx).context("starting the invalidation thread")?;
    crate::local::committer::spawn_committer(shared.clone()).context("starting the database commit thread")?;
    let mut session = session;
    let mut unmounter = session.unmount_callable();
    let (done_tx, mut done_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("ssync-fuse".into())
        .spawn(move || {
            let _ = done_tx.send(session.run());
        })
        .context("starting the FUSE session thread")?;

    rt.spawn(publish_status(shared.clone(), on_demand.clone(), cfg.clone(), cancel.clone()));
    println!(
        "ssync-mount: {} is mounted from {} (cache in {}). Ctrl-C unmounts.",
        cfg.mountpoint.display(),
        cfg.server,
        cfg.cache_dir.display()
    );

    let outside_unmount = rt.block_on(async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("install SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => false,
            _ = term.recv() => false,
            _ = &mut done_rx => true,
        }
    });
    if outside_unmount {
        tracing::warn!("{} was unmounted from outside; stopping", cfg.mountpoint.display());
    } else {
        tracing::info!("stopping: sending queued changes to the hub");
    }
    rt.block_on(crate::sync::driver::drain(&shared, cfg.drain_timeout));
    cancel.cancel();
    if !outside_unmount {
        if let Err(e) = unmounter.unmount() {
            tracing::warn!("unmount failed: {e}; clear it with: umount -l {}", cfg.mountpoint.display());
        }
        let ended = rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), done_rx).await });
        if ended.is_err() {
            tracing::warn!("the FUSE session did not end within 5 s; exiting anyway");
        }
    }
    if !crate::sync::driver::join(&shared, &sync_thread, Duration::from_secs(5)) {
        tracing::warn!(
            "the sync thread did not end its round within 5 s; stopping anyway (what it did not send is kept)"
        );
    }
    on_demand.stop(Duration::from_secs(5));
    rt.shutdown_timeout(Duration::from_secs(2));
    crate::local::on_demand::sync_all_fetched(&shared);
    if let Err(e) = shared.state.lock().commit(true) {
        tracing::error!("cannot write the mount's last changes to its database: {e}");
    }
    status_file::remove(&cfg.mountpoint);
    Ok(())
}

fn current_status(shared: &Shared, on_demand: &OnDemand, cfg: &MountConfig, rate: &mut SendRate) -> MountStatus {
    use std::sync::atomic::Ordering::Relaxed;
    let s = &shared.status;
    let (queued, finished, cache) = {
        let st = shared.state.lock();
        let f = st.cache_figures();
        let cache = crate::cmd::status_file::CacheStatus {
            limit: st.limit.map(|l| l.max),
            cached: f.cached,
            pinned: f.pinned,
            dirty: f.dirty,
            fetched: on_demand.fetched_bytes.load(Relaxed),
        };
        let queued = s.engine_unsent.load(Relaxed) as usize + st.tree.nodes().filter(|n| n.dirty).count();
        (queued, s.uploads_done.load(Relaxed), cache)
    };
    let total = s.sync_total.load(Relaxed);
    MountStatus {
        mountpoint: cfg.mountpoint.clone(),
        server: cfg.server.clone(),
        share: cfg.share.clone(),
        read_only: cfg.read_only,
        cache_dir: cfg.cache_dir.clone(),
        device: cfg.device_name.clone(),
        pid: std::process::id(),
        online: s.is_online(),
        since_ns: s.since_ns.load(Relaxed),
        queued,
        sent_per_sec: rate.sample(finished),
        syncing: (total > 0).then(|| (s.sync_done.load(Relaxed).min(total), total)),
        last_error: s.last_error.lock().clone(),
        recent_conflicts: s.recent_conflicts.lock().clone(),
        uploads: s.uploads_done.load(Relaxed),
        downloads: s.downloads_done.load(Relaxed),
        halted: s.halted.load(Relaxed),
        halt_reason: s.halt_reason.lock().clone(),
        token_file: cfg.token_file.clone(),
        ca_cert: cfg.ca_cert.clone(),
        updated_ns: crate::local::clock::now_ns(),
        cache,
    }
}

/// How fast changes go out: uploads finished per second over the last ~5 s.
#[derive(Default)]
struct SendRate {
    samples: std::collections::VecDeque<(Instant, u64)>,
}

impl SendRate {
    fn sample(&mut self, finished: u64) -> f64 {
        let now = Instant::now();
        self.samples.push_back((now, finished));
        while self.samples.len() > 2 && now - self.samples[0].0 > Duration::from_secs(5) {
            self.samples.pop_front();
        }
        let (t0, n0) = self.samples[0];
        let secs = (now - t0).as_secs_f64();
        if secs > 0.0 {
            (finished - n0) as f64 / secs
        } else {
            0.0
        }
    }
}

/// Keeps the status file that `ssync status` reads up to date.
async fn publish_status(shared: Arc<Shared>, on_demand: Arc<OnDemand>, cfg: MountConfig, cancel: CancellationToken) {
    let mut warned = false;
    let mut rate = SendRate::default();
    loop {
        if let Err(e) = status_file::write(&current_status(&shared, &on_demand, &cfg, &mut rate)) {
            if !warned {
                tracing::warn!("cannot write the status file for `ssync status`: {e}");
                warned = true;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = cancel.cancelled() => return,
        }
    }
}
