//! Container records on the engine side: create one from an image and a
//! RunSpec, read what `ps` shows, remove one, and sweep what a killed
//! `mini` left behind (state.json says "running" or "created by a run in
//! progress" but the `mini` process that owned it is gone).

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use mini_store::containers::{Container, ContainerConfig, Containers, State, Status};
use mini_store::Store;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::image::local::LocalImage;
use crate::runtime::spec::{RunSpec, Userns};
use crate::sys::{mount, process as p};

/// The runtime settings kept in config.json's `spec`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SpecRecord {
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub workdir: String,
    pub hostname: String,
    pub volumes: Vec<(String, String, bool)>,
    pub tmpfs: Vec<String>,
    pub read_only: bool,
    pub rm: bool,
    pub init: bool,
    pub tty: bool,
    /// Host uid/gid that container id 0 maps to (`--userns=auto`).
    #[serde(default)]
    pub id_base: Option<(u32, u32)>,
    /// The resource flags as given (`start` plans the cgroups from them).
    #[serde(default)]
    pub resources: crate::runtime::cgroups::Flags,
    /// How many levels above each cgroup dir (its own included) mini made
    /// and removes when empty; absent in old records: "mini/<id>".
    #[serde(default)]
    pub cgroup_levels: Option<usize>,
    /// The container's cgroup directories (removed after it exits).
    #[serde(default)]
    pub cgroups: Vec<String>,
    /// `-u` or the image's User, as text (parsed again at each start).
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub interactive: bool,
    /// The image's StopSignal (`stop` sends it, else SIGTERM).
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// The image as the user typed it (what `ps` shows).
    #[serde(default)]
    pub image_ref: String,
}

impl SpecRecord {
    pub fn of(spec: &RunSpec, hostname: &str, id_base: Option<(u32, u32)>) -> SpecRecord {
        SpecRecord {
            argv: spec.argv.iter().map(|a| a.to_string_lossy().to_string()).collect(),
            env: spec.env.clone(),
            workdir: spec.workdir.display().to_string(),
            hostname: hostname.to_string(),
            volumes: spec
                .volumes
                .iter()
                .map(|v| (v.source.display().to_string(), v.target.display().to_string(), v.read_only))
                .collect(),
            // `target[:options]`, as `--tmpfs` takes it, so a restart gets the same mount.
            tmpfs: spec
                .tmpfs
                .iter()
                .map(|t| match &t.options {
                    Some(o) => format!("{}:{o}", t.target.display()),
                    None => t.target.display().to_string(),
                })
                .collect(),
            read_only: spec.read_only,
            rm: spec.rm,
            init: spec.init,
            tty: spec.tty,
            id_base: if spec.userns == Userns::Auto { id_base } else { None },
            resources: Default::default(),
            cgroup_levels: None,
            cgroups: Vec::new(),
            user: String::new(),
            interactive: spec.interactive,
            stop_signal: None,
            image_ref: String::new(),
        }
    }

    /// The RunSpec to start this container (again) with: what `run` or
    /// `create` decided, read back from config.json.
    pub fn to_spec(&self) -> Result<RunSpec> {
        use crate::runtime::spec::{parse_tmpfs, PullPolicy, Volume};
        Ok(RunSpec {
            argv: self.argv.iter().map(Into::into).collect(),
            env: self.env.clone(),
            workdir: self.workdir.clone().into(),
            user: crate::runtime::user::UserSpec::parse(&self.user)?,
            hostname: Some(self.hostname.clone()),
            volumes: self
                .volumes
                .iter()
                .map(|(s, t, ro)| Volume { source: s.into(), target: t.into(), read_only: *ro })
                .collect(),
            tmpfs: self.tmpfs.iter().map(|t| parse_tmpfs(t)).collect::<Result<_>>()?,
            read_only: self.read_only,
            rm: self.rm,
            init: self.init,
            interactive: self.interactive,
            tty: self.tty,
            userns: if self.id_base.is_some() { Userns::Auto } else { Userns::Host },
            pull: PullPolicy::Never,
            name: None,
        })
    }

    pub fn id_map(&self) -> Option<crate::runtime::userns::IdMap> {
        self.id_base.map(|(uid_base, gid_base)| crate::runtime::userns::IdMap { uid_base, gid_base })
    }
}

