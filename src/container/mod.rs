//! The container side of the engine, one part per file: the record of
//! what was asked ([`record`], built by [`spec`]), the state machine
//! ([`state`], the only writer of state.json), the OCI runtime spec a
//! start hands the runtime ([`generate`]), the one launch path
//! ([`launch`]), the verbs' engines ([`run`], [`lifecycle`], [`exec`],
//! [`attach`], [`logs`], [`export`], [`cp`], [`diff`]) and the detached containers' monitor
//! ([`monitor`]). This file: find, create, remove, and the sweep of what a
//! killed `mini` left behind.

pub mod attach;
pub mod commit;
pub mod cp;
pub mod diff;
pub mod events;
pub mod exec;
pub mod export;
pub mod generate;
pub mod health;
pub mod launch;
pub mod lifecycle;
pub mod logs;
pub mod monitor;
pub mod network;
pub mod process;
pub mod record;
pub mod restart;
pub mod run;
pub mod seccomp;
pub mod spec;
pub mod state;
pub mod tree;
pub mod update;
pub mod usage;
pub mod volume;

use mini_store::containers::{Container, ContainerConfig, Containers, State};
use mini_store::{Store, StoreError};

use crate::error::{Error, Result};
use crate::image::local::LocalImage;
use crate::sys::{mount, process as p};
use record::Record;
use state::Settled;

pub fn containers(store: &Store) -> Result<Containers> {
    store.containers().map_err(|e| Error::new("open the containers directory").because(e))
}

/// Make `containers/<id>/` for `image` with its record, claiming the
/// name (generated from the id when `name` is None), with its first
/// `state` and its /etc files (`etc`: file name and content).
pub fn create(
    store: &Store,
    image: &LocalImage,
    record: &Record,
    name: Option<&str>,
    (id, state): (&str, &State),
    etc: &[(&str, String)],
) -> Result<(Container, ContainerConfig)> {
    let name = name.map_or_else(|| generated_name(id), str::to_string);
    let config = ContainerConfig {
        id: id.to_string(),
        name: name.clone(),
        image: image.name.clone(),
        image_id: image.id.to_string(),
        manifest: image.record.digest.to_string(),
        layers: image.diff_ids.iter().map(|d| d.to_string()).collect(),
        created: mini_store::rfc3339_now(),
        created_unix: state::now(),
        spec: record.to_value()?,
    };
    let cs = containers(store)?;
    let files: Vec<(&str, &[u8])> = etc.iter().map(|(n, t)| (*n, t.as_bytes())).collect();
    let c = cs.create(&config, state, &files).map_err(|e| match e {
        StoreError::NameInUse(..) => Error::new(format!("invalid --name \"{name}\""))
            .because(e)
            .hint("choose another name or remove that container"),
        e => Error::new(format!("create container {}", &id[..12])).because(e),
    })?;
    events::emit(store.root(), "container", "create", id, &[("image", &config.image), ("name", &config.name)]);
    Ok((c, config))
}

/// The /etc/hosts and /etc/resolv.conf of container `key`, for one that
/// joins its network namespace (`--network container:KEY`).
pub fn joined_etc(store: &Store, key: &str) -> Result<(String, String)> {
    let c = find(store, "join the network of container", key)?;
    // One that keeps its /etc files in memory: they are in its mount
    // namespace, seen through its first process.
    let pid = c.state().ok().and_then(|s| s.pid);
    let read = |f: &str| {
        std::fs::read_to_string(c.etc_file(f))
            .or_else(|_| pid.map_or(Ok(String::new()), |p| std::fs::read_to_string(format!("/proc/{p}/root/etc/{f}"))))
            .unwrap_or_default()
    };
    Ok((read(mini_store::containers::files::HOSTS), read(mini_store::containers::files::RESOLV_CONF)))
}

/// The published ports of running container `key`, host ports resolved
/// (a stopped container publishes none, as in Docker).
pub fn published_ports(store: &Store, key: &str) -> Result<Vec<crate::network::ports::PortMapping>> {
    sweep_stale(store);
    let c = find(store, "port", key)?;
    let data = crate::network::records::read(store.root())?;
    Ok(data.endpoints_of(&c.id).flat_map(|e| e.ports.iter().cloned()).collect())
}

/// `mini rename OLD NEW`: the container (running or not) is called NEW
/// from now on, also by its peers on user networks.
pub fn rename(store: &Store, key: &str, new: &str) -> Result<()> {
    let what = || format!("rename {key} to {new}");
    let new = spec::check_name(new).map_err(|e| e.within(what()))?;
    let c = find(store, "rename", key)?;
    let old = c.config().map(|cfg| cfg.name).unwrap_or_default();
    containers(store)?.rename(&c.id, &new).map_err(|e| match e {
        StoreError::NameInUse(..) => Error::new(what()).because(e).hint("choose another name or remove that container"),
        e => Error::new(what()).because(e),
    })?;
    events::container(&c, "rename", &[("oldName", &old)]);
    crate::network::attach::renamed(store, &c.id, &new)
}

