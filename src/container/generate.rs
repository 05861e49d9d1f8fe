//! A container's record → the OCI runtime `Spec` the runtime runs, built
//! in memory at every start (as Docker's daemon and Podman's spec
//! generator build theirs): Docker's defaults (mounts, masked and
//! read-only paths, capabilities, seccomp) with the flags the record
//! keeps. The runtime (`runtime::plan`) knows nothing of images, the store
//! or mini's flags; what an OCI spec has no field for travels in mini's
//! annotations (`runtime::plan::{INIT, USER, FILL}`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use oci_spec::runtime::{
    LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDeviceBuilder, LinuxDeviceType, LinuxIdMappingBuilder,
    LinuxNamespaceBuilder, LinuxNamespaceType, Mount, MountBuilder, PosixRlimitBuilder, PosixRlimitType,
    ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use crate::container::process::{RunSpec, SeccompChoice};
use crate::error::{Error, Result};
use crate::runtime::plan::{FILL, INIT, USER};
use crate::runtime::rootfs::{MASKED_DIRS, MASKED_FILES, READONLY_PATHS};
use crate::runtime::security;

/// What the spec needs beyond the process description.
pub struct Facts<'a> {
    /// Where the container's root is mounted.
    pub root: &'a Path,
    /// Its own /etc files (hostname, hosts, resolv.conf) on the host.
    pub etc_files: &'a [PathBuf],
    /// Its network namespace: a new one, the host's (None), or one to
    /// join at this path.
    pub net: Net<'a>,
    /// It has a cgroup view to mount (Docker's /sys/fs/cgroup).
    pub cgroupfs: bool,
    /// mini runs in a user namespace (rootless).
    pub in_user_namespace: bool,
}

#[derive(Clone, Copy)]
pub enum Net<'a> {
    New,
    Host,
    Join(&'a Path),
}

fn built<T, E: std::fmt::Display>(r: std::result::Result<T, E>) -> Result<T> {
    r.map_err(|e| Error::new("generate the container's OCI runtime spec").because(e))
}

