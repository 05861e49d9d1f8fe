//! Where a container's cgroups go and the steps that make them, as data
//! ([`plan`]), and the one executor that carries the steps out
//! ([`execute`]).
//!
//! Placement: `<base>/<parent>/<id>` in every hierarchy that drives a
//! controller the container uses. `base` is mini's own cgroup for a
//! relative parent (default "mini") and the hierarchy's root for an
//! absolute one. v1 and v2 differ in a few rules, expressed as steps:
//! - v1 cpuset: a new cgroup starts with empty `cpuset.cpus`/`mems` and
//!   cannot take tasks, so each new level inherits its parent's;
//! - v1 devices: deny everything, then allow Docker's safe devices;
//! - v2: controllers are enabled in `cgroup.subtree_control` of every level
//!   above the container's cgroup, and a non-root cgroup with processes
//!   cannot enable any ("no internal processes"): mini first moves those
//!   processes (itself included) into a leaf `<base>/mini.leaf`, as
//!   Docker-in-Docker's entrypoint does. A mini started in that leaf later
//!   treats its parent as its base, so containers never nest under it.

use std::path::{Path, PathBuf};

use super::detect::{Hierarchy, Layout, Version};
use super::limits::Limits;
use crate::error::{Error, Result};

/// The leaf v2 processes are moved into so their cgroup can delegate.
pub const LEAF: &str = "mini.leaf";

/// Controllers every container gets a cgroup in (for accounting, stats,
/// the device list and `pause`: v1's freezer; v2 freezes any cgroup) where
/// the host has them; limits may add more (cpuset).
pub const DEFAULT_CONTROLLERS: [&str; 6] = ["memory", "pids", "cpu", "cpuacct", "devices", "freezer"];

/// Docker's default device rules: mknod of anything (the node is useless
/// without access), then read/write/mknod on null zero full random urandom
/// tty console ptmx, the pts range and the tun device.
pub const DEVICE_RULES: [&str; 12] = [
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
    "c 10:200 rwm",
];

/// One step of making the cgroups.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Step {
    /// mkdir; an existing directory is fine.
    MakeDir(PathBuf),
    /// v1 cpuset: copy the parent's cpus and mems into a new cgroup.
    InheritCpuset(PathBuf),
    /// v2: move every process in `from` into the leaf `to` (made first).
    Evacuate {
        from: PathBuf,
        to: PathBuf,
    },
    /// v2: enable controllers for the children of `dir`.
    Enable {
        dir: PathBuf,
        controllers: Vec<String>,
    },
    Write {
        file: PathBuf,
        value: String,
        optional: bool,
    },
}

/// One cgroup of the container.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Dir {
    pub version: Version,
    pub path: PathBuf,
    /// The hierarchy's mount directory name and, on v1, its controllers
    /// (the options that mount it again inside the container).
    pub mount_name: String,
    pub controllers: Vec<String>,
}

impl Dir {
    fn new(h: &Hierarchy, path: PathBuf) -> Dir {
        let mount_name = h.mount.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        Dir { version: h.version, path, mount_name, controllers: h.controllers.clone() }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    pub dirs: Vec<Dir>,
    pub steps: Vec<Step>,
    /// How many path components, counted up from each dir, are mini's to
    /// remove when empty (the id and the parent's components).
    pub levels: usize,
}

/// What to place: the container id, `--cgroup-parent`, the limits.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub id: &'a str,
    /// Relative to mini's own cgroup, or absolute from the hierarchy root.
    pub parent: &'a str,
    pub limits: &'a Limits,
}

