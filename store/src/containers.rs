//! Container directories: `containers/<id>/` with `config.json` (what was
//! asked, written once), `state.json` (what is happening: status, pid,
//! times, exit code; rewritten atomically), `upper/`, `work/` (the overlay's
//! writable layer and scratch), `rootfs/` (mount point of the merged root,
//! mounted only inside the container's own mount namespace) and the
//! per-container `hostname`, `hosts`, `resolv.conf`; while a `restart` is
//! under way, a `restarting` marker that tells the one recording the exit
//! not to remove a `--rm` container.
//!
//! Names are unique: `containers/.names/<name>` is created with O_EXCL and
//! holds the id, so two `mini` processes cannot take the same name.
//! Removal renames the directory into the store's `trash/` first, so a
//! killed `mini rm` never leaves a half-deleted container listed.
//!
//! `config.json` is a [`ContainerConfig`]: the store reads its `layers` and
//! `image_id` (GC roots); the runtime keeps its own run settings in `spec`.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};

/// The container's life, as `ps` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Exited,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    /// Host pid of the container's first process while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// Host pid of the `mini` process that watches it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor_pid: Option<i32>,
    /// The monitor's start time (from /proc/<pid>/stat), so a reused pid
    /// is not mistaken for a live monitor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor_start: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The kernel's OOM killer killed a process of the container.
    #[serde(default)]
    pub oom_killed: bool,
    /// Exited, and its monitor (still alive) waits out the restart
    /// policy's back-off before starting it again (`Restarting` in `ps`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restarting: bool,
    /// How often the restart policy has started it again since the last
    /// `start`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub restart_count: u32,
    /// Running with its processes frozen (`pause`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl State {
    pub fn created() -> State {
        State {
            status: Status::Created,
            pid: None,
            monitor_pid: None,
            monitor_start: None,
            started_at: None,
            finished_at: None,
            exit_code: None,
            oom_killed: false,
            restarting: false,
            restart_count: 0,
            paused: false,
        }
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::io(op, path, source)
}

/// What a container was created from; written once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerConfig {
    pub id: String,
    pub name: String,
    /// The image as the user named it.
    pub image: String,
    /// Config digest of the image ("sha256:…").
    pub image_id: String,
    /// Manifest digest of the image, a GC root for its blobs.
    #[serde(default)]
    pub manifest: String,
    /// Diff-ids of the layers, bottom first ("sha256:…").
    pub layers: Vec<String>,
    /// RFC 3339 creation time and seconds since the epoch.
    pub created: String,
    pub created_unix: u64,
    /// The runtime's settings (argv, env, mounts, ...), opaque here.
    pub spec: serde_json::Value,
}

/// All containers under one store root.
#[derive(Debug, Clone)]
pub struct Containers {
    dir: PathBuf,
    trash: PathBuf,
}

/// One container's directory.
#[derive(Debug, Clone)]
pub struct Container {
    pub id: String,
    pub dir: PathBuf,
}

