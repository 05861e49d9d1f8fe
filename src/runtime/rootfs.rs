//! RunSpec → the ordered operations that build a container's root, as data
//! ([`plan`]), and the one executor that carries them out through
//! [`Sys`] ([`execute`]).
//!
//! Everything is mounted beneath the overlay root *before* `pivot_root`,
//! each target resolved inside the root with openat2(RESOLVE_IN_ROOT) so an
//! image's symlinks can never point a mount at the host; `/proc`, `/sys`
//! and `/dev` must not be symlinks at all. Host-side sources (volumes,
//! devices, the per-container /etc files) are only reachable before the
//! pivot, which is why the order is what it is. All of this runs in the
//! container's own mount namespace: when it dies, every mount goes with it.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::runtime::overlay::MountPlan;
use crate::sys::{flags::*, Kind, Sys};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Stop mounts propagating to or from the host.
    MakePrivate,
    Overlay(MountPlan),
    /// The root is a directory given as it is (an OCI bundle's rootfs):
    /// bound onto itself, so it is a mount point `pivot_root` accepts.
    BindRoot,
    /// In a user namespace: attach the overlay mini's parent side built
    /// (over idmapped layers) at `target`; later ops resolve in it.
    AttachRoot {
        target: PathBuf,
    },
    /// In a user namespace: attach detached mount `index` (a host volume
    /// cloned by mini's parent side; 0 is the root) at `target`.
    AttachVolume {
        index: usize,
        target: PathBuf,
        kind: Kind,
    },
    /// A fresh filesystem at `target` (a path inside the container).
    Mount {
        fstype: &'static str,
        /// What the mount table shows as its source (an OCI mount's
        /// `source`, `shm` for /dev/shm as Docker's); the type when None.
        source: Option<String>,
        target: PathBuf,
        flags: u64,
        data: Option<String>,
        no_symlinks: bool,
    },
    /// A host path bound at `target`; remounted with `ro_flags` when set.
    Bind {
        source: PathBuf,
        target: PathBuf,
        kind: Kind,
        ro_flags: Option<u64>,
    },
    Symlink {
        target: PathBuf,
        link: PathBuf,
    },
    /// A device node (in the container's /dev tmpfs): character, or block.
    Device {
        path: PathBuf,
        major: u32,
        minor: u32,
        block: bool,
    },
    /// /dev/null over a file (skipped if absent).
    MaskFile(PathBuf),
    /// An empty read-only tmpfs over a directory (skipped if absent).
    MaskDir(PathBuf),
    /// Bind a path onto itself and make it read-only (skipped if absent).
    ReadOnly(PathBuf),
    /// [`Op::MaskDir`] or [`Op::MaskFile`], whichever the path turns out
    /// to be (an OCI `maskedPaths` entry; skipped if absent).
    Mask(PathBuf),
    /// Before a volume's bind: when the host directory `source` is empty,
    /// copy into it what the root has at `target` (a new named volume
    /// gets the image's content there, as Docker's).
    Fill {
        source: PathBuf,
        target: PathBuf,
    },
    /// Write `value` to the container's /proc/sys/`key` (dots become
    /// slashes): a namespaced `--sysctl`.
    Sysctl {
        key: String,
        value: String,
    },
    /// A new file inside the root, in a tmpfs mini mounted there (no
    /// symlink to follow): the /etc files of a container that keeps them
    /// off the disk ([`etc_in_memory`]).
    WriteFile {
        path: PathBuf,
        content: Vec<u8>,
    },
    /// Unlink a file [`Op::WriteFile`] made, once it is bound where it
    /// belongs (the bind mount keeps it). Same rules as `WriteFile`.
    RemoveFile(PathBuf),
    PivotRoot,
    /// After the pivot: the root itself becomes read-only (`--read-only`).
    RootReadOnly,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub root: PathBuf,
    pub ops: Vec<Op>,
}

/// The devices every container gets, with their (major, minor) numbers.
pub const DEVICES: [(&str, u32, u32); 6] =
    [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)];
/// The symlinks every container's /dev has: (what it points at, the link).
pub const DEV_LINKS: [(&str, &str); 5] = [
    ("pts/ptmx", "/dev/ptmx"),
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
];
pub const MASKED_FILES: [&str; 6] =
    ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/latency_stats", "/proc/timer_stats"];
