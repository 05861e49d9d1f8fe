//! The container's cgroups: one directory per v1 hierarchy (memory, pids,
//! cpu), beneath the cgroup mini itself runs in, `<mini's>/<parent>/<id>`
//! (`parent` is the config's `cgroup-parent`, default "mini").
//!
//! Placement is computed by pure code from the bytes of /proc/self/cgroup
//! and /proc/self/mountinfo ([`plan`]); the executor only makes the
//! directories ([`prepare`]), lets the container process move itself
//! ([`join`]) and removes them. Rules:
//! - a hierarchy where mini's own cgroup is the root is skipped: mini
//!   never creates cgroups at a hierarchy's root;
//! - v2 (and the v2 half of a hybrid host) is not handled yet: limits are a
//!   later issue, and v2 first needs mini to move itself into a leaf.
//!
//! Limits are not set here; this is the place for them.

use std::path::PathBuf;

use crate::error::{Error, Result};

/// The v1 controllers a container gets a cgroup in.
pub const CONTROLLERS: [&str; 3] = ["memory", "pids", "cpu"];

/// Where the container's cgroups go, one directory per hierarchy.
pub fn plan(self_cgroup: &[u8], mountinfo: &[u8], parent: &str, id: &str) -> Vec<PathBuf> {
    let own = own_paths(self_cgroup);
    let mounts = v1_mounts(mountinfo);
    let parent = parent.trim_matches('/');
    let mut dirs = Vec::new();
    for ctl in CONTROLLERS {
        let (Some(path), Some(mount)) = (own.iter().find(|(c, _)| c == ctl), mounts.iter().find(|(c, _)| c == ctl)) else {
            continue;
        };
        let rel = path.1.trim_start_matches('/');
        if rel.is_empty() || rel.split('/').any(|c| c == "..") || parent.split('/').any(|c| c == "..") {
            continue; // at the hierarchy root (or odd): leave it alone
        }
        let mut dir = mount.1.join(rel);
        if !parent.is_empty() {
            dir.push(parent);
        }
        dir.push(id);
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs
}

/// (controller, path) from /proc/self/cgroup, v1 lines only; a line like
/// `4:memory:/a/b` or `2:cpu,cpuacct:/a` gives one entry per controller.
fn own_paths(bytes: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(_), Some(ctls), Some(path)) = (f.next(), f.next(), f.next()) else { continue };
        for c in ctls.split(',').filter(|c| !c.is_empty()) {
            out.push((c.to_string(), path.to_string()));
        }
    }
    out
}

/// (controller, mount point) for every v1 cgroup mount in mountinfo.
fn v1_mounts(bytes: &[u8]) -> Vec<(String, PathBuf)> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let mut r = right.split_whitespace();
        if r.next() != Some("cgroup") {
            continue;
        }
        let (Some(mount_point), Some(options)) = (left.split_whitespace().nth(4), r.nth(1)) else { continue };
        for opt in options.split(',') {
            if CONTROLLERS.contains(&opt) {
                out.push((opt.to_string(), PathBuf::from(unescape(mount_point))));
            }
        }
    }
    out
}

/// mountinfo escapes spaces and friends as \ooo.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).to_string()
}

/// The cgroups of this host for container `id`, from the live files.
pub fn for_container(parent: Option<&str>, id: &str) -> Vec<PathBuf> {
    let cg = std::fs::read("/proc/self/cgroup").unwrap_or_default();
    let mi = std::fs::read("/proc/self/mountinfo").unwrap_or_default();
    plan(&cg, &mi, parent.unwrap_or("mini"), id)
}

/// Make the directories and open each one's `tasks` file for the
/// container process to move itself with [`join`]. (Moving another process
/// through `cgroup.procs` takes the kernel's global threadgroup lock, whose
/// writer waits for an RCU grace period: 1–20 ms here, more than the rest
/// of `mini run`. A single-threaded process writing "0" to `tasks` moves
/// only itself and skips that lock. The fd carries its opener's (host
/// root's) credentials, so this works from a user namespace too.)
pub fn prepare(dirs: &[PathBuf]) -> Result<Vec<std::fs::File>> {
    dirs.iter()
        .map(|d| {
            std::fs::create_dir_all(d).map_err(|e| Error::new(format!("create cgroup {}", d.display())).because(e))?;
            let tasks = d.join("tasks");
            std::fs::OpenOptions::new()
                .write(true)
                .open(&tasks)
                .map_err(|e| Error::new(format!("open {}", tasks.display())).because(e))
        })
        .collect()
}

/// Move the calling (single-threaded) process into each prepared cgroup.
pub fn join(tasks: &[std::fs::File]) -> Result<()> {
    use std::io::Write;
    for mut f in tasks {
        f.write_all(b"0").map_err(|e| Error::new("join the container's cgroup").because(e))?;
    }
    Ok(())
}

/// Remove the container's cgroups (once it has exited; an empty cgroup is
/// removed with rmdir). The shared parent goes too when it is empty.
pub fn remove(dirs: &[PathBuf]) {
    for d in dirs {
        let _ = std::fs::remove_dir(d);
        if let Some(parent) = d.parent() {
            let _ = std::fs::remove_dir(parent); // fails while other containers use it
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &[u8] = b"31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/cpu\\040acct rw,relatime - cgroup cgroup rw,cpuacct
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn goes_beneath_minis_own_cgroup_and_never_at_a_root() {
        let cg = b"9:name=systemd:/\n8:pids:/\n4:memory:/ci/job 7\n1:cpu:/\n0::/\n";
        assert_eq!(plan(cg, MOUNTINFO, "mini", "abc"), vec![PathBuf::from("/sys/fs/cgroup/memory/ci/job 7/mini/abc")]);
        let cg = b"8:pids:/a\n4:memory:/a\n1:cpu:/b\n";
        assert_eq!(
            plan(cg, MOUNTINFO, "/x/y/", "abc"),
            vec![
                PathBuf::from("/sys/fs/cgroup/memory/a/x/y/abc"),
                PathBuf::from("/sys/fs/cgroup/pids/a/x/y/abc"),
                PathBuf::from("/sys/fs/cgroup/cpu/b/x/y/abc"),
            ]
        );
        assert!(plan(b"4:memory:/\n", MOUNTINFO, "mini", "abc").is_empty());
        assert!(plan(b"4:memory:/a/../..\n", MOUNTINFO, "mini", "abc").is_empty());
        assert!(plan(b"0::/user.slice\n", MOUNTINFO, "mini", "abc").is_empty(), "v2 is not handled yet");
    }

    #[test]
    fn mount_points_are_unescaped() {
        assert_eq!(unescape("/sys/fs/cgroup/cpu\\040acct"), "/sys/fs/cgroup/cpu acct");
        assert_eq!(v1_mounts(MOUNTINFO).len(), 3);
    }

    #[test]
    fn executor_works_on_a_fake_cgroupfs() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("memory/ci/mini/abc");
        let parent = dir.parent().unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("tasks"), "").unwrap(); // cgroupfs has it already
        let files = prepare(std::slice::from_ref(&dir)).unwrap();
        join(&files).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("tasks")).unwrap(), "0");
        std::fs::remove_file(dir.join("tasks")).unwrap();
        assert!(parent.is_dir());
        remove(std::slice::from_ref(&dir));
        assert!(!dir.exists() && !dir.parent().unwrap().exists());
    }
}
