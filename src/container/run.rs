//! `mini run`, top to bottom, in the order bocker's `run` tells it: find the
//! image, decide the record, prepare the root, set up network and cgroup,
//! start the isolated process, wait, clean up. The detail is one call down.

use std::path::PathBuf;

use mini_store::containers::{Container, State};
use mini_store::Store;

use super::record::{ContainerOptions, Record};
use super::spec::{self, EnvFile, ImageDefaults, PullPolicy, RunFlags};
use super::{launch, state};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::image::local::LocalImage;
use crate::pull::{pull, PullOptions};
use crate::runtime::cgroups::Cgroups;
use crate::runtime::process::exit_code;
use crate::runtime::spec::Userns;
use crate::runtime::userns::IdMap;
use crate::sys::process as p;

/// Run a container in the foreground; returns its exit code.
pub fn run(config: &Config, flags: &RunFlags) -> Result<i32> {
    let store = Store::open(&config.root)?;
    super::sweep_stale(&store);

    // Decide everything, then make the container dir (prune waits meanwhile,
    // so the image's layers cannot vanish before the record names them).
    let gc_lock = store.lock_gc_shared()?;
    let what = decide(config, &store, flags)?;
    let (c, cfg) = super::create(
        &store,
        &what.image,
        &what.record,
        what.name.as_deref(),
        (&what.id, &state::created_by_me()),
        &what.etc,
    )?;
    drop(gc_lock);
    let cgroups = &what.record.container.cgroups;
    let mut cleanup = Cleanup { store: &store, container: &c, cgroups, keep: false };

    // Prepare the root, set up the network, make the cgroups, start the
    // isolated process: it joins its cgroups, mounts its root, brings up
    // its interfaces, sets its hostname, drops privileges and execs.
    let (started, network) = launch::start(&store, &c, &cfg, &what.record)?;
    if let Err(e) = state::running(&c, started.pid) {
        let _ = p::kill(started.pid, libc::SIGKILL);
        let _ = started.wait();
        launch::stop_network(&store, &c, network);
        return Err(e);
    }

    // Wait, then clean up: the network, then record how it ended, or
    // remove it (--rm).
    let code = exit_code(started.wait()?);
    launch::stop_network(&store, &c, network);
    let remove = what.record.container.rm && !c.is_restarting(); // read before the exit is recorded
    let oom_killed = code == 137 && cgroups.oom_killed();
    cgroups.remove();
    cleanup.keep = true;
    if remove {
        super::discard_in_background(&store, &c.id);
    } else {
        state::exited(&c, code, oom_killed)?;
    }
    Ok(code)
}

/// `mini run -d`: create the container, hand it to a monitor that starts
/// it (see `monitor`), and return its id once it runs.
pub fn run_detached(config: &Config, flags: &RunFlags) -> Result<String> {
    let id = create(config, flags)?;
    let store = Store::open(&config.root)?;
    super::lifecycle::start(config, &store, &id)?;
    Ok(id)
}

/// `mini create`: the container record and its dirs, nothing started.
pub fn create(config: &Config, flags: &RunFlags) -> Result<String> {
    let store = Store::open(&config.root)?;
    super::sweep_stale(&store);
    let _gc_lock = store.lock_gc_shared()?;
    let what = decide(config, &store, flags)?;
    super::create(&store, &what.image, &what.record, what.name.as_deref(), (&what.id, &State::created()), &what.etc)?;
    Ok(what.id)
}

/// Everything decided before anything is written.
struct Decided {
    image: LocalImage,
    id: String,
    name: Option<String>,
    record: Record,
    /// The /etc files (hostname, hosts, resolv.conf) to write.
    etc: Vec<(&'static str, String)>,
}

/// The image (pulled if the policy says so) and the whole record, in one
/// step: the process from the image config and the flags, the container
/// options, and the cgroups planned for the new id.
fn decide(config: &Config, store: &Store, flags: &RunFlags) -> Result<Decided> {
    let env_files = read_env_files(&flags.env_file)?;
    let image = image_for(config, store, flags)?;
    let host_env = |k: &str| std::env::var(k).ok();
    let mut process = spec::process(&ImageDefaults::from_oci(&image.config), flags, &host_env, &env_files)?;
    check_volume_sources(&process.volumes)?;
    let name = flags.name.as_deref().map(spec::check_name).transpose()?;
    process.id_map = id_map(process.userns)?;
    let id = mini_store::containers::new_id();
    process.set_hostname_default(&id[..12]);
    let image_config = image.config.config().as_ref();
    let exposed: Vec<String> =
        image_config.and_then(|c| c.exposed_ports().clone()).unwrap_or_default().into_iter().collect();
    let joined = |key: &str| super::joined_etc(store, key);
    let net = super::network::decide(config, store, flags, &exposed, process.hostname(), joined)?;
    if flags.network.as_deref().is_some_and(|n| n.starts_with("container:")) {
        process.hostname = None; // the joined container's, as its /etc files
    }
    let cgroups = Cgroups::for_container(&flags.resources, config.cgroup_parent.as_deref(), &id)?;
    let etc = crate::network::etc::files(process.hostname(), net.hosts, net.resolv).to_vec();
    let mut container = ContainerOptions {
        image_ref: flags.image.clone(),
        rm: flags.rm,
        network: net.mode,
        net: net.options,
        stop_signal: image_config.and_then(|c| c.stop_signal().clone()),
        resources: flags.resources.clone(),
        cgroups,
        etc_in_memory: Vec::new(),
    };
    let etc = if container.etc_fits_in_memory(process.id_map.is_some()) {
        container.etc_in_memory = etc.into_iter().map(|(n, c)| (n.to_string(), c)).collect();
        Vec::new() // no files in the container dir
    } else {
        etc
    };
    Ok(Decided { image, id, name, record: Record { process, container }, etc })
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

/// Every `-v` source must exist on the host.
fn check_volume_sources(volumes: &[crate::runtime::spec::Volume]) -> Result<()> {
    for v in volumes {
        if !v.source.exists() {
            return Err(Error::new(format!("invalid -v \"{}:{}\"", v.source.display(), v.target.display()))
                .because(format!("host path {} does not exist", v.source.display())));
        }
    }
    Ok(())
}

fn id_map(userns: Userns) -> Result<Option<IdMap>> {
    if userns != Userns::Auto {
        return Ok(None);
    }
    let subuid = std::fs::read("/etc/subuid").ok();
    let subgid = std::fs::read("/etc/subgid").ok();
    IdMap::from_subid(subuid.as_deref(), subgid.as_deref()).map(Some)
}

/// Read `--env-file` paths (the spec stays pure).
fn read_env_files(paths: &[PathBuf]) -> Result<Vec<EnvFile>> {
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
    cgroups: &'a Cgroups,
    keep: bool,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if !self.keep {
            self.cgroups.remove();
            if let Ok(cs) = super::containers(self.store) {
                let _ = cs.remove(&self.container.id);
            }
        }
    }
}
