//! mini-runc's state directory: `<root>/<id>/` per container, holding
//! `state.json` (written whole to a temporary name and renamed, so a crash
//! leaves the old record or the new one, never half of one) and, from
//! `create` until `start`, `exec.fifo`, on which the container's process
//! waits. The status is never stored: it is read off the process (alive,
//! same start time, not a zombie), the fifo and the freezer, so a
//! container whose process died unseen reads as stopped.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::runtime::cgroups::Cgroups;

pub const STATE: &str = "state.json";
pub const FIFO: &str = "exec.fifo";

/// What mini-runc keeps about one container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// None until the process exists (a `create` that died early).
    pub pid: Option<i32>,
    /// The process's start time (/proc/<pid>/stat field 22), so a reused
    /// pid is never mistaken for the container.
    pub start_time: Option<u64>,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339, as runc shows it.
    pub created: String,
    pub owner: String,
    pub annotations: HashMap<String, String>,
    pub cgroups: Cgroups,
    /// The config's hooks run later (poststart by `start`, poststop by
    /// `delete`).
    pub hooks: Option<oci_spec::runtime::Hooks>,
    /// The config's process: what `exec` starts from when given only args.
    pub process: oci_spec::runtime::Process,
    /// The config's `linux.seccomp`: every `exec`'d process gets it too.
    #[serde(default)]
    pub seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
}

/// runc's statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// The state root: every container's directory under it.
pub struct Root {
    pub dir: PathBuf,
}

impl Root {
    pub fn new(dir: PathBuf) -> Root {
        Root { dir }
    }

    pub fn dir_of(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Make the directory of a new container `id`; refused if it exists.
    pub fn make(&self, id: &str) -> Result<PathBuf> {
        check_id(id)?;
        let what = || format!("create container {id}");
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| Error::new(what()).because(e).within(self.dir.display().to_string()))?;
        let dir = self.dir_of(id);
        match std::fs::create_dir(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::new(what())
                .because("a container with that id exists")
                .hint(format!("pick another id, or delete it: mini-runc delete {id}"))),
            Err(e) => Err(Error::new(what()).because(e)),
        }
    }

    pub fn load(&self, id: &str) -> Result<Record> {
        check_id(id)?;
        let file = self.dir_of(id).join(STATE);
        let bytes = std::fs::read(&file).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::new(format!("container {id}")).because("does not exist"),
            _ => Error::new(format!("read {}", file.display())).because(e),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| Error::new(format!("read {}", file.display())).because(e))
    }

    pub fn save(&self, r: &Record) -> Result<()> {
        let dir = self.dir_of(&r.id);
        let what = || format!("record container {}", r.id);
        let tmp = dir.join(".state.json.tmp");
        let bytes = serde_json::to_vec(r).map_err(|e| Error::new(what()).because(e))?;
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::new(what()).because(e))?;
        f.write_all(&bytes).and_then(|()| f.sync_all()).map_err(|e| Error::new(what()).because(e))?;
        std::fs::rename(&tmp, dir.join(STATE)).map_err(|e| Error::new(what()).because(e))
    }

    /// Every container id here, sorted.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join(STATE).exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        ids
    }

    pub fn remove(&self, id: &str) -> Result<()> {
        let dir = self.dir_of(id);
        std::fs::remove_dir_all(&dir).map_err(|e| Error::new(format!("remove {}", dir.display())).because(e))
    }
}

/// runc's rule for ids: no path tricks, nothing a shell trips on.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::new(format!("invalid container id \"{id}\"")).because("ids use letters, digits and _ + - . only"))
    }
}

/// One field of /proc/<pid>/stat after the command name: index 0 is the
/// state letter (field 3).
fn stat_field(pid: i32, index: usize) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    after.split_whitespace().nth(index).map(str::to_string)
}

/// The start time of `pid` (clock ticks since boot), if it lives.
pub fn start_time(pid: i32) -> Option<u64> {
    stat_field(pid, 19)?.parse().ok()
}

impl Record {
    /// Whether the container's process is this record's and not dead.
    pub fn alive(&self) -> bool {
        let (Some(pid), Some(t)) = (self.pid, self.start_time) else { return false };
        start_time(pid) == Some(t) && stat_field(pid, 0).is_some_and(|s| s != "Z" && s != "X")
    }

    pub fn status(&self, dir: &Path) -> Status {
        if self.pid.is_none() {
            return Status::Creating;
        }
        if !self.alive() {
            return Status::Stopped;
        }
        if dir.join(FIFO).exists() {
            return Status::Created;
        }
        if self.frozen() {
            return Status::Paused;
        }
        Status::Running
    }

    fn frozen(&self) -> bool {
        self.cgroups.plan.dirs.iter().any(|d| {
            let v1 = std::fs::read_to_string(d.path.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN");
            let v2 = std::fs::read_to_string(d.path.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1");
            v1 || v2
        })
    }

    /// The OCI state document (runc's `state` output adds rootfs,
    /// created and owner).
    pub fn state_json(&self, status: Status) -> serde_json::Value {
        let pid = if status == Status::Stopped { 0 } else { self.pid.unwrap_or(0) };
        serde_json::json!({
            "ociVersion": crate::oci::OCI_VERSION,
            "id": self.id,
            "pid": pid,
            "status": status.as_str(),
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": self.owner,
            "annotations": self.annotations,
        })
    }

    /// Every pid in the container's cgroup (the first hierarchy that has
    /// one), else just its first process.
    pub fn pids(&self) -> Vec<i32> {
        for d in &self.cgroups.plan.dirs {
            if let Ok(text) = std::fs::read_to_string(d.path.join("cgroup.procs")) {
                let pids: Vec<i32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
                if !pids.is_empty() {
                    return pids;
                }
            }
        }
        self.pid.filter(|_| self.alive()).into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_as_runc_does() {
        for ok in ["a", "web-1", "x_y.z+1", "0123456789abcdef"] {
            assert!(check_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "../x", "é"] {
            let e = check_id(bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("invalid container id \"{bad}\"")), "{e}");
        }
    }

    #[test]
    fn stat_fields_read_the_state_and_start_time_past_the_command_name() {
        // The test runner's main thread may be running or asleep; either way
        // it is not a zombie.
        let me = std::process::id() as i32;
        assert!(start_time(me).is_some());
        let mine = stat_field(me, 0).unwrap();
        assert!(["R", "S"].contains(&mine.as_str()), "{mine}");
        // An exited, unreaped child reads as a zombie, with its start time.
        let child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while stat_field(pid, 0).as_deref() != Some("Z") {
            assert!(std::time::Instant::now() < deadline, "child never became a zombie");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(start_time(pid).is_some());
        let mut child = child;
        child.wait().unwrap();
    }
}
