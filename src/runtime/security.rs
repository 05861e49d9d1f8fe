//! The container's security defaults, as Docker's: its default capability
//! set (everything else dropped from every set, the bounding set included),
//! `no_new_privs`, and a seccomp filter in the spirit of Docker's default
//! profile: syscalls that manage the host (modules, kexec, reboot, swap,
//! clocks, mounts, keyrings, bpf, perf, namespaces) fail with EPERM.
//! Masked and read-only /proc paths are mount operations: see `rootfs`.

use caps::{CapSet, Capability};

use super::seccomp::{self, Insn, Policy};

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
const NS_FLAGS: [i32; 7] = [
    libc::CLONE_NEWNS,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWCGROUP,
];

/// The filter's policy for the architecture mini was built for.
pub fn seccomp_policy() -> Result<Policy> {
    #[cfg(target_arch = "x86_64")]
    let (arch, x32_bit) = (0xc000_003e, Some(0x4000_0000)); // AUDIT_ARCH_X86_64, __X32_SYSCALL_BIT
    #[cfg(target_arch = "aarch64")]
    let (arch, x32_bit) = (0xc000_00b7, None); // AUDIT_ARCH_AARCH64
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    return Err(
        Error::new("build the seccomp filter").because(format!("unsupported architecture {}", std::env::consts::ARCH))
    );
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    Ok(Policy {
        arch,
        denied: denied_syscalls().into_iter().map(|(_, nr)| nr as u32).collect(),
        clone: libc::SYS_clone as u32,
        clone3: libc::SYS_clone3 as u32,
        clone_denied_flags: NS_FLAGS.iter().fold(0, |m, f| m | *f as u32),
        x32_bit,
    })
}

/// The BPF program, built before the container drops privileges and
/// loaded last ([`apply_seccomp`]).
pub fn seccomp_program() -> Result<Vec<Insn>> {
    let policy = seccomp_policy()?;
    seccomp::program(&policy).ok_or_else(|| {
        Error::new("build the seccomp filter")
            .because(format!("{} denied syscalls: too many for one BPF program", policy.denied.len()))
    })
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

pub fn apply_seccomp(program: &[Insn]) -> Result<()> {
    crate::sys::process::load_seccomp(program).map_err(|e| Error::new("install the seccomp filter").because(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_covers_dockers_essentials() {
        let program = seccomp_program().unwrap();
        let names: Vec<&str> = denied_syscalls().iter().map(|(n, _)| *n).collect();
        assert!(program.len() > names.len() && program.len() < names.len() + 16, "{}", program.len());
        for must in [
            "keyctl",
            "mount",
            "umount2",
            "pivot_root",
            "reboot",
            "kexec_load",
            "init_module",
            "bpf",
            "perf_event_open",
            "userfaultfd",
            "unshare",
            "setns",
            "open_by_handle_at",
            "swapon",
            "acct",
        ] {
            assert!(names.contains(&must), "{must}");
        }
        assert!(!names.contains(&"ptrace"), "Docker allows ptrace on 4.8+ kernels");
        let policy = seccomp_policy().unwrap();
        assert_eq!(policy.clone_denied_flags & libc::CLONE_NEWUSER as u32, libc::CLONE_NEWUSER as u32);
        assert_eq!(policy.clone_denied_flags & (libc::CLONE_VM | libc::CLONE_THREAD) as u32, 0);
    }

    #[test]
    fn default_caps_are_dockers_fourteen() {
        assert_eq!(DEFAULT_CAPS.len(), 14);
        assert!(!DEFAULT_CAPS.contains(&Capability::CAP_SYS_ADMIN));
        assert!(!DEFAULT_CAPS.contains(&Capability::CAP_NET_ADMIN));
    }
}
