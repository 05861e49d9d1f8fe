//! The one harness of the integration tests, which drive the real `mini`
//! binary as a user would. Every test file says `mod support;` and takes
//! what it needs:
//!
//! - [`requires_root`]: the gate of tests that need root. Under CI (`CI`
//!   set) or with `MINI_REQUIRE_ROOT` a test that cannot run *fails*; a
//!   developer without root sees `SKIPPED <test>: needs root` instead.
//! - [`isolate`]: every `mini` command runs on the test's own store and
//!   config file, with no `MINI_*`, `DOCKER_CONFIG` or XDG directory of
//!   the host's.
//! - [`Mini`] (a fresh store with the fixture image), [`life::Life`]
//!   (detached containers killed and cleaned up when the test ends),
//!   [`Env`] (an empty store for pull tests, registries, snapshots),
//!   [`fake_registry`] (hostile answers), [`pty::Pty`], [`image`]
//!   (hand-built hostile images), and [`wait_for`] / [`poll_until`], the
//!   one polling loop; [`oci`] (mini-runc under containerd, Podman and
//!   runc's contract).
#![allow(dead_code)]

pub mod fake_registry;
pub mod image;
pub mod life;
pub mod mini;
pub mod netns;
pub mod oci;
pub mod proxy;
pub mod pty;
pub mod rootless;

pub use mini::{Mini, IMAGE};

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Whether this test can use root; without it, fail under CI (a test that
/// cannot run must never pass there) and otherwise skip, saying so.
pub fn requires_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    let test = std::thread::current().name().unwrap_or("this test").to_string();
    let must = ["CI", "MINI_REQUIRE_ROOT"].iter().any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()));
    assert!(!must, "needs root: {test} cannot run as uid {} (CI or MINI_REQUIRE_ROOT is set)", unsafe {
        libc::geteuid()
    });
    // Straight to fd 2, not through eprintln!: libtest keeps a passing
    // test's captured output to itself, and a skip must be seen.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: needs root");
    false
}

/// Point `cmd` at the store `root` and the empty config file in `dir`,
/// and strip every variable through which the host's mini configuration
/// could reach it: the test sees only what it sets itself.
pub fn isolate(cmd: &mut Command, dir: &Path, root: &Path) {
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("MINI_") || k.starts_with("XDG_") || k == "DOCKER_CONFIG" {
            cmd.env_remove(&key);
        }
    }
    cmd.env("MINI_ROOT", root)
        .env("MINI_CONFIG", dir.join("config.toml"))
        .env("DOCKER_CONFIG", dir.join("docker"))
        .env("XDG_CONFIG_HOME", dir.join("xdg/config"))
        .env("XDG_DATA_HOME", dir.join("xdg/data"))
        .env("XDG_RUNTIME_DIR", dir.join("xdg/run"))
        .stdin(Stdio::null());
}

/// Call `f` every 20 ms until it gives a value, for at most `timeout`.
pub fn poll_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// [`poll_until`], failing the test on a timeout.
pub fn wait_for<T>(timeout: Duration, what: &str, f: impl FnMut() -> Option<T>) -> T {
    poll_until(timeout, f).unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for {what}"))
}

/// The fixture registries started by `fixtures/up.sh`.
pub const PLAIN: &str = "127.0.0.1:5000";
pub const BASIC: &str = "127.0.0.1:5001";
pub const TOKEN: &str = "127.0.0.1:5002";
pub const ALPINE_MIRROR: &str = "http://127.0.0.1:8080";
pub const USER: &str = "mini";
pub const PASSWORD: &str = "minipass";

