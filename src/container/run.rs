//! `mini run`, top to bottom, in the order bocker's `run` tells it: find the
//! image, decide the record, prepare the root, set up network and cgroup,
//! start the isolated process, wait, clean up. The detail is one call down.

use std::path::{Path, PathBuf};

use mini_store::containers::{Container, State};
use mini_store::Store;

use super::record::{ContainerOptions, Record};
use super::spec::{self, EnvFile, ImageDefaults, PullPolicy, RunFlags};
use super::{launch, monitor, state};
use crate::config::Config;
use crate::container::process::{Device, Userns};
use crate::error::{Error, Result};
use crate::image::local::LocalImage;
use crate::network::Mode;
use crate::pull::{pull, PullOptions};
use crate::runtime::cgroups::Cgroups;
use crate::runtime::process::exit_code;
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
    // Its output is logged (and copied to ours), as Docker's: not for --rm
    // (the log would go with it), nor --log-driver none; with -t from the
    // terminal relay, else through pipes.
    let (process, options) = (&what.record.process, &what.record.container);
    let logged = !options.rm && !options.log.none;
    let logged_tty = logged && process.tty;
    let io = if logged && !process.tty { Some(monitor::foreground_pipes()?) } else { None };
    let launched = launch::start(&store, &c, &cfg, &what.record);
    if let Some(io) = &io {
        monitor::restore_stdio(io);
    }
    let (started, network) = launched?;
    if let Err(e) = state::running(&c, started.pid, 0) {
        let _ = p::kill(started.pid, libc::SIGKILL);
        let _ = started.wait();
        launch::stop_network(&store, &c, network);
        return Err(e);
    }

    // Wait, then clean up: the network, then record how it ended, or
    // remove it (--rm).
    let exit = match io {
        Some(io) => monitor::supervise_foreground(&c, started, io, &what.record),
        // -t: what the terminal shows is logged, as stdout (as Docker's).
        None if logged_tty => {
            let mut log = super::logs::Writer::with(&c.log(), &options.log).ok();
            let exit = started.wait_seeing(&mut |b| {
                if let Some(l) = log.as_mut() {
                    l.write(super::logs::Stream::Stdout, b)
                }
            });
            if let Some(l) = log.as_mut() {
                l.flush();
            }
            exit?
        }
        None => started.wait()?,
    };
    let code = exit_code(exit);
    launch::stop_network(&store, &c, network);
    let remove = what.record.container.rm && !c.is_restarting(); // read before the exit is recorded
    let oom_killed = code == 137 && cgroups.oom_killed();
    cgroups.remove();
    cleanup.keep = true;
    if remove {
        // No exited state to write for a container that goes: its events only.
        if oom_killed {
            super::events::container(&c, "oom", &[]);
        }
        super::events::container(&c, "die", &[("exitCode", &code.to_string())]);
        super::discard_in_background(&store, &c.id);
        super::volume::remove_anonymous(&store, &what.record.container.volumes);
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
    let restart = restart_policy(flags)?;
    let log = super::logs::LogConfig::of(config, flags.log_driver.as_deref(), &flags.log_opt)?;
    let image = image_for(config, store, flags)?;
    let health = super::health::check_of(&flags.health, image_healthcheck(store, &image).as_ref())?;
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
    let own_network = !matches!(crate::network::Mode::parse(&net.mode)?, Mode::Host | Mode::Container(_));
    process.sysctls = flags.sysctl.iter().map(|s| spec::parse_sysctl(s, own_network)).collect::<Result<_>>()?;
    process.devices = devices(flags)?;
    let mut cgroups = Cgroups::for_container(
        &flags.resources,
        config.cgroup_parent.as_deref(),
        &id,
        crate::rootless::current().is_some(),
    )?;
    let rules: Vec<String> = if flags.privileged {
        vec!["a".to_string()] // every device, as Docker's --privileged
    } else {
        process.devices.iter().map(|d| d.cgroup_rule()).collect()
    };
    cgroups.allow_devices(&rules);
    // Last, once every flag has been checked: named volumes are made here.
    let volumes = named_volumes(store, &mut process.volumes)?;
    let etc = crate::network::etc::files(process.hostname(), net.hosts, net.resolv).to_vec();
    let mut container = ContainerOptions {
        image_ref: flags.image.clone(),
        rm: flags.rm,
        restart,
        log,
        volumes,
        network: net.mode,
        net: net.options,
        stop_signal: image_config.and_then(|c| c.stop_signal().clone()),
        health,
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

/// The image's HEALTHCHECK (Docker's `config.Healthcheck`, which the OCI
/// config type does not carry), read from the stored config blob.
fn image_healthcheck(store: &Store, image: &LocalImage) -> Option<serde_json::Value> {
    let bytes = store.content().read(&image.id).ok()?;
    let mut v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Some(v["config"]["Healthcheck"].take()).filter(|h| h.is_object())
}

/// `--restart`, refused beside `--rm` as Docker does.
fn restart_policy(flags: &RunFlags) -> Result<super::restart::Policy> {
    let policy = flags.restart.as_deref().map(super::restart::Policy::parse).transpose()?.unwrap_or_default();
    if flags.rm && !policy.is_none() {
        return Err(Error::new("Conflicting options: --restart and --rm")
            .because("a container removed when it exits cannot be restarted")
            .hint("drop one of the two"));
    }
    Ok(policy)
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

/// The `--device` nodes as the host has them (and with `--privileged`
/// every device node of the host's /dev, as Docker gives them).
fn devices(flags: &RunFlags) -> Result<Vec<Device>> {
    let mut out = Vec::new();
    for text in &flags.device {
        let (source, target, perms) = spec::parse_device(text)?;
        let bad = |why: String| Error::new(format!("invalid --device \"{text}\"")).because(why);
        let meta = std::fs::metadata(&source).map_err(|e| bad(format!("{}: {e}", source.display())))?;
        let node = device_node(&meta).ok_or_else(|| bad(format!("{} is not a device node", source.display())))?;
        out.push(Device { source, target, kind: node.0, major: node.1, minor: node.2, perms });
    }
    if flags.privileged {
        let mut stack = vec![PathBuf::from("/dev")];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for e in entries.flatten() {
                let path = e.path();
                let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
                // mini makes its own pts, ptmx, shm and mqueue; the console is the host's terminal.
                let skip = ["/dev/pts", "/dev/ptmx", "/dev/shm", "/dev/mqueue", "/dev/console"]
                    .iter()
                    .any(|s| path == Path::new(s));
                if skip || out.iter().any(|d: &Device| d.target == path) {
                    continue;
                }
                if meta.is_dir() {
                    stack.push(path);
                } else if let Some((kind, major, minor)) = device_node(&meta) {
                    out.push(Device { source: path.clone(), target: path, kind, major, minor, perms: "rwm".into() });
                }
            }
        }
        out.sort_by(|a, b| a.target.cmp(&b.target));
    }
    Ok(out)
}

/// (kind, major, minor) of a character or block device.
fn device_node(meta: &std::fs::Metadata) -> Option<(char, u32, u32)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let kind = match meta.file_type() {
        t if t.is_char_device() => 'c',
        t if t.is_block_device() => 'b',
        _ => return None,
    };
    let rdev = meta.rdev();
    Some((kind, libc::major(rdev), libc::minor(rdev)))
}

/// Named (relative source) and anonymous (empty source) volumes: made if
/// missing and bound from their data directory; their names.
fn named_volumes(store: &Store, volumes: &mut [crate::container::process::Volume]) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for v in volumes.iter_mut().filter(|v| v.source.is_relative()) {
        let name = v.source.to_str().filter(|n| !n.is_empty()).map(str::to_string);
        let (name, data) = super::volume::for_container(store, name.as_deref())?;
        v.source = data;
        names.push(name);
    }
    Ok(names)
}

