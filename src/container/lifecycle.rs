//! A container's life after `create`: start (through a monitor), stop,
//! kill, wait, restart, and what `top` and `container prune` need.
//!
//! state.json is the truth, read fresh by every verb: a container runs
//! when it says "running" and the process that owns it (the monitor, or a
//! foreground `mini run`) is alive with the start time it recorded (see
//! `state::is_running`). Signals go straight to the container's pid 1;
//! its owner reaps it and records the exit, which is what `stop` and
//! `wait` poll for.

use std::time::{Duration, Instant};

use mini_store::containers::{Container, State, Status};
use mini_store::Store;

use super::record::Record;
use super::state;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::sys::process as p;

/// How often waiting verbs read state.json again.
const POLL: Duration = Duration::from_millis(10);

/// A container and its current state, found for operation `op`, after
/// orphans (dead owner) have been marked exited.
pub fn lookup(store: &Store, op: &str, key: &str) -> Result<(Container, State)> {
    super::sweep_stale(store);
    let c = super::find(store, op, key)?;
    let state = c.state().map_err(|e| Error::new(format!("{op} {key}")).because(e))?;
    Ok((c, state))
}

fn not_running(op: &str, key: &str) -> Error {
    Error::new(format!("{op} {key}")).because("container is not running")
}

/// Start a created or exited container through a new monitor; returns
/// its pid once it runs.
pub fn start(config: &Config, store: &Store, key: &str) -> Result<i32> {
    let (c, state) = lookup(store, "start", key)?;
    if state::is_running(&state) {
        return Err(Error::new(format!("start {key}")).because("container is already running"));
    }
    super::monitor::spawn(config, &c.id)
}

