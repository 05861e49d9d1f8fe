//! The container's cgroups on v1, v2 and hybrid hosts: detection
//! ([`detect`]), limits from Docker-style flags ([`limits`]), placement as
//! a plan of steps ([`place`]), accounting for `mini stats` and OOM
//! ([`stats`]).
//!
//! Kernel contract: a container gets `<mini's own cgroup>/<parent>/<id>`
//! (parent: `--cgroup-parent` or the config's `cgroup-parent`, default
//! "mini"; absolute parents start at the hierarchy root) in each hierarchy
//! that drives memory, pids, cpu, cpuacct, devices (and cpuset when asked),
//! limits written before any of its code runs. The container process joins
//! by itself (see [`prepare`]) before it unshares its cgroup namespace.
//! Everything that touches the live host goes through [`Host`], whose roots
//! (/proc/self files, cgroupfs mounts) are parameters, so tests use temp dirs.

pub mod detect;
pub mod fs;
pub mod limits;
pub mod place;
pub mod stats;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use detect::Layout;
pub use limits::{Flags, Limits};
pub use place::{Plan, Request};

use crate::error::{Error, Result};

/// The cgroup parent when neither flag nor config names one.
pub const DEFAULT_PARENT: &str = "mini";

/// The live host: its layout and online CPUs.
pub struct Host {
    pub layout: Layout,
    pub online_cpus: Vec<u32>,
}

impl Host {
    /// Read /proc/self/mountinfo, /proc/self/cgroup and the CPU list.
    pub fn current() -> Host {
        let mi = std::fs::read("/proc/self/mountinfo").unwrap_or_default();
        let cg = std::fs::read("/proc/self/cgroup").unwrap_or_default();
        let layout = Layout::parse(&mi, &cg, &|p| std::fs::read_to_string(p).ok());
        Host { layout, online_cpus: online_cpus() }
    }

    /// Plan the cgroups of container `id`.
    pub fn plan(&self, id: &str, parent: Option<&str>, limits: &Limits) -> Result<Plan> {
        let parent = parent.filter(|p| !p.trim().is_empty()).unwrap_or(DEFAULT_PARENT);
        place::plan(&self.layout, &Request { id, parent, limits }, &|p| std::fs::read_to_string(p).ok())
    }
}

/// A container's cgroups as `mini run` handles them: planned while
/// deciding (bad flags fail before anything exists), made before the
/// clone, removed after exit. Planned once, at create, and kept in the
/// container's record: every start makes exactly these.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Cgroups {
    pub plan: Plan,
    /// Limits were asked for: failing to apply them is an error. Otherwise
    /// cgroups are best effort, so mini still runs where it cannot write
    /// the cgroupfs (inside another container).
    pub required: bool,
    /// How the user named the parent, for errors: `--cgroup-parent "x"`
    /// or the config file's `cgroup-parent "x"` (also makes it required).
    pub parent_source: Option<String>,
}

impl Cgroups {
    /// Validate the flags and plan; `config_parent` is the config file's
    /// `cgroup-parent` (the flag wins). `delegated_only` (rootless): only
    /// v2 hierarchies whose cgroup mini may write count, since no v1
    /// hierarchy and no undelegated v2 tree lets an ordinary user in.
    pub fn for_container(
        flags: &Flags,
        config_parent: Option<&str>,
        id: &str,
        delegated_only: bool,
    ) -> Result<Cgroups> {
        let mut host = Host::current();
        let limits = Limits::from_flags(flags, &host.online_cpus)?;
        if delegated_only {
            host.layout.keep_delegated(&|p| crate::sys::fs::writable(p));
            if host.layout.hierarchies.is_empty() && !limits.is_empty() {
                return Err(Error::new("set the container's resource limits").because(format!(
                    "rootless mini has no cgroup of its own to put them in (cgroup {} here, nothing delegated to you)",
                    Host::current().layout.kind()
                )).hint("limits need cgroup v2 with a subtree delegated to your user (systemd: Delegate=yes); run without -m/--cpus/--pids-limit"));
            }
        }
        let (parent, parent_source) = match (&flags.cgroup_parent, config_parent) {
            (Some(p), _) => (Some(p.as_str()), Some(format!("--cgroup-parent \"{p}\""))),
            (None, Some(p)) => (Some(p), Some(format!("cgroup-parent \"{p}\" (config file)"))),
            (None, None) => (None, None),
        };
        let plan = host.plan(id, parent, &limits)?;
        Ok(Cgroups { plan, required: !limits.is_empty() || parent_source.is_some(), parent_source })
    }

