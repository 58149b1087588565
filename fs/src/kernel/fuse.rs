//! The fuser adapter: the only file that knows fuser's request and reply types.
//! Each method opens a span, calls the core, and replies; errors are logged
//! once here, at a level that fits them.
use crate::kernel::fs::{Caller, NodeAttr, SetAttr, SetTime, SyncFs, XattrReply};
use crate::kernel::workers::Workers;
use crate::local::error::FsError;
use crate::local::tree::Kind;
use fuser::BackingId;
use fuser::{
    BsdFileFlags, CopyFileRangeFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, InitFlags, IoctlFlags, KernelConfig, LockOwner, OpenFlags, PollEvents, PollFlags, PollNotifier,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry,
    ReplyIoctl, ReplyLseek, ReplyOpen, ReplyPoll, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use parking_lot::Mutex;
use ssync_common::log_limit::LogLimiter;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Remote changes are pushed to the kernel as invalidations, so attributes can
/// be cached; the TTL bounds staleness if a notification is ever lost.
const TTL: Duration = Duration::from_secs(1);

/// Reads and writes from this size up go to a worker (`workers.rs`): they
/// may wait on the disk; smaller ones cost less than the handoff would.
const WORKER_IO_BYTES: u32 = 64 * 1024;

/// Every open file: no FLUSH at close(2). close would wait for that round
/// trip (release it does not wait for), and the mount has nothing to do
/// there: no writes are held back (no writeback cache), and a content is
/// recorded at release, the last close of the open file, so a descriptor a
/// child or a shell's `>` closes early never seals a half-written file.
const FILE_OPEN: FopenFlags = FopenFlags::FOPEN_NOFLUSH;

pub struct SsyncFuse {
    core: SyncFs,
    /// Kernel passthrough: reads and writes of open files go straight to the
    /// cache file, at local-disk speed. On when asked for and the kernel agrees.
    passthrough: AtomicBool,
    backing: Mutex<BackingTable>,
    workers: Workers,
}

/// One `BackingId` per inode while any handle is open: the kernel requires all
/// passthrough opens of an inode to share one backing file.
#[derive(Default)]
struct BackingTable {
    by_ino: HashMap<u64, Weak<BackingId>>,
    by_fh: HashMap<u64, Arc<BackingId>>,
}

impl SsyncFuse {
    pub fn new(core: SyncFs, passthrough: bool, workers: Workers) -> Self {
        SsyncFuse {
            core,
            passthrough: AtomicBool::new(passthrough),
            backing: Mutex::new(BackingTable::default()),
            workers,
        }
    }

    /// The backing id for `fh`'s inode, registering its cache file if needed;
    /// `None` turns passthrough off (for example without CAP_SYS_ADMIN).
    fn backing_for(
        &self,
        ino: u64,
        fh: u64,
        register: impl FnOnce(&std::fs::File) -> std::io::Result<BackingId>,
    ) -> Option<Arc<BackingId>> {
        if !self.passthrough.load(Ordering::Relaxed) {
            return None;
        }
        let handle = self.core.handle(fh).ok()?;
        let mut table = self.backing.lock();
        let id = match table.by_ino.get(&ino).and_then(Weak::upgrade) {
            Some(id) => id,
            None => match register(&handle.file) {
                Ok(id) => {
                    let id = Arc::new(id);
                    table.by_ino.insert(ino, Arc::downgrade(&id));
                    id
                }
                Err(e) => {
                    tracing::info!("kernel passthrough unavailable ({e}); serving reads and writes through the daemon");
                    self.passthrough.store(false, Ordering::Relaxed);
                    return None;
                }
            },
        };
        table.by_fh.insert(fh, id.clone());
        Some(id)
    }

    fn attr(&self, a: &NodeAttr) -> FileAttr {
        let (uid, gid) = a.owner.map_or(self.core.owner(), |o| (o.uid, o.gid));
        let mtime = system_time(a.mtime_ns);
        FileAttr {
            ino: INodeNo(a.ino),
            size: a.size,
            blocks: a.size.div_ceil(512),
            atime: system_time(a.atime_ns),
            mtime,
            ctime: system_time(a.ctime_ns),
            crtime: mtime,
            kind: a.special.map_or(file_type(a.kind), |s| special_type(s.format)),
            perm: (a.mode & 0o7777) as u16,
            nlink: a.nlink,
            uid,
            gid,
            rdev: a.special.map_or(0, |s| s.rdev),
            blksize: 4096,
            flags: 0,
        }
    }
}

fn system_time(ns: i64) -> SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    }
}

