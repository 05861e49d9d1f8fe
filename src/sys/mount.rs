//! Mounting: mount(2) and umount(2) with errors naming what went where,
//! the container's overlay (new mount API, classic fallback), and the
//! detached and idmapped mounts mini makes for a child in a user namespace.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::CWD;
use rustix::mount::{
    fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, move_mount, open_tree, FsMountFlags,
    FsOpenFlags, MountAttrFlags, MoveMountFlags, OpenTreeFlags,
};

use super::flags;
use super::overlay::MountPlan;
use crate::error::{Error, Result};

pub(crate) fn cstr(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| Error::new(format!("path {}", p.display())).because("contains a NUL byte"))
}

pub(crate) fn errno() -> io::Error {
    io::Error::last_os_error()
}

/// mount(2) with an error naming what was mounted where.
/// The flags a bind remount must keep: in a user namespace the kernel
/// refuses one that would clear nosuid, nodev, noexec or an atime flag the
/// mount has (runc keeps them the same way); elsewhere keeping them is
/// what was meant anyway.
fn locked_flags(target: &CString) -> u64 {
    // SAFETY: statvfs fills the zeroed struct; target is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(target.as_ptr(), &mut st) } != 0 {
        return 0;
    }
    let keep = [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ];
    keep.iter().filter(|(st_bit, _)| st.f_flag & st_bit != 0).fold(0, |acc, (_, ms)| acc | *ms)
}

pub fn mount(source: Option<&Path>, target: &Path, fstype: Option<&str>, fl: u64, data: Option<&str>) -> Result<()> {
    let src = source.map(cstr).transpose()?;
    let tgt = cstr(target)?;
    let fl = if fl & libc::MS_REMOUNT != 0 && fl & libc::MS_BIND != 0 { fl | locked_flags(&tgt) } else { fl };
    let fst = fstype.map(|f| CString::new(f).unwrap_or_default());
    let dat = data.map(|d| CString::new(d).unwrap_or_default());
    // SAFETY: every pointer is a valid NUL-terminated string or null.
    let rc = unsafe {
        libc::mount(
            src.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            tgt.as_ptr(),
            fst.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            fl as libc::c_ulong,
            dat.as_ref().map_or(std::ptr::null(), |s| s.as_ptr().cast()),
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let what = match (fstype, source) {
        (Some(t), _) => format!("mount {t} on {}", target.display()),
        (None, Some(s)) => format!("mount {} on {} ({})", s.display(), target.display(), flags::render(fl)),
        (None, None) => format!("mount {} ({})", target.display(), flags::render(fl)),
    };
    Err(Error::new(what).because(errno()))
}

/// umount2(2); `detach` is MNT_DETACH.
pub fn umount(target: &Path, detach: bool) -> Result<()> {
    let tgt = cstr(target)?;
    let fl = if detach { libc::MNT_DETACH } else { 0 };
    // SAFETY: valid C string.
    if unsafe { libc::umount2(tgt.as_ptr(), fl) } == 0 {
        Ok(())
    } else {
        Err(Error::new(format!("unmount {}", target.display())).because(errno()))
    }
}

/// Whether `path` is a mount point: its device differs from its parent's
/// (a bind mount of a directory onto its own filesystem is not detected,
/// which is fine for the overlay roots this is used on).
pub fn is_mountpoint(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(me), Some(parent)) = (std::fs::symlink_metadata(path), path.parent()) else {
        return false;
    };
    std::fs::metadata(parent).map(|p| p.dev() != me.dev()).unwrap_or(false)
}

/// Make every mount in this (new) mount namespace private, so nothing we
/// mount propagates back to the host.
pub fn make_rprivate() -> Result<()> {
    mount(None, Path::new("/"), None, flags::REC | flags::PRIVATE, None).map_err(|e| e.within("make mounts private"))
}

/// fsopen("overlay") + one `lowerdir+` per layer: no one-page limit.
/// On failure returns the errno and the fs_context log.
pub(crate) fn overlay_new_api(plan: &MountPlan) -> std::result::Result<(), (rustix::io::Errno, String)> {
    let mnt = overlay_fd(plan)?;
    move_mount(mnt.as_fd(), "", CWD, plan.target.as_path(), MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)
        .map_err(|e| (e, String::new()))
}

/// The overlay as a detached mount (not attached anywhere yet).
fn overlay_fd(plan: &MountPlan) -> std::result::Result<OwnedFd, (rustix::io::Errno, String)> {
    clear_volatile_marker(plan);
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).map_err(|e| (e, String::new()))?;
    let with_log = |e: rustix::io::Errno| (e, read_fs_log(&fs));
    // Which path the kernel rejected, when its log does not say.
    let about = |key: &str, path: &Path| {
        let fs = &fs;
        let key = key.to_string();
        let path = path.display().to_string();
        move |e: rustix::io::Errno| {
            let log = read_fs_log(fs);
            (e, if log.is_empty() { format!("{key} {path}") } else { log })
        }
    };
    for lower in &plan.lowers {
        fsconfig_set_string(fs.as_fd(), "lowerdir+", lower.as_path()).map_err(about("lower layer", lower))?;
    }
    if let (Some(upper), Some(work)) = (&plan.upper, &plan.work) {
        fsconfig_set_string(fs.as_fd(), "upperdir", upper.as_path()).map_err(about("upper dir", upper))?;
        fsconfig_set_string(fs.as_fd(), "workdir", work.as_path()).map_err(about("work dir", work))?;
    }
    if plan.userxattr {
        fsconfig_set_flag(fs.as_fd(), "userxattr").map_err(with_log)?;
    }
    if plan.volatile && plan.upper.is_some() {
        fsconfig_set_flag(fs.as_fd(), "volatile").map_err(with_log)?;
    }
    fsconfig_create(fs.as_fd()).map_err(with_log)?;
    let attrs = if plan.upper.is_none() { MountAttrFlags::MOUNT_ATTR_RDONLY } else { MountAttrFlags::empty() };
    fsmount(fs.as_fd(), FsMountFlags::FSMOUNT_CLOEXEC, attrs).map_err(with_log)
}

