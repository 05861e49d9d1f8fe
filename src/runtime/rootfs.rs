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

use super::spec::{Tmpfs, Volume};
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
    /// A character device node (in the container's /dev tmpfs).
    Device {
        path: PathBuf,
        major: u32,
        minor: u32,
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

/// What the root plan needs to know.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    pub overlay: &'a MountPlan,
    /// The container's own `hostname`, `hosts`, `resolv.conf` on the
    /// host, each bound over /etc/<its name>.
    pub etc_files: &'a [PathBuf],
    pub volumes: &'a [Volume],
    pub tmpfs: &'a [Tmpfs],
    pub read_only: bool,
    /// `--userns=auto`: the root and volumes come as mounts mini's parent
    /// side made (see [`for_user_namespace`]).
    pub userns: bool,
    /// In any user namespace (`--userns=auto`, rootless): mknod is refused,
    /// the host's device nodes are bound instead.
    pub bind_devices: bool,
    /// devpts may name gid 5 (tty) only where that gid is mapped.
    pub devpts_gid5: bool,
    /// Rootless in the host's network namespace: sysfs cannot be mounted
    /// (it belongs to the host's namespaces), the host's is bound read-only.
    pub bind_sysfs: bool,
    /// `--shm-size` in bytes; Docker's 64 MiB when None.
    pub shm_size: Option<u64>,
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

pub fn plan(input: &Input) -> Plan {
    let root_op = if input.userns {
        Op::AttachRoot { target: input.overlay.target.clone() }
    } else {
        Op::Overlay(input.overlay.clone())
    };
    let mut ops = vec![Op::MakePrivate, root_op];
    let m = |fstype, target: &str, flags, data: Option<&str>, no_symlinks| Op::Mount {
        fstype,
        source: None,
        target: p(target),
        flags,
        data: data.map(str::to_string),
        no_symlinks,
    };
    ops.push(m("proc", "/proc", NOSUID | NODEV | NOEXEC, None, true));
    if input.bind_sysfs {
        let (source, target) = (p("/sys"), p("/sys"));
        ops.push(Op::Bind { source, target, kind: Kind::Dir, ro_flags: Some(RDONLY | NOSUID | NODEV | NOEXEC) });
    } else {
        ops.push(m("sysfs", "/sys", NOSUID | NODEV | NOEXEC | RDONLY, None, true));
    }
    ops.push(m("tmpfs", "/dev", NOSUID | STRICTATIME, Some("mode=755,size=65536k"), true));
    for (dev, major, minor) in DEVICES {
        let path = p(&format!("/dev/{dev}"));
        // In a user namespace mknod is not allowed: bind the host's node.
        ops.push(if input.bind_devices {
            Op::Bind { source: path.clone(), target: path, kind: Kind::File, ro_flags: None }
        } else {
            Op::Device { path, major, minor }
        });
    }
    let pts = if input.devpts_gid5 {
        "newinstance,ptmxmode=0666,mode=0620,gid=5"
    } else {
        "newinstance,ptmxmode=0666,mode=0620"
    };
    ops.push(m("devpts", "/dev/pts", NOSUID | NOEXEC, Some(pts), false));
    for (target, link) in DEV_LINKS {
        ops.push(Op::Symlink { target: p(target), link: p(link) });
    }
    let shm = format!("mode=1777,size={}k", input.shm_size.map_or(65536, |b| b.div_ceil(1024)));
    // Docker's /dev/shm shows "shm" as its source.
    let mut dev_shm = m("tmpfs", "/dev/shm", NOSUID | NODEV | NOEXEC, Some(&shm), false);
    if let Op::Mount { source, .. } = &mut dev_shm {
        *source = Some("shm".into());
    }
    ops.push(dev_shm);
    ops.push(m("mqueue", "/dev/mqueue", NOSUID | NODEV | NOEXEC, None, false));
    for source in input.etc_files {
        let target = p("/etc").join(source.file_name().unwrap_or_default());
        // --read-only covers them too, as Docker's.
        ops.push(Op::Bind {
            source: source.clone(),
            target,
            kind: Kind::File,
            ro_flags: input.read_only.then_some(RDONLY),
        });
    }
    for v in input.volumes {
        // The kind (file or dir) is the source's; the executor checks it.
        ops.push(Op::Bind {
            source: v.source.clone(),
            target: v.target.clone(),
            kind: Kind::Dir,
            ro_flags: v.read_only.then_some(RDONLY),
        });
    }
    for t in input.tmpfs {
        let target = t.target.display().to_string();
        ops.push(m("tmpfs", &target, NOSUID | NODEV | NOEXEC, t.options.as_deref(), false));
    }
    ops.extend(MASKED_FILES.iter().map(|f| Op::MaskFile(p(f))));
    ops.extend(MASKED_DIRS.iter().map(|d| Op::MaskDir(p(d))));
    ops.extend(READONLY_PATHS.iter().map(|d| Op::ReadOnly(p(d))));
    ops.push(Op::PivotRoot);
    if input.read_only {
        ops.push(Op::RootReadOnly);
    }
    Plan { root: input.overlay.target.clone(), ops }
}

/// What `--sysctl`, `--device` and `--privileged` change in a root plan.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extras<'a> {
    pub sysctls: &'a [(String, String)],
    pub devices: &'a [super::spec::Device],
    pub privileged: bool,
    /// Volume targets to fill from the image when their volume is empty.
    pub fill: &'a [PathBuf],
}

