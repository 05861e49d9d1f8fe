//! Podman runs containers with mini-runc as its OCI runtime (through
//! conmon, runc's command line): run with output and exit code, a
//! detached container with exec, logs, stop and rm, and nothing left.

mod support;

use support::oci::{deepest_own_cgroup, text, Podman, IMAGE};

fn run_args<'a>(p: &'a Podman, flags: &[&'a str], argv: &[&'a str]) -> Vec<String> {
    let mut a: Vec<String> = vec!["run".into()];
    a.extend(p.run_flags());
    a.extend(flags.iter().map(|s| s.to_string()));
    a.push(IMAGE.into());
    a.extend(argv.iter().map(|s| s.to_string()));
    a
}

fn podman(p: &Podman, args: &[String]) -> (i32, String, String) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    text(&p.cmd(&args).output().unwrap())
}

#[test]
fn podman_run_with_mini_runc_gives_output_and_exit_code() {
    let Some(p) = Podman::new("run") else { return };
    let script = "echo hello from podman; id -u; grep :memory: /proc/self/cgroup; exit 6";
    let (code, out, err) = podman(&p, &run_args(&p, &["--rm"], &["sh", "-c", script]));
    assert_eq!(code, 6, "stderr: {err}");
    assert!(out.starts_with("hello from podman\n0\n"), "{out}");
    // Beneath this test's own memory cgroup (the one controller whose
    // cgroup is not a hierarchy's root here), under the parent it named.
    let want = format!(":memory:{}/", p.cgroup_parent);
    assert!(out.lines().nth(2).is_some_and(|l| l.contains(&want)), "memory cgroup not under {want}: {out}");
    assert!(p.cgroup_parent.starts_with(&format!("{}/", deepest_own_cgroup())));
    let (_, all, _) = podman(&p, &["ps".into(), "-aq".into()]);
    assert_eq!(all.trim(), "", "--rm removed it");
}

#[test]
fn podman_detached_container_exec_logs_stop_rm() {
    let Some(p) = Podman::new("detached") else { return };
    let script = "echo out-line; echo err-line >&2; trap 'echo stopping; exit 0' TERM; while :; do sleep 0.05; done";
    let (code, id, err) = podman(&p, &run_args(&p, &["-d", "--name", "svc"], &["sh", "-c", script]));
    assert_eq!(code, 0, "podman run -d: {err}");
    assert_eq!(id.trim().len(), 64, "{id}");
    support::wait_for(std::time::Duration::from_secs(10), "the first log line", || {
        let (_, out, _) = podman(&p, &["logs".into(), "svc".into()]);
        out.contains("out-line").then_some(())
    });

    let (code, out, err) =
        podman(&p, &["exec".into(), "svc".into(), "sh".into(), "-c".into(), "echo in-exec; exit 4".into()]);
    assert_eq!((code, out.as_str()), (4, "in-exec\n"), "podman exec: {err}");

    let (code, out, err) = podman(&p, &["ps".into(), "--format".into(), "{{.Names}} {{.Status}}".into()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("svc Up"), "{out}");

    let (code, _, err) = podman(&p, &["stop".into(), "-t".into(), "10".into(), "svc".into()]);
    assert_eq!(code, 0, "podman stop: {err}");
    let (_, status, _) = podman(
        &p,
        &["inspect".into(), "--format".into(), "{{.State.ExitCode}} {{.State.Status}}".into(), "svc".into()],
    );
    assert_eq!(status.trim(), "0 exited", "SIGTERM reached the trap");

    let (code, out, err) = podman(&p, &["logs".into(), "svc".into()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "out-line\nstopping\n");
    assert_eq!(err, "err-line\n");

    let (code, _, err) = podman(&p, &["rm".into(), "svc".into()]);
    assert_eq!(code, 0, "podman rm: {err}");
    let (_, all, _) = podman(&p, &["ps".into(), "-aq".into()]);
    assert_eq!(all.trim(), "");
    // conmon runs mini-runc with its default --root: the state is gone.
    let o = std::process::Command::new(support::oci::mini_runc()).args(["state", id.trim()]).output().unwrap();
    assert!(!o.status.success(), "mini-runc still has {id}");
}