/// The overlay of `plan` as a detached mount, for a container in a user
/// namespace (its lowers are idmapped mounts, see [`idmapped_clone`]).
pub fn detached_overlay(plan: &MountPlan) -> Result<OwnedFd> {
    overlay_fd(plan).map_err(|(e, log)| {
        let err = Error::new("mount the container's overlay").because(io::Error::from(e));
        if log.is_empty() {
            err
        } else {
            err.hint(log)
        }
    })
}

/// A detached recursive copy of the mount tree at `path` (a bind mount not
/// attached anywhere yet), read-only if asked.
pub fn detached_bind(path: &Path, read_only: bool) -> Result<OwnedFd> {
    let what = || format!("clone the mount at {}", path.display());
    let flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC | OpenTreeFlags::AT_RECURSIVE;
    let fd = open_tree(CWD, path, flags).map_err(|e| Error::new(what()).because(io::Error::from(e)))?;
    if read_only {
        set_mount_attr(&fd, MOUNT_ATTR_RDONLY, 0, true).map_err(|e| Error::new(what()).because(e))?;
    }
    Ok(fd)
}

const MOUNT_ATTR_RDONLY: u64 = 0x0000_0001;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// mount_setattr(2) on a mount fd (AT_EMPTY_PATH), optionally recursive.
fn set_mount_attr(fd: &OwnedFd, set: u64, userns_fd: u64, recursive: bool) -> io::Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let attr = MountAttr { attr_set: set, attr_clr: 0, propagation: 0, userns_fd };
    let flags = libc::AT_EMPTY_PATH | if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: mount_setattr on an fd we own with a correctly sized struct.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// A detached copy of the mount at `path` whose ids are seen through the