pub const MASKED_DIRS: [&str; 5] =
    ["/proc/acpi", "/proc/asound", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"];
pub const READONLY_PATHS: [&str; 5] = ["/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs"];

fn p(s: &str) -> PathBuf {
    PathBuf::from(s)
}

/// Where [`etc_in_memory`] writes a file before binding it: in the
/// container's own /dev tmpfs, removed again before anything runs there.
fn staged_etc(name: &str) -> PathBuf {
    p(&format!("/dev/.mini-etc-{name}"))
}

/// The plan with the /etc files bound from `sources` (the host files
/// [`Input::etc_files`] named) replaced by `contents` (file name and
/// bytes) written into the container's own /dev tmpfs, bound over
/// /etc/<name> as before, and unlinked from /dev: the container sees the
/// same files and mounts, and the host's disk gets no inodes for them. For
/// a `--rm` container whose /etc files nobody rewrites later (see
/// `container::launch`).
pub fn etc_in_memory(plan: &Plan, sources: &[PathBuf], contents: &[(String, Vec<u8>)]) -> Plan {
    let content_of = |source: &Path| {
        let name = source.file_name()?.to_str()?;
        contents.iter().find(|(n, _)| n == name).map(|(n, c)| (n.clone(), c.clone()))
    };
    let mut ops = Vec::with_capacity(plan.ops.len() + 2 * contents.len());
    for op in &plan.ops {
        match (op, op_source(op).and_then(|s| sources.contains(s).then(|| content_of(s)).flatten())) {
            (Op::Bind { target, kind, ro_flags, .. }, Some((name, content))) => {
                // Written, bound and unlinked at once: before any volume
                // could be mounted over /dev.
                let path = staged_etc(&name);
                let source = plan.root.join(path.strip_prefix("/").unwrap_or(&path));
                ops.push(Op::WriteFile { path: path.clone(), content });
                ops.push(Op::Bind { source, target: target.clone(), kind: *kind, ro_flags: *ro_flags });
                ops.push(Op::RemoveFile(path));
            }
            _ => ops.push(op.clone()),
        }
    }
    Plan { root: plan.root.clone(), ops }
}

fn op_source(op: &Op) -> Option<&PathBuf> {
    match op {
        Op::Bind { source, .. } => Some(source),
        _ => None,
    }
}

/// A host path mini's parent side clones (open_tree) for the child to
/// attach: a volume under `--userns=auto`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detach {
    pub source: PathBuf,
    pub read_only: bool,
}

/// The plan for a container in a user namespace, whose mapped root cannot
/// search the store's or the volumes' parent directories on the host:
/// paths under `base` (the container dir: its /etc files and the attach
/// target) become relative, for a child started in `base`; volumes become
/// `AttachVolume`s of mounts the parent clones (returned, in index order
/// from 1; 0 is the root). `/dev` sources stay as they are.
pub fn for_user_namespace(plan: &Plan, base: &Path, is_dir: &dyn Fn(&Path) -> bool) -> (Plan, Vec<Detach>) {
    let mut detach = Vec::new();
    let rel = |p: &Path| p.strip_prefix(base).map(Path::to_path_buf).unwrap_or_else(|_| p.to_path_buf());
    let ops = plan
        .ops
        .iter()
        .map(|op| match op {
            Op::Bind { source, target, ro_flags, .. } if !source.starts_with(base) && !source.starts_with("/dev") => {
                detach.push(Detach { source: source.clone(), read_only: ro_flags.is_some() });
                let kind = if is_dir(source) { Kind::Dir } else { Kind::File };
                Op::AttachVolume { index: detach.len(), target: target.clone(), kind }
            }
            Op::Bind { source, target, kind, ro_flags } => {
                Op::Bind { source: rel(source), target: target.clone(), kind: *kind, ro_flags: *ro_flags }
            }
            Op::AttachRoot { target } => Op::AttachRoot { target: rel(target) },
            other => other.clone(),
        })
        .collect();
    (Plan { root: plan.root.clone(), ops }, detach)
}

/// Carry the plan out, stopping at the first failure. `detached` are the
/// mounts mini's parent side prepared (user namespace only): the overlay
/// for `AttachRoot` first, then volumes. Once the root is attached, paths
/// resolve through its fd, so the store's own directories need not be
/// searchable by the container's (mapped) root.
pub fn execute(plan: &Plan, sys: &dyn Sys, detached: &[OwnedFd]) -> Result<()> {
    let root = match detached.first() {
        Some(fd) => PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())),
        None => plan.root.clone(),
    };
    for op in &plan.ops {
        execute_one(&root, op, sys, detached)?;
    }
    Ok(())
}

