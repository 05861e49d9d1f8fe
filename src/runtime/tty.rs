//! `-t` on the host side: the host terminal in raw mode (restored when the
//! guard drops, on every path), the window size copied to the container's
//! pty now and on every SIGWINCH, and a poll loop copying host stdin → pty
//! and pty → host stdout until the container exits.

use std::os::fd::{AsRawFd, OwnedFd};

use crate::error::Result;
use crate::sys::process::{self as p, Exit};
use crate::sys::tty;

/// Copy between the host's stdio and the pty `master` until process `pid`
/// ends; forwards signals from `sigfd` (SIGWINCH resizes instead).
pub fn relay(
    master: OwnedFd,
    pid: i32,
    sigfd: &OwnedFd,
    interactive: bool,
    output: &mut dyn FnMut(&[u8]),
) -> Result<Exit> {
    let stdin_tty = tty::isatty(0);
    let _raw = if stdin_tty && interactive { Some(tty::raw_mode(0)?) } else { None };
    if stdin_tty {
        tty::copy_winsize(0, master.as_raw_fd());
    }
    let m = master.as_raw_fd();
    let mut stdin_open = interactive;
    let mut buf = vec![0u8; 64 * 1024];
    let mut output_open = true;
    loop {
        let fds = [if stdin_open { 0 } else { -1 }, if output_open { m } else { -1 }, sigfd.as_raw_fd()];
        let ready = tty::poll_readable(&fds, -1);
        if ready[1] {
            match tty::read(m, &mut buf) {
                Ok(0) | Err(_) => output_open = false,
                Ok(n) => {
                    let _ = tty::write_all(1, &buf[..n]);
                    output(&buf[..n]);
                }
            }
        }
        if ready[0] {
            match tty::read(0, &mut buf) {
                Ok(0) | Err(_) => {
                    stdin_open = false;
                    // End of input: send the terminal's EOF character.
                    let _ = tty::write_all(m, &[4]);
                }
                Ok(n) => {
                    let _ = tty::write_all(m, &buf[..n]);
                }
            }
        }
        if ready[2] {
            match p::read_signal(sigfd) {
                Some(libc::SIGCHLD) => {
                    if let Some((_, exit)) = p::wait(pid, true)? {
                        drain(m, &mut buf, output);
                        return Ok(exit);
                    }
                }
                Some(libc::SIGWINCH) if stdin_tty => tty::copy_winsize(0, m),
                Some(sig) => {
                    let _ = p::kill(pid, sig);
                }
                None => {}
            }
        }
    }
}

/// Whatever the container wrote just before exiting.
fn drain(m: i32, buf: &mut [u8], output: &mut dyn FnMut(&[u8])) {
    let fd = m;
    while tty::poll_readable(&[fd], 0)[0] {
        match tty::read(fd, buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let _ = tty::write_all(1, &buf[..n]);
                output(&buf[..n]);
            }
        }
    }
}
