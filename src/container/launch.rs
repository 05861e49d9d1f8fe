//! The one path from a container's record to its started process, used by
//! a foreground `mini run` and by the monitor (`run -d`, `start`,
//! `restart`): the overlay over the image's layers, the root's mount plan,
//! the cgroups planned at create, then the runtime's clone and handshake.
//! Nothing here consults today's configuration or the caller's cgroup.

use std::os::fd::AsRawFd;
use std::path::PathBuf;

use mini_store::containers::{files, Container, ContainerConfig};
use mini_store::Store;

use super::generate;
use super::record::Record;
use crate::error::{Error, Result};
use crate::network::attach::{self, Attached, Who};
use crate::network::Mode;
use crate::runtime::net::NetNs;
use crate::runtime::overlay::{self, ContainerDirs, MountPlan};
use crate::runtime::plan::{self, Plan, RootFs};
use crate::runtime::process::{self, CgroupEntry, Launch, Started};
use crate::runtime::{rootfs, userns};

/// Start container `c` as its record says; returns once its command runs,
/// with its network, which the caller holds until it ends and then hands
/// to [`stop_network`]. On failure the runtime has reaped the child and
/// the network is released; the caller removes the record's cgroups.
pub fn start(store: &Store, c: &Container, cfg: &ContainerConfig, record: &Record) -> Result<(Started, Attached)> {
    let layers = layer_dirs(store, cfg)?;
    let network = start_network(store, c, cfg, record)?;
    let started = prepare(store, c, &layers, record, &network.ns).and_then(|p| {
        let cgroups = &record.container.cgroups;
        process::start(&Launch {
            plan: &p.plan,
            argv: &record.process.argv,
            interactive: record.process.interactive,
            overlay: &p.overlay,
            dir: &c.dir,
            cgroups: CgroupEntry::of(p.opened.as_deref(), cgroups),
            detach: &p.detach,
            net: &network.ns,
        })
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

/// What a start hands the runtime, besides the network.
struct Prepared {
    overlay: MountPlan,
    plan: Plan,
    /// Volumes mini clones for the child (`--userns=auto`).
    detach: Vec<rootfs::Detach>,
    /// The cgroups' join files, opened by mini (`--userns=auto`, where the
    /// child cannot open them); else the child opens them once made.
    opened: Option<Vec<std::fs::File>>,
}

/// The container's overlay (layers top first over its upper dir), its OCI
/// spec generated from the record and planned by the runtime, with the
/// engine's rewrites of the root plan: the /etc files kept in memory, and
/// under `--userns=auto` the root and volumes attached from mini's side.
fn prepare(store: &Store, c: &Container, layers: &[PathBuf], record: &Record, net: &NetNs) -> Result<Prepared> {
    let s = &record.process;
    if layers.len() > overlay::MAX_LOWERS {
        return Err(Error::new(format!("start container {}", c.short_id())).because(format!(
            "{} layers; overlayfs stacks at most {}",
            layers.len(),
            overlay::MAX_LOWERS
        )));
    }
    let dirs = dirs_of(c);
    // Even with --userns=auto the overlay is mounted from the host's user
    // namespace (over idmapped layers), so it keeps trusted.* xattrs; a
    // rootless store holds the user.* form.
    let mut overlay = overlay::plan(layers, &dirs, userxattr(store));
    // A --rm container's upper dir goes when it ends: no sync at unmount.
    overlay.volatile = record.container.rm;
    let etc_files = [files::HOSTNAME, files::HOSTS, files::RESOLV_CONF].map(|f| c.etc_file(f));
    let joined;
    let net = match net {
        NetNs::Host => generate::Net::Host,
        NetNs::Join(fd) => {
            joined = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
            generate::Net::Join(&joined)
        }
        _ => generate::Net::New,
    };
    let in_user_namespace = !crate::rootless::in_initial_namespace();
    let facts =
        generate::Facts { root: &overlay.target, etc_files: &etc_files, net, cgroupfs: true, in_user_namespace };
    let spec = generate::spec(s, &facts)?;
    let cgroups = &record.container.cgroups;
    let host = plan::Host { cgroups: &cgroups.plan.dirs, in_user_namespace, gid_mapped: &crate::rootless::gid_mapped };
    let mut plan = plan::plan(&spec, RootFs::Overlay(&overlay), &host)?;
    if !record.container.etc_in_memory.is_empty() {
        let contents: Vec<(String, Vec<u8>)> =
            record.container.etc_in_memory.iter().map(|(n, c)| (n.clone(), c.clone().into_bytes())).collect();
        plan.root = rootfs::etc_in_memory(&plan.root, &etc_files, &contents);
    }
    let (mut detach, mut opened) = (Vec::new(), None);
    if let Some(map) = &s.id_map {
        userns::prepare_dirs(&dirs, map)?;
        let (root, volumes) = rootfs::for_user_namespace(&plan.root, &c.dir, &|p| p.is_dir());
        (plan.root, detach) = (root, volumes);
        opened = Some(cgroups.prepare()?);
    }
    Ok(Prepared { overlay, plan, detach, opened })
}