fn execute_one(root: &Path, op: &Op, sys: &dyn Sys, detached: &[OwnedFd]) -> Result<()> {
    let missing = |what: &str| crate::error::Error::new(format!("attach {what}")).because("mini did not prepare it");
    match op {
        Op::MakePrivate => sys.mount(None, Path::new("/"), None, REC | PRIVATE, None),
        Op::Overlay(plan) => sys.mount_overlay(plan),
        Op::BindRoot => sys.mount(Some(root), root, None, BIND | REC, None),
        Op::AttachRoot { target } => match detached.first() {
            Some(fd) => sys.attach(fd, target),
            None => Err(missing("the container's root")),
        },
        Op::AttachVolume { index, target, kind } => {
            let fd = detached.get(*index).ok_or_else(|| missing(&format!("volume {}", target.display())))?;
            let t = must(sys.resolve(root, target, *kind, true, false)?, target)?;
            sys.attach(fd, &t.path)
        }
        Op::Mount { fstype, source, target, flags, data, no_symlinks } => {
            let t = must(sys.resolve(root, target, Kind::Dir, true, *no_symlinks)?, target)?;
            let source = Path::new(source.as_deref().unwrap_or(fstype));
            sys.mount(Some(source), &t.path, Some(fstype), *flags, data.as_deref())
        }
        Op::Bind { source, target, kind, ro_flags } => {
            let kind = if *kind == Kind::Dir && !source.is_dir() { Kind::File } else { *kind };
            let t = must(sys.resolve(root, target, kind, true, false)?, target)?;
            sys.mount(Some(source), &t.path, None, BIND | REC, None)?;
            if let Some(f) = ro_flags {
                let t = must(sys.resolve(root, target, kind, false, false)?, target)?;
                sys.mount(None, &t.path, None, REMOUNT | BIND | f, None)?;
            }
            Ok(())
        }
        Op::Symlink { target, link } => {
            let rel: PathBuf = link.components().skip(1).collect();
            sys.symlink(target, &root.join(rel))
        }
        Op::Device { path, major, minor, block } => {
            // Inside the /dev tmpfs mini just mounted: no symlink to follow.
            let rel: PathBuf = path.components().skip(1).collect();
            // Nested ones (/dev/cpu/0/cpuid, /dev/net/tun) need their dirs,
            // made inside the root as any mount target's are.
            if let Some(dir) = path.parent().filter(|d| d.components().count() > 2) {
                sys.resolve(root, dir, Kind::Dir, true, true)?;
            }
            sys.mknod(&root.join(rel), *block, *major, *minor, 0o666)
        }
        Op::MaskFile(path) => match sys.resolve(root, path, Kind::File, false, false)? {
            Some(t) => sys.mount(Some(Path::new("/dev/null")), &t.path, None, BIND, None),
            None => Ok(()),
        },
        Op::Mask(path) => match sys.resolve(root, path, Kind::File, false, false)? {
            Some(t) if t.path.is_dir() => execute_one(root, &Op::MaskDir(path.clone()), sys, detached),
            Some(_) => execute_one(root, &Op::MaskFile(path.clone()), sys, detached),
            None => Ok(()),
        },
        Op::MaskDir(path) => match sys.resolve(root, path, Kind::Dir, false, false)? {
            Some(t) => sys.mount(
                Some(Path::new("tmpfs")),
                &t.path,
                Some("tmpfs"),
                RDONLY | NOSUID | NODEV | NOEXEC,
                Some("size=0"),
            ),
            None => Ok(()),
        },
        Op::ReadOnly(path) => {
            let Some(t) = sys.resolve(root, path, Kind::File, false, false)? else { return Ok(()) };
            sys.mount(Some(&t.path), &t.path, None, BIND | REC, None)?;
            let t = must(sys.resolve(root, path, Kind::File, false, false)?, path)?;
            sys.mount(None, &t.path, None, REMOUNT | BIND | RDONLY | NOSUID | NODEV | NOEXEC, None)
        }
        Op::Fill { source, target } => {
            let empty = std::fs::read_dir(source).map(|mut d| d.next().is_none()).unwrap_or(false);
            match sys.resolve(root, target, Kind::Dir, false, false)? {
                Some(t) if empty && t.path.is_dir() => sys.copy_tree(&t.path, source),
                _ => Ok(()),
            }
        }
        Op::Sysctl { key, value } => {
            let path = Path::new("/proc/sys").join(key.replace('.', "/"));
            let t = sys.resolve(root, &path, Kind::File, false, true)?.ok_or_else(|| {
                crate::error::Error::new(format!("set sysctl {key}")).because("the kernel has no such setting")
            })?;
            sys.write_file(&t.path, value).map_err(|e| e.within(format!("set sysctl {key}")))
        }
        Op::WriteFile { path, content } => {
            let rel: PathBuf = path.components().skip(1).collect();
            sys.create_file(&root.join(rel), content)
        }
        Op::RemoveFile(path) => {
            let rel: PathBuf = path.components().skip(1).collect();
            sys.remove_file(&root.join(rel))
        }
        Op::PivotRoot => sys.pivot_root(root),
        Op::RootReadOnly => sys.mount(None, Path::new("/"), None, REMOUNT | BIND | RDONLY, None),
    }
}

