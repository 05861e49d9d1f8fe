//! An OCI runtime `Spec` → what the runtime carries out: the root's mount
//! plan (as [`rootfs::Op`]s, run by the one executor), the namespaces to
//! make or join, the process, its seccomp program. Both callers hand it a
//! `Spec`: mini-runc the bundle's config.json, `mini run` the one the
//! engine generates for its container (`container::generate`); the root is
//! a directory (a bundle's rootfs) or an overlay mini mounts. Pure apart
//! from reading the host's cgroup layout: every field that cannot be
//! honoured is refused here, in one line naming it, before anything
//! exists. Unknown fields are ignored, as runc does.
//!
//! mini's own extensions are annotations (as crun's `run.oci.*`): see
//! [`INIT`], [`USER`] and [`FILL`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, LinuxResources, Mount, Spec};

use super::cgroups::{self, Cgroups, Limits};
use super::overlay::MountPlan;
use super::rootfs::{self, Op};
use super::seccomp::{compile, Compiled};
use super::security::CapSets;
use super::user::UserSpec;
use crate::error::{Error, Result};
use crate::sys::flags::*;
use crate::sys::process::ns;
use crate::sys::Kind;

/// Annotation: `"true"` runs mini's reaper as pid 1, which forks the
/// command (`mini run --init`).
pub const INIT: &str = "io.github.mini.init";
/// Annotation: a user as `mini run -u` takes it (`name|uid[:group|gid]`),
/// resolved in the container's own /etc/passwd and /etc/group just before
/// exec, with its supplementary groups and HOME, as Docker resolves it;
/// it replaces `process.user`'s ids, and capabilities stay root's only.
pub const USER: &str = "io.github.mini.user";
/// Annotation: a JSON list of bind-mount destinations whose (empty) host
/// directory gets what the root has there before the bind (a new named
/// volume filled from the image, as Docker does).
pub const FILL: &str = "io.github.mini.fill";

/// A namespace of the container: made new, or joined at `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub flag: i32,
    /// The name under /proc/<pid>/ns/.
    pub name: &'static str,
    pub path: Option<PathBuf>,
}

/// A resource limit: its name as `sys::process::setrlimit` takes it
/// (`nofile`, …) and its soft and hard limits (`u64::MAX` is unlimited).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rlimit {
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

/// The process to run, as the spec gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub args: Vec<std::ffi::OsString>,
    pub env: Vec<String>,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub umask: Option<u32>,
    pub terminal: bool,
    /// Every capability set as the spec gives it (all empty without
    /// `capabilities`).
    pub caps: CapSets,
    pub rlimits: Vec<Rlimit>,
    pub no_new_privs: bool,
    pub oom_score_adj: Option<i32>,
    /// The [`USER`] annotation: resolved inside the container instead.
    pub user_by_name: Option<UserSpec>,
    /// The [`INIT`] annotation.
    pub init: bool,
}

impl Process {
    /// Who runs it: the USER annotation's user, else the spec's ids.
    pub fn user_spec(&self) -> UserSpec {
        self.user_by_name
            .clone()
            .unwrap_or(UserSpec { user: super::user::Id::Num(self.uid), group: Some(super::user::Id::Num(self.gid)) })
    }
}

/// Everything the runtime needs, decided before anything exists.
#[derive(Debug)]
pub struct Plan {
    pub root: rootfs::Plan,
    pub namespaces: Vec<Namespace>,
    pub process: Process,
    /// `linux.seccomp`, compiled; also loaded into every `exec`'d process.
    pub seccomp: Option<Compiled>,
    pub hostname: Option<String>,
    pub uid_map: Option<String>,
    pub gid_map: Option<String>,
}

impl Plan {
    pub fn has_new(&self, flag: i32) -> bool {
        self.namespaces.iter().any(|n| n.flag == flag && n.path.is_none())
    }

    /// The namespaces to join, in the spec's order.
    pub fn joins(&self) -> impl Iterator<Item = &Namespace> {
        self.namespaces.iter().filter(|n| n.path.is_some())
    }
}