/// A scratch store root and Docker config dir, removed on drop.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        require_fixtures();
        let dir = tempfile::Builder::new().prefix("mini-test-").tempdir_in(scratch()).expect("create temp dir");
        // A config file of the test's own: the host's /etc/mini is not
        // read, and containers get no network unless a test asks for one
        // inside a namespace of its own (see `netns`).
        std::fs::write(dir.path().join("config.toml"), mini::CONFIG).unwrap();
        Env { dir }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn docker_config(&self) -> PathBuf {
        self.dir.path().join("docker")
    }

    /// A `mini` command with this store and no ambient configuration.
    pub fn mini(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mini"));
        c.args(args);
        isolate(&mut c, self.dir.path(), &self.root());
        c
    }

    pub fn run(&self, args: &[&str]) -> Outcome {
        Outcome::of(self.mini(args).output().expect("run mini"))
    }

    /// Write `~/.docker/config.json` with credentials for `registry`.
    pub fn login(&self, registry: &str, user: &str, password: &str) {
        use base64::Engine;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        std::fs::create_dir_all(self.docker_config()).unwrap();
        let text = format!(r#"{{"auths":{{"{registry}":{{"auth":"{auth}"}}}}}}"#);
        std::fs::write(self.docker_config().join("config.json"), text).unwrap();
    }

    /// Every path in the store except transient lock files: what a failed
    /// command must leave exactly as it was.
    pub fn snapshot(&self) -> BTreeSet<String> {
        snapshot_of(&self.root())
    }

    pub fn images(&self) -> String {
        let o = self.run(&["images"]);
        assert_eq!(o.code, 0, "mini images: {}", o.stderr);
        o.stdout
    }
}

/// Every path under the store `root` (three levels deep: blobs and layers
/// by name) except transient lock files and trash.
pub fn snapshot_of(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if root.exists() {
        walk(root, root, &mut out);
    }
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let rel = path.strip_prefix(root).unwrap().to_string_lossy().to_string();
        if rel.ends_with(".lock") || rel.starts_with("trash") {
            continue;
        }
        out.insert(rel);
        if path.is_dir() && !path.is_symlink() && path.strip_prefix(root).unwrap().components().count() < 3 {
            walk(root, &path, out);
        }
    }
}

/// Scratch space on the same filesystem as a real store would be.
pub fn scratch() -> PathBuf {
    let p = PathBuf::from(std::env::var("MINI_TEST_TMP").unwrap_or_else(|_| "/var/tmp/mini-tests".into()));
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// The fixture registries must be running: a missing test bed is a failure,
/// not a skip (run `fixtures/up.sh`).
pub fn require_fixtures() {
    use std::net::TcpStream;
    for addr in [PLAIN, BASIC, TOKEN, "127.0.0.1:5003", "127.0.0.1:8080"] {
        assert!(
            TcpStream::connect(addr).is_ok(),
            "the fixture service on {addr} is not running: run `fixtures/up.sh` first"
        );
    }
}

/// The fixtures' manifest digest of `repo:tag` on the registry at `port`.
pub fn fixture_digest(port: &str, image: &str) -> String {
    let state = std::env::var("MINI_FIXTURES").unwrap_or_else(|_| "/var/tmp/mini-fixtures".into());
    let text = std::fs::read_to_string(Path::new(&state).join("fixtures.json")).expect("read fixtures.json");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["registries"][port]["images"][image]["digest"]
        .as_str()
        .unwrap_or_else(|| panic!("{image} not in fixtures.json"))
        .to_string()
}

pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn of(o: Output) -> Outcome {
        Outcome {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// The command failed as mini's own error: exit 125 and exactly one
    /// `mini:` line that contains every one of `needles`.
    pub fn assert_error(&self, needles: &[&str]) {
        assert_eq!(self.code, 125, "want exit 125; stderr: {}", self.stderr);
        let lines: Vec<&str> = self.stderr.lines().filter(|l| l.starts_with("mini: ")).collect();
        assert_eq!(lines.len(), 1, "want one error line, got: {}", self.stderr);
        for n in needles {
            assert!(lines[0].contains(n), "error line lacks `{n}`: {}", lines[0]);
        }
    }

    pub fn assert_ok(&self) {
        assert_eq!(self.code, 0, "stdout: {}\nstderr: {}", self.stdout, self.stderr);
    }
}