/// `resolve` with `create` never answers None; a path that vanished
/// between two resolutions is an error.
fn must(r: Option<crate::sys::Resolved>, path: &Path) -> Result<crate::sys::Resolved> {
    r.ok_or_else(|| crate::error::Error::new(format!("resolve {}", path.display())).because("it vanished"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::overlay::{self, ContainerDirs};
    use crate::sys::FakeSys;

    fn overlay() -> MountPlan {
        overlay::plan(&[p("/s/l/a"), p("/s/l/b")], &ContainerDirs::under(Path::new("/c")), false)
    }

    #[test]
    fn executor_resolves_inside_the_root_and_skips_absent_masks() {
        let ov = overlay();
        let plan = Plan {
            root: p("/c/rootfs"),
            ops: vec![
                Op::MakePrivate,
                Op::Overlay(ov),
                Op::Mount {
                    fstype: "proc",
                    source: None,
                    target: p("/proc"),
                    flags: NOSUID,
                    data: None,
                    no_symlinks: true,
                },
                Op::MaskFile(p("/proc/kcore")),
                Op::MaskFile(p("/proc/timer_stats")),
                Op::ReadOnly(p("/proc/sys")),
                Op::Bind { source: p("/etc"), target: p("/mnt"), kind: Kind::Dir, ro_flags: Some(RDONLY) },
                Op::Symlink { target: p("pts/ptmx"), link: p("/dev/ptmx") },
                Op::PivotRoot,
                Op::RootReadOnly,
            ],
        };
        let sys = FakeSys::new().with_absent(&["/proc/timer_stats"]);
        execute(&plan, &sys, &[]).unwrap();
        assert_eq!(
            sys.calls(),
            [
                "mount - / - rec,private",
                "overlay /c/rootfs lowerdir=/s/l/b:/s/l/a,upperdir=/c/upper,workdir=/c/work",
                "resolve /c/rootfs /proc dir create nosymlinks",
                "mount proc /c/rootfs/proc proc nosuid",
                "resolve /c/rootfs /proc/kcore file",
                "mount /dev/null /c/rootfs/proc/kcore - bind",
                "resolve /c/rootfs /proc/timer_stats file",
                "resolve /c/rootfs /proc/sys file",
                "mount /c/rootfs/proc/sys /c/rootfs/proc/sys - bind,rec",
                "resolve /c/rootfs /proc/sys file",
                "mount - /c/rootfs/proc/sys - remount,bind,ro,nosuid,nodev,noexec",
                "resolve /c/rootfs /mnt dir create",
                "mount /etc /c/rootfs/mnt - bind,rec",
                "resolve /c/rootfs /mnt dir",
                "mount - /c/rootfs/mnt - remount,bind,ro",
                "symlink /c/rootfs/dev/ptmx -> pts/ptmx",
                "pivot_root /c/rootfs",
                "mount - / - remount,bind,ro",
            ]
        );
    }

    #[test]
    fn the_executor_writes_sysctls_inside_the_root() {
        let fake = FakeSys::new();
        let one = Plan { root: p("/r"), ops: vec![Op::Sysctl { key: "kernel.shmmax".into(), value: "42".into() }] };
        execute(&one, &fake, &[]).unwrap();
        assert!(fake.calls().iter().any(|c| c == "write /r/proc/sys/kernel/shmmax 42"), "{:?}", fake.calls());
    }
}
