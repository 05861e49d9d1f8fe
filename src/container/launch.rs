//! The one path from a container's record to its started process, used by
//! a foreground `mini run` and by the monitor (`run -d`, `start`,
//! `restart`): the overlay over the image's layers, the root's mount plan,
//! the cgroups planned at create, then the runtime's clone and handshake.
//! Nothing here consults today's configuration or the caller's cgroup.

use std::path::PathBuf;

use mini_store::containers::{files, Container, ContainerConfig};
use mini_store::Store;

use super::record::Record;
use crate::error::{Error, Result};
use crate::network::attach::{self, Attached, Who};
use crate::network::Mode;
use crate::runtime::net::NetNs;
use crate::runtime::overlay::{self, ContainerDirs, MountPlan};
use crate::runtime::process::{self, CgroupEntry, Launch, Started};
use crate::runtime::{cgroups, rootfs, userns};

/// Start container `c` as its record says; returns once its command runs,
/// with its network, which the caller holds until it ends and then hands
/// to [`stop_network`]. On failure the runtime has reaped the child and
/// the network is released; the caller removes the record's cgroups.
pub fn start(store: &Store, c: &Container, cfg: &ContainerConfig, record: &Record) -> Result<(Started, Attached)> {
    let layers = layer_dirs(store, cfg)?;
    let spec = &record.process;
    let (overlay, mut root, detach) = prepare_root(store, c, &layers, record)?;
    let cgroups = &record.container.cgroups;
    let opened = prepare_cgroups(cgroups, &mut root, spec.id_map.is_some())?;
    let network = start_network(store, c, cfg, record)?;
    let started = process::start(&Launch {
        spec,
        overlay: &overlay,
        rootfs: &root,
        dir: &c.dir,
        cgroups: CgroupEntry::of(opened.as_deref(), cgroups),
        detach: &detach,
        net: &network.ns,
    });
    match started {
        Ok(mut s) => {
            let mut network = network;
            network.helper = s.helper.take();
            Ok((s, network))
        }
        Err(e) => {
            stop_network(store, c, network);
            Err(e)
        }
    }
}

/// The container's network namespace as its record says: for a network,
/// an endpoint on it; for `container:X`, X's namespace (X must run).
fn start_network(store: &Store, c: &Container, cfg: &ContainerConfig, record: &Record) -> Result<Attached> {
    match Mode::parse(&record.container.network)? {
        Mode::None => Ok(Attached::bare(NetNs::New(None))),
        Mode::Host => Ok(Attached::bare(NetNs::Host)),
        Mode::Stack(stack) => attach::user_mode(store, &c.id, stack, &record.container.net.ports),
        Mode::Container(key) => Ok(Attached::bare(NetNs::Join(namespace_of(store, &key)?))),
        Mode::Network(name) => {
            let who =
                Who { id: &c.id, name: &cfg.name, hostname: record.process.hostname(), opts: &record.container.net };
            attach::attach(store, &who, &name)
        }
    }
}

/// Release what [`start`] attached (the ports' sockets close with it).
pub fn stop_network(store: &Store, c: &Container, network: Attached) {
    if network.ns.plug().is_some() {
        if let Err(e) = attach::detach(store, &c.id) {
            eprintln!("mini: warning: {e}");
        }
    }
    drop(network);
}

/// The network namespace of running container `key`.
fn namespace_of(store: &Store, key: &str) -> Result<std::os::fd::OwnedFd> {
    let what = || format!("join the network of container {key}");
    let other = super::find(store, "join the network of container", key)?;
    let state = other.state().map_err(|e| Error::new(what()).because(e))?;
    let pid = state
        .pid
        .filter(|_| super::state::is_running(&state))
        .ok_or_else(|| Error::new(what()).because("it is not running").hint(format!("start it: mini start {key}")))?;
    std::fs::File::open(format!("/proc/{pid}/ns/net"))
        .map(std::os::fd::OwnedFd::from)
        .map_err(|e| Error::new(what()).because(e))
}

/// Whether overlay reads this store's markers from user.* xattrs.
pub fn userxattr(store: &Store) -> bool {
    store.form() == mini_store::XattrForm::User
}

/// Whether group id `gid` is mapped in mini's user namespace.
fn gid_mapped(gid: u32) -> bool {
    let map = std::fs::read_to_string("/proc/self/gid_map").unwrap_or_default();
    map.lines().any(|l| {
        let f: Vec<u32> = l.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        f.len() == 3 && gid >= f[0] && gid - f[0] < f[2]
    })
}

