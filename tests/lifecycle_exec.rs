//! `mini exec`: the container's namespaces, cgroup, environment, user,
//! working directory and confinement; exit codes; no leaked fds; a pty
//! under -it; refusals.

mod support;

use support::life::{assert_refused, Life};

#[test]
fn exec_joins_every_namespace_and_gets_the_containers_setup() {
    let Some(l) = Life::new() else { return };
    let id = l.detach(&["--name", "box", "-e", "FOO=bar", "-w", "/tmp"], &["sleep", "60"]);
    let kinds = ["uts", "pid", "mnt", "net", "ipc", "cgroup"];
    let script = kinds.iter().map(|k| format!("readlink /proc/1/ns/{k}; readlink /proc/self/ns/{k};")).collect::<String>()
        + "cat /proc/1/cgroup | md5sum; cat /proc/self/cgroup | md5sum; echo $FOO $BAR; pwd; grep CapEff /proc/self/status; \
           grep NoNewPrivs /proc/self/status; grep Seccomp: /proc/self/status; ls /proc/self/fd | tr '\\n' ' '";
    let (code, out, err) = l.mini(&["exec", "-e", "BAR=baz", "box", "sh", "-c", &script]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    for (i, k) in kinds.iter().enumerate() {
        assert_eq!(lines[2 * i], lines[2 * i + 1], "{k} namespace differs from the container's");
    }
    let n = kinds.len() * 2;
    assert_eq!(lines[n], lines[n + 1], "not in the container's cgroups");
    assert_eq!(lines[n + 2], "bar baz");
    assert_eq!(lines[n + 3], "/tmp");
    let pid1_caps = std::fs::read_to_string(format!("/proc/{}/status", l.state(&id)["pid"])).unwrap();
    let caps = pid1_caps.lines().find(|x| x.starts_with("CapEff")).unwrap();
    assert_eq!(lines[n + 4], caps);
    // As the container's own: off by Docker's default (see tests/parity.rs).
    assert!(lines[n + 5].ends_with('0'), "{}", lines[n + 5]);
    assert!(lines[n + 6].ends_with('2'), "no seccomp filter: {}", lines[n + 6]);
    // 0-2, and ls's own directory fd.
    assert_eq!(lines[n + 7].trim(), "0 1 2 3", "fds leaked into exec");
    let (code, out, _) = l.mini(&["exec", "-u", "app", "-w", "/etc", "box", "sh", "-c", "id -u; pwd; echo $HOME"]);
    assert_eq!((code, out.as_str()), (0, "1000\n/etc\n/home/app\n"));
    // A container started with no-new-privileges gives it to exec too.
    l.detach(&["--name", "strict", "--security-opt", "no-new-privileges"], &["sleep", "60"]);
    let (code, out, err) = l.mini(&["exec", "strict", "grep", "NoNewPrivs", "/proc/self/status"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.trim_end().ends_with('1'), "{out}");
}

#[test]
fn exec_exit_codes_follow_docker() {
    let Some(l) = Life::new() else { return };
    l.detach(&["--name", "codes"], &["sleep", "60"]);
    assert_eq!(l.mini(&["exec", "codes", "sh", "-c", "exit 3"]).0, 3);
    assert_eq!(l.mini(&["exec", "codes", "sh", "-c", "kill -9 $$"]).0, 137);
    let (code, _, err) = l.mini(&["exec", "codes", "nope"]);
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("executable file not found"), "{err}");
    assert_eq!(l.mini(&["exec", "codes", "/etc/passwd"]).0, 126);
    let (code, out, _) = l.mini(&["exec", "-i", "codes", "cat"]);
    assert_eq!((code, out.as_str()), (0, ""));
}

#[test]
fn exec_refuses_stopped_and_unknown_containers() {
    let Some(l) = Life::new() else { return };
    let (code, _, _) = l.mini(&["create", "--name", "idle", support::IMAGE, "true"]);
    assert_eq!(code, 0);
    assert_refused(l.mini(&["exec", "idle", "true"]), "exec in idle: container is not running");
    assert_refused(l.mini(&["exec", "ghost", "true"]), "no such container");
}

#[test]
fn exec_it_gets_a_pty_from_the_container() {
    let Some(l) = Life::new() else { return };
    l.detach(&["--name", "term"], &["sleep", "60"]);
    let pty = support::pty::Pty::open(31, 99);
    let mut cmd = l.m.cmd(&["exec", "-it", "term", "sh", "-c", "tty; stty size; read line; echo got:$line; exit 6"]);
    pty.attach(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    std::thread::sleep(std::time::Duration::from_millis(800));
    pty.send(b"hello\r");
    let status = child.wait().unwrap();
    let out = pty.output();
    assert_eq!(status.code(), Some(6), "{out:?}");
    assert!(out.contains("/dev/pts/"), "{out:?}");
    assert!(out.contains("31 99"), "{out:?}");
    assert!(out.contains("got:hello"), "{out:?}");
}