/// Every `-v` source must exist on the host (volume names are made).
fn check_volume_sources(volumes: &[crate::container::process::Volume]) -> Result<()> {
    for v in volumes.iter().filter(|v| v.source.is_absolute()) {
        let bad = || Error::new(format!("invalid -v \"{}:{}\"", v.source.display(), v.target.display()));
        match std::fs::metadata(&v.source) {
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(bad().because(format!("host path {} cannot be reached: {e}", v.source.display())))
            }
            Err(_) => return Err(bad().because(format!("host path {} does not exist", v.source.display()))),
            // Rootless mini reads with the user's own rights: a path the
            // user cannot read would only fail inside the container.
            Ok(_) if crate::rootless::current().is_some() && !crate::sys::fs::readable(&v.source) => {
                return Err(bad()
                    .because(format!("host path {} is not readable by you", v.source.display()))
                    .hint("rootless containers see host files with your own permissions"))
            }
            Ok(_) => {}
        }
    }
    Ok(())
}

fn id_map(userns: Userns) -> Result<Option<IdMap>> {
    if userns != Userns::Auto {
        return Ok(None);
    }
    if crate::rootless::current().is_some() {
        return Err(Error::new("invalid --userns auto")
            .because("rootless containers already run in your own user namespace, mapped from /etc/subuid")
            .hint("drop --userns"));
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
                let _ = super::events::destroying(self.container, || cs.remove(&self.container.id));
            }
        }
    }
}
