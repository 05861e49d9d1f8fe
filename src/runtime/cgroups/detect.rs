//! Which cgroup hierarchies this host has and where mini sits in each:
//! pure v1 (one `cgroup` mount per controller or group of controllers),
//! pure v2 (one `cgroup2` mount whose `cgroup.controllers` lists them
//! all) or hybrid (v1 mounts plus a `cgroup2` tree that owns few or no
//! controllers). A controller is bound to exactly one hierarchy, so each
//! one is driven where it actually lives.
//!
//! Parsers take bytes (/proc/self/mountinfo, /proc/self/cgroup); the v2
//! mount's `cgroup.controllers` is read through a function the caller
//! passes, so tests describe a fake host entirely in memory or a temp dir.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Version {
    V1,
    V2,
}

/// One mounted hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub version: Version,
    pub mount: PathBuf,
    /// The controllers it drives (v1: from the mount options; v2: from
    /// the root's `cgroup.controllers`).
    pub controllers: Vec<String>,
    /// mini's own cgroup in it, relative to the mount ("" = the mount's root).
    pub own: String,
}

/// The host's cgroup layout as mini sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    pub hierarchies: Vec<Hierarchy>,
}

/// The v1 controllers mini recognises in mount options.
const V1_CONTROLLERS: [&str; 13] = [
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "blkio",
    "pids",
    "hugetlb",
    "net_cls",
    "net_prio",
    "perf_event",
    "rdma",
];

impl Layout {
    /// Build the layout from mountinfo and /proc/self/cgroup bytes;
    /// `read` returns a file's text (for the v2 root's cgroup.controllers).
    pub fn parse(mountinfo: &[u8], self_cgroup: &[u8], read: &dyn Fn(&Path) -> Option<String>) -> Layout {
        let own = own_paths(self_cgroup);
        let mut hierarchies = Vec::new();
        for m in cgroup_mounts(mountinfo) {
            let (version, controllers) = match m.fstype.as_str() {
                "cgroup2" => {
                    let text = read(&m.mount.join("cgroup.controllers")).unwrap_or_default();
                    (Version::V2, text.split_whitespace().map(str::to_string).collect::<Vec<_>>())
                }
                _ => {
                    let ctls: Vec<String> =
                        m.options.split(',').filter(|o| V1_CONTROLLERS.contains(o)).map(str::to_string).collect();
                    if ctls.is_empty() {
                        continue; // name=systemd and other named hierarchies
                    }
                    (Version::V1, ctls)
                }
            };
            // /proc/self/cgroup: "0::/path" for v2, "N:ctl,ctl:/path" for v1.
            let path = match version {
                Version::V2 => own.iter().find(|(h, _)| h.is_empty()).map(|(_, p)| p.clone()),
                Version::V1 => own
                    .iter()
                    .find(|(h, _)| h.split(',').any(|c| controllers.iter().any(|x| x == c)))
                    .map(|(_, p)| p.clone()),
            };
            let Some(path) = path else { continue };
            // A mount of a subtree (inside a container) shows root `m.root`:
            // mini's path is only reachable if it lies beneath it.
            let Some(rel) = strip_root(&path, &m.root) else { continue };
            if rel.split('/').any(|c| c == "..") {
                continue;
            }
            if hierarchies.iter().any(|h: &Hierarchy| h.mount == m.mount) {
                continue;
            }
            hierarchies.push(Hierarchy { version, mount: m.mount, controllers, own: rel });
        }
        Layout { hierarchies }
    }

    /// The hierarchy that drives `controller`: a v1 mount that names it,
    /// else the v2 tree if its root lists it.
    /// Keep only v2 hierarchies whose own cgroup `writable` says mini may
    /// write (a delegated subtree).
    pub fn keep_delegated(&mut self, writable: &dyn Fn(&Path) -> bool) {
        self.hierarchies.retain(|h| {
            let own = h.mount.join(h.own.trim_start_matches('/'));
            h.version == Version::V2 && writable(&own) && writable(&own.join("cgroup.procs"))
        });
    }

    pub fn hierarchy_of(&self, controller: &str) -> Option<&Hierarchy> {
        let has = |h: &&Hierarchy| h.controllers.iter().any(|c| c == controller);
        self.hierarchies
            .iter()
            .filter(|h| h.version == Version::V1)
            .find(has)
            .or_else(|| self.hierarchies.iter().filter(|h| h.version == Version::V2).find(has))
    }

    /// A short name for messages and docs: "v1", "v2" or "hybrid".
    pub fn kind(&self) -> &'static str {
        let v1 = self.hierarchies.iter().any(|h| h.version == Version::V1);
        let v2 = self.hierarchies.iter().any(|h| h.version == Version::V2);
        match (v1, v2) {
            (true, true) => "hybrid",
            (false, true) => "v2",
            _ => "v1",
        }
    }
}

