//! mini as an OCI runtime, driven by its peers: [`mini_runc`] (the
//! `mini-runc` link a test hands to another engine), [`Bundle`] (a busybox
//! bundle with a config.json from `mini-runc spec`), [`Containerd`] (a
//! private containerd: its own socket, root, state and namespace) and
//! [`Podman`] (a private storage, runroot and config). Each removes what
//! it made when dropped, also after a failed assertion: shims and daemons
//! by pid, mounts under its directory, and the cgroups beneath the test's
//! own cgroup named after it.
//!
//! A peer that is not installed is a failure (`.ci/install-deps` installs
//! containerd, runc and podman), never a skip.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use super::mini::mounts_under;
use super::{requires_root, scratch, wait_for};

/// The fixture image as the peers pull it (plain HTTP, see fixtures/).
pub const IMAGE: &str = "127.0.0.1:5000/test/busybox:oci";

/// Fail unless `tool` is on PATH.
pub fn need(tool: &str) {
    let found =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file())).unwrap_or(false);
    assert!(found, "{tool} is not installed: run .ci/install-deps (it installs containerd, runc and podman)");
}

/// A `mini-runc` link to the mini under test, in a directory of its own.
pub fn mini_runc() -> PathBuf {
    let dir = scratch().join(format!("mini-runc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("mini-runc");
    if std::fs::read_link(&link).ok().as_deref() != Some(Path::new(env!("CARGO_BIN_EXE_mini"))) {
        // Made aside and renamed over: tests in parallel threads race here.
        let tmp = dir.join(format!(".mini-runc-{:?}", std::thread::current().id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_mini"), &tmp).unwrap();
        std::fs::rename(&tmp, &link).unwrap();
    }
    link
}

/// The name of a test's cgroups: one parent per test, relative to the
/// caller's cgroup in every hierarchy, so nothing lands at a root.
pub fn cgroup_parent(test: &str) -> String {
    format!("minioci-{}-{test}", std::process::id())
}

/// Directories named `name` in any cgroup hierarchy beneath this process's
/// own cgroup there: what must be gone after a test.
pub fn cgroups_named(name: &str) -> Vec<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut found = Vec::new();
    for line in own.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctl, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or("/"));
        let mount = match ctl {
            "" => PathBuf::from("/sys/fs/cgroup/unified"),
            c => PathBuf::from("/sys/fs/cgroup").join(c.trim_start_matches("name=")),
        };
        let dir = mount.join(path.trim_start_matches('/')).join(name);
        if dir.exists() {
            found.push(dir);
        }
    }
    found
}

/// Remove the cgroup tree `name` beneath ours, deepest first.
fn remove_cgroups(name: &str) {
    for d in cgroups_named(name) {
        remove_tree(&d);
    }
}

/// rmdir a cgroup directory and its children, deepest first.
fn remove_tree(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            remove_tree(&e.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
}

pub fn text(o: &Output) -> (i32, String, String) {
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Pids of processes whose command line contains `needle`.
fn pids_with(needle: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).replace('\0', " ").contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

fn unmount_under(dir: &Path) {
    let mut mounts = mounts_under(dir);
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in mounts {
        if let Ok(c) = std::ffi::CString::new(m) {
            // SAFETY: a valid C string.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

/// An OCI bundle: the fixture image's tree (as umoci unpacked it) and a
/// config.json from `mini-runc spec`, edited by the test.
pub struct Bundle {
    pub dir: tempfile::TempDir,
    pub config: serde_json::Value,
}

impl Bundle {
    /// A bundle running `args` without a terminal, its cgroups at
    /// `cgroup_parent/id` beneath the caller's.
    pub fn new(args: &[&str], cgroups_path: &str) -> Bundle {
        let dir = tempfile::Builder::new().prefix("mini-bundle-").tempdir_in(scratch()).unwrap();
        let fixtures = std::env::var("MINI_FIXTURES").unwrap_or_else(|_| "/var/tmp/mini-fixtures".into());
        let src = Path::new(&fixtures).join("bundle-rootfs/rootfs");
        assert!(src.is_dir(), "{} is missing: run fixtures/up.sh", src.display());
        let st = Command::new("cp").arg("-a").arg(&src).arg(dir.path().join("rootfs")).status().unwrap();
        assert!(st.success(), "copy the fixture rootfs");
        let o = Command::new(mini_runc()).arg("spec").arg("--bundle").arg(dir.path()).output().unwrap();
        assert!(o.status.success(), "mini-runc spec: {}", String::from_utf8_lossy(&o.stderr));
        let mut config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
        config["process"]["terminal"] = false.into();
        config["process"]["args"] = args.iter().map(|a| serde_json::Value::from(*a)).collect();
        config["linux"]["cgroupsPath"] = cgroups_path.into();
        let b = Bundle { dir, config };
        b.save();
        b
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write `config` back to config.json.
    pub fn save(&self) {
        std::fs::write(self.dir.path().join("config.json"), serde_json::to_vec_pretty(&self.config).unwrap()).unwrap();
    }
}

/// A containerd of the test's own: socket, root and state in a temp dir,
/// the CRI plugin off, and a namespace named after the test (the runc
/// shim keeps its runtime state in `/run/containerd/runc/<namespace>`).
pub struct Containerd {
    pub dir: tempfile::TempDir,
    pub namespace: String,
    daemon: Child,
}

impl Containerd {
    /// None without root (a failure under CI, see `requires_root`).
    pub fn start(test: &str) -> Option<Containerd> {
        if !requires_root() {
            return None;
        }
        need("containerd");
        need("ctr");
        need("containerd-shim-runc-v2");
        super::require_fixtures();
        // A short path: containerd's sockets must fit in sun_path.
        let dir = tempfile::Builder::new().prefix("ctrd-").tempdir_in("/tmp").unwrap();
        let d = dir.path().display();
        let config = format!(
            "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{d}/sock\"\n[ttrpc]\n  address = \"{d}/sock.ttrpc\"\n\
             [debug]\n  address = \"\"\n[metrics]\n  address = \"\"\n"
        );
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("containerd.log")).unwrap();
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(dir.path().join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let c = Containerd { dir, namespace: format!("mini-{}-{test}", std::process::id()), daemon };
        wait_for(Duration::from_secs(20), "containerd to serve its socket", || {
            c.ctr(&["version"]).output().ok().filter(|o| o.status.success())
        });
        let (code, _, err) = text(&c.ctr(&["images", "pull", "--plain-http", IMAGE]).output().unwrap());
        assert_eq!(code, 0, "ctr images pull {IMAGE}: {err}");
        Some(c)
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    /// `ctr` against this containerd, in the test's namespace.
    pub fn ctr(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address").arg(self.socket()).arg("--namespace").arg(&self.namespace).args(args);
        c.stdin(Stdio::null());
        c
    }

    /// `ctr run` of the fixture image with mini-runc as the runtime and
    /// cgroups at `cgroup/id`: `flags` before the image, `argv` after id.
    pub fn run(&self, flags: &[&str], id: &str, cgroup: &str, argv: &[&str]) -> Command {
        let runc = mini_runc();
        let cg = format!("{cgroup}/{id}");
        let mut args = vec!["run", "--runc-binary", runc.to_str().unwrap(), "--cgroup", &cg];
        args.extend_from_slice(flags);
        args.push(IMAGE);
        args.push(id);
        args.extend_from_slice(argv);
        self.ctr(&args)
    }

    /// The state root the shim gives mini-runc (`--root`).
    pub fn runtime_root(&self) -> PathBuf {
        PathBuf::from("/run/containerd/runc").join(&self.namespace)
    }

    /// The task's status as `ctr task ls` shows it ("" once it is gone).
    pub fn task_status(&self, id: &str) -> String {
        let o = self.ctr(&["task", "ls"]).output().unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        out.lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.first() == Some(&id)).then(|| f.last().unwrap_or(&"").to_string())
            })
            .next()
            .unwrap_or_default()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Containers a failed test left, then their shims (started for
        // this daemon's socket).
        let root = self.runtime_root();
        let runc = |args: &[&str]| Command::new(mini_runc()).arg("--root").arg(&root).args(args).output();
        if let Ok(o) = runc(&["list", "-q"]) {
            for id in String::from_utf8_lossy(&o.stdout).lines() {
                let _ = runc(&["delete", "--force", id]);
            }
        }
        for pid in pids_with(&self.socket().display().to_string()) {
            if pid != self.daemon.id() as i32 {
                // SAFETY: a pid whose command line names our socket.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        unmount_under(self.dir.path());
        let _ = std::fs::remove_dir_all(self.runtime_root());
    }
}

/// Podman with a storage, runroot and containers.conf of the test's own,
/// mini-runc as its runtime, and containers' cgroups beneath ours.
pub struct Podman {
    pub dir: tempfile::TempDir,
    /// Absolute, as Podman's cgroupfs manager takes it: beneath this
    /// process's cgroup in every hierarchy (see [`deepest_own_cgroup`]).
    pub cgroup_parent: String,
    /// Directories on the way to it that Podman will make and the guard
    /// must remove (where this process's cgroup is shallower).
    made: Vec<PathBuf>,
}

impl Podman {
    pub fn new(test: &str) -> Option<Podman> {
        if !requires_root() {
            return None;
        }
        need("podman");
        need("conmon");
        super::require_fixtures();
        // Short: podman's attach socket path must stay under ~100 bytes.
        let dir = tempfile::Builder::new().prefix("pm-").tempdir_in("/tmp").unwrap();
        let conf = format!(
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=4096:4096\"]\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n\
             events_logfile_path = \"{}/events.log\"\nruntime = \"mini\"\n\
             [engine.runtimes]\nmini = [\"{}\"]\n",
            dir.path().display(),
            mini_runc().display()
        );
        std::fs::write(dir.path().join("containers.conf"), conf).unwrap();
        std::fs::write(
            dir.path().join("registries.conf"),
            "[[registry]]\nlocation = \"127.0.0.1:5000\"\ninsecure = true\n",
        )
        .unwrap();
        let own = deepest_own_cgroup();
        let made = cgroup_mounts()
            .into_iter()
            .flat_map(|m| Path::new(&own).ancestors().map(|a| m.join(a.strip_prefix("/").unwrap())).collect::<Vec<_>>())
            .filter(|d| !d.exists())
            .collect();
        let p = Podman { dir, cgroup_parent: format!("{own}/{}", cgroup_parent(test)), made };
        let (code, _, err) = text(&p.cmd(&["pull", "-q", IMAGE]).output().unwrap());
        assert_eq!(code, 0, "podman pull {IMAGE}: {err}");
        Some(p)
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let d = self.dir.path();
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("CONTAINERS_REGISTRIES_CONF", d.join("registries.conf"))
            .arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("rr"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .args(["--storage-driver", "overlay"])
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// `podman run` flags every test uses: no network (the test does not
    /// own a namespace for one), cgroups beneath ours.
    pub fn run_flags(&self) -> Vec<String> {
        vec!["--network".into(), "none".into(), "--cgroup-parent".into(), self.cgroup_parent.clone()]
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd(&["rm", "--all", "--force", "--time", "0"]).output();
        // conmon processes of this storage a failed rm left.
        for pid in pids_with(&self.dir.path().display().to_string()) {
            // SAFETY: a pid whose command line names our storage.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        unmount_under(self.dir.path());
        for m in cgroup_mounts() {
            remove_tree(&m.join(self.cgroup_parent.trim_start_matches('/')));
        }
        // Deepest first: `made` lists each hierarchy's path from the leaf up.
        for d in &self.made {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// Every cgroup hierarchy's mount point.
fn cgroup_mounts() -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter(|l| l.contains(" - cgroup ") || l.contains(" - cgroup2 "))
        .filter_map(|l| l.split_whitespace().nth(4).map(PathBuf::from))
        .collect()
}

/// The one absolute cgroup path that lies beneath this process's cgroup in
/// every hierarchy: the deepest of its paths, when each other is one of its
/// ancestors (on this host: the memory controller's path, `/` elsewhere).
pub fn deepest_own_cgroup() -> String {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let paths: Vec<&str> = own.lines().filter_map(|l| l.splitn(3, ':').nth(2)).collect();
    let deepest = paths.iter().max_by_key(|p| p.len()).copied().unwrap_or("/");
    for p in &paths {
        assert!(Path::new(deepest).starts_with(p), "no cgroup path is beneath both {p} and {deepest}: {own}");
    }
    deepest.trim_end_matches('/').to_string()
}

/// Remove what a test's containers left under `cgroup` (runtimes remove
/// their own cgroups, not always the parent the test named).
pub fn cleanup_cgroups(cgroup: &str) {
    remove_cgroups(cgroup);
}