/// Plan the container's cgroups on `layout`; `read` returns a cgroupfs
/// file's text (v2: cgroup.controllers, subtree_control, cgroup.procs).
pub fn plan(layout: &Layout, req: &Request, read: &dyn Fn(&Path) -> Option<String>) -> Result<Plan> {
    let parent = parent_components(req.parent)?;
    let absolute = req.parent.trim().starts_with('/');
    let mut wanted: Vec<&str> = DEFAULT_CONTROLLERS.to_vec();
    for c in req.limits.needs() {
        if !wanted.contains(&c) {
            wanted.push(c);
        }
    }
    let mut out = Plan { levels: parent.len() + 1, ..Plan::default() };
    let mut done: Vec<&Path> = Vec::new();
    for ctl in &wanted {
        let Some(h) = layout.hierarchy_of(ctl) else {
            if req.limits.needs().contains(ctl) {
                return Err(Error::new(format!("set the container's {ctl} limit"))
                    .because(format!("this host (cgroup {}) has no {ctl} controller", layout.kind())));
            }
            continue;
        };
        if done.contains(&h.mount.as_path()) {
            continue;
        }
        done.push(&h.mount);
        let ctls: Vec<&str> = wanted.iter().copied().filter(|c| h.controllers.iter().any(|x| x == c)).collect();
        match h.version {
            Version::V1 => plan_v1(h, &ctls, base_of(h, absolute), &parent, req, &mut out),
            Version::V2 => plan_v2(h, &ctls, base_of(h, absolute), &parent, req, read, &mut out)?,
        }
    }
    Ok(out)
}

/// `--cgroup-parent` as path components; ".." is refused.
fn parent_components(parent: &str) -> Result<Vec<String>> {
    let comps: Vec<String> = parent.split('/').filter(|c| !c.is_empty() && *c != ".").map(str::to_string).collect();
    if comps.iter().any(|c| c == "..") {
        return Err(Error::new(format!("invalid --cgroup-parent \"{parent}\"")).because("\"..\" is not allowed"));
    }
    Ok(comps)
}

/// The cgroup the parent is relative to: mini's own (its parent when mini
/// sits in the v2 leaf), or the hierarchy root for an absolute parent.
fn base_of(h: &Hierarchy, absolute: bool) -> PathBuf {
    if absolute {
        return h.mount.clone();
    }
    let own = match h.own.rsplit_once('/') {
        Some((up, last)) if h.version == Version::V2 && last == LEAF => up,
        None if h.version == Version::V2 && h.own == LEAF => "",
        _ => h.own.as_str(),
    };
    if own.is_empty() {
        h.mount.clone()
    } else {
        h.mount.join(own)
    }
}

fn plan_v1(h: &Hierarchy, ctls: &[&str], base: PathBuf, parent: &[String], req: &Request, out: &mut Plan) {
    let mut dir = base;
    for c in parent.iter().map(String::as_str).chain([req.id]) {
        dir.push(c);
        out.steps.push(Step::MakeDir(dir.clone()));
        if ctls.contains(&"cpuset") {
            out.steps.push(Step::InheritCpuset(dir.clone()));
        }
    }
    let write =
        |file: &str, value: &str| Step::Write { file: dir.join(file), value: value.to_string(), optional: false };
    if ctls.contains(&"devices") {
        out.steps.push(write("devices.deny", "a"));
        out.steps.extend(DEVICE_RULES.iter().map(|r| write("devices.allow", r)));
    }
    push_limits(h, ctls, &dir, req.limits, out);
    out.dirs.push(Dir::new(h, dir));
}

fn plan_v2(
    h: &Hierarchy,
    ctls: &[&str],
    base: PathBuf,
    parent: &[String],
    req: &Request,
    read: &dyn Fn(&Path) -> Option<String>,
    out: &mut Plan,
) -> Result<()> {
    let available = read(&base.join("cgroup.controllers")).unwrap_or_default();
    let enable: Vec<String> =
        ctls.iter().filter(|c| available.split_whitespace().any(|a| a == **c)).map(|c| c.to_string()).collect();
    if let Some(missing) = req.limits.needs().into_iter().find(|c| ctls.contains(c) && !enable.iter().any(|e| e == c)) {
        return Err(Error::new(format!("set the container's {missing} limit"))
            .because(format!("controller {missing} is not delegated to {}", base.display())));
    }
    let enabled = |dir: &Path| {
        let on = read(&dir.join("cgroup.subtree_control")).unwrap_or_default();
        enable.iter().all(|c| on.split_whitespace().any(|x| x == c))
    };
    // No internal processes: a non-root cgroup with members cannot delegate.
    // Only the true root is exempt, and it alone lacks `cgroup.type`: the
    // root of a cgroup namespace (mini inside a container) is not.
    let busy = !read(&base.join("cgroup.procs")).unwrap_or_default().trim().is_empty();
    let root = read(&base.join("cgroup.type")).is_none();
    if !root && busy && !enabled(&base) {
        let leaf = base.join(LEAF);
        out.steps.push(Step::MakeDir(leaf.clone()));
        out.steps.push(Step::Evacuate { from: base.clone(), to: leaf });
    }
    let mut dir = base;
    for c in parent.iter().map(String::as_str).chain([req.id]) {
        if !enable.is_empty() && !enabled(&dir) {
            out.steps.push(Step::Enable { dir: dir.clone(), controllers: enable.clone() });
        }
        dir.push(c);
        out.steps.push(Step::MakeDir(dir.clone()));
    }
    push_limits(h, ctls, &dir, req.limits, out);
    out.dirs.push(Dir::new(h, dir));
    Ok(())
}