fn special_type(format: u32) -> FileType {
    match format {
        libc::S_IFIFO => FileType::NamedPipe,
        libc::S_IFSOCK => FileType::Socket,
        libc::S_IFCHR => FileType::CharDevice,
        _ => FileType::BlockDevice,
    }
}

fn caller(req: &Request) -> Caller {
    Caller { uid: req.uid(), gid: req.gid() }
}

fn file_type(k: Kind) -> FileType {
    match k {
        Kind::File => FileType::RegularFile,
        Kind::Dir => FileType::Directory,
        Kind::Symlink => FileType::Symlink,
    }
}

/// Warnings of one kind (operation and errno): a few a minute, the rest counted.
static WARNINGS: LogLimiter = LogLimiter::new(std::time::Duration::from_secs(60), 5);

fn errno(op: &str, e: &FsError) -> Errno {
    let errno = e.errno();
    if e.is_routine() {
        tracing::debug!(op, "{e}");
    } else if let Some(left_out) = WARNINGS.admit(&format!("{op}:{errno}")) {
        match left_out {
            0 => tracing::warn!(op, "{e:#}"),
            n => tracing::warn!(op, left_out = n, "{e:#} (and {n} more like it since the last one shown)"),
        }
    } else {
        tracing::debug!(op, "{e:#}");
    }
    Errno::from_i32(errno)
}

macro_rules! reply_err {
    ($op:expr, $reply:ident, $e:expr) => {
        $reply.error(errno($op, &$e))
    };
}

