//! The syscall boundary: the only module that mounts, unmounts, pivots,
//! clones, joins or creates namespaces, sets the hostname or touches devices.
//!
//! The root-filesystem executor talks to the kernel through the [`Sys`]
//! trait, passed in explicitly: [`RealSys`] calls the kernel, [`FakeSys`]
//! records one ordered call log and can fail any call, so the executor's
//! order and its error handling are unit-tested without root. Process-level
//! calls that only make sense in a real child (clone, exec, credentials,
//! capabilities, seccomp, ptys) are plain functions in the submodules.

#[cfg(test)]
pub mod fake;
pub mod fdpass;
pub mod fs;
pub mod linux;
pub mod mount;
pub mod net;
pub mod netlink;
pub mod overlay;
pub mod process;
pub mod tty;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use crate::error::Result;
use overlay::MountPlan;

#[cfg(test)]
pub use fake::FakeSys;
pub use linux::RealSys;

/// What a mount target inside the container root must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
}

/// A path inside the container root, resolved without leaving it. The
/// real implementation keeps an `O_PATH` fd open and hands out its
/// `/proc/self/fd/N` path, so the mount lands exactly on what was resolved.
#[derive(Debug)]
pub struct Resolved {
    pub path: PathBuf,
    /// Held so `path` stays valid; closed on drop.
    pub _fd: Option<OwnedFd>,
}

/// Mount flags we use, as plain bits (MS_* values) so plans stay data.
pub mod flags {
    pub const RDONLY: u64 = libc::MS_RDONLY;
    pub const NOSUID: u64 = libc::MS_NOSUID;
    pub const NODEV: u64 = libc::MS_NODEV;
    pub const NOEXEC: u64 = libc::MS_NOEXEC;
    pub const REMOUNT: u64 = libc::MS_REMOUNT;
    pub const BIND: u64 = libc::MS_BIND;
    pub const REC: u64 = libc::MS_REC;
    pub const PRIVATE: u64 = libc::MS_PRIVATE;
    pub const STRICTATIME: u64 = libc::MS_STRICTATIME;
    pub const RELATIME: u64 = libc::MS_RELATIME;

    /// Render flags as mount(8) would, for call logs and error messages.
    pub fn render(f: u64) -> String {
        let names = [
            (REMOUNT, "remount"),
            (BIND, "bind"),
            (REC, "rec"),
            (PRIVATE, "private"),
            (RDONLY, "ro"),
            (NOSUID, "nosuid"),
            (NODEV, "nodev"),
            (NOEXEC, "noexec"),
            (STRICTATIME, "strictatime"),
            (RELATIME, "relatime"),
        ];
        let out: Vec<&str> = names.iter().filter(|(b, _)| f & b != 0).map(|(_, n)| *n).collect();
        if out.is_empty() {
            "defaults".to_string()
        } else {
            out.join(",")
        }
    }
}

/// The calls the root-filesystem executor needs.
pub trait Sys {
    /// mount(2). `source` and `fstype` are optional as in the syscall.
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: u64,
        data: Option<&str>,
    ) -> Result<()>;
    /// The container's overlay root, via fsopen/fsconfig where available.
    fn mount_overlay(&self, plan: &MountPlan) -> Result<()>;
    /// Resolve `path` (absolute, inside the container) beneath `root`,
    /// never leaving it; create the missing parts as directories and the
    /// last one as `kind` when `create`; refuse symlinks when `no_symlinks`.
    /// `None` when it does not exist and `create` is false.
    fn resolve(
        &self,
        root: &Path,
        path: &Path,
        kind: Kind,
        create: bool,
        no_symlinks: bool,
    ) -> Result<Option<Resolved>>;
    /// Make `root` the root: pivot_root(".", ".") and detach the old root.
    fn pivot_root(&self, root: &Path) -> Result<()>;
    /// Attach a detached mount (made by mini's parent side) at `target`.
    fn attach(&self, mount: &OwnedFd, target: &Path) -> Result<()>;
    fn symlink(&self, target: &Path, link: &Path) -> Result<()>;
    /// A character (or `block`) device node with mode `mode` (umask not
    /// applied).
    fn mknod(&self, path: &Path, block: bool, major: u32, minor: u32, mode: u32) -> Result<()>;
    fn sethostname(&self, name: &str) -> Result<()>;
    /// Write `value` into an existing file (a sysctl under /proc/sys).
    fn write_file(&self, path: &Path, value: &str) -> Result<()>;
    /// Fill the empty host directory `to` with a copy of `from` (a new
    /// volume with the image's content at its mount point).
    fn copy_tree(&self, from: &Path, to: &Path) -> Result<()>;
    /// A new file (O_EXCL, no symlink followed) holding `content`, mode 0644.
    fn create_file(&self, path: &Path, content: &[u8]) -> Result<()>;
    fn remove_file(&self, path: &Path) -> Result<()>;
    /// Bring the loopback interface of the current network namespace up.
    fn loopback_up(&self) -> Result<()>;
}
