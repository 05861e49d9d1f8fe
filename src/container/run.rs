//! `mini run`, top to bottom, in the order bocker's `run` tells it: find the
//! image, decide the spec, prepare the root, set up network and cgroup,
//! start the isolated process, wait, clean up. The detail is one call down.

use std::path::PathBuf;

use mini_store::containers::{Container, State, Status};
use mini_store::Store;

use crate::assemble::{self, ContainerDirs, MountPlan};
use crate::config::Config;
use crate::container::{self, SpecRecord};
use crate::error::{Error, Result};
use crate::image::local::LocalImage;
use crate::pull::{pull, PullOptions};
use crate::runtime::process::{self, exit_code, CgroupEntry, Launch};
use crate::runtime::spec::{self, EnvFile, ImageDefaults, PullPolicy, RunFlags, RunSpec, Userns};
use crate::runtime::userns::IdMap;
use crate::runtime::{cgroups, rootfs};

/// Run a container in the foreground; returns its exit code.
pub fn run(config: &Config, flags: &RunFlags, env_files: &[EnvFile]) -> Result<i32> {
    let store = Store::open(&config.root)?;
    container::sweep_stale(&store);

    // Decide everything, then make the container dir (prune waits meanwhile,
    // so the image's layers cannot vanish before the record names them).
    let gc_lock = store.lock_gc_shared()?;
    let what = decide(config, &store, flags, env_files)?;
    let owned = container::owned_state(Status::Created);
    let c = container::create(&store, &what.image, &what.spec, &what.record, &what.id, &owned)?;
    drop(gc_lock);
    let mut cleanup = Cleanup { store: &store, container: &c, cgroups: &what.cgroups, keep: false };

    // Prepare the root: overlay over the layers, /etc files, mount plan.
    let (overlay, mut root, detach) = prepare_root(&c, &layers_of(&store, &what.image), &what.spec, what.idmap.as_ref())?;
    let cgroup_tasks = prepare_cgroups(&what.cgroups, &mut root, what.idmap.is_some())?;

    // Start the isolated process: it joins its cgroups, mounts its root,
    // brings up its loopback (network `none`), sets its hostname, drops
    // privileges and execs; `start` writes its id maps first.
    let started = process::start(&Launch {
        spec: &what.spec,
        overlay: &overlay,
        rootfs: &root,
        hostname: &what.hostname,
        idmap: what.idmap.as_ref(),
        dir: &c.dir,
        cgroups: CgroupEntry::of(cgroup_tasks.as_deref(), &what.cgroups),
        detach: &detach,
    })?;
    let mut state = container::owned_state(Status::Running);
    (state.pid, state.started_at) = (Some(started.pid), Some(container::now()));
    let _ = c.write_state(&state);

    // Wait, then clean up: record how it ended, or remove it (--rm).
    let exit = started.wait()?;
    let remove = what.spec.rm && !c.is_restarting(); // read before the exit is recorded
    let oom_killed = exit_code(exit) == 137 && what.cgroups.oom_killed();
    what.cgroups.remove();
    cleanup.keep = true;
    if remove {
        container::discard_in_background(&store, &c.id);
    } else {
        state.status = Status::Exited;
        (state.exit_code, state.finished_at) = (Some(exit_code(exit)), Some(container::now()));
        state.oom_killed = oom_killed;
        (state.pid, state.monitor_pid, state.monitor_start) = (None, None, None);
        let _ = c.write_state(&state);
    }
    Ok(exit_code(exit))
}

/// `mini run -d`: create the container, hand it to a monitor that starts
/// it (see `monitor`), and return its id once it runs.
pub fn run_detached(config: &Config, flags: &RunFlags, env_files: &[EnvFile]) -> Result<String> {
    let id = create(config, flags, env_files)?;
    let store = Store::open(&config.root)?;
    crate::lifecycle::start(config, &store, &id)?;
    Ok(id)
}

/// `mini create`: the container record and its dirs, nothing started.
pub fn create(config: &Config, flags: &RunFlags, env_files: &[EnvFile]) -> Result<String> {
    let store = Store::open(&config.root)?;
    container::sweep_stale(&store);
    let _gc_lock = store.lock_gc_shared()?;
    let what = decide(config, &store, flags, env_files)?;
    container::create(&store, &what.image, &what.spec, &what.record, &what.id, &State::created())?;
    Ok(what.id)
}

/// Everything decided before anything is written.
struct Decided {
    image: LocalImage,
    spec: RunSpec,
    id: String,
    hostname: String,
    idmap: Option<IdMap>,
    cgroups: cgroups::Cgroups,
    record: SpecRecord,
}

fn decide(config: &Config, store: &Store, flags: &RunFlags, env_files: &[EnvFile]) -> Result<Decided> {
    let image = image_for(config, store, flags)?;
    let mut spec = spec_for(&image, flags, env_files)?;
    let idmap = id_map(&spec)?;
    let id = mini_store::containers::new_id();
    let hostname = spec.hostname.clone().unwrap_or_else(|| id[..12].to_string());
    spec.set_hostname_default(&hostname);
    let cgroups = cgroups::Cgroups::for_container(&flags.resources, config.cgroup_parent.as_deref(), &id)?;
    let mut record = SpecRecord::of(&spec, &hostname, idmap.as_ref().map(|m| (m.uid_base, m.gid_base)));
    record.cgroups = cgroups.dirs().iter().map(|d| d.display().to_string()).collect();
    record.cgroup_levels = Some(cgroups.plan.levels);
    record.resources = flags.resources.clone();
    let image_config = image.config.config().as_ref();
    record.user = flags.user.clone().unwrap_or_else(|| image_config.and_then(|c| c.user().clone()).unwrap_or_default());
    record.stop_signal = image_config.and_then(|c| c.stop_signal().clone());
    record.image_ref = flags.image.clone();
    Ok(Decided { image, spec, id, hostname, idmap, cgroups, record })
}