impl Filesystem for SsyncFuse {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        if *self.passthrough.get_mut() {
            let ok =
                config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok() && config.set_max_stack_depth(2).is_ok();
            if !ok {
                tracing::info!("this kernel has no FUSE passthrough; serving reads and writes through the daemon");
            }
            *self.passthrough.get_mut() = ok;
        }
        let _ = config.set_max_write(1024 * 1024);
        let _ = config.set_max_readahead(1024 * 1024);
        // `ls -l` gets names and attributes in one round trip instead of a lookup per entry.
        let _ = config.add_capabilities(InitFlags::FUSE_DO_READDIRPLUS | InitFlags::FUSE_READDIRPLUS_AUTO);
        // O_TRUNC arrives with open instead of as a separate truncate.
        let _ = config.add_capabilities(InitFlags::FUSE_ATOMIC_O_TRUNC);
        // The mount drops set-ID bits on write, truncate and chown itself, so
        // the kernel need not ask for security.capability before every write
        // (a GETXATTR round trip per write(2), passthrough writes included).
        let _ = config.add_capabilities(InitFlags::FUSE_HANDLE_KILLPRIV_V2);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let _s = tracing::trace_span!("lookup", parent = parent.0, ?name).entered();
        match self.core.lookup(parent.0, name) {
            Ok(a) => reply.entry(&TTL, &self.attr(&a), Generation(0)),
            Err(e) => reply_err!("lookup", reply, e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.core.getattr(ino.0) {
            Ok(a) => reply.attr(&TTL, &self.attr(&a)),
            Err(e) => reply_err!("getattr", reply, e),
        }
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let _s = tracing::debug_span!("setattr", ino = ino.0, ?mode, ?size, ?uid, ?gid).entered();
        let time = |t: TimeOrNow| match t {
            TimeOrNow::Now => SetTime::Now,
            TimeOrNow::SpecificTime(t) => SetTime::At(t),
        };
        let change =
            SetAttr { caller: caller(req), mode, uid, gid, size, atime: atime.map(time), mtime: mtime.map(time) };
        match self.core.setattr(ino.0, fh.map(|f| f.0), change) {
            Ok(a) => reply.attr(&TTL, &self.attr(&a)),
            Err(e) => reply_err!("setattr", reply, e),
        }
    }

    fn mknod(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, rdev: u32, reply: ReplyEntry) {
        let _s = tracing::debug_span!("mknod", parent = parent.0, ?name).entered();
        match self.core.mknod(caller(req), parent.0, name, mode, umask, rdev) {
            Ok(a) => reply.entry(&TTL, &self.attr(&a), Generation(0)),
            Err(e) => reply_err!("mknod", reply, e),
        }
    }

    fn mkdir(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        let _s = tracing::debug_span!("mkdir", parent = parent.0, ?name).entered();
        match self.core.mkdir(caller(req), parent.0, name, mode, umask) {
            Ok(a) => reply.entry(&TTL, &self.attr(&a), Generation(0)),
            Err(e) => reply_err!("mkdir", reply, e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _s = tracing::debug_span!("unlink", parent = parent.0, ?name).entered();
        match self.core.unlink(parent.0, name) {
            Ok(()) => reply.ok(),
            Err(e) => reply_err!("unlink", reply, e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _s = tracing::debug_span!("rmdir", parent = parent.0, ?name).entered();
        match self.core.rmdir(parent.0, name) {
            Ok(()) => reply.ok(),
            Err(e) => reply_err!("rmdir", reply, e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let _s = tracing::debug_span!("rename", parent = parent.0, ?name, newparent = newparent.0, ?newname).entered();
        match self.core.rename(parent.0, name, newparent.0, newname, flags.bits()) {
            Ok(()) => reply.ok(),
            Err(e) => reply_err!("rename", reply, e),
        }
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let caller = caller(req);
        if self.core.open_may_fetch(ino.0, flags.0) {
            // A writer of content not held waits for all of it, off this
            // thread. Only a mount with a cache limit has such files, and
            // its writers never use passthrough (see `SyncFs::open`).
            let core = self.core.clone();
            return self.workers.run(move || match core.open(ino.0, flags.0, caller) {
                Ok((fh, _)) => reply.opened(FileHandle(fh), FILE_OPEN | FopenFlags::FOPEN_KEEP_CACHE),
                Err(e) => reply_err!("open", reply, e),
            });
        }
        match self.core.open(ino.0, flags.0, caller) {
            Ok((fh, may_pass)) => {
                match may_pass.then(|| self.backing_for(ino.0, fh, |f| reply.open_backing(f))).flatten() {
                    Some(id) => reply.opened_passthrough(FileHandle(fh), FILE_OPEN, &id),
                    // KEEP_CACHE: page cache survives reopen; remote updates invalidate it.
                    None => reply.opened(FileHandle(fh), FILE_OPEN | FopenFlags::FOPEN_KEEP_CACHE),
                }
            }
            Err(e) => reply_err!("open", reply, e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let answer = move |core: &SyncFs, reply: ReplyData| match core.read(fh.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply_err!("read", reply, e),
        };
        if size < WORKER_IO_BYTES && !self.core.read_may_fetch(fh.0) {
            return answer(&self.core, reply);
        }
        let core = self.core.clone();
        self.workers.run(move || answer(&core, reply));
    }

    fn write(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let drop_setid = write_flags.contains(WriteFlags::FUSE_WRITE_KILL_SUIDGID).then(|| caller(req));
        let answer =
            move |core: &SyncFs, data: &[u8], reply: ReplyWrite| match core.write(fh.0, offset, data, drop_setid) {
                Ok(n) => reply.written(n),
                Err(e) => reply_err!("write", reply, e),
            };
        if (data.len() as u32) < WORKER_IO_BYTES {
            return answer(&self.core, data, reply);
        }
        let (core, data) = (self.core.clone(), data.to_vec());
        self.workers.run(move || answer(&core, &data, reply));
    }

    /// Only a kernel without `FOPEN_NOFLUSH` sends this (see `FILE_OPEN`):
    /// the content is recorded at release, as it is everywhere else.
    fn flush(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        match self.core.flush(fh.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply_err!("flush", reply, e),
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        // Drop the backing file first: once the core counts the file as closed,
        // a remote update may replace the cache file, and a new open must then
        // register the new file, not reuse this one.
        self.backing.lock().by_fh.remove(&fh.0);
        let result = self.core.release(fh.0);
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply_err!("release", reply, e),
        }
    }

    fn fsync(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        let core = self.core.clone();
        self.workers.run(move || match core.fsync(fh.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply_err!("fsync", reply, e),
        });
    }

    fn fsyncdir(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        let core = self.core.clone();
        self.workers.run(move || match core.fsyncdir() {
            Ok(()) => reply.ok(),
            Err(e) => reply_err!("fsyncdir", reply, e),
        });
    }

    /// Files here are always ready, as on a local disk: ENOSYS tells the
    /// kernel so once, and it stops asking (fuser's default answers the
    /// same, with a warning each time).
    #[allow(clippy::too_many_arguments)]
    fn poll(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _ph: PollNotifier,
        _events: PollEvents,
        _flags: PollFlags,
        reply: ReplyPoll,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let core = self.core.clone();
        self.workers.run(move || match core.fallocate(fh.0, offset, length, mode) {
            Ok(()) => reply.ok(),
            Err(e) => reply_err!("fallocate", reply, e),
        });
    }

    fn copy_file_range(
        &self,
        _req: &Request,
        _ino_in: INodeNo,
        fh_in: FileHandle,
        offset_in: u64,
        _ino_out: INodeNo,
        fh_out: FileHandle,
        offset_out: u64,
        len: u64,
        _flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        let core = self.core.clone();
        self.workers.run(move || match core.copy_file_range(fh_in.0, offset_in, fh_out.0, offset_out, len) {
            Ok(n) => reply.written(n),
            Err(e) => reply_err!("copy_file_range", reply, e),
        });
    }

    fn lseek(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, offset: i64, whence: i32, reply: ReplyLseek) {
        match self.core.lseek(fh.0, offset, whence) {
            Ok(at) => reply.offset(at),
            Err(e) => reply_err!("lseek", reply, e),
        }
    }

    /// Folders are cached by the kernel between opens (`FOPEN_CACHE_DIR`,
    /// kept by `FOPEN_KEEP_CACHE`): a change made through the kernel resets
    /// the cache, and one from the hub invalidates the folder's inode.
    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.core.opendir(ino.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::FOPEN_CACHE_DIR | FopenFlags::FOPEN_KEEP_CACHE),
            Err(e) => reply_err!("opendir", reply, e),
        }
    }

    fn releasedir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _flags: OpenFlags, reply: ReplyEmpty) {
        self.core.releasedir(fh.0);
        reply.ok();
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let entries = match self.core.listing(ino.0, fh.0, offset) {
            Ok(e) => e,
            Err(e) => return reply_err!("readdir", reply, e),
        };
        let dots = [(ino.0, FileType::Directory, "."), (ino.0, FileType::Directory, "..")];
        let all = dots.into_iter().chain(entries.iter().map(|e| (e.attr.ino, file_type(e.attr.kind), e.name.as_str())));
        for (i, (ino, kind, name)) in all.enumerate().skip(offset as usize) {
            if reply.add(INodeNo(ino), (i + 1) as u64, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn readdirplus(&self, _req: &Request, ino: INodeNo, fh: FileHandle, offset: u64, mut reply: ReplyDirectoryPlus) {
        let (entries, me) = match (self.core.listing(ino.0, fh.0, offset), self.core.getattr(ino.0)) {
            (Ok(e), Ok(me)) => (e, me),
            (Err(e), _) | (_, Err(e)) => return reply_err!("readdirplus", reply, e),
        };
        let dots = [(".", me), ("..", me)];
        let all = dots.into_iter().chain(entries.iter().map(|e| (e.name.as_str(), e.attr)));
        for (i, (name, attr)) in all.enumerate().skip(offset as usize) {
            if reply.add(INodeNo(attr.ino), (i + 1) as u64, name, &TTL, &self.attr(&attr), Generation(0)) {
                break;
            }
        }
        reply.ok();
    }

    fn symlink(&self, req: &Request, parent: INodeNo, name: &OsStr, target: &Path, reply: ReplyEntry) {
        let _s = tracing::debug_span!("symlink", parent = parent.0, ?name).entered();
        match self.core.symlink(caller(req), parent.0, name, target) {
            Ok(a) => reply.entry(&TTL, &self.attr(&a), Generation(0)),
            Err(e) => reply_err!("symlink", reply, e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.core.readlink(ino.0) {
            Ok(target) => reply.data(&target),
            Err(e) => reply_err!("readlink", reply, e),
        }
    }

    fn link(&self, req: &Request, ino: INodeNo, newparent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let _s = tracing::debug_span!("link", ino = ino.0, newparent = newparent.0, ?name).entered();
        match self.core.link(caller(req), ino.0, newparent.0, name) {
            Ok(a) => reply.entry(&TTL, &self.attr(&a), Generation(0)),
            Err(e) => reply_err!("link", reply, e),
        }
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let _s = tracing::trace_span!("getxattr", ino = ino.0, ?name, size).entered();
        match self.core.getxattr(ino.0, name, size) {
            Ok(XattrReply::Size(n)) => reply.size(n),
            Ok(XattrReply::Data(d)) => reply.data(&d),
            Err(e) => reply_err!("getxattr", reply, e),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let _s = tracing::trace_span!("listxattr", ino = ino.0, size).entered();
        match self.core.listxattr(ino.0, size) {
            Ok(XattrReply::Size(n)) => reply.size(n),
            Ok(XattrReply::Data(d)) => reply.data(&d),
            Err(e) => reply_err!("listxattr", reply, e),
        }
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let _s = tracing::debug_span!("setxattr", ino = ino.0, ?name, len = value.len(), flags).entered();
        match self.core.setxattr(ino.0, name, value, flags) {
            Ok(()) => reply.ok(),
            Err(e) => reply_err!("setxattr", reply, e),
        }
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _s = tracing::debug_span!("removexattr", ino = ino.0, ?name).entered();
        match self.core.removexattr(ino.0, name) {
            Ok(()) => reply.ok(),
            Err(e) => reply_err!("removexattr", reply, e),
        }
    }

    // No ioctls of its own: ENOTTY is what a file that is not a terminal or a
    // device answers (isatty() asks on every stdio open).
    fn ioctl(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _flags: IoctlFlags,
        cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: ReplyIoctl,
    ) {
        tracing::debug!(ino = ino.0, cmd, "ioctl not supported");
        reply.error(Errno::ENOTTY);
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self.core.statfs() {
            Ok(s) => reply.statfs(s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, 255, s.frsize),
            Err(e) => reply_err!("statfs", reply, e),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let _s = tracing::debug_span!("create", parent = parent.0, ?name).entered();
        match self.core.create(caller(req), parent.0, name, mode, umask, flags) {
            Ok((a, fh)) => {
                let attr = self.attr(&a);
                // With a cache limit, writes go through the daemon (see `SyncFs::open`).
                let pass = !self.core.has_cache_limit();
                match pass.then(|| self.backing_for(a.ino, fh, |f| reply.open_backing(f))).flatten() {
                    Some(id) => reply.created_passthrough(&TTL, &attr, Generation(0), FileHandle(fh), FILE_OPEN, &id),
                    None => reply.created(&TTL, &attr, Generation(0), FileHandle(fh), FILE_OPEN),
                }
            }
            Err(e) => reply_err!("create", reply, e),
        }
    }
}