    /// Allow `rules` (v1 `devices.allow` lines: `c 10:229 rwm`, or `a`
    /// for every device) in the devices cgroup, after the default list.
    /// On v2 there is no devices file (see docs/resources.md).
    pub fn allow_devices(&mut self, rules: &[String]) {
        let Some(dir) = self.plan.dirs.iter().find(|d| d.controllers.iter().any(|c| c == "devices")) else { return };
        let file = dir.path.join("devices.allow");
        self.plan.steps.extend(rules.iter().map(|r| place::Step::Write {
            file: file.clone(),
            value: r.clone(),
            optional: false,
        }));
    }

    /// New limits (`mini update`): in the plan for every later start,
    /// replacing the old limit writes (the device rules stay), and with
    /// `now` written into the existing cgroups of the running container.
    /// A second pass retries what the first refused: v1 takes a memory
    /// limit above the current memory+swap limit only once that is raised.
    pub fn set_limits(&mut self, limits: &Limits, now: bool) -> Result<()> {
        let is_device_rule =
            |file: &Path| file.file_name().is_some_and(|n| n.to_string_lossy().starts_with("devices."));
        self.plan.steps.retain(|s| !matches!(s, place::Step::Write { file, .. } if !is_device_rule(file)));
        let mut writes = Vec::new();
        for dir in &self.plan.dirs {
            for w in limits.writes(dir.version) {
                let here = dir.version == detect::Version::V2 || dir.controllers.iter().any(|c| c == w.controller);
                if here {
                    writes.push(place::Step::Write {
                        file: dir.path.join(w.file),
                        value: w.value,
                        optional: w.optional,
                    });
                }
            }
        }
        self.required |= !limits.is_empty();
        if now {
            let apply = |steps: &[place::Step]| -> Result<()> {
                for s in steps {
                    if let place::Step::Write { file, value, optional } = s {
                        if !*optional || file.exists() {
                            place::write(file, value)?;
                        }
                    }
                }
                Ok(())
            };
            if apply(&writes).is_err() {
                apply(&writes)?;
            }
        }
        self.plan.steps.extend(writes);
        Ok(())
    }

    pub fn dirs(&self) -> Vec<PathBuf> {
        self.plan.dirs.iter().map(|d| d.path.clone()).collect()
    }

    /// Make them and write their limits. On failure nothing is left, and
    /// cgroups that are best effort answer Ok(false).
    pub fn make(&self) -> Result<bool> {
        match place::execute(&self.plan.steps) {
            Ok(()) => Ok(true),
            Err(e) => self.failed(e).map(|()| false),
        }
    }

    /// Make them; the join files for the child (none if best effort
    /// failed). On failure nothing is left.
    pub fn prepare(&self) -> Result<Vec<std::fs::File>> {
        if !self.make()? {
            return Ok(Vec::new());
        }
        open_join_files(&self.dirs()).or_else(|e| self.failed(e).map(|()| Vec::new()))
    }

    fn failed(&self, e: Error) -> Result<()> {
        self.remove();
        match (self.required, &self.parent_source) {
            (false, _) => Ok(()),
            (true, Some(p)) => Err(e.within(format!("invalid {p}"))),
            (true, None) => Err(e),
        }
    }

    pub fn remove(&self) {
        remove(&self.dirs(), self.plan.levels);
    }

    pub fn oom_killed(&self) -> bool {
        oom_killed(&self.dirs())
    }

    /// Freeze (`pause`) or thaw (`unpause`) every process in them, and
    /// return once the kernel says it is done.
    pub fn freeze(&self, frozen: bool) -> Result<()> {
        let f = Freezer::of(&self.plan.dirs).ok_or_else(|| {
            Error::new(if frozen { "freeze the container" } else { "thaw the container" })
                .because("it has no freezer cgroup (v2 cgroup, or v1 freezer hierarchy)")
                .hint("a container gets one where mini may make cgroups: as root, or rootless on a delegated cgroup v2")
        })?;
        f.set(frozen, Duration::from_secs(10))
    }
}

/// Where a container's processes are frozen: v2 `cgroup.freeze` (done
/// when `cgroup.events` says `frozen 1`), else v1 `freezer.state`
/// (`FROZEN` / `THAWED`; it reads `FREEZING` until every task stopped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freezer {
    pub version: detect::Version,
    pub dir: PathBuf,
}

impl Freezer {
    /// The v2 cgroup if the container has one, else its v1 freezer cgroup.
    pub fn of(dirs: &[place::Dir]) -> Option<Freezer> {
        let v2 = dirs.iter().find(|d| d.version == detect::Version::V2);
        let v1 = || dirs.iter().find(|d| d.controllers.iter().any(|c| c == "freezer"));
        v2.or_else(v1).map(|d| Freezer { version: d.version, dir: d.path.clone() })
    }