/// user namespace `userns` (mount_setattr MOUNT_ATTR_IDMAP): on-disk id 0
/// appears as the namespace's root.
pub fn idmapped_clone(path: &Path, userns: &OwnedFd) -> Result<OwnedFd> {
    let what = || format!("make an idmapped mount of {}", path.display());
    let fd = open_tree(CWD, path, OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC)
        .map_err(|e| Error::new(what()).because(io::Error::from(e)))?;
    set_mount_attr(&fd, MOUNT_ATTR_IDMAP, userns.as_raw_fd() as u64, false)
        .map_err(|e| Error::new(what()).because(e))?;
    Ok(fd)
}

/// The kernel explains fsconfig failures in a log read from the fs fd.
fn read_fs_log(fs: &OwnedFd) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    while let Ok(n) = rustix::io::read(fs.as_fd(), &mut buf) {
        if n == 0 {
            break;
        }
        out.push(String::from_utf8_lossy(&buf[..n]).trim().to_string());
    }
    out.join("; ")
}

/// Classic mount(2): the options must fit one page, so lower paths are
/// made relative to their common parent and the mount runs from there.
pub(crate) fn overlay_classic(plan: &MountPlan) -> Result<()> {
    let base = common_base(plan);
    let fl = if plan.upper.is_none() { flags::RDONLY } else { 0 };
    let cwd = std::env::current_dir().ok();
    if let Some(b) = &base {
        std::env::set_current_dir(b).map_err(|e| Error::new(format!("enter {}", b.display())).because(e))?;
    }
    let classic = |plan: &MountPlan| {
        let opts = plan.classic_options(base.as_deref());
        mount(Some(Path::new("overlay")), &plan.target, Some("overlay"), fl, Some(&opts))
    };
    let mut r = classic(plan);
    if r.is_err() && plan.volatile {
        // Before 5.10 overlay has no `volatile`: mount it syncing.
        r = classic(&MountPlan { volatile: false, ..plan.clone() });
    }
    if let (Some(_), Some(c)) = (&base, cwd) {
        let _ = std::env::set_current_dir(c);
    }
    r
}

/// A volatile overlay leaves `work/work/incompat/volatile/dirty` behind and
/// refuses to mount over a work dir holding it, since after a crash the
/// upper dir may have lost writes. A container mounted volatile is one that
/// is removed when it ends, or swept after a crash, so a marker seen here
/// is from its own earlier clean run (`restart`): remove it.
fn clear_volatile_marker(plan: &MountPlan) {
    if let (true, Some(work)) = (plan.volatile, &plan.work) {
        let _ = std::fs::remove_dir_all(work.join("work/incompat/volatile"));
    }
}

/// The deepest directory holding every layer, upper and work dir (not /).
fn common_base(plan: &MountPlan) -> Option<PathBuf> {
    let mut all = plan.lowers.iter().chain(plan.upper.iter()).chain(plan.work.iter());
    let mut base = all.next()?.parent()?.to_path_buf();
    for p in all {
        while !p.starts_with(&base) {
            base = base.parent()?.to_path_buf();
        }
    }
    (base != Path::new("/")).then_some(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_fallback_runs_from_the_deepest_common_dir() {
        let c1 = Path::new("/var/lib/mini/containers/c1");
        let plan = MountPlan {
            lowers: vec!["/var/lib/mini/layers/bb/diff".into(), "/var/lib/mini/layers/aa/diff".into()],
            upper: Some(c1.join("upper")),
            work: Some(c1.join("work")),
            target: c1.join("rootfs"),
            userxattr: false,
            volatile: false,
        };
        assert_eq!(common_base(&plan), Some(PathBuf::from("/var/lib/mini")));
        let mut elsewhere = plan.clone();
        elsewhere.lowers.push("/opt/x".into());
        assert_eq!(common_base(&elsewhere), None);
    }
}
