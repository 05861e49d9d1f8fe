//! Attaching to a running container (`attach`, `start -a`, `start -i`):
//! its output from a point in its log on, and our stdin to its stdin
//! through the monitor's attach socket (containers started with -i only;
//! see `monitor`), until it exits. With -t and a terminal on our side, the
//! terminal goes raw meanwhile (restored on every way out).

use std::io::Write;
use std::os::unix::net::UnixStream;

use mini_store::containers::Container;
use mini_store::Store;

use super::logs::{self, Filter, Tail};
use super::record::Record;
use crate::error::Result;
use crate::sys::tty;

/// Follow the output from byte `from` of the log (and forward stdin when
/// `stdin`) until the container exits; its exit code.
pub fn attach(store: &Store, c: &Container, key: &str, from: u64, stdin: bool) -> Result<i32> {
    let mut input = if stdin { connect(c) } else { None };
    let tty_on = input.is_some() && Record::read(c)?.process.tty && tty::isatty(0);
    let _raw = if tty_on { Some(tty::raw_mode(0)?) } else { None };
    let mut idle = || match input.as_mut() {
        Some(sock) => {
            if !forward(sock) {
                input = None;
            }
        }
        None => std::thread::sleep(logs::FOLLOW_INTERVAL),
    };
    logs::follow(c, Tail::open(&c.log(), from).ok(), &Filter::default(), &mut idle);
    drop(_raw);
    super::lifecycle::wait(store, key)
}

/// The monitor's attach socket; None when the container has none (not
/// started with -i, or by a foreground `mini run`).
fn connect(c: &Container) -> Option<UnixStream> {
    let dir = std::fs::File::open(&c.dir).ok()?;
    UnixStream::connect(super::monitor::short_path(&dir)).ok()
}

/// Wait up to one follow interval for stdin; copy what came. False once
/// stdin has ended (or the monitor went away).
fn forward(sock: &mut UnixStream) -> bool {
    let ms = logs::FOLLOW_INTERVAL.as_millis() as i32;
    if !tty::poll_readable(&[0], ms)[0] {
        return true;
    }
    let mut buf = [0u8; 16 * 1024];
    match tty::read(0, &mut buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => sock.write_all(&buf[..n]).is_ok(),
    }
}
