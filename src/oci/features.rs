//! The documents mini-runc answers with (`features`, `spec`) and `update`,
//! which rewrites a running container's limits with the same writes
//! `create` made.

use std::path::Path;

use oci_spec::runtime::{LinuxPids, LinuxResources};

use super::state::{Root, Status};
use crate::error::{Error, Result};
use crate::runtime::rootfs;

/// The architectures a profile's rules apply to here (see
/// `seccomp`: compat ones get the default action at most).
fn seccomp_archs() -> Vec<&'static str> {
    if cfg!(target_arch = "x86_64") {
        vec!["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32"]
    } else if cfg!(target_arch = "aarch64") {
        vec!["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    } else {
        Vec::new()
    }
}

/// runtime-spec's features document: what config.json may ask of us.
pub fn document() -> serde_json::Value {
    let caps: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    let mut caps = caps;
    caps.sort();
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": super::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "poststart", "poststop"],
        "mountOptions": ["bind", "rbind", "ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec",
            "strictatime", "relatime", "noatime", "private", "rprivate", "shared", "rshared",
            "slave", "rslave", "unbindable", "runbindable"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                    "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": seccomp_archs(),
                "knownFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                    "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                    "SECCOMP_FILTER_FLAG_LOG"],
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}},
        },
        "annotations": {"io.github.mini.runtime": "mini-runc"},
    })
}

/// `update`'s own flags, each overriding its field of `--resources`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct UpdateFlags {
    #[arg(long)]
    pub memory: Option<i64>,
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<i64>,
    #[arg(long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
}

/// `update`'s flags over the `--resources` document, as runc merges them.
pub fn merge_update_flags(r: &mut LinuxResources, f: &UpdateFlags) {
    if f.memory.is_some() || f.memory_swap.is_some() {
        let mut m = r.memory().unwrap_or_default();
        if f.memory.is_some() {
            m.set_limit(f.memory);
        }
        if f.memory_swap.is_some() {
            m.set_swap(f.memory_swap);
        }
        r.set_memory(Some(m));
    }
    if f.cpu_shares.is_some() || f.cpu_quota.is_some() || f.cpu_period.is_some() || f.cpuset_cpus.is_some() {
        let mut c = r.cpu().clone().unwrap_or_default();
        if f.cpu_shares.is_some() {
            c.set_shares(f.cpu_shares);
        }
        if f.cpu_quota.is_some() {
            c.set_quota(f.cpu_quota);
        }
        if f.cpu_period.is_some() {
            c.set_period(f.cpu_period);
        }
        if f.cpuset_cpus.is_some() {
            c.set_cpus(f.cpuset_cpus.clone());
        }
        r.set_cpu(Some(c));
    }
    if let Some(limit) = f.pids_limit {
        let mut p = LinuxPids::default();
        p.set_limit(limit);
        r.set_pids(Some(p));
    }
}

/// Write new limits into a running container's cgroups.
pub fn update(root: &Root, id: &str, resources: &LinuxResources) -> Result<()> {
    let r = root.load(id)?;
    let what = || format!("update container {id}");
    let status = r.status(&root.dir_of(id));
    if status == Status::Stopped {
        return Err(Error::new(what()).because("it is stopped"));
    }
    let limits = crate::runtime::plan::limits_of(resources).map_err(|e| e.within(what()))?;
    let mut cgroups = r.cgroups.clone();
    cgroups.set_limits(&limits, true).map_err(|e| e.within(what()))
}

/// `spec`: a default config.json in `bundle` (runc's defaults: `sh` on a
/// terminal, rootfs "rootfs", Docker's capabilities, masked paths).
pub fn write_default_spec(bundle: &Path, rootless: bool) -> Result<()> {
    let file = bundle.join("config.json");
    if file.exists() {
        return Err(Error::new(format!("write {}", file.display())).because("it exists").hint("remove it first"));
    }
    let caps: Vec<String> =
        ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"].iter().map(|s| s.to_string()).collect();
    let mut namespaces = vec!["pid", "network", "ipc", "uts", "mount", "cgroup"];
    let mut mounts = vec![
        serde_json::json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        serde_json::json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        serde_json::json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        serde_json::json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        serde_json::json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        serde_json::json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        serde_json::json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
    ];
    let mut linux = serde_json::json!({
        "maskedPaths": rootfs::MASKED_FILES.iter().chain(rootfs::MASKED_DIRS.iter()).collect::<Vec<_>>(),
        "readonlyPaths": rootfs::READONLY_PATHS,
    });
    if rootless {
        namespaces.push("user");
        let (uid, gid) = (rustix::process::geteuid().as_raw(), rustix::process::getegid().as_raw());
        linux["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        linux["gidMappings"] = serde_json::json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        mounts.retain(|m| m["type"] != "cgroup");
        mounts[5] = serde_json::json!({"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
    }
    linux["namespaces"] = namespaces.iter().map(|t| serde_json::json!({"type": t})).collect();
    let spec = serde_json::json!({
        "ociVersion": super::OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [format!("PATH={}", crate::runtime::child::DEFAULT_PATH), "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true,
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "mini",
        "mounts": mounts,
        "linux": linux,
    });
    let text = serde_json::to_string_pretty(&spec).unwrap_or_default();
    std::fs::write(&file, text + "\n").map_err(|e| Error::new(format!("write {}", file.display())).because(e))
}