/// Docker's signal names (with or without "SIG", any case) and numbers.
pub fn parse_signal(text: &str) -> Result<i32> {
    const NAMES: [(&str, i32); 31] = [
        ("HUP", libc::SIGHUP),
        ("INT", libc::SIGINT),
        ("QUIT", libc::SIGQUIT),
        ("ILL", libc::SIGILL),
        ("TRAP", libc::SIGTRAP),
        ("ABRT", libc::SIGABRT),
        ("IOT", libc::SIGIOT),
        ("BUS", libc::SIGBUS),
        ("FPE", libc::SIGFPE),
        ("KILL", libc::SIGKILL),
        ("USR1", libc::SIGUSR1),
        ("SEGV", libc::SIGSEGV),
        ("USR2", libc::SIGUSR2),
        ("PIPE", libc::SIGPIPE),
        ("ALRM", libc::SIGALRM),
        ("TERM", libc::SIGTERM),
        ("STKFLT", libc::SIGSTKFLT),
        ("CHLD", libc::SIGCHLD),
        ("CONT", libc::SIGCONT),
        ("STOP", libc::SIGSTOP),
        ("TSTP", libc::SIGTSTP),
        ("TTIN", libc::SIGTTIN),
        ("TTOU", libc::SIGTTOU),
        ("URG", libc::SIGURG),
        ("XCPU", libc::SIGXCPU),
        ("XFSZ", libc::SIGXFSZ),
        ("VTALRM", libc::SIGVTALRM),
        ("PROF", libc::SIGPROF),
        ("WINCH", libc::SIGWINCH),
        ("IO", libc::SIGIO),
        ("SYS", libc::SIGSYS),
    ];
    let bad = || {
        Error::new(format!("invalid signal \"{text}\""))
            .because("expected a name like TERM or SIGKILL, or a number 1-64")
    };
    if let Ok(n) = text.parse::<i32>() {
        return if (1..=64).contains(&n) { Ok(n) } else { Err(bad()) };
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    NAMES.iter().find(|(n, _)| *n == name).map(|(_, s)| *s).ok_or_else(bad)
}

/// Send `sig` to the container's pid 1. As Docker, a kill counts as
/// ending it on purpose: its restart policy no longer applies.
pub fn kill(store: &Store, key: &str, sig: i32) -> Result<()> {
    let (c, state) = lookup(store, "kill", key)?;
    if state::is_restarting(&state) {
        return end_restarting(&c, &state, key, "kill");
    }
    match state.pid {
        Some(pid) if state::is_running(&state) => {
            mark_stopped(&c, key, "kill")?;
            p::kill(pid, sig).map_err(|e| e.within(format!("kill {key}")))?;
            super::events::container(&c, "kill", &[("signal", &sig.to_string())]);
            if sig == libc::SIGKILL {
                thaw(&c, &state).map_err(|e| e.within(format!("kill {key}")))?;
            }
            Ok(())
        }
        _ => Err(not_running("kill", key)),
    }
}

/// `mini pause`: freeze every process of a running container (its
/// cgroup's freezer), as Docker does; exec and attach are refused meanwhile.
pub fn pause(store: &Store, key: &str) -> Result<()> {
    let (c, state) = lookup(store, "pause", key)?;
    if !state::is_running(&state) {
        return Err(not_running("pause", key));
    }
    if state.paused {
        return Err(Error::new(format!("pause {key}")).because("container is already paused"));
    }
    let record = Record::read(&c).map_err(|e| e.within(format!("pause {key}")))?;
    record.container.cgroups.freeze(true).map_err(|e| e.within(format!("pause {key}")))?;
    if let Err(e) = state::paused(&c, true) {
        let _ = record.container.cgroups.freeze(false);
        return Err(e.within(format!("pause {key}")));
    }
    Ok(())
}

/// `mini unpause`: thaw a paused container.
pub fn unpause(store: &Store, key: &str) -> Result<()> {
    let (c, state) = lookup(store, "unpause", key)?;
    if !state::is_running(&state) || !state.paused {
        return Err(Error::new(format!("unpause {key}")).because("container is not paused"));
    }
    thaw(&c, &state).map_err(|e| e.within(format!("unpause {key}")))
}

/// Thaw a paused container and record it so (a stop or kill of a paused
/// container thaws it after the signal, as Docker does, so it is
/// delivered and the container can end).
fn thaw(c: &Container, state: &State) -> Result<()> {
    if !state.paused {
        return Ok(());
    }
    Record::read(c)?.container.cgroups.freeze(false)?;
    state::paused(c, false).map(|_| ())
}

/// Mark the container as ended on purpose, so its monitor does not
/// restart it (see `restart`).
fn mark_stopped(c: &Container, key: &str, op: &str) -> Result<()> {
    c.set_stopped(true).map_err(|e| Error::new(format!("{op} {key}")).because(e))
}

/// A container between restarts: marked, its monitor woken; returns once
/// the monitor has recorded it exited.
fn end_restarting(c: &Container, state: &State, key: &str, op: &str) -> Result<()> {
    mark_stopped(c, key, op)?;
    if let Some(m) = state.monitor_pid {
        let _ = p::kill(m, libc::SIGTERM);
    }
    let start = Instant::now();
    while c.state().is_ok_and(|s| state::is_restarting(&s)) && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(POLL);
    }
    Ok(())
}

/// The stop signal (the image's StopSignal, else SIGTERM), then SIGKILL
/// after `timeout`; returns once the owner has recorded the exit.
pub fn stop(store: &Store, key: &str, timeout: Duration) -> Result<()> {
    let (c, state) = lookup(store, "stop", key)?;
    if state::is_restarting(&state) {
        return end_restarting(&c, &state, key, "stop");
    }
    let Some(pid) = state.pid.filter(|_| state::is_running(&state)) else {
        return Err(not_running("stop", key));
    };
    mark_stopped(&c, key, "stop")?;
    let record = Record::read(&c).map_err(|e| e.within(format!("stop {key}")))?;
    let sig = match &record.container.stop_signal {
        Some(s) => parse_signal(s).map_err(|e| e.within(format!("stop {key}: the image's StopSignal")))?,
        None => libc::SIGTERM,
    };
    let _ = p::kill(pid, sig);
    super::events::container(&c, "kill", &[("signal", &sig.to_string())]);
    thaw(&c, &state).map_err(|e| e.within(format!("stop {key}")))?;
    if !wait_not_running(&c, Some(timeout)) {
        let _ = p::kill(pid, libc::SIGKILL);
        super::events::container(&c, "kill", &[("signal", &libc::SIGKILL.to_string())]);
        // SIGKILL cannot be ignored; the owner records the exit at once.
        wait_not_running(&c, Some(Duration::from_secs(30)));
    }
    super::events::container(&c, "stop", &[]);
    Ok(())
}