/// `path` relative to mount root `root`, without leading or trailing '/'.
fn strip_root(path: &str, root: &str) -> Option<String> {
    let root = root.trim_end_matches('/');
    let rest = path.strip_prefix(root)?;
    if !rest.is_empty() && !rest.starts_with('/') {
        return None; // "/ab" is not beneath "/a"
    }
    Some(rest.trim_matches('/').to_string())
}

/// (hierarchy's controller list, path) from /proc/self/cgroup; v2's line
/// has an empty list.
fn own_paths(bytes: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(bytes);
    text.lines()
        .filter_map(|line| {
            let mut f = line.splitn(3, ':');
            let (_, ctls, path) = (f.next()?, f.next()?, f.next()?);
            Some((ctls.to_string(), path.to_string()))
        })
        .collect()
}

struct CgroupMount {
    fstype: String,
    root: String,
    mount: PathBuf,
    options: String,
}

/// The `cgroup` and `cgroup2` mounts in mountinfo.
fn cgroup_mounts(bytes: &[u8]) -> Vec<CgroupMount> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let mut r = right.split_whitespace();
        let fstype = r.next().unwrap_or_default();
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        let l: Vec<&str> = left.split_whitespace().collect();
        let (Some(root), Some(mount), Some(options)) = (l.get(3), l.get(4), r.nth(1)) else { continue };
        out.push(CgroupMount {
            fstype: fstype.to_string(),
            root: unescape(root),
            mount: PathBuf::from(unescape(mount)),
            options: options.to_string(),
        });
    }
    out
}

/// mountinfo escapes spaces and friends as \ooo.
pub fn unescape(s: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine's layout: v1 controllers, cpu and cpuacct apart, a
    /// unified tree owning only hugetlb.
    pub const HYBRID: &[u8] = b"31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpu\\040acct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    fn read_hugetlb(p: &Path) -> Option<String> {
        (p == Path::new("/sys/fs/cgroup/unified/cgroup.controllers")).then(|| "hugetlb\n".to_string())
    }

    #[test]
    fn hybrid_drives_each_controller_where_it_lives() {
        let cg = b"9:name=systemd:/\n8:pids:/\n4:memory:/ci/job 7\n2:cpuacct:/\n1:cpu:/\n0::/x\n";
        let l = Layout::parse(HYBRID, cg, &read_hugetlb);
        assert_eq!(l.kind(), "hybrid");
        assert_eq!(l.hierarchies.len(), 5);
        let mem = l.hierarchy_of("memory").unwrap();
        assert_eq!(
            (mem.version, mem.mount.as_path(), mem.own.as_str()),
            (Version::V1, Path::new("/sys/fs/cgroup/memory"), "ci/job 7")
        );
        assert_eq!(l.hierarchy_of("cpuacct").unwrap().mount, PathBuf::from("/sys/fs/cgroup/cpu acct"));
        let huge = l.hierarchy_of("hugetlb").unwrap();
        assert_eq!((huge.version, huge.own.as_str()), (Version::V2, "x"));
        assert!(l.hierarchy_of("cpuset").is_none());
    }

    #[test]
    fn pure_v2_and_comounted_v1() {
        let mi = b"30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let read = |_: &Path| Some("cpuset cpu io memory pids".to_string());
        let l = Layout::parse(mi, b"0::/user.slice/session-1.scope\n", &read);
        assert_eq!(l.kind(), "v2");
        let h = l.hierarchy_of("pids").unwrap();
        assert_eq!((h.version, h.own.as_str()), (Version::V2, "user.slice/session-1.scope"));

        let mi = b"32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
        let l = Layout::parse(mi, b"3:cpu,cpuacct:/a\n", &|_| None);
        assert_eq!(l.kind(), "v1");
        assert_eq!(l.hierarchies.len(), 1);
        assert_eq!(l.hierarchy_of("cpu"), l.hierarchy_of("cpuacct"));
    }

    #[test]
    fn a_subtree_mount_strips_its_root_and_hides_what_lies_outside() {
        let mi = b"35 31 0:32 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory
36 31 0:33 /docker/abc /sys/fs/cgroup/pids ro - cgroup cgroup rw,pids\n";
        let l = Layout::parse(mi, b"4:memory:/docker/abc/inner\n8:pids:/docker/abcd\n", &|_| None);
        assert_eq!(l.hierarchies.len(), 1);
        assert_eq!(l.hierarchy_of("memory").unwrap().own, "inner");
        assert_eq!(unescape("/a\\040b"), "/a b");
    }
}