/// The overlay's directories of `c`, as the store names them.
pub fn dirs_of(c: &Container) -> ContainerDirs {
    ContainerDirs { upper: c.upper(), work: c.work(), rootfs: c.rootfs() }
}

/// The image's unpacked layer directories, bottom first, as config.json
/// lists their diff-ids.
pub fn layer_dirs(store: &Store, cfg: &ContainerConfig) -> Result<Vec<PathBuf>> {
    cfg.layers
        .iter()
        .map(|l| {
            let d: mini_store::Digest = l.parse().map_err(|e| Error::new(format!("layer {l}")).because(e))?;
            Ok(store.layers().diff_path(&d))
        })
        .collect()
}

/// The container's cgroups as its process will enter them, and their
/// cgroupfs view added to its root plan. Under a user namespace mini makes
/// them and opens their join files now (and adds no view: v1 cannot be
/// mounted there); otherwise it makes them after the clone, while the
/// child unshares its namespaces (see `runtime::process`).
fn prepare_cgroups(
    cgroups: &cgroups::Cgroups,
    root: &mut rootfs::Plan,
    userns: bool,
) -> Result<Option<Vec<std::fs::File>>> {
    if userns {
        return cgroups.prepare().map(Some);
    }
    cgroups::fs::add_to(root, &cgroups.plan.dirs);
    Ok(None)
}

/// The container's overlay (layers top first over its upper dir), its
/// /etc files, and the ordered mount plan the child carries out.
fn prepare_root(
    store: &Store,
    c: &Container,
    layers: &[PathBuf],
    record: &Record,
) -> Result<(MountPlan, rootfs::Plan, Vec<rootfs::Detach>)> {
    let spec = &record.process;
    if layers.len() > overlay::MAX_LOWERS {
        return Err(Error::new(format!("start container {}", c.short_id())).because(format!(
            "{} layers; overlayfs stacks at most {}",
            layers.len(),
            overlay::MAX_LOWERS
        )));
    }
    let dirs = dirs_of(c);
    let rootless = crate::rootless::current().is_some();
    // Even with --userns=auto the overlay is mounted from the host's user
    // namespace (over idmapped layers), so it keeps trusted.* xattrs; a
    // rootless store holds the user.* form.
    let mut overlay = overlay::plan(layers, &dirs, userxattr(store));
    // A --rm container's upper dir goes when it ends: no sync at unmount.
    overlay.volatile = record.container.rm;
    let etc_files = [files::HOSTNAME, files::HOSTS, files::RESOLV_CONF].map(|f| c.etc_file(f));
    let root = rootfs::plan(&rootfs::Input {
        overlay: &overlay,
        etc_files: &etc_files,
        volumes: &spec.volumes,
        tmpfs: &spec.tmpfs,
        read_only: spec.read_only,
        userns: spec.id_map.is_some(),
        bind_devices: spec.id_map.is_some() || rootless,
        devpts_gid5: spec.id_map.is_none() && (!rootless || gid_mapped(5)),
        bind_sysfs: rootless && Mode::parse(&record.container.network).is_ok_and(|m| m == Mode::Host),
        shm_size: spec.shm_size,
    });
    let root = if record.container.etc_in_memory.is_empty() {
        root
    } else {
        let contents: Vec<(String, Vec<u8>)> =
            record.container.etc_in_memory.iter().map(|(n, c)| (n.clone(), c.clone().into_bytes())).collect();
        rootfs::etc_in_memory(&root, &etc_files, &contents)
    };
    // Under --userns=auto the child cannot write the host's volume dirs:
    // volumes are not filled from the image there (docs/running.md).
    let fill = if spec.id_map.is_none() { spec.fill.as_slice() } else { &[] };
    let extras = rootfs::Extras { sysctls: &spec.sysctls, devices: &spec.devices, privileged: spec.privileged, fill };
    let root = rootfs::with_extras(root, &extras);
    match &spec.id_map {
        Some(map) => {
            userns::prepare_dirs(&dirs, map)?;
            let (root, detach) = rootfs::for_user_namespace(&root, &c.dir, &|p| p.is_dir());
            Ok((overlay, root, detach))
        }
        None => Ok((overlay, root, Vec::new())),
    }
}
