//! containerd runs containers through mini-runc (`ctr run --runc-binary`),
//! through the same runc v2 shim Kubernetes' CRI plugin uses: output and
//! exit codes, a detached task with exec, ps, kill and delete, a terminal,
//! a create error reported the way containerd shows runc's, cgroups beneath
//! the test's own, and nothing left behind.

mod support;

use std::time::Duration;

use support::oci::{cgroup_parent, cgroups_named, cleanup_cgroups, mini_runc, text, Containerd};
use support::wait_for;

/// Nothing of the test's containers is left: no task, no container, no
/// mini-runc state, no cgroup beneath ours.
fn assert_clean(c: &Containerd, cgroup: &str) {
    let (_, tasks, _) = text(&c.ctr(&["task", "ls", "-q"]).output().unwrap());
    assert_eq!(tasks.trim(), "", "tasks left");
    let (_, containers, _) = text(&c.ctr(&["containers", "ls", "-q"]).output().unwrap());
    assert_eq!(containers.trim(), "", "containers left");
    let o = std::process::Command::new(mini_runc()).arg("--root").arg(c.runtime_root()).args(["list", "-q"]).output();
    let left = o.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    assert_eq!(left.trim(), "", "mini-runc state left under {}", c.runtime_root().display());
    // The test's own parent directory may stay (runc leaves it too); the
    // containers' directories beneath it must not.
    for dir in cgroups_named(cgroup) {
        let children: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().filter(|e| e.path().is_dir()).collect();
        assert!(children.is_empty(), "container cgroups left under {}", dir.display());
    }
    cleanup_cgroups(cgroup);
}

#[test]
fn ctr_run_rm_gives_output_exit_code_and_cgroups_beneath_ours() {
    let Some(c) = Containerd::start("rm") else { return };
    let cg = cgroup_parent("rm");
    let script = "echo hello from mini-runc; grep -E ':(memory|pids):' /proc/self/cgroup; exit 7";
    let (code, out, err) = text(&c.run(&["--rm"], "rm1", &cg, &["sh", "-c", script]).output().unwrap());
    assert_eq!(code, 7, "exit code of the container's process; stderr: {err}");
    assert!(out.starts_with("hello from mini-runc\n"), "{out}");
    // No cgroup namespace was asked for: the container sees its cgroups'
    // full paths, each beneath this test's own cgroup.
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    for ctl in ["memory", "pids"] {
        let mine = own.lines().find(|l| l.contains(&format!(":{ctl}:"))).unwrap().splitn(3, ':').nth(2).unwrap();
        let want = format!("{}/{cg}/rm1", mine.trim_end_matches('/'));
        assert!(out.lines().any(|l| l.ends_with(&format!(":{ctl}:{want}"))), "{ctl} cgroup is not {want}: {out}");
    }
    assert_clean(&c, &cg);
}

#[test]
fn ctr_detached_task_exec_ps_kill_delete() {
    let Some(c) = Containerd::start("task") else { return };
    let cg = cgroup_parent("task");
    let log = c.dir.path().join("task.log");
    let log_uri = format!("file://{}", log.display());
    let script = "echo task started; trap 'echo got TERM; exit 9' TERM; while :; do sleep 0.05; done";
    let (code, _, err) =
        text(&c.run(&["-d", "--log-uri", &log_uri], "t1", &cg, &["sh", "-c", script]).output().unwrap());
    assert_eq!(code, 0, "ctr run -d: {err}");
    wait_for(Duration::from_secs(10), "the task's first line in its log", || {
        std::fs::read_to_string(&log).ok().filter(|t| t.contains("task started"))
    });
    assert_eq!(c.task_status("t1"), "RUNNING");

    let (code, out, err) =
        text(&c.ctr(&["task", "exec", "--exec-id", "e1", "t1", "sh", "-c", "echo in exec; exit 5"]).output().unwrap());
    assert_eq!((code, out.as_str()), (5, "in exec\n"), "ctr task exec: {err}");

    // ps lists the task's processes (from mini-runc ps --format json).
    let (code, ps, err) = text(&c.ctr(&["task", "ps", "t1"]).output().unwrap());
    assert_eq!(code, 0, "ctr task ps: {err}");
    let (_, ls, _) = text(&c.ctr(&["task", "ls"]).output().unwrap());
    let init = ls.lines().find(|l| l.starts_with("t1 ")).unwrap().split_whitespace().nth(1).unwrap().to_string();
    assert!(ps.lines().skip(1).any(|l| l.split_whitespace().next() == Some(&init)), "init pid {init} not in: {ps}");
    assert!(ps.lines().count() >= 3, "sh and its sleep: {ps}");

    let (code, _, err) = text(&c.ctr(&["task", "kill", "t1"]).output().unwrap());
    assert_eq!(code, 0, "ctr task kill: {err}");
    wait_for(Duration::from_secs(10), "the task to stop", || (c.task_status("t1") == "STOPPED").then_some(()));
    assert!(std::fs::read_to_string(&log).unwrap().contains("got TERM"), "the trap ran");
    let (code, _, err) = text(&c.ctr(&["task", "delete", "t1"]).output().unwrap());
    assert_eq!(code, 0, "ctr task delete: {err}");
    assert!(err.contains("exit code 9"), "the exit code reaches containerd: {err}");
    let (code, _, err) = text(&c.ctr(&["containers", "rm", "t1"]).output().unwrap());
    assert_eq!(code, 0, "ctr containers rm: {err}");
    assert_clean(&c, &cg);
}

#[test]
fn ctr_run_with_a_terminal() {
    let Some(c) = Containerd::start("tty") else { return };
    let cg = cgroup_parent("tty");
    let pty = support::pty::Pty::open(24, 80);
    let mut cmd = c.run(&["--rm", "-t"], "tty1", &cg, &["sh", "-c", "tty; [ -t 0 ] && echo stdin-is-a-tty; exit 3"]);
    pty.attach(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let status = child.wait().unwrap();
    drop(cmd); // its copies of the terminal end, or the read never ends
    let out = pty.output();
    assert_eq!(status.code(), Some(3), "exit code through the terminal: {out}");
    assert!(out.contains("/dev/pts/0"), "the container's own devpts: {out}");
    assert!(out.contains("stdin-is-a-tty"), "{out}");
    assert_clean(&c, &cg);
}

#[test]
fn ctr_run_of_a_missing_command_fails_at_create_with_mini_runc_s_error() {
    let Some(c) = Containerd::start("missing") else { return };
    let cg = cgroup_parent("missing");
    let (code, _, err) = text(&c.run(&["--rm"], "m1", &cg, &["/no/such/command"]).output().unwrap());
    assert_ne!(code, 0);
    // containerd shows the last error of the runtime's --log (JSON lines).
    assert!(
        err.contains(
            "OCI runtime create failed: exec \"/no/such/command\": stat /no/such/command: no such file or directory"
        ),
        "{err}"
    );
    let _ = c.ctr(&["containers", "rm", "m1"]).output();
    assert_clean(&c, &cg);
}
