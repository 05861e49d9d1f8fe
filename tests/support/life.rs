//! Helpers for the lifecycle tests: a store whose containers are killed
//! (by pid: container and monitor) and removed with their cgroups when the
//! test ends, pass or fail; output as text.

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use super::{poll_until, wait_for};
pub use super::{Mini, IMAGE};

pub struct Life {
    pub m: Mini,
}

impl Life {
    pub fn new() -> Option<Life> {
        Mini::new().map(|m| Life { m })
    }

    /// Run mini; (code, stdout, stderr).
    pub fn mini(&self, args: &[&str]) -> (i32, String, String) {
        text(self.m.cmd(args).output().expect("run mini"))
    }

    /// `mini run -d [flags] IMAGE argv…`: the new id (asserted to succeed).
    pub fn detach(&self, flags: &[&str], argv: &[&str]) -> String {
        let mut args = vec!["run", "-d"];
        args.extend_from_slice(flags);
        args.push(IMAGE);
        args.extend_from_slice(argv);
        let (code, out, err) = self.mini(&args);
        assert_eq!(code, 0, "run -d failed: {err}");
        let id = out.trim().to_string();
        assert!(id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()), "not an id: {out:?}");
        id
    }

    pub fn state(&self, id: &str) -> serde_json::Value {
        let p = self.m.root.join("containers").join(id).join("state.json");
        serde_json::from_slice(&std::fs::read(&p).unwrap_or_default()).unwrap_or(serde_json::Value::Null)
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap_or("").to_string()
    }

    /// Wait (up to 10 s) until `f` holds.
    pub fn until(&self, what: &str, f: impl Fn() -> bool) {
        wait_for(Duration::from_secs(10), what, || f().then_some(()));
    }

    /// The cgroup dirs recorded for every container in the store.
    pub fn cgroups(&self) -> Vec<PathBuf> {
        self.m.containers().iter().flat_map(|id| self.m.cgroups_of(id)).collect()
    }
}

impl Drop for Life {
    fn drop(&mut self) {
        let cgroups = self.cgroups();
        for id in self.m.containers() {
            let s = self.state(&id);
            for key in ["pid", "monitor_pid"] {
                if let Some(pid) = s[key].as_i64() {
                    // SAFETY: kill by pid of a process this test started.
                    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
        for d in cgroups {
            let _ = std::fs::remove_dir(&d);
        }
    }
}

pub fn text(out: Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// One error line, exit 125, naming `needle`.
pub fn assert_refused((code, out, err): (i32, String, String), needle: &str) {
    assert_eq!(code, 125, "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line expected: {err}");
    assert!(err.contains(needle), "{err:?} lacks {needle:?}");
    assert!(out.is_empty(), "printed {out:?}");
}

/// Wait for a spawned mini up to `secs`, then kill it (by pid) and fail:
/// a hung attach must fail the test, not hang the suite.
pub fn finish(mut child: std::process::Child, secs: u64) -> (Option<i32>, String) {
    use std::io::Read;
    let Some(status) = poll_until(Duration::from_secs(secs), || child.try_wait().expect("wait for mini")) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("mini did not finish within {secs} s");
    };
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    (status.code(), out)
}
