//! Starting writeback early. A large file written and then fsynced in one go
//! leaves the disk idle while the pages are copied and the copier idle while
//! the disk works; asking the kernel to start writing each piece as soon as it
//! is in the page cache overlaps the two, and the final fsync (which alone
//! makes the data durable) finds little left to do.
#![allow(unsafe_code)]
use std::fs::File;
use std::os::fd::AsRawFd;

/// Starts (does not wait for) writeback of `len` bytes of `file` at `offset`.
pub fn start(file: &File, offset: u64, len: u64) -> std::io::Result<()> {
    let (Ok(off), Ok(n)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Ok(()); // beyond what the call takes; the final fsync covers it
    };
    // SAFETY: plain syscall on a file descriptor `file` keeps open; no memory is passed.
    let rc = unsafe { libc::sync_file_range(file.as_raw_fd(), off, n, libc::SYNC_FILE_RANGE_WRITE) };
    match rc {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn starts_writeback_of_a_written_range() {
        use std::io::Write;
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&[7u8; 8192]).unwrap();
        super::start(&f, 0, 8192).unwrap();
        f.sync_data().unwrap();
    }
}
