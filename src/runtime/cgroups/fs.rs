//! The cgroup filesystem as the container sees it, as Docker shows it:
//! read-only, each hierarchy the container has a cgroup in mounted at
//! `/sys/fs/cgroup/<name>` (v1, over a tmpfs) or the unified tree at
//! `/sys/fs/cgroup` (pure v2). The mounts are made inside the container's
//! cgroup namespace, so each one's root is the container's own cgroup.
//!
//! Under a user namespace nothing is mounted: v1 cgroupfs cannot be
//! mounted there, and /sys/fs/cgroup stays sysfs's empty directory.

use std::path::PathBuf;

use super::detect::Version;
use super::place::Dir;
use crate::runtime::rootfs::{Op, Plan};
use crate::sys::flags::*;

const RO: u64 = RDONLY | NOSUID | NODEV | NOEXEC;

/// The mount operations for the container's cgroupfs.
pub fn ops(dirs: &[Dir]) -> Vec<Op> {
    let at = PathBuf::from("/sys/fs/cgroup");
    let mount = |fstype, target: PathBuf, flags, data: Option<String>| Op::Mount {
        fstype,
        source: None,
        target,
        flags,
        data,
        no_symlinks: false,
    };
    if dirs.iter().any(|d| d.version == Version::V2 && dirs.len() == 1) {
        return vec![mount("cgroup2", at, RO, None)];
    }
    let v1: Vec<&Dir> = dirs.iter().filter(|d| d.version == Version::V1 && !d.mount_name.is_empty()).collect();
    if v1.is_empty() {
        return Vec::new();
    }
    let tmpfs = || Some("mode=755,size=64k".to_string());
    let mut ops = vec![mount("tmpfs", at.clone(), NOSUID | NODEV | NOEXEC, tmpfs())];
    for d in v1 {
        ops.push(mount("cgroup", at.join(&d.mount_name), RO, Some(d.controllers.join(","))));
    }
    // The tmpfs itself goes read-only once its mount points exist (a
    // remount: no second bind mount stacked on it).
    ops.push(mount("tmpfs", at, REMOUNT | RO, tmpfs()));
    ops
}

/// The plan without the cgroupfs mounts [`ops`] made: for a child
/// told that its (best-effort) cgroups could not be made.
pub fn without(plan: &Plan, dirs: &[Dir]) -> Plan {
    let view = ops(dirs);
    let mut plan = plan.clone();
    plan.ops.retain(|o| !view.contains(o));
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(version: Version, name: &str, ctls: &[&str]) -> Dir {
        Dir {
            version,
            path: PathBuf::from("/x"),
            mount_name: name.into(),
            controllers: ctls.iter().map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn v1_hierarchies_over_a_read_only_tmpfs_and_v2_alone() {
        let ops = ops(&[dir(Version::V1, "memory", &["memory"]), dir(Version::V1, "cpu,cpuacct", &["cpu", "cpuacct"])]);
        assert_eq!(ops.len(), 4);
        assert!(matches!(&ops[2], Op::Mount { fstype: "cgroup", target, data: Some(d), flags, .. }
            if target == &PathBuf::from("/sys/fs/cgroup/cpu,cpuacct") && d == "cpu,cpuacct" && flags & RDONLY != 0));
        assert!(
            matches!(&ops[3], Op::Mount { fstype: "tmpfs", flags, .. } if flags & REMOUNT != 0 && flags & RDONLY != 0)
        );
        let v2 = super::ops(&[dir(Version::V2, "cgroup", &["memory"])]);
        assert!(matches!(&v2[..], [Op::Mount { fstype: "cgroup2", flags, .. }] if flags & RDONLY != 0));
        assert!(super::ops(&[]).is_empty());
        let mut plan = Plan {
            root: PathBuf::from("/r"),
            ops: vec![
                Op::MakePrivate,
                Op::Mount {
                    fstype: "sysfs",
                    source: None,
                    target: "/sys".into(),
                    flags: 0,
                    data: None,
                    no_symlinks: true,
                },
                Op::PivotRoot,
            ],
        };
        let before = plan.clone();
        let dirs = [dir(Version::V1, "pids", &["pids"])];
        plan.ops.splice(2..2, super::ops(&dirs));
        assert_eq!(plan.ops.len(), 6);
        assert_eq!(plan.ops[5], Op::PivotRoot);
        assert_eq!(without(&plan, &dirs).ops, before.ops);
    }
}
