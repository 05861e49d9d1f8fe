//! Terminal calls: ptys, termios, window sizes, poll.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use crate::error::{Error, Result};

fn last(what: impl Into<String>) -> Error {
    Error::new(what).because(io::Error::last_os_error())
}

/// Open a new pty pair from the ptmx at `ptmx` (the container's own devpts).
pub fn open_pty(ptmx: &str) -> Result<(OwnedFd, OwnedFd)> {
    let path = std::ffi::CString::new(ptmx).unwrap_or_default();
    // SAFETY: open/ioctl on fds we own; TIOCSPTLCK takes an int pointer and
    // TIOCGPTPEER opens the peer of this very master (no path lookup race).
    unsafe {
        let m = libc::open(path.as_ptr(), libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        if m < 0 {
            return Err(last(format!("open {ptmx}")));
        }
        let master = OwnedFd::from_raw_fd(m);
        let unlock: libc::c_int = 0;
        if libc::ioctl(m, libc::TIOCSPTLCK, &unlock) < 0 {
            return Err(last("unlock the pty"));
        }
        let s = libc::ioctl(m, libc::TIOCGPTPEER, libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        if s < 0 {
            return Err(last("open the pty's terminal end"));
        }
        Ok((master, OwnedFd::from_raw_fd(s)))
    }
}

pub fn isatty(fd: RawFd) -> bool {
    // SAFETY: isatty only inspects the fd.
    unsafe { libc::isatty(fd) == 1 }
}

/// A terminal's saved settings, restored on drop (every exit path).
pub struct RawMode {
    fd: RawFd,
    saved: libc::termios,
}

/// Put terminal `fd` in raw mode until the guard drops.
pub fn raw_mode(fd: RawFd) -> Result<RawMode> {
    // SAFETY: cfmakeraw edits a termios struct in place.
    with_settings(fd, "put the terminal in raw mode", |t| unsafe { libc::cfmakeraw(t) })
}

/// Stop terminal `fd` echoing what is typed (a password prompt) until
/// the guard drops.
pub fn echo_off(fd: RawFd) -> Result<RawMode> {
    with_settings(fd, "turn off the terminal's echo", |t| t.c_lflag &= !libc::ECHO)
}

/// Change terminal `fd`'s settings by `edit`; the guard restores them.
fn with_settings(fd: RawFd, what: &str, edit: impl FnOnce(&mut libc::termios)) -> Result<RawMode> {
    // SAFETY: termios calls on a terminal fd with a local struct.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(fd, &mut t) != 0 {
            return Err(last("read terminal settings"));
        }
        let saved = t;
        edit(&mut t);
        if libc::tcsetattr(fd, libc::TCSANOW, &t) != 0 {
            return Err(last(what));
        }
        Ok(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restoring settings read from the same fd.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}

/// Copy the window size of terminal `from` to terminal `to`.
pub fn copy_winsize(from: RawFd, to: RawFd) {
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ with a local winsize.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(to, libc::TIOCSWINSZ, &ws);
        }
    }
}

/// poll(2) for readability; returns which fds are readable or hung up.
pub fn poll_readable(fds: &[RawFd], timeout_ms: i32) -> Vec<bool> {
    let mut p: Vec<libc::pollfd> =
        fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    // SAFETY: p is a valid array of pollfd.
    let n = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, timeout_ms) };
    if n <= 0 {
        return vec![false; fds.len()];
    }
    p.iter().map(|x| x.fd >= 0 && x.revents != 0).collect()
}

/// read(2) into `buf`; Ok(0) at end (EIO on a pty whose other end closed).
pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EIO) => return Ok(0),
            _ => return Err(e),
        }
    }
}

/// Write all of `buf` to `fd`.
pub fn write_all(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}