/// The container's root: a directory as it is (a bundle's `root.path`,
/// relative to the bundle) or the overlay mini mounts for its container
/// (attached from mini's parent side in a new user namespace).
pub enum RootFs<'a> {
    Bundle(&'a Path),
    Overlay(&'a MountPlan),
}

/// What the plan depends on outside the spec.
pub struct Host<'a> {
    /// The container's cgroups (their cgroupfs view replaces a `cgroup`
    /// mount).
    pub cgroups: &'a [cgroups::place::Dir],
    /// The runtime itself runs in a user namespace (rootless mini).
    pub in_user_namespace: bool,
    /// Whether a group id is mapped in that user namespace.
    pub gid_mapped: &'a dyn Fn(u32) -> bool,
}

/// The one-line error for a spec field that cannot be honoured.
pub fn invalid(field: &str, why: impl std::fmt::Display) -> Error {
    Error::new(format!("invalid OCI config: {field}")).because(why)
}

pub fn plan(spec: &Spec, root_fs: RootFs, host: &Host) -> Result<Plan> {
    let root = spec.root().as_ref().ok_or_else(|| invalid("root", "missing"))?;
    let linux = spec.linux().clone().unwrap_or_default();
    let namespaces = namespaces(linux.namespaces().as_deref().unwrap_or_default())?;
    let process = process(spec)?;
    let new_userns = namespaces.iter().any(|n| n.flag == ns::USER && n.path.is_none());
    let (uid_map, gid_map) = if new_userns {
        let map = |m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>, field| -> Result<String> {
            let m = m
                .as_deref()
                .filter(|m| !m.is_empty())
                .ok_or_else(|| invalid(field, "a new user namespace needs mappings"))?;
            Ok(m.iter().map(|e| format!("{} {} {}\n", e.container_id(), e.host_id(), e.size())).collect())
        };
        (Some(map(linux.uid_mappings(), "linux.uidMappings")?), Some(map(linux.gid_mappings(), "linux.gidMappings")?))
    } else {
        (None, None)
    };
    // A bundle's bind sources are checked now, as runc refuses them; the
    // engine checked its own (and keeps some /etc files in memory).
    let check_sources = matches!(root_fs, RootFs::Bundle(_));
    let (rootfs, bundle, root_op) = match root_fs {
        RootFs::Bundle(bundle) => {
            let path = if root.path().is_absolute() { root.path().clone() } else { bundle.join(root.path()) };
            if !path.is_dir() {
                return Err(invalid("root.path", format!("{} is not a directory", path.display())));
            }
            (path, bundle, Op::BindRoot)
        }
        RootFs::Overlay(ov) if new_userns => {
            (ov.target.clone(), Path::new("/"), Op::AttachRoot { target: ov.target.clone() })
        }
        RootFs::Overlay(ov) => (ov.target.clone(), Path::new("/"), Op::Overlay(ov.clone())),
    };
    // In any user namespace mknod is refused (device nodes are bound from
    // the host), and sysfs can only be mounted by the owner of the network
    // namespace (without one of its own, the host's /sys is bound).
    let in_userns = new_userns || host.in_user_namespace;
    let own_net = namespaces.iter().any(|n| n.flag == ns::NET);
    // devpts's gid= is kept only where the runtime's own namespace maps
    // it; a new user namespace's mounts drop it (as before for both).
    let gid_mapped = |gid: u32| !new_userns && (!host.in_user_namespace || (host.gid_mapped)(gid));
    let fill: Vec<PathBuf> = annotation(spec, FILL)
        .map(|text| serde_json::from_str(text).map_err(|e| invalid(&format!("annotations.{FILL}"), e)))
        .transpose()?
        .unwrap_or_default();
    let mut ops = vec![Op::MakePrivate, root_op];
    let mut dev_tmpfs = false;
    for (i, m) in spec.mounts().as_deref().unwrap_or_default().iter().enumerate() {
        let field = format!("mounts[{i}]");
        if m.typ().as_deref() == Some("cgroup") || m.typ().as_deref() == Some("cgroup2") {
            // The container's own cgroups, as `mini run` shows them
            // (none in a user namespace, where v1 cannot be mounted).
            if !in_userns {
                ops.extend(cgroups::fs::ops(host.cgroups));
            }
            continue;
        }
        if m.typ().as_deref() == Some("sysfs") && in_userns && !own_net {
            let ro = Some(RDONLY | NOSUID | NODEV | NOEXEC);
            ops.push(Op::Bind {
                source: "/sys".into(),
                target: m.destination().clone(),
                kind: Kind::Dir,
                ro_flags: ro,
            });
            continue;
        }
        let op = mount_op(m, &field, bundle, check_sources, &gid_mapped)?;
        dev_tmpfs |= matches!(&op, Op::Mount { fstype: "tmpfs", target, .. } if target == Path::new("/dev"));
        if let Op::Bind { source, target, .. } = &op {
            if fill.contains(target) {
                ops.push(Op::Fill { source: source.clone(), target: target.clone() });
            }
        }
        ops.push(op);
    }
    if dev_tmpfs {
        ops.extend(dev_nodes(&linux, in_userns)?);
    }
    let mut sysctls: Vec<(&String, &String)> = linux.sysctl().iter().flatten().collect();
    sysctls.sort();
    ops.extend(sysctls.into_iter().map(|(k, v)| Op::Sysctl { key: k.clone(), value: v.clone() }));
    ops.extend(linux.masked_paths().iter().flatten().map(|p| Op::Mask(PathBuf::from(p))));
    ops.extend(linux.readonly_paths().iter().flatten().map(|p| Op::ReadOnly(PathBuf::from(p))));
    ops.push(Op::PivotRoot);
    if root.readonly().unwrap_or(false) {
        ops.push(Op::RootReadOnly);
    }
    let seccomp = seccomp_of(&linux)?;
    let hostname = spec.hostname().clone().filter(|h| !h.is_empty());
    if hostname.is_some() && !namespaces.iter().any(|n| n.flag == ns::UTS) {
        return Err(invalid("hostname", "setting it needs a uts namespace (linux.namespaces)"));
    }
    Ok(Plan { root: rootfs::Plan { root: rootfs, ops }, namespaces, process, seccomp, hostname, uid_map, gid_map })
}

