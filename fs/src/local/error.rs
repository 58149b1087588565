//! `FsError`: why a filesystem call failed, and the one mapping to errno.
use crate::local::db::LocalDbError;
use ssync_common::xattrs::XattrError;
use ssync_common::PathError;

#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("no such file or folder")]
    NotFound,
    #[error("already exists")]
    Exists,
    #[error("not a folder")]
    NotDir,
    #[error("is a folder")]
    IsDir,
    #[error("folder is not empty")]
    NotEmpty,
    #[error("name not allowed in ssync: {0}")]
    InvalidName(#[from] PathError),
    #[error("name is not valid UTF-8")]
    NonUtf8Name,
    #[error("a folder cannot move into itself")]
    MoveIntoSelf,
    #[error("stale file handle")]
    BadHandle,
    #[error("handle not open for writing")]
    NotWritable,
    #[error("not supported: {0}")]
    Unsupported(&'static str),
    /// What POSIX says a filesystem without that kind of file answers (EPERM).
    #[error("not permitted: {0}")]
    NotPermitted(&'static str),
    #[error("not a symlink")]
    NotSymlink,
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    #[error("a symlink target of {0} bytes; the limit is {max}", max = ssync_common::api::MAX_SYMLINK_TARGET)]
    TargetTooLong(usize),
    #[error("no such extended attribute")]
    NoXattr,
    #[error("the buffer is too small for the extended attribute")]
    XattrRange,
    #[error(transparent)]
    Xattr(#[from] ssync_common::xattrs::XattrError),
    /// Content this cache does not hold could not be fetched: the hub is
    /// unreachable, or did not answer in time (EIO: see SEMANTICS.md).
    #[error("{path}: content not on this machine and not fetched from the hub: {why}")]
    NotLocal { path: String, why: String },
    /// The cache limit is reached and nothing in it can be evicted: what is
    /// left is unsent, open or pinned.
    #[error("the cache is full (--cache-max {limit} bytes) of unsent, open or pinned files")]
    CacheFull { limit: u64 },
    #[error("cache i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    LocalDb(#[from] LocalDbError),
}

impl FsError {
    pub fn errno(&self) -> i32 {
        match self {
            FsError::NotFound => libc::ENOENT,
            FsError::Exists => libc::EEXIST,
            FsError::NotDir => libc::ENOTDIR,
            FsError::IsDir => libc::EISDIR,
            FsError::NotEmpty => libc::ENOTEMPTY,
            FsError::InvalidName(PathError::ComponentTooLong { .. } | PathError::TooLong { .. }) => libc::ENAMETOOLONG,
            FsError::InvalidName(_) => libc::EINVAL,
            FsError::NonUtf8Name => libc::EILSEQ,
            FsError::MoveIntoSelf => libc::EINVAL,
            FsError::BadHandle => libc::EBADF,
            FsError::NotWritable => libc::EBADF,
            FsError::Unsupported(_) => libc::EOPNOTSUPP,
            FsError::NotPermitted(_) => libc::EPERM,
            FsError::NotSymlink => libc::EINVAL,
            FsError::InvalidArgument(_) => libc::EINVAL,
            FsError::TargetTooLong(_) => libc::ENAMETOOLONG,
            FsError::NoXattr => libc::ENODATA,
            FsError::XattrRange => libc::ERANGE,
            // What Linux answers: a name too long is ERANGE, an empty one
            // after its namespace ("user.") EINVAL, no room ENOSPC.
            FsError::Xattr(XattrError::NameTooLong(_)) => libc::ERANGE,
            FsError::Xattr(XattrError::BadName(_)) => libc::EINVAL,
            FsError::Xattr(XattrError::NoSpace(_)) => libc::ENOSPC,
            FsError::Xattr(XattrError::NotSynced(_)) => libc::EINVAL,
            FsError::NotLocal { .. } => libc::EIO,
            FsError::CacheFull { .. } => libc::ENOSPC,
            FsError::Io(e) => e.raw_os_error().unwrap_or(libc::EIO),
            FsError::LocalDb(_) => libc::EIO,
        }
    }

    /// Expected outcomes (a lookup that misses, a call this filesystem does
    /// not support, as a local one answers it) are not worth a warning.
    pub fn is_routine(&self) -> bool {
        match self {
            FsError::NotFound
            | FsError::Exists
            | FsError::NotEmpty
            | FsError::NoXattr
            | FsError::XattrRange
            | FsError::Unsupported(_) => true,
            FsError::Io(e) => e.raw_os_error() == Some(libc::EOPNOTSUPP),
            _ => false,
        }
    }
}

pub type FsResult<T> = Result<T, FsError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_mapping() {
        assert_eq!(FsError::NotFound.errno(), libc::ENOENT);
        assert_eq!(
            FsError::InvalidName(PathError::ComponentTooLong { len: 300, max: 255 }).errno(),
            libc::ENAMETOOLONG
        );
        assert_eq!(FsError::InvalidName(PathError::Backslash).errno(), libc::EINVAL);
        assert_eq!(FsError::Io(std::io::Error::from_raw_os_error(libc::ENOSPC)).errno(), libc::ENOSPC);
        assert_eq!(FsError::Io(std::io::Error::other("x")).errno(), libc::EIO);
    }
}
