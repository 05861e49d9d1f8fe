//! `mini exec`: the container's namespaces, cgroup, environment, user,
//! working directory and confinement; exit codes; no leaked fds; a pty
//! under -it; refusals.

mod common;
mod life;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Stdio;

use life::{assert_refused, Life};

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
    assert!(lines[n + 5].ends_with('1'), "{}", lines[n + 5]);
    assert!(lines[n + 6].ends_with('2'), "no seccomp filter: {}", lines[n + 6]);
    // 0-2, and ls's own directory fd.
    assert_eq!(lines[n + 7].trim(), "0 1 2 3", "fds leaked into exec");
    let (code, out, _) = l.mini(&["exec", "-u", "app", "-w", "/etc", "box", "sh", "-c", "id -u; pwd; echo $HOME"]);
    assert_eq!((code, out.as_str()), (0, "1000\n/etc\n/home/app\n"));
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
    let (code, _, _) = l.mini(&["create", "--name", "idle", common::IMAGE, "true"]);
    assert_eq!(code, 0);
    assert_refused(l.mini(&["exec", "idle", "true"]), "exec in idle: container is not running");
    assert_refused(l.mini(&["exec", "ghost", "true"]), "no such container");
}

fn openpty() -> (OwnedFd, OwnedFd) {
    let (mut m, mut s) = (0, 0);
    // SAFETY: out pointers to locals; the fds become ours.
    unsafe {
        assert_eq!(libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()), 0);
        (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s))
    }
}

#[test]
fn exec_it_gets_a_pty_from_the_container() {
    let Some(l) = Life::new() else { return };
    l.detach(&["--name", "term"], &["sleep", "60"]);
    let (master, slave) = openpty();
    let ws = libc::winsize { ws_row: 31, ws_col: 99, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ with a valid winsize.
    unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    let mut cmd = l.m.cmd(&["exec", "-it", "term", "sh", "-c", "tty; stty size; read line; echo got:$line; exit 6"]);
    cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave.try_clone().unwrap()));
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    std::thread::sleep(std::time::Duration::from_millis(800));
    let mut mf = std::fs::File::from(master.try_clone().unwrap());
    mf.write_all(b"hello\r").unwrap();
    let status = child.wait().unwrap();
    drop(slave);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match mf.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    let out = String::from_utf8_lossy(&out);
    assert_eq!(status.code(), Some(6), "{out:?}");
    assert!(out.contains("/dev/pts/"), "{out:?}");
    assert!(out.contains("31 99"), "{out:?}");
    assert!(out.contains("got:hello"), "{out:?}");
}