/// The spec for running `s`.
pub fn spec(s: &RunSpec, facts: &Facts) -> Result<Spec> {
    let caps = security::capabilities_of(s.capabilities.as_deref())?;
    // oci-spec spells them without the CAP_ prefix.
    let names = caps
        .iter()
        .map(|c| {
            let name = c.to_string();
            oci_spec::runtime::Capability::from_str(name.trim_start_matches("CAP_")).map_err(|_| {
                Error::new("generate the container's OCI runtime spec").because(format!("unknown capability {name}"))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let capabilities = built(
        LinuxCapabilitiesBuilder::default()
            .bounding(names.iter().copied().collect::<std::collections::HashSet<_>>())
            .effective(names.iter().copied().collect::<std::collections::HashSet<_>>())
            .permitted(names.iter().copied().collect::<std::collections::HashSet<_>>())
            .build(),
    )?;
    let rlimits = s
        .rlimits
        .iter()
        .map(|r| {
            let typ = PosixRlimitType::from_str(&format!("RLIMIT_{}", r.name.to_ascii_uppercase()))
                .map_err(|_| Error::new(format!("--ulimit {}", r.name)).because("not a resource this runtime knows"))?;
            built(PosixRlimitBuilder::default().typ(typ).soft(r.soft).hard(r.hard).build())
        })
        .collect::<Result<Vec<_>>>()?;
    // The user is resolved inside the container (USER); the ids here are
    // root's until then.
    let user = built(UserBuilder::default().uid(0u32).gid(0u32).build())?;
    let process = built(
        ProcessBuilder::default()
            .terminal(s.tty)
            .user(user)
            // The spec's strings are UTF-8: mini passes argv byte for byte
            // itself (`container::launch`).
            .args(s.argv.iter().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>())
            .env(s.env.clone())
            .cwd(s.workdir.clone())
            .capabilities(capabilities)
            .rlimits(rlimits)
            .no_new_privileges(s.no_new_privs)
            .build(),
    )?;
    let mut annotations = HashMap::from([(USER.to_string(), s.user.to_string())]);
    if s.init {
        annotations.insert(INIT.to_string(), "true".to_string());
    }
    // Under --userns=auto the child cannot write the host's volume dirs:
    // volumes are not filled from the image there (docs/running.md).
    if !s.fill.is_empty() && s.id_map.is_none() {
        annotations.insert(FILL.to_string(), serde_json::to_string(&s.fill).unwrap_or_default());
    }
    built(
        SpecBuilder::default()
            .version(crate::oci::OCI_VERSION)
            .root(built(RootBuilder::default().path(facts.root).readonly(s.read_only).build())?)
            .hostname(s.hostname().to_string())
            .process(process)
            .mounts(mounts(s, facts)?)
            .linux(linux(s, facts)?)
            .annotations(annotations)
            .build(),
    )
}

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount> {
    built(
        MountBuilder::default()
            .destination(destination)
            .typ(typ)
            .source(source)
            .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
            .build(),
    )
}

/// Docker's mounts, then the /etc files, the volumes and the tmpfs mounts.
fn mounts(s: &RunSpec, facts: &Facts) -> Result<Vec<Mount>> {
    let sysfs = if s.privileged { "rw" } else { "ro" };
    let shm = format!("size={}k", s.shm_size.map_or(65536, |b| b.div_ceil(1024)));
    let mut out = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", sysfs])?,
    ];
    if facts.cgroupfs {
        out.push(mount("/sys/fs/cgroup", "cgroup", "cgroup", &["ro", "nosuid", "noexec", "nodev"])?);
    }
    out.extend([
        mount("/dev", "tmpfs", "tmpfs", &["nosuid", "strictatime", "mode=755", "size=65536k"])?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        )?,
        mount("/dev/shm", "tmpfs", "shm", &["nosuid", "noexec", "nodev", "mode=1777", &shm])?,
        mount("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"])?,
    ]);
    let bind = |source: &Path, target: &Path, read_only: bool| -> Result<Mount> {
        let mut options = vec!["rbind".to_string()];
        if read_only {
            options.push("ro".into());
        }
        built(MountBuilder::default().destination(target).typ("bind").source(source).options(options).build())
    };
    for source in facts.etc_files {
        // --read-only covers them too, as Docker's.
        let target = Path::new("/etc").join(source.file_name().unwrap_or_default());
        out.push(bind(source, &target, s.read_only)?);
    }
    for v in &s.volumes {
        out.push(bind(&v.source, &v.target, v.read_only)?);
    }
    // In a user namespace mknod is refused: `--device` nodes are bound
    // from the host (as rootless Podman does); otherwise they are made
    // (`linux.devices`).
    if facts.in_user_namespace || s.id_map.is_some() {
        for d in &s.devices {
            out.push(bind(&d.source, &d.target, false)?);
        }
    }
    for t in &s.tmpfs {
        let mut options: Vec<String> = ["nosuid", "nodev", "noexec"].map(String::from).to_vec();
        options.extend(t.options.iter().flat_map(|o| o.split(',')).filter(|o| !o.is_empty()).map(String::from));
        out.push(built(
            MountBuilder::default().destination(&t.target).typ("tmpfs").source("tmpfs").options(options).build(),
        )?);
    }
    Ok(out)
}

fn linux(s: &RunSpec, facts: &Facts) -> Result<oci_spec::runtime::Linux> {
    let namespace = |typ: LinuxNamespaceType, path: Option<&Path>| {
        let b = LinuxNamespaceBuilder::default().typ(typ);
        built(match path {
            Some(p) => b.path(p).build(),
            None => b.build(),
        })
    };
    let mut namespaces = vec![
        namespace(LinuxNamespaceType::Pid, None)?,
        namespace(LinuxNamespaceType::Ipc, None)?,
        namespace(LinuxNamespaceType::Uts, None)?,
        namespace(LinuxNamespaceType::Mount, None)?,
        namespace(LinuxNamespaceType::Cgroup, None)?,
    ];
    match facts.net {
        Net::New => namespaces.push(namespace(LinuxNamespaceType::Network, None)?),
        Net::Join(path) => namespaces.push(namespace(LinuxNamespaceType::Network, Some(path))?),
        Net::Host => {}
    }
    let mut b = LinuxBuilder::default();
    if let Some(map) = &s.id_map {
        namespaces.push(namespace(LinuxNamespaceType::User, None)?);
        let m = |host_id: u32| {
            let size = crate::runtime::userns::RANGE;
            built(LinuxIdMappingBuilder::default().container_id(0u32).host_id(host_id).size(size).build())
        };
        b = b.uid_mappings(vec![m(map.uid_base)?]).gid_mappings(vec![m(map.gid_base)?]);
    }
    b = b.namespaces(namespaces);
    if !s.privileged {
        let masked: Vec<String> = MASKED_FILES.iter().chain(MASKED_DIRS.iter()).map(|p| p.to_string()).collect();
        b = b.masked_paths(masked).readonly_paths(READONLY_PATHS.iter().map(|p| p.to_string()).collect::<Vec<_>>());
    }
    if let Some(profile) = seccomp_of(s)? {
        b = b.seccomp(profile);
    }
    if !s.sysctls.is_empty() {
        b = b.sysctl(s.sysctls.iter().cloned().collect::<HashMap<_, _>>());
    }
    if !s.devices.is_empty() && !facts.in_user_namespace && s.id_map.is_none() {
        let devices = s
            .devices
            .iter()
            .map(|d| {
                let typ = if d.kind == 'b' { LinuxDeviceType::B } else { LinuxDeviceType::C };
                built(
                    LinuxDeviceBuilder::default()
                        .path(&d.target)
                        .typ(typ)
                        .major(i64::from(d.major))
                        .minor(i64::from(d.minor))
                        .file_mode(0o666u32)
                        .build(),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        b = b.devices(devices);
    }
    // The builder starts from runc's defaults: what mini does not set
    // goes.
    let mut linux = built(b.build())?;
    linux.set_resources(None);
    if s.privileged {
        linux.set_masked_paths(None).set_readonly_paths(None);
    }
    Ok(linux)
}

/// The container's seccomp profile: none with `--privileged` or
/// `seccomp=unconfined`, the file's with `seccomp=FILE`, else mini's
/// default (Docker's, for the container's capabilities).
pub fn seccomp_of(s: &RunSpec) -> Result<Option<oci_spec::runtime::LinuxSeccomp>> {
    if s.privileged {
        return Ok(None);
    }
    match &s.seccomp {
        SeccompChoice::Unconfined => Ok(None),
        SeccompChoice::Profile(p) => Ok(Some(p.clone())),
        SeccompChoice::Default => {
            let caps = security::capabilities_of(s.capabilities.as_deref())?;
            super::seccomp::default_profile(&caps).map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::process::{Device, Tmpfs, Volume};
    use crate::container::spec::{process, ImageDefaults, RunFlags};
    use crate::runtime::overlay::{self, ContainerDirs, MountPlan};
    use crate::runtime::plan::{self, Plan, RootFs};
    use crate::runtime::rootfs::{self, Op};
    use crate::runtime::userns::IdMap;
    use crate::sys::flags::*;
    use crate::sys::{FakeSys, Kind};

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    fn run_spec(f: RunFlags) -> RunSpec {
        let image = ImageDefaults { cmd: vec!["sh".into()], ..Default::default() };
        let mut s = process(&image, &RunFlags { image: "img".into(), ..f }, &|_| None, &[]).unwrap();
        s.set_hostname_default("c1");
        s
    }

    fn overlay() -> MountPlan {
        overlay::plan(&[p("/s/l/a"), p("/s/l/b")], &ContainerDirs::under(Path::new("/c")), false)
    }

    fn etc() -> Vec<PathBuf> {
        ["hostname", "hosts", "resolv.conf"].iter().map(|f| Path::new("/c").join(f)).collect()
    }

    /// `s` generated and planned as `container::launch` does, for root
    /// (or rootless: `in_userns`), a new network namespace, no cgroups.
    fn planned(s: &RunSpec, in_userns: bool) -> (Spec, Plan) {
        let (ov, etc) = (overlay(), etc());
        let facts =
            Facts { root: &ov.target, etc_files: &etc, net: Net::New, cgroupfs: true, in_user_namespace: in_userns };
        let spec = spec(s, &facts).unwrap();
        let host = plan::Host { cgroups: &[], in_user_namespace: in_userns, gid_mapped: &|_| false };
        let plan = plan::plan(&spec, RootFs::Overlay(&ov), &host).unwrap();
        (spec, plan)
    }

    fn at(ops: &[Op], f: &dyn Fn(&Op) -> bool) -> usize {
        ops.iter().position(f).unwrap_or_else(|| panic!("not in {ops:#?}"))
    }

    #[test]
    fn the_spec_carries_the_process_dockers_defaults_and_mini_s_annotations() {
        let s = run_spec(RunFlags { user: Some("app:staff".into()), init: true, tty: true, ..Default::default() });
        let (spec, plan) = planned(&s, false);
        let pr = spec.process().as_ref().unwrap();
        assert_eq!(pr.args().as_deref(), Some(&["sh".to_string()][..]));
        assert_eq!(pr.terminal(), Some(true));
        let bounding = pr.capabilities().as_ref().unwrap().bounding().clone().unwrap();
        assert_eq!(bounding.len(), 14, "Docker's 14");
        assert_eq!(spec.hostname().as_deref(), Some("c1"));
        let notes = spec.annotations().clone().unwrap();
        assert_eq!((notes[USER].as_str(), notes[INIT].as_str()), ("app:staff", "true"));
        // The runtime reads them back: the user by name, mini's init.
        assert_eq!(plan.process.user_by_name.as_ref().map(|u| u.to_string()).as_deref(), Some("app:staff"));
        assert!(plan.process.init && plan.process.terminal);
        assert_eq!(plan.process.caps.bounding.len(), 14);
        assert_eq!(plan.hostname.as_deref(), Some("c1"));
        assert!(plan.uid_map.is_none() && plan.seccomp.is_some());
        let masked = spec.linux().as_ref().unwrap().masked_paths().clone().unwrap();
        for path in ["/proc/kcore", "/proc/keys", "/proc/acpi", "/sys/firmware", "/proc/scsi"] {
            assert!(masked.iter().any(|m| m == path), "{path} masked");
        }
    }

    #[test]
    fn plan_orders_root_first_pivot_last() {
        let mut s = run_spec(RunFlags { read_only: true, ..Default::default() });
        s.volumes = vec![Volume { source: p("/data"), target: p("/mnt"), read_only: true }];
        s.tmpfs = vec![Tmpfs { target: p("/run"), options: Some("size=1m,exec".into()) }];
        let (_, plan) = planned(&s, false);
        let ops = &plan.root.ops;
        assert_eq!(plan.root.root, p("/c/rootfs"));
        assert_eq!(ops[0], Op::MakePrivate);
        assert_eq!(ops[1], Op::Overlay(overlay()));
        assert!(matches!(&ops[2], Op::Mount { fstype: "proc", no_symlinks: true, .. }));
        let pos = |want: &Op| at(ops, &|o| o == want);
        let vol = pos(&Op::Bind { source: p("/data"), target: p("/mnt"), kind: Kind::Dir, ro_flags: Some(RDONLY) });
        let pivot = pos(&Op::PivotRoot);
        assert!(vol < pos(&Op::Mask(p("/proc/kcore"))));
        assert!(pos(&Op::ReadOnly(p("/proc/sys"))) < pivot);
        assert_eq!(ops.last(), Some(&Op::RootReadOnly));
        assert_eq!(pivot, ops.len() - 2);
        // --read-only: the /etc files are read-only too.
        let hosts =
            Op::Bind { source: p("/c/hosts"), target: p("/etc/hosts"), kind: Kind::Dir, ro_flags: Some(RDONLY) };
        assert!(pos(&hosts) < vol);
        let dev = at(ops, &|o| matches!(o, Op::Mount { target, .. } if target == Path::new("/dev")));
        assert!(pos(&Op::Device { path: p("/dev/null"), major: 1, minor: 3, block: false }) > dev);
        // --tmpfs options: flags and data apart; exec lifts Docker's noexec.
        let run = at(ops, &|o| matches!(o, Op::Mount { target, .. } if target == Path::new("/run")));
        assert!(matches!(&ops[run], Op::Mount { flags, data: Some(d), .. } if flags & NOEXEC == 0 && d == "size=1m"));
        // /dev/shm shows "shm" as its source, as Docker's.
        assert!(ops.iter().any(|o| matches!(o, Op::Mount { source: Some(s), target, .. }
            if s == "shm" && target == Path::new("/dev/shm"))));
    }

    #[test]
    fn devices_sysctls_fill_and_privileged() {
        let mut s = run_spec(RunFlags::default());
        let fuse = Device {
            source: p("/dev/fuse"),
            target: p("/dev/myfuse"),
            kind: 'c',
            major: 10,
            minor: 229,
            perms: "rwm".into(),
        };
        s.devices = vec![fuse.clone()];
        s.sysctls = vec![("net.ipv4.ip_forward".into(), "1".into())];
        s.volumes = vec![Volume { source: p("/s/volumes/db/_data"), target: p("/var/db"), read_only: false }];
        s.fill = vec![p("/var/db")];
        let (_, plan) = planned(&s, false);
        let ops = &plan.root.ops;
        let node = at(ops, &|o| *o == Op::Device { path: p("/dev/myfuse"), major: 10, minor: 229, block: false });
        assert!(node > at(ops, &|o| matches!(o, Op::Mount { fstype: "devpts", .. })));
        let sysctl =
            at(ops, &|o| matches!(o, Op::Sysctl { key, value } if key == "net.ipv4.ip_forward" && value == "1"));
        assert!(sysctl < at(ops, &|o| *o == Op::ReadOnly(p("/proc/sys"))));
        assert!(sysctl > at(ops, &|o| matches!(o, Op::Mount { fstype: "proc", .. })));
        // A volume to fill from the image: right before its bind.
        let fill = at(ops, &|o| *o == Op::Fill { source: p("/s/volumes/db/_data"), target: p("/var/db") });
        assert!(matches!(&ops[fill + 1], Op::Bind { target, .. } if target == Path::new("/var/db")));
        // Rootless: the node is bound from the host instead.
        let (_, rootless) = planned(&s, true);
        let bind = Op::Bind { source: p("/dev/fuse"), target: p("/dev/myfuse"), kind: Kind::Dir, ro_flags: None };
        assert!(rootless.root.ops.contains(&bind) && !rootless.root.ops.iter().any(|o| matches!(o, Op::Device { .. })));
        // Privileged: nothing masked or read-only, /sys writable, no filter.
        let (_, plan) = planned(&run_spec(RunFlags { privileged: true, ..Default::default() }), false);
        assert!(!plan.root.ops.iter().any(|o| matches!(o, Op::Mask(_) | Op::ReadOnly(_))));
        assert!(plan
            .root
            .ops
            .iter()
            .any(|o| matches!(o, Op::Mount { fstype: "sysfs", flags, .. } if flags & RDONLY == 0)));
        assert!(plan.seccomp.is_none());
    }

    #[test]
    fn the_seccomp_profile_follows_the_flags() {
        let default = run_spec(RunFlags::default());
        let admin = run_spec(RunFlags { cap_add: vec!["SYS_ADMIN".into()], ..Default::default() });
        let names = |s: &RunSpec| -> Vec<String> {
            seccomp_of(s).unwrap().unwrap().syscalls().iter().flatten().flat_map(|r| r.names().clone()).collect()
        };
        assert!(!names(&default).contains(&"mount".to_string()));
        assert!(names(&admin).contains(&"mount".to_string()), "CAP_SYS_ADMIN opens mount, as in Docker's profile");
        let privileged = run_spec(RunFlags { privileged: true, ..Default::default() });
        assert_eq!(seccomp_of(&privileged).unwrap(), None);
        let mut unconfined = default.clone();
        unconfined.seccomp = SeccompChoice::Unconfined;
        assert_eq!(seccomp_of(&unconfined).unwrap(), None);
        let own: oci_spec::runtime::LinuxSeccomp =
            serde_json::from_str(r#"{"defaultAction": "SCMP_ACT_LOG"}"#).unwrap();
        let mut given = default.clone();
        given.seccomp = SeccompChoice::Profile(own.clone());
        assert_eq!(seccomp_of(&given).unwrap(), Some(own));
        // The record keeps the choice.
        let back: RunSpec = serde_json::from_str(&serde_json::to_string(&given).unwrap()).unwrap();
        assert_eq!(back.seccomp, given.seccomp);
    }

    /// The /etc files of a --rm container: written into /dev (the tmpfs
    /// mounted before), bound where the host files were, unlinked at once,
    /// all before the volumes; everything else as it was.
    #[test]
    fn etc_in_memory_writes_binds_and_unlinks_in_place_of_host_files() {
        let mut s = run_spec(RunFlags { read_only: true, ..Default::default() });
        s.volumes = vec![Volume { source: p("/data"), target: p("/dev"), read_only: false }];
        let (_, plan) = planned(&s, false);
        let before = plan.root;
        let contents: Vec<(String, Vec<u8>)> =
            [("hostname", "h\n"), ("hosts", "127.0.0.1\tlocalhost\n"), ("resolv.conf", "")]
                .iter()
                .map(|(n, c)| (n.to_string(), c.as_bytes().to_vec()))
                .collect();
        let after = rootfs::etc_in_memory(&before, &etc(), &contents);
        assert_eq!(after.root, before.root);
        assert_eq!(after.ops.len(), before.ops.len() + 6);
        let pos = |op: &Op| at(&after.ops, &|o| o == op);
        let dev =
            at(&after.ops, &|o| matches!(o, Op::Mount { fstype: "tmpfs", target, .. } if target == Path::new("/dev")));
        let vol = pos(&Op::Bind { source: p("/data"), target: p("/dev"), kind: Kind::Dir, ro_flags: None });
        for (name, content) in &contents {
            let staged = p(&format!("/dev/.mini-etc-{name}"));
            let w = pos(&Op::WriteFile { path: staged.clone(), content: content.clone() });
            let source = before.root.join(staged.strip_prefix("/").unwrap());
            let target = p("/etc").join(name);
            let b = pos(&Op::Bind { source, target, kind: Kind::Dir, ro_flags: Some(RDONLY) });
            let r = pos(&Op::RemoveFile(staged));
            assert!(dev < w && w + 1 == b && b + 1 == r && r < vol, "{name}: {:?}", &after.ops[w..=r]);
        }
        assert!(!after.ops.iter().any(|o| matches!(o, Op::Bind { source, .. } if etc().contains(source))));
        // Executed: the calls in that order, nothing on the host's disk.
        let sys = FakeSys::default();
        rootfs::execute(&after, &sys, &[]).unwrap();
        let log = sys.calls().join("\n");
        assert!(log.contains("write /c/rootfs/dev/.mini-etc-hosts (20 bytes)"), "{log}");
        assert!(log.contains("remove /c/rootfs/dev/.mini-etc-hosts"), "{log}");
    }

    #[test]
    fn in_a_user_namespace_the_root_is_attached_volumes_cloned_and_devpts_has_no_gid() {
        let mut s = run_spec(RunFlags::default());
        s.id_map = Some(IdMap { uid_base: 200000, gid_base: 300000 });
        s.volumes = vec![Volume { source: p("/data"), target: p("/mnt"), read_only: false }];
        let (spec, plan) = planned(&s, false);
        assert_eq!(plan.uid_map.as_deref(), Some("0 200000 65536\n"));
        assert_eq!(plan.gid_map.as_deref(), Some("0 300000 65536\n"));
        let namespaces = spec.linux().as_ref().unwrap().namespaces().clone().unwrap();
        assert!(namespaces.iter().any(|n| n.typ() == LinuxNamespaceType::User));
        assert_eq!(plan.root.ops[1], Op::AttachRoot { target: p("/c/rootfs") });
        let pts = plan.root.ops.iter().find_map(|o| match o {
            Op::Mount { fstype: "devpts", data, .. } => data.clone(),
            _ => None,
        });
        assert_eq!(pts.as_deref(), Some("newinstance,ptmxmode=0666,mode=0620"));
        let err = rootfs::execute(&plan.root, &FakeSys::new(), &[]).unwrap_err().to_string();
        assert!(err.contains("attach the container's root: mini did not prepare it"), "{err}");
        // Rewritten for a child started in the container dir.
        let (root, detach) = rootfs::for_user_namespace(&plan.root, Path::new("/c"), &|p| p == Path::new("/data"));
        assert_eq!(root.ops[1], Op::AttachRoot { target: p("rootfs") });
        let hosts = Op::Bind { source: p("hosts"), target: p("/etc/hosts"), kind: Kind::Dir, ro_flags: None };
        assert!(root.ops.contains(&hosts));
        let null = Op::Bind { source: p("/dev/null"), target: p("/dev/null"), kind: Kind::File, ro_flags: None };
        assert!(root.ops.contains(&null));
        assert!(root.ops.contains(&Op::AttachVolume { index: 1, target: p("/mnt"), kind: Kind::Dir }));
        assert_eq!(detach, [rootfs::Detach { source: p("/data"), read_only: false }]);
    }

    #[test]
    fn host_and_joined_networks_and_the_executor_stopping_at_the_first_failure() {
        let s = run_spec(RunFlags::default());
        let (ov, etc) = (overlay(), etc());
        let net_of = |net: Net| {
            let facts = Facts { root: &ov.target, etc_files: &etc, net, cgroupfs: false, in_user_namespace: false };
            let spec = spec(&s, &facts).unwrap();
            let ns = spec.linux().as_ref().unwrap().namespaces().clone().unwrap();
            ns.into_iter().find(|n| n.typ() == LinuxNamespaceType::Network).map(|n| n.path().clone())
        };
        assert_eq!(net_of(Net::New), Some(None));
        assert_eq!(net_of(Net::Host), None);
        assert_eq!(net_of(Net::Join(Path::new("/proc/self/fd/7"))), Some(Some(p("/proc/self/fd/7"))));
        let (_, plan) = planned(&s, false);
        let sys = FakeSys::failing_on("mount sysfs");
        let err = rootfs::execute(&plan.root, &sys, &[]).unwrap_err().to_string();
        assert!(err.contains("mount sysfs /c/rootfs/sys"), "{err}");
        assert!(!sys.calls().iter().any(|c| c.starts_with("pivot_root")));
    }
}