/// The container's cgroups as its process will enter them, and their
/// cgroupfs view added to its root plan. Under a user namespace mini makes
/// them and opens their join files now (and adds no view: v1 cannot be
/// mounted there); otherwise it makes them after the clone, while the
/// child unshares its namespaces (see `process`). Shared with the monitor,
/// which starts containers from their record.
pub fn prepare_cgroups(cgroups: &cgroups::Cgroups, root: &mut rootfs::Plan, userns: bool) -> Result<Option<Vec<std::fs::File>>> {
    if userns {
        return cgroups.prepare().map(Some);
    }
    cgroups::fs::add_to(root, &cgroups.plan.dirs);
    Ok(None)
}

/// The image's layer directories, bottom first.
fn layers_of(store: &Store, image: &LocalImage) -> Vec<PathBuf> {
    image.diff_ids.iter().map(|d| store.layers().diff_path(d)).collect()
}

/// The container's overlay (layers top first over its upper dir), its
/// /etc files, and the ordered mount plan the child carries out. Also used
/// by the monitor, which starts a container from its record.
pub fn prepare_root(
    c: &Container,
    layers: &[PathBuf],
    spec: &RunSpec,
    idmap: Option<&IdMap>,
) -> Result<(MountPlan, rootfs::Plan, Vec<rootfs::Detach>)> {
    if layers.len() > assemble::MAX_LOWERS {
        return Err(Error::new(format!("start container {}", c.short_id()))
            .because(format!("{} layers; overlayfs stacks at most {}", layers.len(), assemble::MAX_LOWERS)));
    }
    let dirs = ContainerDirs::under(&c.dir);
    // Even with --userns=auto the overlay is mounted from the host's user
    // namespace (over idmapped layers), so it keeps trusted.* xattrs.
    let mut overlay = assemble::plan(layers, &dirs, false);
    overlay.volatile = spec.rm; // its upper dir goes when it ends
    let root = rootfs::plan(&rootfs::Input {
        overlay: &overlay,
        etc_dir: &c.dir,
        volumes: &spec.volumes,
        tmpfs: &spec.tmpfs,
        read_only: spec.read_only,
        userns: idmap.is_some(),
    });
    match idmap {
        Some(map) => {
            crate::runtime::userns::prepare_dirs(&dirs, map)?;
            let (root, detach) = rootfs::for_user_namespace(&root, &c.dir, &|p| p.is_dir());
            Ok((overlay, root, detach))
        }
        None => Ok((overlay, root, Vec::new())),
    }
}

/// The image, found or pulled as `--pull` says.
fn image_for(config: &Config, store: &Store, flags: &RunFlags) -> Result<LocalImage> {
    let policy = spec::parse_pull(flags.pull.as_deref())?;
    let quiet = PullOptions { quiet: true, ..Default::default() };
    match policy {
        PullPolicy::Always => pull(config, &flags.image, &quiet),
        PullPolicy::Never => LocalImage::load(store, &flags.image),
        PullPolicy::Missing => match LocalImage::find(store, &flags.image) {
            Ok(Some(img)) => Ok(img),
            Ok(None) => pull(config, &flags.image, &quiet),
            // A record whose blobs are damaged: pulling again repairs it.
            Err(e) => Err(e.hint("pull it again with --pull=always")),
        },
    }
}

/// Image config + flags → a validated RunSpec, with volume sources checked.
fn spec_for(image: &LocalImage, flags: &RunFlags, env_files: &[EnvFile]) -> Result<RunSpec> {
    spec::check_network(flags.network.as_deref())?;
    let host_env = |k: &str| std::env::var(k).ok();
    let spec = RunSpec::build(&ImageDefaults::from_oci(&image.config), flags, &host_env, env_files)?;
    for v in &spec.volumes {
        if !v.source.exists() {
            return Err(Error::new(format!("invalid -v \"{}:{}\"", v.source.display(), v.target.display()))
                .because(format!("host path {} does not exist", v.source.display())));
        }
    }
    Ok(spec)
}

fn id_map(spec: &RunSpec) -> Result<Option<IdMap>> {
    if spec.userns != Userns::Auto {
        return Ok(None);
    }
    let subuid = std::fs::read("/etc/subuid").ok();
    let subgid = std::fs::read("/etc/subgid").ok();
    IdMap::from_subid(subuid.as_deref(), subgid.as_deref()).map(Some)
}

/// Read `--env-file` paths (the CLI calls this; the spec stays pure).
pub fn read_env_files(paths: &[PathBuf]) -> Result<Vec<EnvFile>> {
    paths
        .iter()
        .map(|p| {
            std::fs::read(p)
                .map(|b| (p.clone(), b))
                .map_err(|e| Error::new(format!("invalid --env-file {}", p.display())).because(e))
        })
        .collect()
}

/// Removes the container on every path out of `run` unless told to keep
/// it: a failed setup leaves nothing behind, and --rm cleans up after exit.
struct Cleanup<'a> {
    store: &'a Store,
    container: &'a Container,
    cgroups: &'a cgroups::Cgroups,
    keep: bool,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if !self.keep {
            self.cgroups.remove();
            if let Ok(cs) = container::containers(self.store) {
                let _ = cs.remove(&self.container.id);
            }
        }
    }
}