/// Find a container by name, full id or unique id prefix, for operation
/// `op` ("stop", "logs", ...): errors read "stop KEY: no such container".
pub fn find(store: &Store, op: &str, key: &str) -> Result<Container> {
    containers(store)?.find(key).map_err(|e| Error::new(format!("{op} {key}")).because(e))
}

/// A Docker-style name from the id: adjective_noun.
fn generated_name(id: &str) -> String {
    const ADJ: [&str; 16] = [
        "brave", "calm", "eager", "fervent", "gallant", "happy", "jolly", "keen", "lucid", "merry", "nifty", "quirky",
        "serene", "tender", "vibrant", "zealous",
    ];
    const NOUN: [&str; 16] = [
        "babbage", "curie", "darwin", "euler", "fermi", "galois", "hopper", "kepler", "lovelace", "noether", "pascal",
        "ritchie", "shannon", "turing", "volta", "wozniak",
    ];
    let b = hex::decode(&id[..4]).unwrap_or_else(|_| vec![0, 0]);
    format!("{}_{}_{}", ADJ[(b[0] % 16) as usize], NOUN[(b[1] % 16) as usize], &id[4..8])
}

/// Containers whose `mini` died (kill -9): mark them exited, unmount a
/// rootfs left mounted, and remove those that asked for --rm or were still
/// being set up.
pub fn sweep_stale(store: &Store) {
    crate::network::attach::sweep(store);
    let Ok(cs) = containers(store) else { return };
    cs.sweep_tmp();
    for id in cs.ids().unwrap_or_default() {
        let c = cs.get(&id);
        if let Ok(state) = c.state() {
            settle_or_warn(&cs, &c, state);
        }
    }
}

/// [`state::settle`] for a command about other containers: one broken
/// container does not fail it, but is named on stderr.
pub fn settle_or_warn(cs: &Containers, c: &Container, state: State) -> Option<State> {
    match state::settle(cs, c, state) {
        Ok(Settled::Kept(s)) => Some(s),
        Ok(Settled::Removed) => None,
        Err(e) => {
            eprintln!("mini: warning: {e}");
            c.state().ok()
        }
    }
}

/// Remove a container: refused while it runs unless `force` (then it is
/// killed first and its monitor given a moment to record the exit); with
/// `volumes` (`rm -v`) its anonymous volumes too.
pub fn remove(store: &Store, key: &str, force: bool, volumes: bool) -> Result<String> {
    let cs = containers(store)?;
    let c = cs.find(key).map_err(|e| Error::new(format!("remove container {key}")).because(e))?;
    let state = c.state().unwrap_or_else(|_| State::created());
    let restarting = state::is_restarting(&state);
    if state::is_running(&state) || restarting {
        if !force {
            let what = if restarting { "restarting" } else { "running" };
            return Err(Error::new(format!("cannot remove container {key}"))
                .because(format!("container is {what}: stop the container before removing or force remove")));
        }
        // Ended on purpose: its monitor must not restart it.
        let _ = c.set_stopped(true);
        if restarting {
            if let Some(m) = state.monitor_pid {
                let _ = p::kill(m, libc::SIGTERM);
            }
        }
        if let Some(pid) = state.pid {
            let _ = p::kill(pid, libc::SIGKILL);
        }
        if state.paused {
            // Frozen, it could not die: thaw it (its monitor records the exit).
            if let Ok(record) = Record::read(&c) {
                let _ = record.container.cgroups.freeze(false);
            }
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
    // Its holder released its endpoints, unless it was killed too.
    if let Err(e) = crate::network::attach::detach(store, &c.id) {
        eprintln!("mini: warning: {e}");
    }
    // A record that cannot be read names no cgroups: the container still goes.
    let record = Record::read(&c).ok();
    if let Some(record) = &record {
        record.container.cgroups.remove();
    }
    events::destroying(&c, || cs.remove(&c.id))
        .map_err(|e| Error::new(format!("remove container {key}")).because(e))?;
    if let Some(record) = record.filter(|_| volumes) {
        volume::remove_anonymous(store, &record.container.volumes);
    }
    Ok(c.id.clone())
}

/// Poll (10 ms steps, at most `tries`) until process `pid` is gone.
pub fn wait_gone(pid: i32, tries: u32) -> bool {
    for _ in 0..tries {
        if state::start_time(pid).is_none() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    state::start_time(pid).is_none()
}

/// `--rm` after exit: the container disappears now (renamed into the
/// trash, its name released); the files are deleted by a detached child so
/// `mini run` returns without waiting for the filesystem (the next
/// `Store::open` sweeps whatever a killed deleter left).
pub fn discard_in_background(store: &Store, id: &str) {
    let Ok(cs) = containers(store) else { return };
    let c = cs.get(id);
    match events::destroying(&c, || cs.discard(id)) {
        Ok(Some(trash)) => p::spawn_detached(move || {
            let _ = std::fs::remove_dir_all(&trash);
        }),
        Ok(None) => {}
        Err(_) => {
            let _ = cs.remove(id);
        }
    }
}
