//! Calls on a byte range of an open file beyond read and write: fallocate,
//! copy_file_range and lseek's SEEK_DATA/SEEK_HOLE. Each works on the cache
//! file behind the handle, as a write would, and the close that follows sends
//! the result like any other change.
use super::SyncFs;
use crate::local::error::{FsError, FsResult};
use std::os::fd::AsRawFd;

/// The fallocate modes passed on to the cache file's filesystem: reserving
/// space (with or without growing the file), punching a hole and zeroing a
/// range. Where that filesystem lacks one it answers EOPNOTSUPP, as it would
/// locally. Collapsing and inserting a range never get here: the kernel
/// refuses them for every FUSE filesystem (fuse_file_fallocate).
const FALLOCATE_MODES: [i32; 5] = [
    0,
    libc::FALLOC_FL_KEEP_SIZE,
    libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
    libc::FALLOC_FL_ZERO_RANGE,
    libc::FALLOC_FL_ZERO_RANGE | libc::FALLOC_FL_KEEP_SIZE,
];

impl SyncFs {
    pub fn fallocate(&self, fh: u64, offset: u64, length: u64, mode: i32) -> FsResult<()> {
        if !FALLOCATE_MODES.contains(&mode) {
            return Err(FsError::Unsupported("this fallocate mode"));
        }
        let h = self.handle(fh)?;
        if !h.writable {
            return Err(FsError::NotWritable);
        }
        // Reserving and zeroing take disk up to the range's end, even when
        // the size stays; punching frees it.
        if mode & libc::FALLOC_FL_PUNCH_HOLE == 0 {
            self.room_to_grow(&h, offset.saturating_add(length))?;
        }
        let (offset, length) = (to_off(offset)?, to_off(length)?);
        // SAFETY: a plain syscall on a descriptor the handle owns.
        if unsafe { libc::fallocate(h.file.as_raw_fd(), mode, offset, length) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        let len = h.file.metadata()?.len();
        self.wrote(&h, len)
    }

    pub fn copy_file_range(&self, fh_in: u64, off_in: u64, fh_out: u64, off_out: u64, len: u64) -> FsResult<u32> {
        let (src, dst) = (self.handle(fh_in)?, self.handle(fh_out)?);
        if !dst.writable {
            return Err(FsError::NotWritable);
        }
        // The reply counts bytes in 32 bits; the kernel asks again for the rest.
        let len = len.min(u32::MAX as u64 & !0xfff) as usize;
        self.room_to_grow(&dst, off_out.saturating_add(len as u64))?;
        // A source not all here: its bytes must be fetched, and copied under
        // the state lock, which eviction takes.
        let _held = match src.streaming {
            true => Some(self.hold_range(src.ino, off_in..off_in.saturating_add(len as u64))?),
            false => None,
        };
        let (mut off_in, mut off_out) = (to_off(off_in)?, to_off(off_out)?);
        // SAFETY: both descriptors are owned by open handles; the offsets are
        // locals the call updates.
        let n = unsafe {
            libc::copy_file_range(src.file.as_raw_fd(), &mut off_in, dst.file.as_raw_fd(), &mut off_out, len, 0)
        };
        if n < 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        let size = dst.file.metadata()?.len();
        self.wrote(&dst, size)?;
        Ok(n as u32)
    }

    /// SEEK_DATA and SEEK_HOLE (the kernel answers the other kinds itself).
    pub fn lseek(&self, fh: u64, offset: i64, whence: i32) -> FsResult<i64> {
        let h = self.handle(fh)?;
        if h.streaming {
            // The cache file's holes are bytes not fetched yet, not holes of the file.
            let size = self.shared.state.lock().tree.get(h.ino).map_or(0, |n| n.size) as i64;
            return match whence {
                _ if offset < 0 || offset >= size => Err(std::io::Error::from_raw_os_error(libc::ENXIO).into()),
                libc::SEEK_DATA => Ok(offset),
                _ => Ok(size),
            };
        }
        // SAFETY: lseek on the handle's descriptor; reads and writes use
        // positioned calls, so moving its offset changes nothing else.
        let at = unsafe { libc::lseek(h.file.as_raw_fd(), offset, whence) };
        if at < 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        Ok(at)
    }
}

fn to_off(v: u64) -> FsResult<i64> {
    i64::try_from(v).map_err(|_| FsError::InvalidArgument("offset or length past 2^63"))
}
