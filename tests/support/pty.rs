//! [`Pty`]: a terminal a test drives, for `-t` and `exec -t`.

use std::process::{Command, Stdio};

/// A pty pair driven by a test: the command gets the terminal end as its
/// stdio, the test writes to and reads from the master end.
pub struct Pty {
    pub master: std::os::fd::OwnedFd,
    pub slave: Option<std::os::fd::OwnedFd>,
}

impl Pty {
    /// A new pty whose window is `rows` x `cols`.
    pub fn open(rows: u16, cols: u16) -> Pty {
        use std::os::fd::{FromRawFd, OwnedFd};
        let (mut m, mut s) = (0, 0);
        // SAFETY: out pointers to locals; the fds become ours.
        let (master, slave) = unsafe {
            assert_eq!(libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()), 0);
            (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s))
        };
        let pty = Pty { master, slave: Some(slave) };
        pty.resize(rows, cols);
        pty
    }

    /// Set the window size, as a terminal emulator's resize does.
    pub fn resize(&self, rows: u16, cols: u16) {
        use std::os::fd::AsRawFd;
        let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: TIOCSWINSZ with a valid winsize on our own master.
        unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }

    /// The terminal end's fd (for termios checks).
    pub fn slave_fd(&self) -> i32 {
        use std::os::fd::AsRawFd;
        self.slave.as_ref().expect("terminal end still open").as_raw_fd()
    }

    /// Give `cmd` the terminal end as stdin, stdout and stderr.
    pub fn attach(&self, cmd: &mut Command) {
        let slave = self.slave.as_ref().expect("terminal end still open");
        cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave.try_clone().unwrap()));
    }

    /// Type `bytes` at the terminal.
    pub fn send(&self, bytes: &[u8]) {
        use std::io::Write;
        std::fs::File::from(self.master.try_clone().unwrap()).write_all(bytes).unwrap();
    }

    /// Close the terminal end and read everything the command wrote.
    pub fn output(mut self) -> String {
        use std::io::Read;
        self.slave = None;
        let mut master = std::fs::File::from(self.master);
        let (mut out, mut buf) = (Vec::new(), [0u8; 4096]);
        loop {
            match master.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}