fn annotation<'a>(spec: &'a Spec, key: &str) -> Option<&'a str> {
    spec.annotations().as_ref()?.get(key).map(String::as_str)
}

fn namespaces(list: &[oci_spec::runtime::LinuxNamespace]) -> Result<Vec<Namespace>> {
    let mut out: Vec<Namespace> = Vec::new();
    for (i, n) in list.iter().enumerate() {
        let (flag, name) = match n.typ() {
            LinuxNamespaceType::Pid => (ns::PID, "pid"),
            LinuxNamespaceType::Network => (ns::NET, "net"),
            LinuxNamespaceType::Mount => (ns::MOUNT, "mnt"),
            LinuxNamespaceType::Ipc => (ns::IPC, "ipc"),
            LinuxNamespaceType::Uts => (ns::UTS, "uts"),
            LinuxNamespaceType::User => (ns::USER, "user"),
            LinuxNamespaceType::Cgroup => (ns::CGROUP, "cgroup"),
            other => {
                return Err(invalid(&format!("linux.namespaces[{i}].type"), format!("{other:?} is not supported")))
            }
        };
        if out.iter().any(|o| o.flag == flag) {
            return Err(invalid(&format!("linux.namespaces[{i}]"), format!("{name} is listed twice")));
        }
        out.push(Namespace { flag, name, path: n.path().clone() });
    }
    if !out.iter().any(|n| n.flag == ns::MOUNT) {
        // The root is built with mounts: without its own mount namespace
        // they would land in the host's.
        return Err(invalid("linux.namespaces", "mini-runc needs a mount namespace"));
    }
    Ok(out)
}

/// The spec's process, validated, with mini's annotations.
pub fn process(spec: &Spec) -> Result<Process> {
    let p = spec.process().as_ref().ok_or_else(|| invalid("process", "missing"))?;
    let mut process = process_of(p, "process")?;
    process.init = annotation(spec, INIT) == Some("true");
    process.user_by_name = annotation(spec, USER)
        .map(|u| UserSpec::parse(u).map_err(|e| e.within(format!("invalid OCI config: annotations.{USER}"))))
        .transpose()?;
    Ok(process)
}