impl Containers {
    /// `dir` is `<store root>/containers`, `trash` the store's trash dir;
    /// both created if missing.
    pub fn open(dir: impl Into<PathBuf>, trash: impl Into<PathBuf>) -> Result<Containers> {
        let (dir, trash) = (dir.into(), trash.into());
        for d in [dir.clone(), dir.join(".names"), trash.clone()] {
            fs::create_dir_all(&d).map_err(io_err("create", &d))?;
        }
        Ok(Containers { dir, trash })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Claim the name, then make `containers/<id>/` whole: it is built as
    /// `.tmp-<pid>-<id>` (upper, work and rootfs dirs, `config.json`,
    /// `state.json`, and `files` such as the container's /etc files) and
    /// renamed into place, so no reader ever sees half a container. A
    /// dead creator's temp dir is removed by [`Containers::sweep_tmp`].
    pub fn create(&self, config: &ContainerConfig, state: &State, files: &[(&str, &[u8])]) -> Result<Container> {
        let (id, name) = (config.id.as_str(), config.name.as_str());
        let name_file = self.claim_name(name, id)?;
        let c = Container { id: id.to_string(), dir: self.dir.join(id) };
        let tmp = self.dir.join(format!(".tmp-{}-{id}", std::process::id()));
        let made = (|| {
            fs::create_dir(&tmp).map_err(io_err("create", &tmp))?;
            for sub in [files::UPPER, files::WORK, files::ROOTFS] {
                let d = tmp.join(sub);
                fs::create_dir(&d).map_err(io_err("create", &d))?;
            }
            let json_err = |source| StoreError::Json { path: c.config_path(), source };
            let config = serde_json::to_vec_pretty(config).map_err(json_err)?;
            let state = serde_json::to_vec_pretty(state).map_err(json_err)?;
            for (name, bytes) in [(files::CONFIG, &config[..]), (files::STATE, &state[..])] {
                let path = tmp.join(name);
                fs::write(&path, bytes).map_err(io_err("write", &path))?;
            }
            for (name, bytes) in files {
                let path = tmp.join(name);
                fs::write(&path, bytes).map_err(io_err("write", &path))?;
            }
            fs::rename(&tmp, &c.dir).map_err(io_err("rename into place", &c.dir))
        })();
        if let Err(e) = made {
            let _ = fs::remove_file(&name_file);
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        Ok(c)
    }

    /// Remove `.tmp-<pid>-<id>` dirs whose creator is gone.
    pub fn sweep_tmp(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else { return };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let Some(pid) = name.strip_prefix(".tmp-").and_then(|r| r.split('-').next()?.parse::<i32>().ok()) else {
                continue;
            };
            // SAFETY: signal 0 only checks whether the process exists.
            let alive =
                unsafe { libc::kill(pid, 0) } == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
            if !alive {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }

    /// Every container id (64 hex), sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_err("read", &self.dir))? {
            let entry = entry.map_err(io_err("read", &self.dir))?;
            let name = entry.file_name().to_string_lossy().to_string();
            if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
                ids.push(name);
            }
        }
        ids.sort();
        Ok(ids)
    }

    pub fn get(&self, id: &str) -> Container {
        Container { id: id.to_string(), dir: self.dir.join(id) }
    }

    /// The name a container was created with: from its record when its
    /// `.names` entry still points back at it (one read instead of a scan
    /// of every name), else by reverse lookup of `.names`.
    pub fn name_of(&self, id: &str) -> Option<String> {
        if let Ok(c) = self.get(id).config() {
            let owner = fs::read_to_string(self.dir.join(".names").join(&c.name));
            if owner.is_ok_and(|o| o == id) {
                return Some(c.name);
            }
        }
        let names = self.dir.join(".names");
        fs::read_dir(names).ok()?.flatten().find_map(|e| {
            let owner = fs::read_to_string(e.path()).ok()?;
            (owner == id).then(|| e.file_name().to_string_lossy().to_string())
        })
    }

    /// Find a container by name, full id or unique id prefix.
    pub fn find(&self, key: &str) -> Result<Container> {
        let name_file = self.dir.join(".names").join(key);
        if !key.contains('/') && !key.starts_with('.') {
            if let Ok(id) = fs::read_to_string(&name_file) {
                if self.dir.join(&id).is_dir() {
                    return Ok(self.get(&id));
                }
            }
        }
        let matches: Vec<String> =
            if key.is_empty() { vec![] } else { self.ids()?.into_iter().filter(|id| id.starts_with(key)).collect() };
        match matches.as_slice() {
            [one] => Ok(self.get(one)),
            [] => Err(StoreError::NoSuchContainer(key.to_string())),
            many => Err(StoreError::AmbiguousContainer(
                key.to_string(),
                many.iter().map(|id| format!("{} ({})", &id[..12], self.name_of(id).unwrap_or_default())).collect(),
            )),
        }
    }

