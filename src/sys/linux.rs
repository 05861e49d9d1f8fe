//! [`RealSys`]: the [`Sys`] calls of the root-filesystem executor against
//! the kernel. Mounts go through `super::mount`; paths inside the
//! container root are resolved with openat2 `RESOLVE_IN_ROOT`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags, CWD};
use rustix::mount::{move_mount, MoveMountFlags};

use super::mount::{self, cstr, errno, overlay_classic, overlay_new_api};
use super::overlay::MountPlan;
use super::{Kind, Resolved, Sys};
use crate::error::{Error, Result};

#[derive(Debug, Default, Clone, Copy)]
pub struct RealSys;

impl Sys for RealSys {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        fl: u64,
        data: Option<&str>,
    ) -> Result<()> {
        forget_root_fd_of(target);
        mount::mount(source, target, fstype, fl, data)
    }

    fn mount_overlay(&self, plan: &MountPlan) -> Result<()> {
        let what = || format!("mount overlay on {}", plan.target.display());
        forget_root_fd_of(&plan.target);
        match overlay_new_api(plan) {
            Ok(()) => Ok(()),
            // No new mount API, or an overlay without `lowerdir+` (< 6.7).
            // If the classic mount fails too, the kernel's log from the
            // first attempt is the better explanation.
            Err((e, log)) if e == rustix::io::Errno::NOSYS || e == rustix::io::Errno::INVAL => overlay_classic(plan)
                .map_err(|e| {
                    let e = e.within(what());
                    if log.is_empty() {
                        e
                    } else {
                        e.hint(log)
                    }
                }),
            Err((e, log)) => {
                let mut err = Error::new(what()).because(io::Error::from(e));
                if !log.is_empty() {
                    err = err.hint(log);
                }
                Err(err)
            }
        }
    }

    fn resolve(
        &self,
        root: &Path,
        path: &Path,
        kind: Kind,
        create: bool,
        no_symlinks: bool,
    ) -> Result<Option<Resolved>> {
        let rel = relative(path);
        let fd = match with_root_fd(root, |rootfd| resolve_at(rootfd, &rel, kind, create, no_symlinks, 0))? {
            Err(rustix::io::Errno::NOENT) if !create => return Ok(None),
            other => other,
        };
        let fd = fd.map_err(|e| {
            let why = if e == rustix::io::Errno::LOOP && no_symlinks {
                "is a symlink (refusing to mount on it)".to_string()
            } else {
                io::Error::from(e).to_string()
            };
            Error::new(format!("resolve {} in {}", path.display(), root.display())).because(why)
        })?;
        Ok(Some(Resolved { path: PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())), _fd: Some(fd) }))
    }

    fn pivot_root(&self, root: &Path) -> Result<()> {
        let what = || format!("pivot_root to {}", root.display());
        forget_root_fd_of(root);
        std::env::set_current_dir(root).map_err(|e| Error::new(what()).because(e))?;
        let dot = c".";
        // SAFETY: valid C strings. pivot_root(".", ".") stacks the old root
        // on top of the new one; unmounting "." then removes the old root.
        if unsafe { libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) } != 0 {
            return Err(Error::new(what()).because(errno()));
        }
        mount::umount(Path::new("."), true).map_err(|e| e.within("detach the old root"))?;
        std::env::set_current_dir("/").map_err(|e| Error::new(what()).because(e))
    }

    fn attach(&self, mount: &OwnedFd, target: &Path) -> Result<()> {
        forget_root_fd_of(target);
        // T_SYMLINKS: targets are /proc/self/fd links mini resolved itself.
        let flags = MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_SYMLINKS;
        move_mount(mount.as_fd(), "", CWD, target, flags).map_err(|e| {
            Error::new(format!("attach the container's root on {}", target.display())).because(io::Error::from(e))
        })
    }

    fn mknod(&self, path: &Path, block: bool, major: u32, minor: u32, mode: u32) -> Result<()> {
        let what = || format!("create device {} ({major}:{minor})", path.display());
        let c = cstr(path)?;
        // SAFETY: valid C string; mknod then chmod (mknod's mode is masked
        // by the umask, and the devices must be 0666).
        unsafe {
            if libc::mknod(
                c.as_ptr(),
                if block { libc::S_IFBLK } else { libc::S_IFCHR } | mode,
                libc::makedev(major, minor),
            ) != 0
                || libc::chmod(c.as_ptr(), mode) != 0
            {
                return Err(Error::new(what()).because(errno()));
            }
        }
        Ok(())
    }

    fn symlink(&self, target: &Path, link: &Path) -> Result<()> {
        std::os::unix::fs::symlink(target, link)
            .map_err(|e| Error::new(format!("symlink {} -> {}", link.display(), target.display())).because(e))
    }

    fn create_file(&self, path: &Path, content: &[u8]) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| Error::new(format!("create {}", path.display())).because(e))?;
        f.write_all(content).map_err(|e| Error::new(format!("write {}", path.display())).because(e))
    }

    fn remove_file(&self, path: &Path) -> Result<()> {
        std::fs::remove_file(path).map_err(|e| Error::new(format!("remove {}", path.display())).because(e))
    }

    fn sethostname(&self, name: &str) -> Result<()> {
        // SAFETY: pointer and length describe `name`.
        if unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) } == 0 {
            Ok(())
        } else {
            Err(Error::new(format!("set hostname {name}")).because(errno()))
        }
    }

    fn write_file(&self, path: &Path, value: &str) -> Result<()> {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|mut f| f.write_all(value.as_bytes()))
            .map_err(|e| Error::new(format!("write {value:?} to {}", path.display())).because(e))
    }

    fn copy_tree(&self, from: &Path, to: &Path) -> Result<()> {
        super::fs::copy_tree(from, to)
    }

    fn loopback_up(&self) -> Result<()> {
        super::net::interface_up("lo")
    }
}