/// `linux.seccomp` compiled for this machine; its errors name the field.
pub fn seccomp_of(linux: &oci_spec::runtime::Linux) -> Result<Option<Compiled>> {
    linux.seccomp().as_ref().map(|s| compile(s).map_err(|e| e.within("invalid OCI config"))).transpose()
}

/// A process (the config's, or `exec --process FILE`'s), validated.
pub fn process_of(p: &oci_spec::runtime::Process, field: &str) -> Result<Process> {
    let args: Vec<std::ffi::OsString> = p.args().iter().flatten().map(Into::into).collect();
    if args.is_empty() {
        return Err(invalid(&format!("{field}.args"), "no command given"));
    }
    if !p.cwd().is_absolute() {
        return Err(invalid(&format!("{field}.cwd"), format!("\"{}\" is not absolute", p.cwd().display())));
    }
    let caps = match p.capabilities() {
        None => CapSets::default(),
        Some(c) => {
            let set = |set: &Option<oci_spec::runtime::Capabilities>, name: &str| -> Result<Vec<caps::Capability>> {
                set.iter()
                    .flatten()
                    .map(|cap| {
                        let text = cap.to_string();
                        let text = if text.starts_with("CAP_") { text } else { format!("CAP_{text}") };
                        text.parse::<caps::Capability>().map_err(|_| {
                            invalid(&format!("{field}.capabilities.{name}"), format!("unknown capability {text}"))
                        })
                    })
                    .collect()
            };
            CapSets {
                bounding: set(c.bounding(), "bounding")?,
                effective: set(c.effective(), "effective")?,
                permitted: set(c.permitted(), "permitted")?,
                inheritable: set(c.inheritable(), "inheritable")?,
                ambient: set(c.ambient(), "ambient")?,
            }
        }
    };
    let mut rlimits = Vec::new();
    for (i, r) in p.rlimits().iter().flatten().enumerate() {
        let typ = serde_json::to_value(r.typ()).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        let name = typ.strip_prefix("RLIMIT_").unwrap_or(&typ).to_ascii_lowercase();
        if crate::sys::process::getrlimit(&name).is_none() {
            return Err(invalid(&format!("{field}.rlimits[{i}].type"), format!("unknown resource {typ}")));
        }
        rlimits.push(Rlimit { name, soft: r.soft(), hard: r.hard() });
    }
    let user = p.user();
    Ok(Process {
        args,
        env: p.env().clone().unwrap_or_default(),
        cwd: p.cwd().clone(),
        uid: user.uid(),
        gid: user.gid(),
        groups: user.additional_gids().clone().unwrap_or_default(),
        umask: user.umask(),
        terminal: p.terminal().unwrap_or(false),
        caps,
        rlimits,
        no_new_privs: p.no_new_privileges().unwrap_or(false),
        oom_score_adj: p.oom_score_adj(),
        user_by_name: None,
        init: false,
    })
}