pub fn containers(store: &Store) -> Result<Containers> {
    store.containers().map_err(|e| Error::new("open the containers directory").because(e))
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Make `containers/<id>/` for `image`, claiming the name, with its first
/// `state` and its /etc files (for the record's host name).
pub fn create(
    store: &Store,
    image: &LocalImage,
    spec: &RunSpec,
    record: &SpecRecord,
    id: &str,
    state: &State,
) -> Result<Container> {
    let name = match &spec.name {
        Some(n) => n.clone(),
        None => generated_name(id),
    };
    let config = ContainerConfig {
        id: id.to_string(),
        name: name.clone(),
        image: image.name.clone(),
        image_id: image.id.to_string(),
        manifest: image.record.digest.to_string(),
        layers: image.diff_ids.iter().map(|d| d.to_string()).collect(),
        created: mini_store::rfc3339_now(),
        created_unix: now(),
        spec: serde_json::to_value(record).unwrap_or_default(),
    };
    let cs = containers(store)?;
    let etc = crate::network::etc_files(&record.hostname, &crate::network::host_resolv_conf());
    let files: Vec<(&str, &[u8])> = etc.iter().map(|(n, t)| (*n, t.as_bytes())).collect();
    cs.create(&config, state, &files).map_err(|e| match e {
        mini_store::containers::ContainerError::NameInUse(..) => {
            Error::new(format!("invalid --name \"{name}\"")).because(e).hint("choose another name or remove that container")
        }
        e => Error::new(format!("create container {}", &id[..12])).because(e),
    })
}

/// The record's spec.
pub fn spec_of(c: &Container) -> SpecRecord {
    c.config().ok().map(|cfg| record_of(&cfg)).unwrap_or_default()
}

/// The spec inside an already read config.json.
pub fn record_of(cfg: &ContainerConfig) -> SpecRecord {
    SpecRecord::deserialize(&cfg.spec).unwrap_or_default()
}

/// Find a container by name, full id or unique id prefix, for operation
/// `op` ("stop", "logs", ...): errors read "stop KEY: no such container".
pub fn find(store: &Store, op: &str, key: &str) -> Result<Container> {
    containers(store)?.find(key).map_err(|e| Error::new(format!("{op} {key}")).because(e))
}

/// Whether the container runs: state.json says so and the process that
/// owns it (monitor or foreground `mini run`) is alive. A dead owner means
/// the container died with it (parent-death signal).
pub fn is_running(state: &State) -> bool {
    state.status == Status::Running && owner_alive(state)
}

/// A Docker-style name from the id: adjective_noun.
fn generated_name(id: &str) -> String {
    const ADJ: [&str; 16] = [
        "brave", "calm", "eager", "fervent", "gallant", "happy", "jolly", "keen", "lucid", "merry", "nifty",
        "quirky", "serene", "tender", "vibrant", "zealous",
    ];
    const NOUN: [&str; 16] = [
        "babbage", "curie", "darwin", "euler", "fermi", "galois", "hopper", "kepler", "lovelace", "noether",
        "pascal", "ritchie", "shannon", "turing", "volta", "wozniak",
    ];
    let b = hex::decode(&id[..4]).unwrap_or_else(|_| vec![0, 0]);
    format!("{}_{}_{}", ADJ[(b[0] % 16) as usize], NOUN[(b[1] % 16) as usize], &id[4..8])
}

/// The start time of `pid` (clock ticks since boot), to tell a live
/// process from a reused pid; None when it is gone or a zombie (an
/// orphaned monitor may wait a while for its reaper).
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut after = stat[stat.rfind(')')? + 2..].split_whitespace();
    if after.next()? == "Z" {
        return None;
    }
    after.nth(18)?.parse().ok()
}

/// Whether the `mini` that owns this state is still alive.
pub fn owner_alive(state: &State) -> bool {
    match (state.monitor_pid, state.monitor_start) {
        (Some(pid), Some(start)) => start_time(pid) == Some(start),
        (Some(pid), None) => start_time(pid).is_some(),
        _ => false,
    }
}

/// Record the calling process as the container's owner.
pub fn owned_state(status: Status) -> State {
    let me = std::process::id() as i32;
    State { status, monitor_pid: Some(me), monitor_start: start_time(me), ..State::created() }
}

