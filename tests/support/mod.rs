//! Shared helpers for integration tests: run the real `mini` binary against a
//! fresh store root, snapshot a store, reach the fixture registries
//! (fixtures/up.sh), and a fake registry for hostile answers.
#![allow(dead_code)]

pub mod fake_registry;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
        // An empty config file of the test's own: the host's /etc/mini is not read.
        std::fs::write(dir.path().join("config.toml"), "").unwrap();
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
        c.args(args)
            .env("MINI_ROOT", self.root())
            .env("MINI_CONFIG", self.dir.path().join("config.toml"))
            .env("DOCKER_CONFIG", self.docker_config())
            .env_remove("MINI_REGISTRY_MIRROR")
            .env_remove("MINI_INSECURE_REGISTRY")
            .env_remove("MINI_ALPINE_MIRROR");
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
        let root = self.root();
        let mut out = BTreeSet::new();
        if root.exists() {
            walk(&root, &root, &mut out);
        }
        out
    }

    pub fn images(&self) -> String {
        let o = self.run(&["images"]);
        assert_eq!(o.code, 0, "mini images: {}", o.stderr);
        o.stdout
    }
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
    v["registries"][port]["images"][image]["digest"].as_str().unwrap_or_else(|| panic!("{image} not in fixtures.json")).to_string()
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