/// Poll state.json until the container no longer runs (true), or the
/// timeout passes (false). A removed container counts as stopped.
pub fn wait_not_running(c: &Container, timeout: Option<Duration>) -> bool {
    let start = Instant::now();
    loop {
        match c.state() {
            Ok(s) if state::is_running(&s) => {}
            Ok(s) if s.status == Status::Running => {
                // Its owner died without recording the exit: the container
                // died with it (parent-death signal).
                return true;
            }
            _ => return true,
        }
        if timeout.is_some_and(|t| start.elapsed() >= t) {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// `mini wait`: block until the container has exited; its exit code.
pub fn wait(store: &Store, key: &str) -> Result<i32> {
    let (c, mut state) = lookup(store, "wait", key)?;
    // A --rm container's monitor removes it only once waiters have read
    // its exit code (it takes this lock exclusive first).
    let rm = Record::read(&c).map_err(|e| e.within(format!("wait {key}")))?.container.rm;
    let _reading = if rm { mini_store::StoreLock::shared(&c.wait_lock()).ok() } else { None };
    // A created container is waited for through its next run, as Docker does.
    while state.status == Status::Created || state::is_running(&state) {
        std::thread::sleep(POLL);
        state = match c.state() {
            Ok(s) => s,
            Err(_) => return Err(Error::new(format!("wait {key}")).because("the container was removed")),
        };
    }
    if state.status == Status::Running {
        super::sweep_stale(store);
        state = c.state().unwrap_or(state);
    }
    Ok(state.exit_code.unwrap_or(137))
}

/// `mini restart`: stop if running, then start.
pub fn restart(config: &Config, store: &Store, key: &str, timeout: Duration) -> Result<()> {
    let (c, state) = lookup(store, "restart", key)?;
    if state::is_running(&state) || state::is_restarting(&state) {
        // A --rm container is restarted, not removed, as Docker does: its
        // owner reads the mark before it records the exit, and the mark
        // goes once the exit is recorded.
        c.set_restarting(true).map_err(|e| Error::new(format!("restart {key}")).because(e))?;
        let stopped = stop(store, key, timeout);
        let _ = c.set_restarting(false);
        stopped?;
    }
    start(config, store, key).map(|_| ())
}

/// The host pids in the container's pid namespace: every process whose
/// `/proc/<pid>/ns/pid` is that of the container's pid 1.
pub fn processes(store: &Store, key: &str) -> Result<Vec<i32>> {
    let (_, state) = lookup(store, "top", key)?;
    let Some(pid) = state.pid.filter(|_| state::is_running(&state)) else {
        return Err(not_running("top", key));
    };
    let ns = std::fs::read_link(format!("/proc/{pid}/ns/pid"))
        .map_err(|e| Error::new(format!("top {key}: read /proc/{pid}/ns/pid")).because(e))?;
    let mut pids: Vec<i32> = std::fs::read_dir("/proc")
        .map_err(|e| Error::new(format!("top {key}: read /proc")).because(e))?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| std::fs::read_link(format!("/proc/{p}/ns/pid")).is_ok_and(|l| l == ns))
        .collect();
    pids.sort();
    Ok(pids)
}

/// `mini container prune`: remove every container that is not running;
/// returns the removed ids.
pub fn prune(store: &Store) -> Result<Vec<String>> {
    super::sweep_stale(store);
    let cs = super::containers(store)?;
    let mut removed = Vec::new();
    for id in cs.ids().unwrap_or_default() {
        let Ok(state) = cs.get(&id).state() else { continue };
        if state.status != Status::Running {
            super::remove(store, &id, false, false)?;
            removed.push(id);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(parse_signal("TERM").unwrap(), 15);
        assert_eq!(parse_signal("sigkill").unwrap(), 9);
        assert_eq!(parse_signal("SIGUSR1").unwrap(), libc::SIGUSR1);
        assert_eq!(parse_signal("2").unwrap(), 2);
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("65").is_err());
        let e = parse_signal("NOPE").unwrap_err();
        assert!(e.to_string().starts_with("invalid signal \"NOPE\""), "{e}");
    }
}