/// Containers whose `mini` died (kill -9): mark them exited, unmount a
/// rootfs left mounted, and remove those that asked for --rm or were still
/// being set up.
pub fn sweep_stale(store: &Store) {
    let Ok(cs) = containers(store) else { return };
    cs.sweep_tmp();
    for id in cs.ids().unwrap_or_default() {
        let c = cs.get(&id);
        if let Ok(state) = c.state() {
            settle(&cs, &c, state);
        }
    }
}

/// The state of `c` as it really is: if the process that owned it died,
/// the container died with it, so it is marked exited (137), or removed
/// (None) when it asked for --rm or was still being set up. `ps` calls
/// this per container so it reads each state once.
pub fn settle(cs: &Containers, c: &Container, mut state: State) -> Option<State> {
    let orphaned = match state.status {
        Status::Running => !owner_alive(&state),
        Status::Created => state.monitor_pid.is_some() && !owner_alive(&state),
        Status::Exited => false,
    };
    if !orphaned {
        return Some(state);
    }
    if mount::is_mountpoint(&c.rootfs()) {
        let _ = mount::umount(&c.rootfs(), true);
    }
    let record = spec_of(c);
    remove_cgroups(&record);
    if state.status == Status::Created || record.rm {
        let _ = cs.remove(&c.id);
        return None;
    }
    state.status = Status::Exited;
    state.exit_code = Some(137);
    state.finished_at = Some(now());
    (state.pid, state.monitor_pid, state.monitor_start) = (None, None, None);
    let _ = c.write_state(&state);
    Some(state)
}

/// Remove the container's cgroups (and the empty parents mini made).
pub fn remove_cgroups(spec: &SpecRecord) {
    let cgroups: Vec<PathBuf> = spec.cgroups.iter().map(PathBuf::from).collect();
    crate::runtime::cgroups::remove(&cgroups, spec.cgroup_levels.unwrap_or(2));
}

/// Remove a container: refused while it runs unless `force` (then it is
/// killed first and its monitor given a moment to record the exit).
pub fn remove(store: &Store, key: &str, force: bool) -> Result<String> {
    let cs = containers(store)?;
    let c = cs.find(key).map_err(|e| Error::new(format!("remove container {key}")).because(e))?;
    let state = c.state().unwrap_or_else(|_| State::created());
    if is_running(&state) {
        if !force {
            return Err(Error::new(format!("cannot remove container {key}"))
                .because("container is running: stop the container before removing or force remove"));
        }
        if let Some(pid) = state.pid {
            let _ = p::kill(pid, libc::SIGKILL);
        }
        if let Some(m) = state.monitor_pid {
            // The monitor reaps the container and cleans its cgroups; a
            // monitor that does not finish in 2 s is killed.
            if !wait_gone(m, 200) {
                let _ = p::kill(m, libc::SIGKILL);
                wait_gone(m, 100);
            }
        }
    }
    if mount::is_mountpoint(&c.rootfs()) {
        let _ = mount::umount(&c.rootfs(), true);
    }
    remove_cgroups(&spec_of(&c));
    cs.remove(&c.id).map_err(|e| Error::new(format!("remove container {key}")).because(e))?;
    Ok(c.id.clone())
}

/// Poll (10 ms steps, at most `tries`) until process `pid` is gone.
pub fn wait_gone(pid: i32, tries: u32) -> bool {
    for _ in 0..tries {
        if start_time(pid).is_none() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    start_time(pid).is_none()
}

/// `--rm` after exit: the container disappears now (renamed into the
/// trash, its name released); the files are deleted by a detached child so
/// `mini run` returns without waiting for the filesystem (the next
/// `Store::open` sweeps whatever a killed deleter left).
pub fn discard_in_background(store: &Store, id: &str) {
    let Ok(cs) = containers(store) else { return };
    match cs.discard(id) {
        Ok(Some(trash)) => p::spawn_detached(move || {
            let _ = std::fs::remove_dir_all(&trash);
        }),
        Ok(None) => {}
        Err(_) => {
            let _ = cs.remove(id);
        }
    }
}

pub fn layer_dirs(store: &Store, layers: &[String]) -> Result<Vec<PathBuf>> {
    layers
        .iter()
        .map(|l| {
            let d: mini_store::Digest = l.parse().map_err(|e| Error::new(format!("layer {l}")).because(e))?;
            Ok(store.layers().diff_path(&d))
        })
        .collect()
}
