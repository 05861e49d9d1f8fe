//! [`Mini`]: a fresh store per test (so tests run in parallel) with the
//! fixture image pulled from the local registry, `mini` commands isolated
//! from the host's configuration, and a drop guard that unmounts whatever
//! a test left, even when it panics.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::netns::TestNetns;
use super::{isolate, requires_root};

/// The fixture image (see fixtures/): busybox /bin/sh, /etc/passwd with
/// root and app (uid 1000), a whiteout (/etc/removed-later) and an opaque
/// directory (/opt/replaced) in its second layer.
pub const IMAGE: &str = "127.0.0.1:5000/test/busybox:oci";

/// The tests' config file: the default network is `none` (fast, and
/// what most tests are about); `networked` drops this line.
pub const CONFIG: &str = "default-network = \"none\"\n";

pub struct Mini {
    pub root: PathBuf,
    /// Every command after the image pull runs in this namespace of the
    /// test's own: whatever a test asks for, mini's bridges, veths and
    /// nftables never reach the host's network namespace.
    pub netns: Option<TestNetns>,
    _tmp: tempfile::TempDir,
}

impl Mini {
    /// A fresh store with the fixture image pulled; None without root.
    pub fn new() -> Option<Mini> {
        if !requires_root() {
            return None;
        }
        let tmp = tempfile::Builder::new().prefix("mini-test-").tempdir().expect("temp dir");
        std::fs::write(tmp.path().join("config.toml"), CONFIG).expect("write the test's config file");
        let m = Mini { root: tmp.path().join("store"), netns: None, _tmp: tmp };
        let out = m.cmd(&["pull", "-q", IMAGE]).output().expect("run mini pull");
        assert!(
            out.status.success(),
            "pull {IMAGE} failed (is fixtures/up.sh running?): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The registries listen on the host's 127.0.0.1: pulled before.
        let mut m = m;
        m.netns = Some(TestNetns::new());
        Some(m)
    }

    /// A store with the fixture image whose commands all run in a network
    /// namespace of the test's own, with mini's default network (`bridge`)
    /// and `extra` config lines; None without root.
    pub fn networked(extra: &str) -> Option<Mini> {
        let m = Mini::new()?;
        std::fs::write(m.dir().join("config.toml"), extra).expect("write the test's config file");
        Some(m)
    }

    pub fn ns(&self) -> &TestNetns {
        self.netns.as_ref().expect("set once the image is pulled")
    }

    /// A `mini` command on this store, with nothing of the host's mini
    /// configuration (see [`isolate`]), in the test's netns if it has one.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mini"));
        c.args(args);
        isolate(&mut c, self.dir(), &self.root);
        if let Some(ns) = &self.netns {
            ns.enter(&mut c);
        }
        c
    }

    /// The test's own directory: the store, its config file, scratch.
    pub fn dir(&self) -> &Path {
        self._tmp.path()
    }

    /// Run mini to completion, capturing output, and check that it left no
    /// mount behind in the host's mount table.
    pub fn run(&self, args: &[&str]) -> Output {
        let out = self.cmd(args).output().expect("run mini");
        assert_eq!(self.host_mounts(), Vec::<String>::new(), "mini left mounts behind: mini {args:?}");
        out
    }

    /// `mini run --rm IMAGE args...`, returning (code, stdout, stderr).
    pub fn run_in(&self, flags: &[&str], argv: &[&str]) -> (i32, String, String) {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.push(IMAGE);
        args.extend_from_slice(argv);
        let out = self.run(&args);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    /// Host mount points under this test's store.
    pub fn host_mounts(&self) -> Vec<String> {
        mounts_under(&self.root)
    }

    /// The cgroup directories container `id`'s record names (planned at
    /// create, see `container::record`).
    pub fn cgroups_of(&self, id: &str) -> Vec<PathBuf> {
        let p = self.root.join("containers").join(id).join("config.json");
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap_or_default()).unwrap_or_default();
        let dirs = v["spec"]["container"]["cgroups"]["plan"]["dirs"].as_array().cloned().unwrap_or_default();
        dirs.iter().filter_map(|d| d["path"].as_str().map(PathBuf::from)).collect()
    }

    /// Every path in the store but lock files and trash (see
    /// [`super::snapshot_of`]): what a failed command must leave as it was.
    pub fn snapshot(&self) -> std::collections::BTreeSet<String> {
        super::snapshot_of(&self.root)
    }

    /// `mini images -q`, one id a line.
    pub fn image_ids(&self) -> String {
        let out = self.run(&["images", "-q"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Container directories in the store.
    pub fn containers(&self) -> Vec<String> {
        let dir = self.root.join("containers");
        let Ok(rd) = std::fs::read_dir(dir) else { return vec![] };
        rd.flatten().map(|e| e.file_name().to_string_lossy().to_string()).filter(|n| n.len() == 64).collect()
    }
}

impl Drop for Mini {
    fn drop(&mut self) {
        // Deepest first, lazily: a failed test must not leave mounts behind.
        let mut mounts = mounts_under(&self.root);
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            if let Ok(c) = std::ffi::CString::new(m) {
                // SAFETY: valid C string.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
}

/// Mount points (field 5 of mountinfo) at or under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = dir.display().to_string();
    text.lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter(|m| m.starts_with(&prefix))
        .map(str::to_string)
        .collect()
}
