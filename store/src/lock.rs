//! One lock protocol for concurrent mini processes, built on flock(2).
//!
//! Lock files live in the store root:
//! - `index.lock` — exclusive around every read-modify-write of `index.json`.
//! - `gc.lock` — pulls and container creation hold it *shared* while they add
//!   content that is not yet referenced by an image record; garbage collection
//!   holds it *exclusive*, so it never sees a half-pulled image as garbage.
//!
//! flock locks belong to the open file description: they vanish when the
//! process dies, so a killed mini never leaves the store locked.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;

use crate::error::{IoContext, Result};

/// A held flock; released on drop.
#[derive(Debug)]
pub struct StoreLock {
    file: File,
    path: PathBuf,
}

impl StoreLock {
    /// Blocks until an exclusive lock on `path` (created if missing) is held.
    pub fn exclusive(path: &Path) -> Result<StoreLock> {
        Self::acquire(path, FlockOperation::LockExclusive, "take exclusive lock")
    }

    /// Blocks until a shared lock on `path` (created if missing) is held.
    pub fn shared(path: &Path) -> Result<StoreLock> {
        Self::acquire(path, FlockOperation::LockShared, "take shared lock")
    }

    /// Takes an exclusive lock if nobody holds any lock; `None` if busy.
    pub fn try_exclusive(path: &Path) -> Result<Option<StoreLock>> {
        let file = open_lock_file(path)?;
        match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(StoreLock { file, path: path.to_path_buf() })),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(e).op("take exclusive lock", path),
        }
    }

    fn acquire(path: &Path, how: FlockOperation, op: &str) -> Result<StoreLock> {
        let file = open_lock_file(path)?;
        loop {
            match rustix::fs::flock(&file, how) {
                Ok(()) => return Ok(StoreLock { file, path: path.to_path_buf() }),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e).op(op, path),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The locked file (kept open for the lock's lifetime).
    pub fn file(&self) -> &File {
        &self.file
    }
}

fn open_lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .op("open lock file", path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_excludes_and_shared_shares() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.lock");
        let a = StoreLock::shared(&p).unwrap();
        let b = StoreLock::shared(&p).unwrap();
        assert!(StoreLock::try_exclusive(&p).unwrap().is_none());
        drop((a, b));
        let c = StoreLock::try_exclusive(&p).unwrap();
        assert!(c.is_some());
        assert!(StoreLock::try_exclusive(&p).unwrap().is_none());
    }
}