    /// The file written, the value, and the file and line (v2) or text
    /// (v1) that tell the change is complete.
    fn files(&self, frozen: bool) -> (PathBuf, &'static str, PathBuf, &'static str) {
        match (self.version, frozen) {
            (detect::Version::V2, true) => {
                (self.dir.join("cgroup.freeze"), "1", self.dir.join("cgroup.events"), "frozen 1")
            }
            (detect::Version::V2, false) => {
                (self.dir.join("cgroup.freeze"), "0", self.dir.join("cgroup.events"), "frozen 0")
            }
            (detect::Version::V1, true) => {
                (self.dir.join("freezer.state"), "FROZEN", self.dir.join("freezer.state"), "FROZEN")
            }
            (detect::Version::V1, false) => {
                (self.dir.join("freezer.state"), "THAWED", self.dir.join("freezer.state"), "THAWED")
            }
        }
    }

    /// Write the change, then poll until it is complete; a freeze that
    /// does not complete within `patience` is undone and an error.
    pub fn set(&self, frozen: bool, patience: Duration) -> Result<()> {
        let (file, value, done, line) = self.files(frozen);
        let what = if frozen { "freeze the container" } else { "thaw the container" };
        place::write(&file, value).map_err(|e| e.within(what))?;
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(&done).unwrap_or_default();
            if text.lines().any(|l| l.trim() == line) {
                return Ok(());
            }
            if start.elapsed() >= patience {
                if frozen {
                    let _ = self.set(false, Duration::from_secs(1));
                }
                return Err(
                    Error::new(what).because(format!("{} did not say {line:?} within {patience:?}", done.display()))
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// The host's online CPUs (all CPUs 0..n when the file is unreadable).
pub fn online_cpus() -> Vec<u32> {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| limits::parse_cpu_list(&s))
        .unwrap_or_else(|| (0..std::thread::available_parallelism().map_or(1, |n| n.get() as u32)).collect())
}

// How the container process enters its cgroups: it writes "0" to their
// join files itself ([`join`]). Moving another process through
// `cgroup.procs` takes the kernel's global threadgroup lock, whose writer
// waits for an RCU grace period: 1–20 ms here, more than the rest of
// `mini run`. A single-threaded process writing "0" to a v1 `tasks` file
// moves only itself and skips that lock. An fd carries its opener's (host
// root's) credentials, so under a user namespace mini opens the files
// before the clone and the child writes to those.

/// Open each cgroup's join file: v1 `tasks` (moves only the writing
/// thread), else v2 `cgroup.procs`. Also what puts an exec'd process into
/// a running container's cgroups.
pub fn open_join_files(dirs: &[PathBuf]) -> Result<Vec<std::fs::File>> {
    dirs.iter()
        .map(|d| {
            let tasks = d.join("tasks");
            let f = if tasks.exists() { tasks } else { d.join("cgroup.procs") };
            std::fs::OpenOptions::new()
                .write(true)
                .open(&f)
                .map_err(|e| Error::new(format!("open {}", f.display())).because(e))
        })
        .collect()
}

/// Move the calling (single-threaded) process into each prepared cgroup.
pub fn join(files: &[std::fs::File]) -> Result<()> {
    use std::io::Write;
    for mut f in files {
        f.write_all(b"0").map_err(|e| Error::new("join the container's cgroup").because(e))?;
    }
    Ok(())
}

/// Remove the container's cgroups and the parent levels mini made above
/// them (`levels` counts the id's own level), where empty. v2 kills what
/// is left first (`cgroup.kill`); an exiting process may keep a cgroup
/// busy for a moment, so rmdir is retried briefly.
pub fn remove(dirs: &[PathBuf], levels: usize) {
    for d in dirs {
        let kill = d.join("cgroup.kill");
        if kill.exists() {
            let _ = place::write(&kill, "1");
        }
        rmdir_patiently(d, Duration::from_millis(500));
        let mut up = d.parent();
        for _ in 1..levels {
            // Fails while other containers share the parent: that is fine.
            match up {
                Some(p) if std::fs::remove_dir(p).is_ok() => up = p.parent(),
                _ => break,
            }
        }
    }
}

fn rmdir_patiently(d: &Path, patience: Duration) {
    let start = Instant::now();
    loop {
        match std::fs::remove_dir(d) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && start.elapsed() < patience => {
                std::thread::sleep(Duration::from_millis(5))
            }
            _ => return,
        }
    }
}

/// Whether the OOM killer killed a process in these cgroups (v1
/// `memory.oom_control`, v2 `memory.events`: `oom_kill N`).
pub fn oom_killed(dirs: &[PathBuf]) -> bool {
    dirs.iter().any(|d| {
        ["memory.oom_control", "memory.events"]
            .iter()
            .filter_map(|f| std::fs::read(d.join(f)).ok())
            .any(|b| stats::field(&b, "oom_kill").unwrap_or(0) > 0)
    })
}

#[cfg(test)]
mod tests;
