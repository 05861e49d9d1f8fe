//! The container's security defaults, as Docker's: its default capability
//! set (everything else dropped from every set, the bounding set included),
//! `no_new_privs`, and a seccomp filter in the spirit of Docker's default
//! profile: syscalls that manage the host (modules, kexec, reboot, swap,
//! clocks, mounts, keyrings, bpf, perf, namespaces) fail with EPERM.
//! Masked and read-only /proc paths are mount operations: see `rootfs`.

use std::collections::BTreeMap;

use caps::{CapSet, Capability};
use seccompiler::{BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule};

use crate::error::{Error, Result};

/// Docker's default capabilities.
pub const DEFAULT_CAPS: [Capability; 14] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FSETID,
    Capability::CAP_FOWNER,
    Capability::CAP_MKNOD,
    Capability::CAP_NET_RAW,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_KILL,
    Capability::CAP_AUDIT_WRITE,
];

/// Syscalls denied outright (EPERM).
pub fn denied_syscalls() -> Vec<(&'static str, i64)> {
    let mut v: Vec<(&'static str, i64)> = vec![
        ("acct", libc::SYS_acct),
        ("add_key", libc::SYS_add_key),
        ("bpf", libc::SYS_bpf),
        ("clock_adjtime", libc::SYS_clock_adjtime),
        ("clock_settime", libc::SYS_clock_settime),
        ("delete_module", libc::SYS_delete_module),
        ("finit_module", libc::SYS_finit_module),
        ("fsconfig", libc::SYS_fsconfig),
        ("fsmount", libc::SYS_fsmount),
        ("fsopen", libc::SYS_fsopen),
        ("fspick", libc::SYS_fspick),
        ("init_module", libc::SYS_init_module),
        ("kcmp", libc::SYS_kcmp),
        ("kexec_file_load", libc::SYS_kexec_file_load),
        ("kexec_load", libc::SYS_kexec_load),
        ("keyctl", libc::SYS_keyctl),
        ("lookup_dcookie", libc::SYS_lookup_dcookie),
        ("mount", libc::SYS_mount),
        ("mount_setattr", libc::SYS_mount_setattr),
        ("move_mount", libc::SYS_move_mount),
        ("name_to_handle_at", libc::SYS_name_to_handle_at),
        ("open_by_handle_at", libc::SYS_open_by_handle_at),
        ("open_tree", libc::SYS_open_tree),
        ("perf_event_open", libc::SYS_perf_event_open),
        ("pivot_root", libc::SYS_pivot_root),
        ("quotactl", libc::SYS_quotactl),
        ("reboot", libc::SYS_reboot),
        ("request_key", libc::SYS_request_key),
        ("setns", libc::SYS_setns),
        ("settimeofday", libc::SYS_settimeofday),
        ("swapoff", libc::SYS_swapoff),
        ("swapon", libc::SYS_swapon),
        ("syslog", libc::SYS_syslog),
        ("umount2", libc::SYS_umount2),
        ("unshare", libc::SYS_unshare),
        ("userfaultfd", libc::SYS_userfaultfd),
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        ("ioperm", libc::SYS_ioperm),
        ("iopl", libc::SYS_iopl),
        ("nfsservctl", libc::SYS_nfsservctl),
        ("sysfs", libc::SYS_sysfs),
        ("_sysctl", libc::SYS__sysctl),
        ("uselib", libc::SYS_uselib),
        ("ustat", libc::SYS_ustat),
    ]);
    v
}

/// clone(2) flags that would create namespaces (denied: the container
/// cannot make new ones, as under Docker without CAP_SYS_ADMIN).
const NS_FLAGS: [u64; 7] = [
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWCGROUP as u64,
];

fn arch() -> Result<seccompiler::TargetArch> {
    std::env::consts::ARCH
        .try_into()
        .map_err(|_| Error::new("build the seccomp filter").because(format!("unsupported architecture {}", std::env::consts::ARCH)))
}

/// The filter as BPF. clone3 passes its flags in memory a filter cannot
/// read, so a second filter answers it ENOSYS and libc falls back to clone.
pub fn seccomp_programs() -> Result<Vec<BpfProgram>> {
    let err = |e: seccompiler::BackendError| Error::new("build the seccomp filter").because(e);
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        denied_syscalls().into_iter().map(|(_, nr)| (nr, vec![])).collect();
    let clone_rules = NS_FLAGS
        .iter()
        .map(|f| {
            let c = SeccompCondition::new(0, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(*f), *f)?;
            SeccompRule::new(vec![c])
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(err)?;
    rules.insert(libc::SYS_clone, clone_rules);
    let deny = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(libc::EPERM as u32), arch()?)
        .map_err(err)?;
    let clone3 = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, vec![])]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch()?,
    )
    .map_err(err)?;
    let compile = |f: SeccompFilter| -> Result<BpfProgram> {
        f.try_into().map_err(|e: seccompiler::BackendError| err(e))
    };
    Ok(vec![compile(deny)?, compile(clone3)?])
}

/// Drop every capability outside Docker's set from the bounding set and
/// clear the ambient set. Needs CAP_SETPCAP: call before changing user.
pub fn limit_bounding_set() -> Result<()> {
    let keep: caps::CapsHashSet = DEFAULT_CAPS.into_iter().collect();
    let supported = caps::runtime::thread_all_supported();
    for cap in supported.difference(&keep) {
        caps::drop(None, CapSet::Bounding, *cap)
            .map_err(|e| Error::new(format!("drop {cap} from the bounding set")).because(e))?;
    }
    caps::clear(None, CapSet::Ambient).map_err(|e| Error::new("clear ambient capabilities").because(e))
}

/// After the user switch: root keeps Docker's set; others keep nothing
/// (the kernel already cleared their permitted set on setuid).
pub fn set_process_caps(uid: u32) -> Result<()> {
    let want: caps::CapsHashSet = if uid == 0 { DEFAULT_CAPS.into_iter().collect() } else { Default::default() };
    for set in [CapSet::Effective, CapSet::Permitted, CapSet::Inheritable] {
        caps::set(None, set, &want).map_err(|e| Error::new(format!("set {set:?} capabilities")).because(e))?;
    }
    Ok(())
}

pub fn apply_seccomp(programs: &[BpfProgram]) -> Result<()> {
    for p in programs {
        seccompiler::apply_filter(p).map_err(|e| Error::new("install the seccomp filter").because(e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_compiles_and_covers_dockers_essentials() {
        let progs = seccomp_programs().unwrap();
        assert_eq!(progs.len(), 2);
        assert!(progs[0].len() > 40);
        let names: Vec<&str> = denied_syscalls().iter().map(|(n, _)| *n).collect();
        for must in ["keyctl", "mount", "umount2", "pivot_root", "reboot", "kexec_load", "init_module", "bpf",
                     "perf_event_open", "userfaultfd", "unshare", "setns", "open_by_handle_at", "swapon", "acct"] {
            assert!(names.contains(&must), "{must}");
        }
        assert!(!names.contains(&"ptrace"), "Docker allows ptrace on 4.8+ kernels");
    }

    #[test]
    fn default_caps_are_dockers_fourteen() {
        assert_eq!(DEFAULT_CAPS.len(), 14);
        assert!(!DEFAULT_CAPS.contains(&Capability::CAP_SYS_ADMIN));
        assert!(!DEFAULT_CAPS.contains(&Capability::CAP_NET_ADMIN));
    }
}
