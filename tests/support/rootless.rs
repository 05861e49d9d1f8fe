//! [`Rootless`]: `mini` run by an ordinary user, as a user would run it.
//!
//! Each test gets its own home, XDG directories (so its own store and its
//! own `mini-pause` namespace holder) and a copy of the binary the user
//! can execute, and runs every command through `setpriv` as one of the
//! users `.ci/rootless-users` makes: `minitest` (a range in /etc/subuid
//! and /etc/subgid) or `mininorange` (none). After the fixture pull every
//! command runs in a network namespace of the test's own with a default
//! route, which pasta needs as its template, so no container packet
//! leaves it. On drop: the user's containers removed, its holder killed
//! by pid, the directory removed.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::netns::TestNetns;
use super::{requires_root, IMAGE};

pub const WITH_RANGE: &str = "minitest";
pub const WITHOUT_RANGE: &str = "mininorange";

pub struct Rootless {
    pub user: &'static str,
    pub uid: u32,
    pub gid: u32,
    pub dir: PathBuf,
    bin: PathBuf,
    pub netns: Option<TestNetns>,
    /// Extra variables for every command (tests of bad environments).
    pub env: Vec<(String, String)>,
    _tmp: tempfile::TempDir,
}

/// (uid, gid) of `user`; a missing user is a failure, never a skip.
fn ids_of(user: &str) -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let line = passwd
        .lines()
        .find(|l| l.split(':').next() == Some(user))
        .unwrap_or_else(|| panic!("user {user} does not exist: run `bash .ci/rootless-users` (as root) first"));
    let f: Vec<&str> = line.split(':').collect();
    (f[2].parse().unwrap(), f[3].parse().unwrap())
}

fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
}

impl Rootless {
    /// A fresh home for `user` with the fixture image pulled (as that
    /// user); None without root.
    pub fn new(user: &'static str) -> Option<Rootless> {
        let r = Rootless::empty(user)?;
        let out = r.cmd(&["pull", "-q", IMAGE]).output().expect("run mini pull");
        assert!(out.status.success(), "rootless pull {IMAGE} failed: {}", String::from_utf8_lossy(&out.stderr));
        let mut r = r;
        r.netns = Some(TestNetns::with_default_route());
        Some(r)
    }

    /// A fresh home for `user`, nothing pulled, in the host's network
    /// namespace (for tests that only reach the registries on 127.0.0.1).
    pub fn empty(user: &'static str) -> Option<Rootless> {
        if !requires_root() {
            return None;
        }
        let (uid, gid) = ids_of(user);
        let tmp = tempfile::Builder::new().prefix("mini-rootless-").tempdir().expect("temp dir");
        let dir = tmp.path().to_path_buf();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = dir.join("mini");
        std::fs::copy(env!("CARGO_BIN_EXE_mini"), &bin).expect("copy the mini binary");
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        for d in ["home", "run"] {
            std::fs::create_dir(dir.join(d)).unwrap();
            chown(&dir.join(d), uid, gid);
        }
        std::fs::set_permissions(dir.join("run"), std::fs::Permissions::from_mode(0o700)).unwrap();
        let config = dir.join("home/.config/mini");
        std::fs::create_dir_all(&config).unwrap();
        std::fs::write(config.join("config.toml"), "default-network = \"none\"\n").unwrap();
        for d in ["home/.config", "home/.config/mini", "home/.config/mini/config.toml"] {
            chown(&dir.join(d), uid, gid);
        }
        Some(Rootless { user, uid, gid, dir, bin, netns: None, env: Vec::new(), _tmp: tmp })
    }

    pub fn home(&self) -> PathBuf {
        self.dir.join("home")
    }

    /// The user's store (the XDG default).
    pub fn store(&self) -> PathBuf {
        self.home().join(".local/share/mini")
    }

    /// `mini args…` as the user, with a clean environment of its own.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("setpriv");
        c.args(["--reuid", &self.uid.to_string(), "--regid", &self.gid.to_string(), "--init-groups", "env", "-i"]);
        c.arg(format!("HOME={}", self.home().display()));
        c.arg(format!("XDG_RUNTIME_DIR={}", self.dir.join("run").display()));
        c.arg("PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
        for (k, v) in &self.env {
            c.arg(format!("{k}={v}"));
        }
        c.arg(&self.bin).args(args).stdin(std::process::Stdio::null());
        if let Some(ns) = &self.netns {
            ns.enter(&mut c);
        }
        c
    }

    pub fn output(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run mini as the test user")
    }

    /// (exit code, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let o = self.output(args);
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    /// Run and require success; stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 0, "mini {args:?} as {}: {err}", self.user);
        out
    }

    /// The pid of this test's namespace holder, if it runs.
    pub fn holder(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.dir.join("run/mini/pause.pid")).ok()?.trim().parse().ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        (comm.trim() == "mini-pause").then_some(pid)
    }

    /// The container ids in the user's store.
    pub fn containers(&self) -> Vec<String> {
        std::fs::read_dir(self.store().join("containers"))
            .map(|d| d.filter_map(|e| e.ok()?.file_name().into_string().ok()).filter(|n| n.len() == 64).collect())
            .unwrap_or_default()
    }
}

impl Drop for Rootless {
    fn drop(&mut self) {
        let ids = self.containers();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids.iter().map(String::as_str));
            let _ = self.cmd(&args).output();
        }
        if let Some(pid) = self.holder() {
            // SAFETY: kill by pid, a process this test's mini started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}
