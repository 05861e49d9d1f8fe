//! Terminals and streams: `-t` under a pty driven by the test (raw mode
//! restored, window size forwarded), `-i` binary streams passing unaltered,
//! stdout and stderr kept apart without `-t`.

mod support;

use std::io::{Read, Write};

use std::process::Stdio;

use support::{pty::Pty, Mini, IMAGE};

fn lflag(fd: i32) -> libc::tcflag_t {
    // SAFETY: termios read into a local.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        libc::tcgetattr(fd, &mut t);
        t.c_lflag
    }
}

#[test]
fn tty_gives_a_pty_with_the_hosts_size_and_restores_the_terminal() {
    let Some(m) = Mini::new() else { return };
    let pty = Pty::open(33, 101);
    let before = lflag(pty.slave_fd());
    let mut cmd =
        m.cmd(&["run", "--rm", "-it", IMAGE, "sh", "-c", "tty; stty size; read line; echo got:$line; exit 7"]);
    pty.attach(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    drop(cmd); // the Command holds copies of the terminal end
    std::thread::sleep(std::time::Duration::from_millis(800));
    pty.send(b"hello\r");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(7));
    assert_eq!(lflag(pty.slave_fd()), before, "terminal settings not restored");
    let out = pty.output();
    assert!(out.contains("/dev/pts/0"), "{out:?}");
    assert!(out.contains("33 101"), "{out:?}");
    assert!(out.contains("got:hello"), "{out:?}");
    assert!(m.containers().is_empty());
}

#[test]
fn window_size_changes_reach_the_container() {
    let Some(m) = Mini::new() else { return };
    let pty = Pty::open(20, 70);
    let script =
        "stty size; trap 'stty size; exit 0' WINCH; i=0; while [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; exit 9";
    let mut cmd = m.cmd(&["run", "--rm", "-t", IMAGE, "sh", "-c", script]);
    pty.attach(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    std::thread::sleep(std::time::Duration::from_millis(800));
    pty.resize(40, 120);
    // What a terminal emulator's resize does to the foreground `mini run`.
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGWINCH) };
    let status = child.wait().unwrap();
    let out = pty.output();
    assert_eq!(status.code(), Some(0), "{out:?}");
    assert!(out.contains("20 70") && out.contains("40 120"), "{out:?}");
}

#[test]
fn binary_streams_pass_unaltered_and_stderr_stays_apart() {
    let Some(m) = Mini::new() else { return };
    let data: Vec<u8> = (0..(2 << 20)).map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let mut child =
        m.cmd(&["run", "--rm", "-i", IMAGE, "cat"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = data.clone();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    writer.join().unwrap().unwrap();
    assert!(child.wait().unwrap().success());
    assert!(out == data, "stream altered: {} bytes in, {} out", data.len(), out.len());

    let (code, out, err) = m.run_in(&[], &["sh", "-c", "echo out; echo err >&2; read x || echo no-stdin"]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "out\nno-stdin\n", "err\n"));
}
