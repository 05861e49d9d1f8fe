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
            tmpfs: spec.tmpfs.iter().map(|t| t.target.display().to_string()).collect(),
            read_only: spec.read_only,
            rm: spec.rm,
            init: spec.init,
            tty: spec.tty,
            id_base: if spec.userns == Userns::Auto { id_base } else { None },
            resources: Default::default(),
            cgroup_levels: None,
            cgroups: Vec::new(),
        }
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
    c.config().ok().and_then(|cfg| serde_json::from_value(cfg.spec).ok()).unwrap_or_default()
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
/// process from a reused pid.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the `mini` that owns this state is still alive.
pub fn owner_alive(state: &State) -> bool {
    match (state.monitor_pid, state.monitor_start) {
        (Some(pid), Some(start)) => p::alive(pid) && start_time(pid) == Some(start),
        (Some(pid), None) => p::alive(pid),
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
        let Ok(mut state) = c.state() else { continue };
        let orphaned = match state.status {
            Status::Running => !owner_alive(&state),
            Status::Created => state.monitor_pid.is_some() && !owner_alive(&state),
            Status::Exited => false,
        };
        if !orphaned {
            continue;
        }
        if mount::is_mountpoint(&c.rootfs()) {
            let _ = mount::umount(&c.rootfs(), true);
        }
        remove_cgroups(&spec_of(&c));
        if state.status == Status::Created || spec_of(&c).rm {
            let _ = cs.remove(&id);
        } else {
            state.status = Status::Exited;
            state.exit_code = Some(137);
            state.finished_at = Some(now());
            state.monitor_pid = None;
            state.pid = None;
            let _ = c.write_state(&state);
        }
    }
}

/// Remove the container's cgroups (and the empty parents mini made).
pub fn remove_cgroups(spec: &SpecRecord) {
    let cgroups: Vec<PathBuf> = spec.cgroups.iter().map(PathBuf::from).collect();
    crate::runtime::cgroups::remove(&cgroups, spec.cgroup_levels.unwrap_or(2));
}

/// Remove a container: refused while it runs unless `force` (then it is
/// killed first).
pub fn remove(store: &Store, key: &str, force: bool) -> Result<String> {
    let cs = containers(store)?;
    let c = cs.find(key).map_err(|e| Error::new(format!("remove container {key}")).because(e))?;
    let state = c.state().unwrap_or_else(|_| State::created());
    if state.status == Status::Running && owner_alive(&state) {
        if !force {
            return Err(Error::new(format!("remove container {key}"))
                .because("it is running")
                .hint("stop it first or use rm -f"));
        }
        if let Some(pid) = state.pid {
            let _ = p::kill(pid, libc::SIGKILL);
        }
        if let Some(m) = state.monitor_pid {
            // The monitor notices its child died and finishes; wait briefly.
            for _ in 0..100 {
                if !p::alive(m) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
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
