//! Small filesystem helpers shared by the store modules: atomic file writes,
//! directory fsync, writeback and filesystem sync, random temp names, moving
//! trees to trash, and timestamps. The store's few durability syscalls
//! (fsync, syncfs, sync_file_range) live here.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::fs::FlockOperation;

use crate::error::{IoContext, Result};

/// 16 random hex characters for temp names.
pub(crate) fn random_name() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// fsync a directory so that renames and creations inside it are durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    let f = File::open(dir).op("open directory for fsync", dir)?;
    f.sync_all().op("fsync directory", dir)
}

/// Asks the kernel to start writing back `len` bytes of `fd` from `offset`
/// (`len` 0: to the end) and returns at once: sync_file_range(2) with
/// SYNC_FILE_RANGE_WRITE only queues the dirty pages for I/O, it neither
/// waits for them nor flushes metadata or the disk cache, so it is no
/// durability point, only a head start for the one wait that follows
/// ([`sync_filesystems`]). Best effort: a filesystem that does not support
/// it just leaves the work to that wait.
pub(crate) fn start_writeback(fd: impl AsFd, offset: u64, len: u64) {
    let fd = fd.as_fd().as_raw_fd();
    // SAFETY: plain syscall on a valid fd; no memory is passed.
    unsafe {
        libc::sync_file_range(fd, offset as libc::off64_t, len as libc::off64_t, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// A syncfs(2) of `fd`'s filesystem on a thread of its own: the writeback
/// of everything dirty there starts now and goes on while the caller
/// works. Join the handle before relying on anything, and before the
/// process forks (mini clones containers with no other thread alive).
pub(crate) fn flush_in_background(fd: OwnedFd) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let _ = rustix::fs::syncfs(&fd);
    })
}

/// One syncfs(2) for every distinct filesystem among `fds`: it returns once
/// every dirty page, inode and journal entry of that filesystem is on disk
/// (ext4 and XFS also flush the device cache). Each path names its fd in
/// errors.
pub(crate) fn sync_filesystems<F: AsFd>(fds: &[(F, &Path)]) -> Result<()> {
    let mut done: Vec<u64> = Vec::new();
    for (fd, path) in fds {
        let dev = rustix::fs::fstat(fd).map(|st| st.st_dev).op("stat", path)?;
        if !done.contains(&dev) {
            rustix::fs::syncfs(fd).op("sync filesystem of", path)?;
            done.push(dev);
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically: temp file in the same directory, fsync,
/// rename over the target, fsync the directory. Readers see the old or the new
/// content, never a mix.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    with_synced_temp(path, bytes, |tmp| fs::rename(tmp, path).op("rename into place", path))
}

/// Like [`write_atomic`] but never replaces an existing file (first writer wins).
/// Returns whether this call created the file.
pub(crate) fn write_new_atomic(path: &Path, bytes: &[u8]) -> Result<bool> {
    with_synced_temp(path, bytes, |tmp| {
        // A hard link fails with EEXIST instead of replacing, unlike rename.
        let created = match fs::hard_link(tmp, path) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(e).op("link into place", path),
        };
        fs::remove_file(tmp).op("remove temp file", tmp)?;
        Ok(created)
    })
}

/// Write `bytes` to a fsynced temp sibling of `path`, let `place` put it
/// there, then fsync the directory. The temp file is removed on any error.
fn with_synced_temp<T>(path: &Path, bytes: &[u8], place: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    let dir = parent_of(path);
    let tmp = temp_sibling(path);
    let result = (|| {
        let mut f = create_new(&tmp)?;
        f.write_all(bytes).op("write temp file", &tmp)?;
        f.sync_all().op("fsync temp file", &tmp)?;
        let placed = place(&tmp)?;
        fsync_dir(&dir)?;
        Ok(placed)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn temp_sibling(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    parent_of(path).join(format!(".{name}.tmp-{}", random_name()))
}

pub(crate) fn create_new(path: &Path) -> Result<File> {
    OpenOptions::new().write(true).create_new(true).mode(0o644).open(path).op("create file", path)
}

/// Moves `path` into `trash_dir` under a fresh name (a cheap rename) and then
/// deletes it. Deleting from trash keeps the visible name space consistent even
/// if the delete is interrupted: open() empties trash later.
pub(crate) fn remove_via_trash(path: &Path, trash_dir: &Path) -> Result<()> {
    let doomed = trash_dir.join(random_name());
    match fs::rename(path, &doomed) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).op("move to trash", path),
    }
    remove_any(&doomed)
}

/// Removes a file or a whole tree (std's remove_dir_all does not follow symlinks).
pub(crate) fn remove_any(path: &Path) -> Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).op("stat", path),
    };
    let r = if meta.is_dir() { fs::remove_dir_all(path) } else { fs::remove_file(path) };
    match r {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).op("remove", path),
        _ => Ok(()),
    }
}

/// True if `path` is an abandoned temp object: nobody holds its flock (owners
/// lock their temp files and dirs for their whole life) and it is older than a
/// few seconds (covers the instant between an owner's create and its flock).
pub(crate) fn is_abandoned(path: &Path) -> bool {
    // Non-blocking and no-follow: a stray fifo or symlink must not hang or mislead us.
    let opened =
        OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_CLOEXEC).open(path);
    let Ok(f) = opened else { return false };
    if rustix::fs::flock(&f, FlockOperation::NonBlockingLockExclusive).is_err() {
        return false;
    }
    older_than(path, 5)
}

/// True if `path`'s mtime is at least `secs` seconds in the past.
pub(crate) fn older_than(path: &Path, secs: u64) -> bool {
    let age = fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or(Duration::ZERO);
    age >= Duration::from_secs(secs)
}

/// Current time as RFC 3339 UTC, e.g. `2026-11-29T03:04:05Z`.
pub fn rfc3339_now() -> String {
    rfc3339(SystemTime::now())
}

/// Formats a time as RFC 3339 UTC with second precision.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs / 86400, secs % 86400);
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_709_210_096); // 2024-02-29T12:34:56Z
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56Z");
    }

    #[test]
    fn write_new_atomic_keeps_first() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        assert!(write_new_atomic(&p, b"one").unwrap());
        assert!(!write_new_atomic(&p, b"two").unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"one");
        write_atomic(&p, b"three").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"three");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
