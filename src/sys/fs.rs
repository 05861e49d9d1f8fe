//! Filesystem calls that std lacks: extended attributes (without following
//! symlinks), and a private mount namespace for the calling process.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::{Error, Result};

/// Every extended attribute of `path` (not following a symlink), sorted.
pub fn xattrs(path: &Path) -> io::Result<Vec<(String, Vec<u8>)>> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: size queries then reads into buffers of the returned sizes.
    unsafe {
        let n = libc::llistxattr(c.as_ptr(), std::ptr::null_mut(), 0);
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.raw_os_error() == Some(libc::ENOTSUP) { Ok(vec![]) } else { Err(e) };
        }
        if n == 0 {
            return Ok(vec![]);
        }
        let mut names = vec![0u8; n as usize];
        let n = libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len());
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        names.truncate(n as usize);
        let mut out = Vec::new();
        for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
            let cname = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
            let size = libc::lgetxattr(c.as_ptr(), cname.as_ptr(), std::ptr::null_mut(), 0);
            if size < 0 {
                continue;
            }
            let mut value = vec![0u8; size as usize];
            let size = libc::lgetxattr(c.as_ptr(), cname.as_ptr(), value.as_mut_ptr().cast(), value.len());
            if size < 0 {
                continue;
            }
            value.truncate(size as usize);
            out.push((String::from_utf8_lossy(name).to_string(), value));
        }
        out.sort();
        Ok(out)
    }
}

/// Move the calling (single-threaded) process into a new mount namespace
/// whose mounts are all private: whatever it mounts vanishes when it exits.
pub fn private_mount_namespace() -> Result<()> {
    // SAFETY: unshare with a flag constant.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(Error::new("enter a private mount namespace").because(io::Error::last_os_error()));
    }
    super::mount::make_rprivate()
}

/// Make the open directory `dir` this process's root and working
/// directory: afterwards no path it resolves (symlinks and `..` included)
/// can name anything outside `dir`.
pub fn chroot_into(dir: &std::os::fd::OwnedFd) -> Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: fchdir on an fd we own, then chroot to the new cwd.
    let rc = unsafe {
        if libc::fchdir(dir.as_raw_fd()) != 0 {
            -1
        } else {
            libc::chroot(c".".as_ptr())
        }
    };
    if rc != 0 {
        return Err(Error::new("enter the container's root").because(io::Error::last_os_error()));
    }
    std::env::set_current_dir("/").map_err(|e| Error::new("enter the container's root").because(e))
}

/// Whether this process may write `path` (access(2) with W_OK: the real
/// ids, as mapped in mini's user namespace).
pub fn writable(path: &Path) -> bool {
    rustix::fs::access(path, rustix::fs::Access::WRITE_OK).is_ok()
}

/// Whether this process may read `path` (and search it, for a directory).
pub fn readable(path: &Path) -> bool {
    let mut want = rustix::fs::Access::READ_OK;
    if path.is_dir() {
        want |= rustix::fs::Access::EXEC_OK;
    }
    rustix::fs::access(path, want).is_ok()
}