    /// Claim `name` for container `id`: `.names/<name>` made with O_EXCL,
    /// so no two containers ever hold one name; its path.
    fn claim_name(&self, name: &str, id: &str) -> Result<PathBuf> {
        let name_file = self.dir.join(".names").join(name);
        match fs::OpenOptions::new().write(true).create_new(true).open(&name_file) {
            Ok(mut f) => f.write_all(id.as_bytes()).map_err(io_err("write", &name_file))?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let owner = fs::read_to_string(&name_file).unwrap_or_default();
                return Err(StoreError::NameInUse(name.to_string(), owner.chars().take(12).collect()));
            }
            Err(e) => return Err(io_err("create", &name_file)(e)),
        }
        Ok(name_file)
    }

    /// Give container `id` the name `new`: the new name is claimed first
    /// (O_EXCL, so a name is never held twice), config.json is rewritten
    /// atomically, then the old name is released.
    pub fn rename(&self, id: &str, new: &str) -> Result<()> {
        let c = self.get(id);
        let mut config = c.config()?;
        let old = config.name.clone();
        let name_file = self.claim_name(new, id)?;
        config.name = new.to_string();
        if let Err(e) = c.write_config(&config) {
            let _ = fs::remove_file(&name_file);
            return Err(e);
        }
        let old_file = self.dir.join(".names").join(&old);
        if fs::read_to_string(&old_file).is_ok_and(|owner| owner == id) {
            fs::remove_file(&old_file).map_err(io_err("remove", &old_file))?;
        }
        Ok(())
    }

    /// Remove a container's directory and release its name. The directory
    /// is renamed into the trash first (atomic disappearance), then deleted.
    pub fn remove(&self, id: &str) -> Result<()> {
        match self.discard(id)? {
            Some(trash) => fs::remove_dir_all(&trash).map_err(io_err("remove", &trash)),
            None => Ok(()),
        }
    }

    /// Release the name and move the directory into the trash, returning
    /// where it went (None if it was already gone); the caller deletes it,
    /// or the next `Store::open` does.
    pub fn discard(&self, id: &str) -> Result<Option<PathBuf>> {
        if let Some(name) = self.name_of(id) {
            let f = self.dir.join(".names").join(name);
            // A concurrent remover (`rm -f` racing a `--rm` monitor) may win.
            match fs::remove_file(&f) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err("remove", &f)(e)),
                _ => {}
            }
        }
        let dir = self.dir.join(id);
        let trash = self.trash.join(format!("container-{id}-{}", std::process::id()));
        match fs::rename(&dir, &trash) {
            Ok(()) => Ok(Some(trash)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("move to trash", &dir)(e)),
        }
    }

    /// Layers and blobs that containers still use (GC roots).
    pub fn roots(&self) -> Result<(Vec<String>, Vec<String>)> {
        let (mut layers, mut blobs) = (Vec::new(), Vec::new());
        for id in self.ids()? {
            if let Ok(c) = self.get(&id).config() {
                layers.extend(c.layers);
                blobs.push(c.image_id);
                if !c.manifest.is_empty() {
                    blobs.push(c.manifest);
                }
            }
        }
        Ok((layers, blobs))
    }
}

/// The names of the files in `containers/<id>/`: every module that reads
/// or writes one asks [`Container`] for its path.
pub mod files {
    pub const CONFIG: &str = "config.json";
    pub const STATE: &str = "state.json";
    pub const UPPER: &str = "upper";
    pub const WORK: &str = "work";
    pub const ROOTFS: &str = "rootfs";
    /// The container's output, as the json-file log driver writes it
    /// (rotated by `--log-opt max-size`: `log.1`, `log.2`, …).
    pub const LOG: &str = "log";
    /// Held by the container's monitor for as long as it lives.
    pub const MONITOR_LOCK: &str = "monitor.lock";
    /// Where `attach` and `start -i` write the container's stdin.
    pub const ATTACH_SOCKET: &str = "attach.sock";
    /// Held shared by `wait` on a --rm container, exclusive by its owner
    /// before it removes the container.
    pub const WAIT_LOCK: &str = "wait.lock";
    /// Present while a `restart` is under way.
    pub const RESTARTING: &str = "restarting";
    /// Present once `stop`, `kill` or `rm -f` has ended the container on
    /// purpose: its monitor does not apply the restart policy then.
    pub const STOPPED: &str = "stopped";
    /// The last health-check results (`--health-cmd`), written by whoever
    /// supervises the running container.
    pub const HEALTH: &str = "health.json";
    /// The container's /etc files, bind-mounted over the image's.
    pub const HOSTNAME: &str = "hostname";
    pub const HOSTS: &str = "hosts";
    pub const RESOLV_CONF: &str = "resolv.conf";
    // The runtime's user-mode network may add its own files while the
    // container runs (runtime::usermode: pasta.pid, slirp.sock).
}

