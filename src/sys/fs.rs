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

/// Copy the tree under `from` into the (empty) directory `to`, keeping
/// modes, owners and symlinks as they are (a link is copied, never
/// followed), and give `to` the mode and owner of `from` (how Docker fills
/// a new volume from the image). Devices, fifos and sockets are skipped.
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let fail = |what: &str, p: &Path, e: io::Error| Error::new(format!("{what} {}", p.display())).because(e);
    // Followed: `from` may be a /proc/self/fd link to the directory.
    let meta = std::fs::metadata(from).map_err(|e| fail("read", from, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| fail("read", from, e))? {
        let entry = entry.map_err(|e| fail("read", from, e))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let m = std::fs::symlink_metadata(&src).map_err(|e| fail("read", &src, e))?;
        let t = m.file_type();
        if t.is_symlink() {
            let target = std::fs::read_link(&src).map_err(|e| fail("read", &src, e))?;
            std::os::unix::fs::symlink(&target, &dst).map_err(|e| fail("create", &dst, e))?;
        } else if t.is_dir() {
            std::fs::create_dir(&dst).map_err(|e| fail("create", &dst, e))?;
            copy_tree(&src, &dst)?;
            continue; // its mode and owner are set by the call
        } else if t.is_file() {
            std::fs::copy(&src, &dst).map_err(|e| fail("copy", &src, e))?;
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(m.mode() & 0o7777))
                .map_err(|e| fail("chmod", &dst, e))?;
        } else {
            continue;
        }
        std::os::unix::fs::lchown(&dst, Some(m.uid()), Some(m.gid())).map_err(|e| fail("chown", &dst, e))?;
    }
    std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid())).map_err(|e| fail("chown", to, e))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(|e| fail("chmod", to, e))
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

/// A FIFO at `path` with exactly `mode` (the umask not applied).
pub fn make_fifo(path: &Path, mode: u32) -> Result<()> {
    let what = || format!("make the fifo {}", path.display());
    rustix::fs::mknodat(rustix::fs::CWD, path, rustix::fs::FileType::Fifo, rustix::fs::Mode::from_raw_mode(mode), 0)
        .map_err(|e| Error::new(what()).because(io::Error::from(e)))?;
    rustix::fs::chmod(path, rustix::fs::Mode::from_raw_mode(mode))
        .map_err(|e| Error::new(what()).because(io::Error::from(e)))
}

/// An O_PATH handle on `path`: names the file without opening it, so a
/// process can open it later through /proc/self/fd after it can no
/// longer reach the path (a container past its pivot_root).
pub fn open_path(path: &Path) -> Result<std::os::fd::OwnedFd> {
    rustix::fs::open(path, rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC, rustix::fs::Mode::empty())
        .map_err(|e| Error::new(format!("open {}", path.display())).because(io::Error::from(e)))
}

/// Open a FIFO for reading without waiting for a writer.
pub fn open_fifo_nonblocking(path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| Error::new(format!("open {}", path.display())).because(e))
}