/// `plan` with the extras: device nodes bound after mini's own, sysctls
/// written once /proc is there and before /proc/sys becomes read-only;
/// privileged, no masked or read-only paths and a writable /sys (as
/// Docker's `--privileged`).
pub fn with_extras(mut plan: Plan, x: &Extras) -> Plan {
    if x.privileged {
        plan.ops.retain(|op| !matches!(op, Op::MaskFile(_) | Op::MaskDir(_) | Op::ReadOnly(_)));
        for op in plan.ops.iter_mut() {
            if let Op::Mount { fstype: "sysfs", flags, .. } = op {
                *flags &= !RDONLY;
            }
        }
    }
    let after_devpts = plan.ops.iter().position(|op| matches!(op, Op::Mount { fstype: "devpts", .. }));
    let devices = x.devices.iter().map(|d| Op::Bind {
        source: d.source.clone(),
        target: d.target.clone(),
        kind: Kind::File,
        ro_flags: None,
    });
    let at = after_devpts.map_or(plan.ops.len(), |i| i + 1);
    plan.ops.splice(at..at, devices);
    let before = plan
        .ops
        .iter()
        .position(|op| matches!(op, Op::MaskFile(_) | Op::MaskDir(_) | Op::ReadOnly(_) | Op::PivotRoot))
        .unwrap_or(plan.ops.len());
    let sysctls = x.sysctls.iter().map(|(key, value)| Op::Sysctl { key: key.clone(), value: value.clone() });
    plan.ops.splice(before..before, sysctls);
    for target in x.fill {
        let bind = plan.ops.iter().position(|op| matches!(op, Op::Bind { target: t, .. } if t == target));
        if let Some(i) = bind {
            let Op::Bind { source, .. } = &plan.ops[i] else { continue };
            let fill = Op::Fill { source: source.clone(), target: target.clone() };
            plan.ops.insert(i, fill);
        }
    }
    plan
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
        Op::Device { path, major, minor } => {
            // Inside the /dev tmpfs mini just mounted: no symlink to follow.
            let rel: PathBuf = path.components().skip(1).collect();
            sys.mknod_char(&root.join(rel), *major, *minor, 0o666)
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

    fn at2(ops: &[Op], f: &dyn Fn(&Op) -> bool) -> usize {
        ops.iter().position(f).unwrap()
    }

    #[test]
    fn extras_bind_devices_write_sysctls_before_proc_sys_is_read_only_and_privileged_unmasks() {
        let ov = overlay();
        let etc_files = etc();
        let input = Input { ..root_input(&ov, &etc_files) };
        let dev = super::super::spec::Device {
            source: p("/dev/fuse"),
            target: p("/dev/fuse"),
            kind: 'c',
            major: 10,
            minor: 229,
            perms: "rwm".into(),
        };
        let sysctls = [("net.ipv4.ip_forward".to_string(), "1".to_string())];
        let extras = Extras { sysctls: &sysctls, devices: std::slice::from_ref(&dev), privileged: false, fill: &[] };
        let plain = plan(&input);
        let ops = with_extras(plain.clone(), &extras).ops;
        let at = |f: &dyn Fn(&Op) -> bool| at2(&ops, f);
        let bind = at(&|o| matches!(o, Op::Bind { source, .. } if source == Path::new("/dev/fuse")));
        let devpts = at(&|o| matches!(o, Op::Mount { fstype: "devpts", .. }));
        let sysctl = at(&|o| matches!(o, Op::Sysctl { key, value } if key == "net.ipv4.ip_forward" && value == "1"));
        let proc_sys = at(&|o| *o == Op::ReadOnly(p("/proc/sys")));
        assert_eq!(bind, devpts + 1);
        assert!(sysctl < proc_sys && sysctl > at(&|o| matches!(o, Op::Mount { fstype: "proc", .. })));
        assert_eq!(ops.len(), plain.ops.len() + 2);
        // Privileged: nothing masked or read-only, /sys writable.
        let ops = with_extras(plain.clone(), &Extras { privileged: true, ..Extras::default() }).ops;
        assert!(!ops.iter().any(|o| matches!(o, Op::MaskFile(_) | Op::MaskDir(_) | Op::ReadOnly(_))));
        assert!(ops.iter().any(|o| matches!(o, Op::Mount { fstype: "sysfs", flags, .. } if flags & RDONLY == 0)));
        // A volume to fill from the image goes right before its bind.
        let vols = [Volume { source: p("/s/volumes/db/_data"), target: p("/var/db"), read_only: false }];
        let with_vol = plan(&Input { volumes: &vols, ..input.clone() });
        let ops = with_extras(with_vol, &Extras { fill: &[p("/var/db")], ..Extras::default() }).ops;
        let fill = at2(&ops, &|o| *o == Op::Fill { source: p("/s/volumes/db/_data"), target: p("/var/db") });
        assert!(matches!(&ops[fill + 1], Op::Bind { target, .. } if target == Path::new("/var/db")));
        // The executor writes the sysctl inside the root, as a path.
        let fake = FakeSys::new();
        let one = Plan { root: p("/r"), ops: vec![Op::Sysctl { key: "kernel.shmmax".into(), value: "42".into() }] };
        execute(&one, &fake, &[]).unwrap();
        assert!(fake.calls().iter().any(|c| c == "write /r/proc/sys/kernel/shmmax 42"), "{:?}", fake.calls());
    }

    fn etc() -> Vec<PathBuf> {
        ["hostname", "hosts", "resolv.conf"].iter().map(|f| Path::new("/c").join(f)).collect()
    }

    /// Root's plan input: no user namespace, no volumes, nothing extra.
    fn root_input<'a>(ov: &'a MountPlan, etc: &'a [PathBuf]) -> Input<'a> {
        Input {
            overlay: ov,
            etc_files: etc,
            volumes: &[],
            tmpfs: &[],
            read_only: false,
            userns: false,
            bind_devices: false,
            devpts_gid5: true,
            bind_sysfs: false,
            shm_size: None,
        }
    }
    use crate::runtime::overlay::{self, ContainerDirs};
    use crate::sys::FakeSys;

    fn overlay() -> MountPlan {
        overlay::plan(&[p("/s/l/a"), p("/s/l/b")], &ContainerDirs::under(Path::new("/c")), false)
    }

    /// The /etc files of a --rm container: written into /dev (the tmpfs
    /// mounted before), bound where the host files were, unlinked at once,
    /// all before the volumes; everything else as it was.
    #[test]
    fn etc_in_memory_writes_binds_and_unlinks_in_place_of_host_files() {
        let vols = [Volume { source: p("/data"), target: p("/dev"), read_only: false }];
        let ov = overlay();
        let etc_files = etc();
        let input = Input { volumes: &vols, read_only: true, ..root_input(&ov, &etc_files) };
        let before = plan(&input);
        let contents: Vec<(String, Vec<u8>)> =
            [("hostname", "h\n"), ("hosts", "127.0.0.1\tlocalhost\n"), ("resolv.conf", "")]
                .iter()
                .map(|(n, c)| (n.to_string(), c.as_bytes().to_vec()))
                .collect();
        let after = etc_in_memory(&before, &etc(), &contents);
        assert_eq!(after.root, before.root);
        assert_eq!(after.ops.len(), before.ops.len() + 6);
        let at = |op: &Op| after.ops.iter().position(|o| o == op).unwrap_or_else(|| panic!("{op:?} missing"));
        let dev = at(&Op::Mount {
            fstype: "tmpfs",
            source: None,
            target: p("/dev"),
            flags: NOSUID | STRICTATIME,
            data: Some("mode=755,size=65536k".into()),
            no_symlinks: true,
        });
        let vol = at(&Op::Bind { source: p("/data"), target: p("/dev"), kind: Kind::Dir, ro_flags: None });
        for (name, content) in &contents {
            let staged = p(&format!("/dev/.mini-etc-{name}"));
            let w = at(&Op::WriteFile { path: staged.clone(), content: content.clone() });
            let source = before.root.join(staged.strip_prefix("/").unwrap());
            let target = p("/etc").join(name);
            let b = at(&Op::Bind { source, target, kind: Kind::File, ro_flags: Some(RDONLY) });
            let r = at(&Op::RemoveFile(staged));
            assert!(dev < w && w + 1 == b && b + 1 == r && r < vol, "{name}: {:?}", &after.ops[w..=r]);
        }
        assert!(!after.ops.iter().any(|o| matches!(o, Op::Bind { source, .. } if etc().contains(source))));
        // Executed: the calls in that order, nothing on the host's disk.
        let sys = FakeSys::default();
        execute(&after, &sys, &[]).unwrap();
        let log = sys.calls().join("\n");
        assert!(log.contains("write /c/rootfs/dev/.mini-etc-hosts (20 bytes)"), "{log}");
        assert!(log.contains("remove /c/rootfs/dev/.mini-etc-hosts"), "{log}");
    }

    #[test]
    fn plan_orders_root_first_pivot_last() {
        let vols = [Volume { source: p("/data"), target: p("/mnt"), read_only: true }];
        let tmpfs = [Tmpfs { target: p("/run"), options: None }];
        let ov = overlay();
        let etc_files = etc();
        let input = Input { volumes: &vols, tmpfs: &tmpfs, read_only: true, ..root_input(&ov, &etc_files) };
        let plan = plan(&input);
        assert_eq!(plan.root, p("/c/rootfs"));
        assert_eq!(plan.ops[0], Op::MakePrivate);
        assert_eq!(plan.ops[1], Op::Overlay(ov.clone()));
        assert!(matches!(&plan.ops[2], Op::Mount { fstype: "proc", no_symlinks: true, .. }));
        let pos = |want: &Op| plan.ops.iter().position(|o| o == want).unwrap();
        let vol = pos(&Op::Bind { source: p("/data"), target: p("/mnt"), kind: Kind::Dir, ro_flags: Some(RDONLY) });
        let pivot = pos(&Op::PivotRoot);
        assert!(vol < pos(&Op::MaskFile(p("/proc/kcore"))));
        assert!(pos(&Op::ReadOnly(p("/proc/sys"))) < pivot);
        assert_eq!(plan.ops.last(), Some(&Op::RootReadOnly));
        assert_eq!(pivot, plan.ops.len() - 2);
        // --read-only: the /etc files are read-only too.
        let hosts =
            Op::Bind { source: p("/c/hosts"), target: p("/etc/hosts"), kind: Kind::File, ro_flags: Some(RDONLY) };
        assert!(pos(&hosts) < vol);
        assert!(pos(&Op::Device { path: p("/dev/null"), major: 1, minor: 3 }) > 2);
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
    fn in_a_user_namespace_the_root_is_attached_and_devpts_has_no_gid() {
        let ov = overlay();
        let etc_files = etc();
        let input = Input { userns: true, bind_devices: true, devpts_gid5: false, ..root_input(&ov, &etc_files) };
        let plan = plan(&input);
        assert_eq!(plan.ops[1], Op::AttachRoot { target: p("/c/rootfs") });
        let pts = plan.ops.iter().find_map(|o| match o {
            Op::Mount { fstype: "devpts", data, .. } => data.clone(),
            _ => None,
        });
        assert_eq!(pts.as_deref(), Some("newinstance,ptmxmode=0666,mode=0620"));
        let err = execute(&plan, &FakeSys::new(), &[]).unwrap_err().to_string();
        assert!(err.contains("attach the container's root: mini did not prepare it"), "{err}");
    }

    #[test]
    fn user_namespace_plans_reach_the_container_dir_relatively() {
        let ov = overlay();
        let vols = [Volume { source: p("/data"), target: p("/mnt"), read_only: false }];
        let etc_files = etc();
        let input = Input {
            volumes: &vols,
            userns: true,
            bind_devices: true,
            devpts_gid5: false,
            ..root_input(&ov, &etc_files)
        };
        let (plan, detach) = for_user_namespace(&plan(&input), Path::new("/c"), &|p| p == Path::new("/data"));
        assert_eq!(plan.ops[1], Op::AttachRoot { target: p("rootfs") });
        let hosts = Op::Bind { source: p("hosts"), target: p("/etc/hosts"), kind: Kind::File, ro_flags: None };
        assert!(plan.ops.contains(&hosts));
        let null = Op::Bind { source: p("/dev/null"), target: p("/dev/null"), kind: Kind::File, ro_flags: None };
        assert!(plan.ops.contains(&null));
        let vol = Op::AttachVolume { index: 1, target: p("/mnt"), kind: Kind::Dir };
        assert!(plan.ops.contains(&vol));
        assert_eq!(detach, [Detach { source: p("/data"), read_only: false }]);
    }

    #[test]
    fn executor_stops_at_the_first_failure() {
        let ov = overlay();
        let etc_files = etc();
        let input = Input { ..root_input(&ov, &etc_files) };
        let sys = FakeSys::failing_on("mount sysfs");
        let err = execute(&plan(&input), &sys, &[]).unwrap_err().to_string();
        assert!(err.contains("mount sysfs /c/rootfs/sys"), "{err}");
        assert_eq!(sys.calls().last().map(|s| s.starts_with("mount sysfs")), Some(true));
        assert!(!sys.calls().iter().any(|c| c.starts_with("pivot_root")));
        let sys = FakeSys::failing_on("resolve /c/rootfs /dev dir");
        assert!(execute(&plan(&input), &sys, &[]).is_err());
    }
}