impl Container {
    /// The store root this container's directory lives under.
    pub fn store_root(&self) -> &Path {
        self.dir.parent().and_then(Path::parent).unwrap_or(Path::new("/"))
    }

    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }

    pub fn upper(&self) -> PathBuf {
        self.dir.join(files::UPPER)
    }

    pub fn work(&self) -> PathBuf {
        self.dir.join(files::WORK)
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join(files::ROOTFS)
    }

    /// Replace config.json (written aside, synced and renamed over).
    pub fn write_config(&self, config: &ContainerConfig) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(config)
            .map_err(|source| StoreError::Json { path: self.config_path(), source })?;
        crate::util::write_atomic(&self.config_path(), &bytes)
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join(files::CONFIG)
    }

    pub fn state_path(&self) -> PathBuf {
        self.dir.join(files::STATE)
    }

    pub fn log(&self) -> PathBuf {
        self.dir.join(files::LOG)
    }

    pub fn monitor_lock(&self) -> PathBuf {
        self.dir.join(files::MONITOR_LOCK)
    }

    pub fn attach_socket(&self) -> PathBuf {
        self.dir.join(files::ATTACH_SOCKET)
    }

    pub fn wait_lock(&self) -> PathBuf {
        self.dir.join(files::WAIT_LOCK)
    }

    /// `hostname`, `hosts` or `resolv.conf` (see [`files`]).
    pub fn etc_file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn config(&self) -> Result<ContainerConfig> {
        read_json(&self.config_path())
    }

    pub fn state(&self) -> Result<State> {
        read_json(&self.state_path())
    }

    /// Mark (or unmark) a restart under way: whoever records the exit of a
    /// `--rm` container reads this first and keeps the container if set.
    pub fn set_restarting(&self, on: bool) -> Result<()> {
        self.mark(files::RESTARTING, on)
    }

    pub fn is_restarting(&self) -> bool {
        self.dir.join(files::RESTARTING).exists()
    }

    /// Mark (or unmark) the container as ended on purpose: its monitor
    /// reads this when it exits and then does not restart it.
    pub fn set_stopped(&self, on: bool) -> Result<()> {
        self.mark(files::STOPPED, on)
    }

    pub fn is_stopped(&self) -> bool {
        self.dir.join(files::STOPPED).exists()
    }

    /// An empty marker file `name` in the container dir, made or removed.
    fn mark(&self, name: &str, on: bool) -> Result<()> {
        let mark = self.dir.join(name);
        let r = if on { fs::write(&mark, b"") } else { fs::remove_file(&mark) };
        match r {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(io_err(if on { "create" } else { "remove" }, &mark)(e))
            }
            _ => Ok(()),
        }
    }

    /// Replace state.json atomically (temp file, rename). Not fsynced: it is
    /// rewritten several times per run, and after a power loss a reader
    /// that finds it missing or stale treats the container as exited.
    pub fn write_state(&self, state: &State) -> Result<()> {
        write_json(&self.state_path(), state)
    }

    /// The health-check results, in the shape the engine gives them.
    pub fn health<T: for<'de> Deserialize<'de>>(&self) -> Result<T> {
        read_json(&self.dir.join(files::HEALTH))
    }

    pub fn write_health<T: Serialize>(&self, health: &T) -> Result<()> {
        write_json(&self.dir.join(files::HEALTH), health)
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let bytes = fs::read(path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            StoreError::NotFound { what: path.display().to_string() }
        } else {
            io_err("read", path)(e)
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|source| StoreError::Json { path: path.to_path_buf(), source })
}

fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let bytes =
        serde_json::to_vec_pretty(value).map_err(|source| StoreError::Json { path: path.to_path_buf(), source })?;
    let write = || -> io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err("write", path)(e)
    })
}

/// A fresh random container id: 64 lowercase hex characters.
pub fn new_id() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(id: &str, name: &str) -> ContainerConfig {
        ContainerConfig {
            id: id.into(),
            name: name.into(),
            image: "x".into(),
            image_id: "sha256:cc".into(),
            manifest: String::new(),
            layers: vec!["sha256:aa".into()],
            created: "2026-01-01T00:00:00Z".into(),
            created_unix: 0,
            spec: serde_json::Value::Null,
        }
    }

    #[test]
    fn create_find_state_remove() {
        let tmp = tempfile::tempdir().unwrap();
        let cs = Containers::open(tmp.path().join("containers"), tmp.path().join("trash")).unwrap();
        let id = new_id();
        assert_eq!(id.len(), 64);
        let c = cs.create(&cfg(&id, "web"), &State::created(), &[("hosts", b"h\n")]).unwrap();
        assert!(c.upper().is_dir() && c.work().is_dir() && c.rootfs().is_dir());
        assert_eq!(c.state().unwrap().status, Status::Created);
        assert_eq!(fs::read(c.dir.join("hosts")).unwrap(), b"h\n");
        let stale = tmp.path().join("containers/.tmp-999999999-x");
        fs::create_dir(&stale).unwrap();
        cs.sweep_tmp();
        assert!(!stale.exists());
        assert_eq!(c.config().unwrap().image, "x");
        assert_eq!(cs.roots().unwrap().0, vec!["sha256:aa".to_string()]);
        assert_eq!(cs.find("web").unwrap().id, id);
        assert_eq!(cs.find(&id[..5]).unwrap().id, id);
        assert!(matches!(cs.find("nope"), Err(StoreError::NoSuchContainer(_))));
        let e = cs.create(&cfg(&new_id(), "web"), &State::created(), &[]).unwrap_err();
        assert!(matches!(e, StoreError::NameInUse(..)), "{e}");
        let mut s = State::created();
        s.status = Status::Exited;
        s.exit_code = Some(3);
        c.write_state(&s).unwrap();
        assert_eq!(c.state().unwrap(), s);
        assert_eq!(cs.ids().unwrap(), vec![id.clone()]);
        assert_eq!(cs.name_of(&id).as_deref(), Some("web"));
        cs.remove(&id).unwrap();
        assert!(cs.ids().unwrap().is_empty());
        assert!(fs::read_dir(tmp.path().join("trash")).unwrap().next().is_none());
        cs.create(&cfg(&new_id(), "web"), &State::created(), &[]).unwrap();
    }

    #[test]
    fn renames_claim_the_new_name_first() {
        let tmp = tempfile::tempdir().unwrap();
        let cs = Containers::open(tmp.path().join("containers"), tmp.path().join("trash")).unwrap();
        let (a, b) = (new_id(), new_id());
        cs.create(&cfg(&a, "web"), &State::created(), &[]).unwrap();
        cs.create(&cfg(&b, "db"), &State::created(), &[]).unwrap();
        assert!(matches!(cs.rename(&a, "db"), Err(StoreError::NameInUse(..))));
        assert_eq!(cs.find("web").unwrap().id, a, "a refused rename changes nothing");
        cs.rename(&a, "site").unwrap();
        assert_eq!(cs.find("site").unwrap().id, a);
        assert_eq!(cs.get(&a).config().unwrap().name, "site");
        assert!(matches!(cs.find("web"), Err(StoreError::NoSuchContainer(_))));
        cs.create(&cfg(&new_id(), "web"), &State::created(), &[]).unwrap();
    }
}