fn push_limits(h: &Hierarchy, ctls: &[&str], dir: &Path, limits: &Limits, out: &mut Plan) {
    for w in limits.writes(h.version).into_iter().filter(|w| ctls.contains(&w.controller)) {
        out.steps.push(Step::Write { file: dir.join(w.file), value: w.value, optional: w.optional });
    }
}

/// Carry out the steps in order; the first failure stops them, named by
/// operation and file.
pub fn execute(steps: &[Step]) -> Result<()> {
    // Consecutive writes to one file (the device rules) share one open.
    let mut open: Option<(&Path, std::fs::File)> = None;
    for step in steps {
        match step {
            Step::Write { file, value, optional } if !*optional || file.exists() => {
                if open.as_ref().map(|(p, _)| *p) != Some(file.as_path()) {
                    open = Some((file, open_for_write(file)?));
                }
                if let Some((_, f)) = open.as_mut() {
                    write_to(f, file, value)?;
                }
            }
            _ => {
                open = None;
                execute_one(step)?;
            }
        }
    }
    Ok(())
}

fn execute_one(step: &Step) -> Result<()> {
    match step {
        Step::MakeDir(d) => make_dir(d),
        Step::InheritCpuset(d) => {
            for f in ["cpuset.cpus", "cpuset.mems"] {
                if read_trim(&d.join(f)).is_empty() {
                    let from = d.parent().map(|p| read_trim(&p.join(f))).unwrap_or_default();
                    write(&d.join(f), &from)?;
                }
            }
            Ok(())
        }
        Step::Evacuate { from, to } => {
            // Processes may exit meanwhile (ESRCH): only the rest matter.
            for pid in read_trim(&from.join("cgroup.procs")).lines() {
                match write(&to.join("cgroup.procs"), pid) {
                    Err(_) if !Path::new("/proc").join(pid).exists() => {}
                    other => other?,
                }
            }
            Ok(())
        }
        Step::Enable { dir, controllers } => {
            let line: Vec<String> = controllers.iter().map(|c| format!("+{c}")).collect();
            write(&dir.join("cgroup.subtree_control"), &line.join(" "))
        }
        Step::Write { file, value, optional } => {
            if *optional && !file.exists() {
                return Ok(());
            }
            write(file, value)
        }
    }
}

/// mkdir -p, retried: a concurrent mini may remove a shared, empty parent
/// between our two mkdirs.
fn make_dir(d: &Path) -> Result<()> {
    let mut tries = 0;
    loop {
        match std::fs::create_dir_all(d) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < 5 => tries += 1,
            Err(e) => return Err(Error::new(format!("create cgroup {}", d.display())).because(e)),
        }
    }
}

fn read_trim(p: &Path) -> String {
    std::fs::read_to_string(p).map(|s| s.trim().to_string()).unwrap_or_default()
}

/// One write(2) of `value` (cgroupfs takes one value per write).
pub fn write(file: &Path, value: &str) -> Result<()> {
    write_to(&mut open_for_write(file)?, file, value)
}

fn open_for_write(file: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(file)
        .map_err(|e| Error::new(format!("open {}", file.display())).because(e))
}

fn write_to(f: &mut std::fs::File, file: &Path, value: &str) -> Result<()> {
    use std::io::Write as _;
    f.write_all(value.as_bytes()).map_err(|e| Error::new(format!("write \"{value}\" to {}", file.display())).because(e))
}
