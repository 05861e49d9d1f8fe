//! OCI hooks: each one a program run with the container's state JSON on
//! its stdin, in order, each within its timeout; the first failure stops
//! the rest and is the caller's error (runc's rules).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

use crate::error::{Error, Result};

/// Run the hooks of `stage` in order.
pub fn run(stage: &str, hooks: Option<&[Hook]>, state: &serde_json::Value) -> Result<()> {
    let input = serde_json::to_vec(state).unwrap_or_default();
    for (i, h) in hooks.unwrap_or_default().iter().enumerate() {
        run_one(h, &input).map_err(|e| e.within(format!("{stage} hook {i} ({})", h.path().display())))?;
    }
    Ok(())
}

fn run_one(h: &Hook, input: &[u8]) -> Result<()> {
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    if let Some((argv0, rest)) = args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear().envs(h.env().iter().flatten().filter_map(|kv| kv.split_once('=')));
    cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| Error::new("start it").because(e))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that never reads its state must not block us: it may exit
        // first, and its closed stdin must be an EPIPE here, not a SIGPIPE
        // that ends mini-runc (mini runs with SIGPIPE's default action).
        // SAFETY: swapping one signal's disposition and restoring it.
        let before = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
        let _ = stdin.write_all(input);
        drop(stdin);
        // SAFETY: as above.
        unsafe { libc::signal(libc::SIGPIPE, before) };
    }
    let timeout = h.timeout().filter(|t| *t > 0).map(|t| Duration::from_secs(t as u64));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| Error::new("wait for it").because(e))? {
            break status;
        }
        if timeout.is_some_and(|t| started.elapsed() > t) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::new("it ran").because(format!("timed out after {}s", h.timeout().unwrap_or_default())));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    if status.success() {
        return Ok(());
    }
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    let said = stderr.lines().next().map(|l| format!(": {l}")).unwrap_or_default();
    Err(Error::new("it ran").because(format!("{status}{said}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(json: serde_json::Value) -> Hook {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn hooks_get_the_state_on_stdin_and_fail_with_their_stage() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("seen");
        let ok = hook(serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}", out.display())]}));
        run("prestart", Some(&[ok]), &serde_json::json!({"id": "c1"})).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), r#"{"id":"c1"}"#);
        let bad = hook(serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", "echo nope >&2; exit 3"]}));
        let e = run("poststop", Some(&[bad]), &serde_json::json!({})).unwrap_err().to_string();
        assert_eq!(e, "poststop hook 0 (/bin/sh): it ran: exit status: 3: nope");
        let slow = hook(serde_json::json!({"path": "/bin/sleep", "args": ["sleep", "5"], "timeout": 1}));
        let e = run("createRuntime", Some(&[slow]), &serde_json::json!({})).unwrap_err().to_string();
        assert!(e.ends_with("timed out after 1s"), "{e}");
    }
}