/// The cgroups of container `id` from `linux.cgroupsPath` as runc reads
/// it: relative paths go beneath the cgroup mini-runc runs in, absolute
/// ones from each hierarchy's root; none is the id beneath the caller's
/// cgroup. Limits from `linux.resources`.
pub fn cgroups_of(spec: &Spec, id: &str) -> Result<Cgroups> {
    let linux = spec.linux().clone().unwrap_or_default();
    let (path, resources) = (linux.cgroups_path().as_deref(), linux.resources().as_ref());
    let text = path.map(|p| p.display().to_string()).filter(|p| !p.is_empty()).unwrap_or_else(|| id.to_string());
    if text.contains(':') {
        return Err(invalid("linux.cgroupsPath", format!("\"{text}\" is a systemd slice:scope path"))
            .hint("mini-runc drives cgroupfs directly; give a path such as \"mygroup/ID\""));
    }
    let trimmed = text.trim_end_matches('/');
    let (parent, leaf) = match trimmed.rsplit_once('/') {
        Some((parent, leaf)) => (if parent.is_empty() { "/" } else { parent }, leaf),
        None => ("", trimmed),
    };
    if leaf.is_empty() || leaf == ".." || parent.split('/').any(|c| c == "..") {
        return Err(invalid("linux.cgroupsPath", format!("\"{text}\" names no cgroup below its parent")));
    }
    let limits = resources.map(limits_of).transpose()?.unwrap_or_default();
    let host = cgroups::Host::current();
    let req = cgroups::Request { id: leaf, parent, limits: &limits };
    let plan = cgroups::place::plan(&host.layout, &req, &|p| std::fs::read_to_string(p).ok())
        .map_err(|e| e.within("place linux.cgroupsPath"))?;
    let mut cgroups = Cgroups { plan, required: true, parent_source: Some(format!("linux.cgroupsPath \"{text}\"")) };
    let rules: Vec<String> = resources
        .and_then(|r| r.devices().clone())
        .unwrap_or_default()
        .iter()
        .filter(|d| d.allow() && d.major().is_some())
        .map(|d| {
            let typ = d.typ().map(|t| t.as_str().to_string()).unwrap_or_else(|| "a".into());
            let minor = d.minor().map_or("*".to_string(), |m| m.to_string());
            format!(
                "{typ} {}:{minor} {}",
                d.major().unwrap_or_default(),
                d.access().clone().unwrap_or_else(|| "rwm".into())
            )
        })
        .collect();
    cgroups.allow_devices(&rules);
    Ok(cgroups)
}

/// `linux.resources` → mini's limits (the same writes `mini run -m …` makes).
pub fn limits_of(r: &LinuxResources) -> Result<Limits> {
    let mut l = Limits::default();
    if let Some(m) = r.memory() {
        l.memory = m.limit().filter(|v| *v > 0).map(|v| v as u64);
        l.memory_reservation = m.reservation().filter(|v| *v > 0).map(|v| v as u64);
        l.memory_swap = match m.swap() {
            Some(-1) => Some(cgroups::limits::Swap::Unlimited),
            Some(v) if v > 0 => Some(cgroups::limits::Swap::Total(v as u64)),
            _ => None,
        };
        if let (Some(mem), Some(cgroups::limits::Swap::Total(t))) = (l.memory, l.memory_swap) {
            if t < mem {
                return Err(invalid("linux.resources.memory.swap", "it must not be below memory.limit"));
            }
        }
    }
    if let Some(c) = r.cpu() {
        l.cpu_weight = c.shares().filter(|s| *s > 0).map(cgroups::limits::CpuWeight::Shares);
        if let Some(q) = c.quota().filter(|q| *q > 0) {
            let period = c.period().filter(|p| *p > 0).unwrap_or(cgroups::limits::CPU_PERIOD);
            l.cpu_quota = Some((q as u64).saturating_mul(cgroups::limits::CPU_PERIOD) / period);
        }
        l.cpuset_cpus = c.cpus().clone().filter(|s| !s.is_empty());
    }
    if let Some(p) = r.pids() {
        l.pids = (p.limit() > 0).then_some(p.limit() as u64);
    }
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(invalid("linux.resources.unified", "not supported by mini-runc"));
    }
    Ok(l)
}

/// The file systems mini-runc mounts, by their OCI `type`.
const FSTYPES: [&str; 11] =
    ["proc", "sysfs", "tmpfs", "devpts", "mqueue", "overlay", "ramfs", "devtmpfs", "securityfs", "fuse", "bpf"];

/// mount(2) flags by option word; the rest of the options are the data.
fn option_flag(word: &str) -> Option<(u64, bool)> {
    Some(match word {
        "ro" => (RDONLY, true),
        "rw" => (RDONLY, false),
        "nosuid" => (NOSUID, true),
        "suid" => (NOSUID, false),
        "nodev" => (NODEV, true),
        "dev" => (NODEV, false),
        "noexec" => (NOEXEC, true),
        "exec" => (NOEXEC, false),
        "strictatime" => (STRICTATIME, true),
        "relatime" | "norelatime" | "atime" | "noatime" | "nodiratime" | "diratime" | "sync" | "async" => (0, true),
        _ => return None,
    })
}