fn relative(path: &Path) -> PathBuf {
    path.components().filter(|c| matches!(c, Component::Normal(_))).collect()
}

thread_local! {
    /// The container root that `resolve` resolves in, opened once for the
    /// dozens of mount targets in a row rather than once per target.
    static ROOT_FD: std::cell::RefCell<Option<(PathBuf, OwnedFd)>> = const { std::cell::RefCell::new(None) };
}

/// Run `f` on an O_PATH fd of `root`, reusing the one opened last time
/// when it was for the same path.
fn with_root_fd<T>(root: &Path, f: impl FnOnce(&OwnedFd) -> T) -> Result<T> {
    ROOT_FD.with(|cell| {
        let mut cached = cell.borrow_mut();
        let fd = match cached.take() {
            Some((p, fd)) if p == root => fd,
            _ => rustix::fs::open(root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).map_err(
                |e| Error::new(format!("open container root {}", root.display())).because(io::Error::from(e)),
            )?,
        };
        let out = f(&fd);
        *cached = Some((root.to_path_buf(), fd));
        Ok(out)
    })
}

/// A mount on a cached root's own path changes what the path names: drop
/// the fd (mounts below the root leave it valid).
fn forget_root_fd_of(target: &Path) {
    ROOT_FD.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.as_ref().is_some_and(|(p, _)| p == target || p.starts_with(target)) {
            *cached = None;
        }
    });
}

/// openat2 with RESOLVE_IN_ROOT: symlinks and ".." are resolved as if
/// `root` were "/", so nothing resolves outside it. Missing parts are
/// created one at a time through their already-resolved parent.
fn resolve_at(
    root: &OwnedFd,
    rel: &Path,
    kind: Kind,
    create: bool,
    no_symlinks: bool,
    depth: u32,
) -> rustix::io::Result<OwnedFd> {
    let mut how = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    if no_symlinks {
        how |= ResolveFlags::NO_SYMLINKS;
    }
    let mut oflags = OFlags::PATH | OFlags::CLOEXEC;
    if kind == Kind::Dir {
        oflags |= OFlags::DIRECTORY;
    }
    let target: &Path = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
    match rustix::fs::openat2(root.as_fd(), target, oflags, Mode::empty(), how) {
        Err(rustix::io::Errno::NOENT) if create && depth < 2 => {
            let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
                return Err(rustix::io::Errno::NOENT);
            };
            let pfd = resolve_at(root, parent, Kind::Dir, true, no_symlinks, 0)?;
            // A plain name relative to a resolved parent: never followed.
            let dir = rustix::fs::openat(pfd.as_fd(), ".", OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
            let made = match kind {
                Kind::Dir => rustix::fs::mkdirat(dir.as_fd(), name, Mode::from_raw_mode(0o755)),
                Kind::File => rustix::fs::openat(
                    dir.as_fd(),
                    name,
                    OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                    Mode::from_raw_mode(0o644),
                )
                .map(drop),
            };
            match made {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(e),
            }
            resolve_at(root, rel, kind, create, no_symlinks, depth + 1)
        }
        other => other,
    }
}