/// Propagation words, honoured for the root only (every mount is made
/// private to the container already).
const PROPAGATION: [&str; 8] =
    ["private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable"];

fn mount_op(m: &Mount, field: &str, bundle: &Path, check: bool, gid_mapped: &dyn Fn(u32) -> bool) -> Result<Op> {
    let target = m.destination().clone();
    if !target.is_absolute() {
        return Err(invalid(&format!("{field}.destination"), format!("\"{}\" is not absolute", target.display())));
    }
    let options = m.options().clone().unwrap_or_default();
    let bind = m.typ().as_deref() == Some("bind") || options.iter().any(|o| o == "bind" || o == "rbind");
    let mut flags = 0u64;
    let mut data = Vec::new();
    for o in &options {
        match option_flag(o) {
            Some((f, true)) => flags |= f,
            Some((f, false)) => flags &= !f,
            None if o == "bind" || o == "rbind" || PROPAGATION.contains(&o.as_str()) => {}
            None if o.starts_with("idmap") || o.starts_with("ridmap") => {
                return Err(invalid(&format!("{field}.options"), format!("\"{o}\": idmapped mounts are not supported")))
            }
            None => data.push(o.as_str()),
        }
    }
    if bind {
        let source = m.source().clone().ok_or_else(|| invalid(&format!("{field}.source"), "a bind mount needs one"))?;
        let source = if source.is_absolute() { source } else { bundle.join(source) };
        if check && !source.exists() {
            return Err(invalid(&format!("{field}.source"), format!("{} does not exist", source.display())));
        }
        let ro = flags & (RDONLY | NOSUID | NODEV | NOEXEC);
        return Ok(Op::Bind { source, target, kind: Kind::Dir, ro_flags: (ro != 0).then_some(ro) });
    }
    let typ = m.typ().clone().unwrap_or_default();
    let fstype = FSTYPES
        .iter()
        .find(|t| **t == typ)
        .ok_or_else(|| invalid(&format!("{field}.type"), format!("\"{typ}\" is not supported")))?;
    // devpts's gid=5 names a group a user namespace may not map.
    let unmapped = |d: &&str| d.strip_prefix("gid=").and_then(|g| g.parse().ok()).is_some_and(|g| !gid_mapped(g));
    let data: Vec<&str> = data.into_iter().filter(|d| !unmapped(d)).collect();
    let no_symlinks = ["/proc", "/sys", "/dev"].iter().any(|p| target == Path::new(p));
    let data = (!data.is_empty()).then(|| data.join(","));
    // runc passes the source as given ("shm", "mqueue", …): it is what
    // /proc/self/mountinfo shows and what tools inside compare against.
    let source = m.source().as_ref().map(|s| s.to_string_lossy().into_owned()).filter(|s| !s.is_empty());
    Ok(Op::Mount { fstype, source, target, flags, data, no_symlinks })
}

/// What runc makes in a /dev tmpfs: the default nodes (bound from the
/// host in a user namespace, where mknod is refused), the spec's devices,
/// and the standard symlinks.
fn dev_nodes(linux: &oci_spec::runtime::Linux, userns: bool) -> Result<Vec<Op>> {
    let mut ops = Vec::new();
    let mut seen: HashMap<PathBuf, ()> = HashMap::new();
    // In a user namespace the host's node at the same path is bound (as
    // rootless runc and Podman do).
    let mut node = |path: PathBuf, major: u32, minor: u32, block: bool, ops: &mut Vec<Op>| {
        if seen.insert(path.clone(), ()).is_some() {
            return;
        }
        ops.push(if userns {
            Op::Bind { source: path.clone(), target: path, kind: Kind::File, ro_flags: None }
        } else {
            Op::Device { path, major, minor, block }
        });
    };
    for (i, d) in linux.devices().iter().flatten().enumerate() {
        let field = format!("linux.devices[{i}]");
        let block = match d.typ().as_str() {
            "c" | "u" => false,
            "b" => true,
            other => {
                return Err(invalid(
                    &format!("{field}.type"),
                    format!("\"{other}\": only c, u and b devices are supported"),
                ))
            }
        };
        let (major, minor) = (u32::try_from(d.major()), u32::try_from(d.minor()));
        let (Ok(major), Ok(minor)) = (major, minor) else {
            return Err(invalid(&field, "major and minor must be non-negative"));
        };
        node(d.path().clone(), major, minor, block, &mut ops);
    }
    for (dev, major, minor) in rootfs::DEVICES {
        node(PathBuf::from(format!("/dev/{dev}")), major, minor, false, &mut ops);
    }
    for (target, link) in rootfs::DEV_LINKS {
        ops.push(Op::Symlink { target: PathBuf::from(target), link: PathBuf::from(link) });
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// `runc spec`'s default config (oci-spec's `Spec::default()`), changed
    /// by `edit`, planned against a bundle holding an empty `rootfs`.
    fn plan_edited(edit: impl FnOnce(&mut Value)) -> Result<Plan> {
        let bundle = tempfile::tempdir().unwrap();
        std::fs::create_dir(bundle.path().join("rootfs")).unwrap();
        let mut v = serde_json::to_value(Spec::default()).unwrap();
        edit(&mut v);
        let spec: Spec = serde_json::from_value(v).unwrap();
        let host = Host { cgroups: &[], in_user_namespace: false, gid_mapped: &|_| true };
        plan(&spec, RootFs::Bundle(bundle.path()), &host)
    }

    type Edit = Box<dyn FnOnce(&mut Value)>;

    fn error_of(edit: impl FnOnce(&mut Value)) -> String {
        match plan_edited(edit) {
            Ok(_) => panic!("the plan should be refused"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn the_default_spec_plans_root_first_pivot_last_with_every_namespace_new() {
        let p = plan_edited(|_| {}).unwrap();
        assert!(matches!(p.root.ops[..2], [Op::MakePrivate, Op::BindRoot]), "{:?}", &p.root.ops[..2]);
        // runc's default root is read-only: made so once pivoted.
        assert!(p.root.ops.ends_with(&[Op::PivotRoot, Op::RootReadOnly]), "{:?}", p.root.ops.last());
        assert!(p.has_new(ns::MOUNT) && p.has_new(ns::PID) && p.joins().next().is_none());
        assert_eq!(p.process.args, vec![std::ffi::OsString::from("sh")]);
        assert!(p.process.no_new_privs, "runc's default asks for it");
        assert!(p.root.ops.iter().any(|o| matches!(o, Op::Mask(m) if m == Path::new("/proc/kcore"))));
    }

    #[test]
    fn a_namespace_with_a_path_is_joined_and_mini_annotations_are_read() {
        let p = plan_edited(|v| {
            v["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "uts", "path": "/proc/1/ns/uts"}));
            v["linux"]["namespaces"].as_array_mut().unwrap().retain(|n| n.get("path").is_some() || n["type"] != "uts");
            v["hostname"] = Value::Null;
            v["annotations"] = json!({ INIT: "true", USER: "nobody:users" });
        })
        .unwrap();
        let joined: Vec<_> = p.joins().map(|n| (n.name, n.path.clone().unwrap())).collect();
        assert_eq!(joined, vec![("uts", PathBuf::from("/proc/1/ns/uts"))]);
        assert!(p.process.init);
        assert_eq!(p.process.user_by_name, Some(UserSpec::parse("nobody:users").unwrap()));
    }

    #[test]
    fn invalid_fields_are_refused_with_one_line_naming_them() {
        let cases: Vec<(Edit, &str)> = vec![
            (
                Box::new(|v| v["linux"]["namespaces"] = json!([{"type": "pid"}])),
                "invalid OCI config: linux.namespaces: mini-runc needs a mount namespace",
            ),
            (
                Box::new(|v| v["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "pid"}))),
                "is listed twice",
            ),
            (Box::new(|v| v["process"]["args"] = json!([])), "invalid OCI config: process.args: no command given"),
            (
                Box::new(|v| v["process"]["cwd"] = json!("rel")),
                "invalid OCI config: process.cwd: \"rel\" is not absolute",
            ),
            (
                Box::new(|v| v["mounts"] = json!([{"destination": "/x", "type": "nfs", "source": "h:/x"}])),
                "invalid OCI config: mounts[0].type: \"nfs\" is not supported",
            ),
            (
                Box::new(|v| v["mounts"] = json!([{"destination": "x", "type": "tmpfs"}])),
                "invalid OCI config: mounts[0].destination",
            ),
            (
                Box::new(
                    |v| v["mounts"] = json!([{"destination": "/x", "type": "bind", "source": "/nonexistent/mini", "options": ["rbind"]}]),
                ),
                "invalid OCI config: mounts[0].source: /nonexistent/mini does not exist",
            ),
            (
                Box::new(|v| {
                    v["mounts"] =
                        json!([{"destination": "/x", "type": "bind", "source": "/tmp", "options": ["rbind", "idmap"]}])
                }),
                "idmapped mounts are not supported",
            ),
            (Box::new(|v| v["root"]["path"] = json!("missing")), "invalid OCI config: root.path"),
            (
                Box::new(|v| {
                    v["linux"]["namespaces"].as_array_mut().unwrap().retain(|n| n["type"] != "uts");
                    v["hostname"] = json!("h");
                }),
                "invalid OCI config: hostname",
            ),
            (
                Box::new(|v| v["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}))),
                "invalid OCI config: linux.uidMappings: a new user namespace needs mappings",
            ),
            (
                Box::new(|v| v["linux"]["devices"] = json!([{"path": "/dev/x", "type": "p", "major": 1, "minor": 3}])),
                "invalid OCI config: linux.devices[0].type",
            ),
        ];
        for (edit, want) in cases {
            let e = error_of(edit);
            assert!(e.contains(want), "{e:?} should contain {want:?}");
            assert!(!e.contains('\n'), "one line: {e:?}");
        }
    }

    #[test]
    fn resources_become_mini_limits_and_bad_ones_are_refused() {
        let r: LinuxResources = serde_json::from_value(json!({
            "memory": {"limit": 67108864, "swap": 134217728},
            "cpu": {"quota": 50000, "period": 200000, "cpus": "0"},
            "pids": {"limit": 100}
        }))
        .unwrap();
        let l = limits_of(&r).unwrap();
        assert_eq!(l.memory, Some(64 << 20));
        assert_eq!(l.memory_swap, Some(cgroups::limits::Swap::Total(128 << 20)));
        // A quarter of a CPU, whatever the period.
        assert_eq!(l.cpu_quota, Some(cgroups::limits::CPU_PERIOD / 4));
        assert_eq!((l.cpuset_cpus.as_deref(), l.pids), (Some("0"), Some(100)));

        let low: LinuxResources =
            serde_json::from_value(json!({"memory": {"limit": 67108864, "swap": 1048576}})).unwrap();
        let e = limits_of(&low).unwrap_err().to_string();
        assert!(e.starts_with("invalid OCI config: linux.resources.memory.swap"), "{e}");
        let unified: LinuxResources = serde_json::from_value(json!({"unified": {"memory.max": "1"}})).unwrap();
        assert!(limits_of(&unified).unwrap_err().to_string().contains("linux.resources.unified"));
    }

    #[test]
    fn systemd_and_escaping_cgroup_paths_are_refused() {
        for (path, want) in [("system.slice:mini:c1", "systemd slice:scope"), ("a/../b", "names no cgroup"), ("..", "")]
        {
            let mut v = serde_json::to_value(Spec::default()).unwrap();
            v["linux"]["cgroupsPath"] = json!(path);
            let spec: Spec = serde_json::from_value(v).unwrap();
            let Err(e) = cgroups_of(&spec, "c1").map(|_| ()) else { panic!("{path} should be refused") };
            let e = e.to_string();
            assert!(e.starts_with("invalid OCI config: linux.cgroupsPath") && e.contains(want), "{path}: {e}");
        }
    }
}
