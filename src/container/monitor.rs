//! The monitor: one per started detached container (`run -d`, `start`),
//! mini re-executed as the hidden `container-monitor ID` verb, like
//! conmon or containerd-shim. It runs in its own session with no terminal,
//! so it outlives the `mini` that spawned it, and:
//!
//! - starts the container from its record (config.json), so it is the
//!   container's parent: it reaps it, and the container dies with it
//!   (parent-death signal), so a killed monitor never leaves an orphan
//!   that state.json would call "running";
//! - holds the container's stdout and stderr (pipes) or its pty master
//!   (-t), and writes what comes out to `containers/<id>/log` (see `logs`);
//!   with -i it keeps the container's stdin open (a pipe it never writes);
//! - records the container in state.json: running with its pid and the
//!   monitor's own pid and start time (how everyone else tells a live
//!   monitor from a dead one), then exited with its code, finish time and
//!   whether the OOM killer struck; with --rm it removes the container;
//! - tells the spawning `mini` one line on its stdout, a
//!   [`Report`]: running with this pid, or why it could not start.
//!
//! No threads: the monitor clones the container, so it stays
//! single-threaded and waits in a poll loop.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use mini_store::containers::{Container, ContainerConfig};
use mini_store::{Store, StoreLock};

use super::logs::{self, Stream};
use super::record::Record;
use super::{health, launch, restart, state};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::network::attach::Attached;
use crate::runtime::message::{Failed, Report};
use crate::runtime::process::{exit_code, Started};
use crate::sys::process::{self as p, Exit};
use crate::sys::tty;

/// How a monitor shows up in `ps`: `mini-monitor ... container-monitor ID`.
pub const MONITOR_NAME: &str = "mini-monitor";

/// The hidden verb's body; returns the monitor's exit code (nobody reads it).
pub fn run(config: &Config, id: &str) -> Result<i32> {
    // Nothing the spawner left open (a CI tool's pipe would never see EOF
    // while we live); our stdout is its report pipe: keep it apart from
    // the fds the container inherits.
    p::close_from(3);
    // `ps` shows it as what it is, not as `exe` (/proc/self/exe).
    let _ = p::set_name(MONITOR_NAME);
    let report = p::dup_cloexec(1)?;
    let _ = p::setsid();
    let store = Store::open(&config.root)?;
    let c = super::containers(&store)?.get(id);
    // Rootless: listed as a way back into the user namespace while it runs.
    let _registered = crate::rootless::current()
        .and_then(|u| crate::rootless::ns::register_monitor(&crate::rootless::Paths::of_process(u)));
    let failed = |e: &Error| {
        say(&report, &Report::Failed(Failed::of(e)));
        Ok(e.exit_code())
    };
    let _lock = match lock(&c) {
        Ok(lock) => lock,
        Err(e) => return failed(&e),
    };
    let (mut cfg, mut record) =
        match c.config().map_err(|e| Error::new(format!("start container {}", c.short_id())).because(e)) {
            Ok(cfg) => match Record::of(&c, &cfg) {
                Ok(record) => (cfg, record),
                Err(e) => return failed(&e),
            },
            Err(e) => return failed(&e),
        };
    // A new start: an earlier `stop` no longer holds back the policy.
    let _ = c.set_stopped(false);
    let (mut started, mut network, mut io) = match start(&store, &c, &cfg, &record) {
        Ok(x) => x,
        Err(e) => {
            // Recorded as exited with the failure's code (or removed, --rm).
            say(&report, &Report::Failed(Failed::of(&e)));
            let _ = finish(&store, &c, &record, e.exit_code());
            return Ok(e.exit_code());
        }
    };
    let mut backoff = restart::Backoff::default();
    let mut report = Some(report);
    loop {
        // Running, and reported so (the first time), once the log and
        // attach socket exist: a `logs` or `start -i` right after must
        // find them.
        let pid = started.pid;
        let count = backoff.count;
        let running = || match state::running(&c, pid, count) {
            Ok(_) => {
                if let Some(r) = report.take() {
                    say(&r, &Report::Running(pid));
                }
                true
            }
            Err(e) => {
                if let Some(r) = report.take() {
                    say(&r, &Report::Failed(Failed::of(&e)));
                }
                false
            }
        };
        let began = std::time::Instant::now();
        let exit = supervise(&c, started, io, &record, running);
        launch::stop_network(&store, &c, network);
        let code = exit_code(exit);
        // `mini update` may have changed the policy or the limits meanwhile.
        if let Some((new_cfg, new_record)) = c.config().ok().and_then(|f| Record::of(&c, &f).ok().map(|r| (f, r))) {
            (cfg, record) = (new_cfg, new_record);
        }
        let Some(wait) = backoff.next(record.container.restart, code, c.is_stopped(), began.elapsed()) else {
            return finish(&store, &c, &record, code);
        };
        // Exited, to be started again: the same cgroups are made anew.
        record.container.cgroups.remove();
        if state::restarting(&c, code, backoff.count).is_err() || !sleep_unless_stopped(&c, wait) {
            return finish(&store, &c, &record, code);
        }
        (started, network, io) = match start(&store, &c, &cfg, &record) {
            Ok(x) => x,
            Err(e) => {
                log_line(&c, &format!("mini: restart: {e}"));
                return finish(&store, &c, &record, e.exit_code());
            }
        };
    }
}

/// Wait out a restart's back-off; false when `stop`, `kill` or `rm -f`
/// ended the container meanwhile (they mark it, then signal us).
fn sleep_unless_stopped(c: &Container, wait: std::time::Duration) -> bool {
    let Ok(sigfd) = p::signalfd(&p::FORWARDED) else {
        std::thread::sleep(wait);
        return !c.is_stopped();
    };
    let end = std::time::Instant::now() + wait;
    loop {
        let left = end.saturating_duration_since(std::time::Instant::now());
        if c.is_stopped() {
            return false;
        }
        if left.is_zero() {
            return true;
        }
        if tty::poll_readable(&[sigfd.as_raw_fd()], left.as_millis().max(1) as i32)[0] {
            // A signal with no container to forward it to ends the wait.
            if p::read_signal(&sigfd).is_some_and(|s| s != libc::SIGWINCH) && !c.is_stopped() {
                let _ = c.set_stopped(true);
            }
        }
    }
}

/// A line of mini's own on the container's stderr stream in its log:
/// nobody else is there to read it.
fn log_line(c: &Container, line: &str) {
    if let Ok(mut log) = logs::Writer::open(&c.log()) {
        log.write(Stream::Stderr, format!("{line}\n").as_bytes());
        log.flush();
    }
}

/// One monitor per container: two `start`s racing would otherwise run it
/// twice on one upper dir. The lock lives as long as the monitor (and the
/// container's --init, which inherits it). A monitor that has recorded
/// its container's exit may still hold it for a moment (`restart`), so a
/// busy lock is retried for up to 2 s unless the container runs.
fn lock(c: &Container) -> Result<StoreLock> {
    let refuse = || Error::new(format!("start container {}", c.short_id())).because("container is already running");
    for _ in 0..200 {
        if c.state().is_ok_and(|s| state::is_running(&s)) {
            return Err(refuse());
        }
        match StoreLock::try_exclusive(&c.monitor_lock()) {
            Ok(Some(lock)) => return Ok(lock),
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(10)),
            Err(e) => return Err(Error::new(format!("start container {}", c.short_id())).because(e)),
        }
    }
    Err(refuse())
}

fn say(report: &OwnedFd, r: &Report) {
    let _ = tty::write_all(report.as_raw_fd(), &r.encode());
}

/// The container's output ends the monitor reads, and (-i) the write end
/// of its stdin, held open so the container does not see end of input.
/// A foreground `mini run` also copies the output to its own stdout and
/// stderr (`tee`).
pub struct Io {
    out: OwnedFd,
    err: Option<OwnedFd>,
    stdin: Option<OwnedFd>,
    tee: Option<(OwnedFd, OwnedFd)>,
}

/// Stdio pipes, then the one launch path from the record (the same as a
/// foreground run's).
fn start(
    store: &Store,
    c: &Container,
    cfg: &ContainerConfig,
    record: &Record,
) -> Result<(Started, Attached, Option<Io>)> {
    // The container inherits fds 0-2 (-t replaces them with its pty): make
    // them pipes whose other ends stay here.
    let pipes = if record.process.tty { None } else { Some(stdio_pipes(record.process.interactive)?) };
    let launched = launch::start(store, c, cfg, record);
    // Our own 0-2 go back to /dev/null, so the pipes end with the container.
    let null = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null");
    if let Ok(null) = &null {
        for fd in 0..3 {
            let _ = p::dup2(null.as_raw_fd(), fd);
        }
    }
    let (started, network) = launched?;
    Ok((started, network, pipes))
}

/// Pipes for the container's stdout, stderr and (with -i) stdin, their
/// container ends put on our own fds 0-2 for the clone to inherit.
fn stdio_pipes(interactive: bool) -> Result<Io> {
    let (out_r, out_w) = p::pipe()?;
    let (err_r, err_w) = p::pipe()?;
    p::dup2(out_w.as_raw_fd(), 1)?;
    p::dup2(err_w.as_raw_fd(), 2)?;
    let stdin = if interactive {
        let (in_r, in_w) = p::pipe()?;
        p::dup2(in_r.as_raw_fd(), 0)?;
        Some(in_w)
    } else {
        None
    };
    Ok(Io { out: out_r, err: Some(err_r), stdin, tee: None })
}

/// A foreground `mini run`'s output pipes (stdin stays ours, unlogged, as
/// Docker's): their container ends go on our fds 1 and 2 for the clone to
/// inherit; [`restore_stdio`] puts ours back once it is started.
pub fn foreground_pipes() -> Result<Io> {
    let tee = (p::dup_cloexec(1)?, p::dup_cloexec(2)?);
    let mut io = stdio_pipes(false).inspect_err(|_| {
        let _ = p::dup2(tee.0.as_raw_fd(), 1);
        let _ = p::dup2(tee.1.as_raw_fd(), 2);
    })?;
    io.tee = Some(tee);
    Ok(io)
}

/// Our own stdout and stderr again, after [`foreground_pipes`].
pub fn restore_stdio(io: &Io) {
    if let Some((out, err)) = &io.tee {
        let _ = p::dup2(out.as_raw_fd(), 1);
        let _ = p::dup2(err.as_raw_fd(), 2);
    }
}

/// A foreground `mini run`: its container's output logged and copied to
/// our stdout and stderr until it exits, signals forwarded.
pub fn supervise_foreground(c: &Container, started: Started, io: Io, record: &Record) -> Exit {
    supervise(c, started, Some(io), record, || true)
}

/// Log the container's output until it exits; forward signals sent to
/// the monitor (SIGTERM, ...) to it, and (-i) what attached clients write
/// to its stdin. When `running` cannot record that it runs, the container
/// is killed (and still reaped here).
fn supervise(
    c: &Container,
    started: Started,
    mut io: Option<Io>,
    record: &Record,
    running: impl FnOnce() -> bool,
) -> Exit {
    let interactive = record.process.interactive;
    let (pid, master, sigfd) = started.into_parts();
    let cfg = &record.container.log;
    let mut log = if cfg.none { None } else { logs::Writer::with(&c.log(), cfg).ok() };
    let mut stdin = None;
    let tee = io.as_mut().and_then(|io| io.tee.take());
    let mut sources: Vec<(Option<OwnedFd>, Stream)> = match (master, io) {
        (Some(m), _) => {
            // With -t the container's stdin is the pty too.
            stdin = p::dup_cloexec(m.as_raw_fd()).ok();
            vec![(Some(m), Stream::Stdout)]
        }
        (None, Some(io)) => {
            stdin = io.stdin;
            vec![(Some(io.out), Stream::Stdout), (io.err, Stream::Stderr)]
        }
        (None, None) => vec![],
    };
    for (fd, _) in &sources {
        if let Some(fd) = fd {
            let _ = p::set_nonblocking(fd.as_raw_fd());
        }
    }
    let mut attached = stdin.as_ref().filter(|_| interactive).and_then(|fd| AttachSocket::open(c, fd.as_raw_fd()));
    if !running() {
        let _ = p::kill(pid, libc::SIGKILL);
    }
    let mut health = record.container.health.as_ref().map(|check| health::Prober::new(c, check));
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut fds: Vec<RawFd> = sources.iter().map(|(fd, _)| fd.as_ref().map_or(-1, |f| f.as_raw_fd())).collect();
        let attach_at = fds.len();
        fds.extend(attached.as_ref().map(|a| a.fds()).unwrap_or_default());
        // The health probe's output (or a placeholder): read in `tick`.
        fds.push(health.as_ref().and_then(|h| h.fd()).unwrap_or(-1));
        fds.push(sigfd.as_raw_fd());
        let ready = tty::poll_readable(&fds, health.as_ref().map_or(-1, |h| h.wait_ms()));
        if let Some(h) = health.as_mut() {
            h.tick();
        }
        for (i, (fd, stream)) in sources.iter_mut().enumerate() {
            if ready[i] {
                copy_out(fd, *stream, &mut log, tee.as_ref(), &mut buf);
            }
        }
        if let Some(a) = attached.as_mut() {
            a.serve(&ready[attach_at..fds.len() - 2], &mut buf);
        }
        if !ready[fds.len() - 1] {
            continue;
        }
        match p::read_signal(&sigfd) {
            Some(libc::SIGCHLD) => {
                if let Ok(Some((_, exit))) = p::wait(pid, true) {
                    // Whatever it wrote just before exiting.
                    for (fd, stream) in sources.iter_mut() {
                        while fd.is_some() && tty::poll_readable(&[fd.as_ref().map_or(-1, |f| f.as_raw_fd())], 0)[0] {
                            copy_out(fd, *stream, &mut log, tee.as_ref(), &mut buf);
                        }
                    }
                    if let Some(l) = log.as_mut() {
                        l.flush();
                    }
                    return exit;
                }
            }
            Some(libc::SIGWINCH) | None => {}
            Some(sig) => {
                let _ = p::kill(pid, sig);
            }
        }
    }
}

/// `containers/<id>/attach.sock` (-i only): `attach` and `start -i`
/// connect and write; the bytes go to the container's stdin. Output goes
/// through the log, so the socket carries input only. Clients that go
/// away do not close the container's stdin (as Docker without
/// --stdin-once). Bound through /proc/self/fd/N of the container dir: a
/// socket path is limited to 107 bytes, and store paths can be longer.
struct AttachSocket {
    listener: std::os::unix::net::UnixListener,
    clients: Vec<std::os::unix::net::UnixStream>,
    target: RawFd,
    _path: SocketPath,
}

/// Removes the socket file when the monitor is done.
struct SocketPath(PathBuf);

impl Drop for SocketPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl AttachSocket {
    fn open(c: &Container, target: RawFd) -> Option<AttachSocket> {
        let path = c.attach_socket();
        let _ = std::fs::remove_file(&path);
        let dir = std::fs::File::open(&c.dir).ok()?;
        let listener = std::os::unix::net::UnixListener::bind(short_path(&dir)).ok()?;
        listener.set_nonblocking(true).ok()?;
        Some(AttachSocket { listener, clients: Vec::new(), target, _path: SocketPath(path) })
    }

    fn fds(&self) -> Vec<RawFd> {
        std::iter::once(self.listener.as_raw_fd()).chain(self.clients.iter().map(|s| s.as_raw_fd())).collect()
    }

    /// New clients, and their input to the container (`ready` as `fds`).
    fn serve(&mut self, ready: &[bool], buf: &mut [u8]) {
        use std::io::Read;
        let mut gone = Vec::new();
        for (i, client) in self.clients.iter_mut().enumerate() {
            if !ready.get(i + 1).copied().unwrap_or(false) {
                continue;
            }
            match client.read(buf) {
                Ok(0) | Err(_) => gone.push(i),
                Ok(n) => {
                    let _ = tty::write_all(self.target, &buf[..n]);
                }
            }
        }
        for i in gone.into_iter().rev() {
            self.clients.remove(i);
        }
        if ready.first().copied().unwrap_or(false) {
            while let Ok((s, _)) = self.listener.accept() {
                self.clients.push(s);
            }
        }
    }
}

/// The socket's path through an open fd of its directory (short enough
/// for sun_path whatever the store root).
pub fn short_path(dir: &std::fs::File) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}/{}", dir.as_raw_fd(), mini_store::containers::files::ATTACH_SOCKET))
}

/// One read from a source into the log; the source is closed at its end.
/// With `tee` (a foreground run's stdout and stderr) the bytes go there too.
fn copy_out(
    fd: &mut Option<OwnedFd>,
    stream: Stream,
    log: &mut Option<logs::Writer>,
    tee: Option<&(OwnedFd, OwnedFd)>,
    buf: &mut [u8],
) {
    let Some(f) = fd.as_ref() else { return };
    match tty::read(f.as_raw_fd(), buf) {
        Ok(0) => *fd = None,
        Ok(n) => {
            if let Some((out, err)) = tee {
                let to = if stream == Stream::Stderr { err } else { out };
                let _ = tty::write_all(to.as_raw_fd(), &buf[..n]);
            }
            if let Some(l) = log.as_mut() {
                l.write(stream, &buf[..n]);
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Err(_) => *fd = None,
    }
}

/// Record how the container ended (then remove it, --rm), and remove its
/// cgroups. A state that cannot be written is logged as mini's own line
/// on the container's stderr stream: nobody else is there to read it.
fn finish(store: &Store, c: &Container, record: &Record, code: i32) -> Result<i32> {
    let remove = record.container.rm && !c.is_restarting(); // read before the exit is recorded
    let cgroups = &record.container.cgroups;
    let oom = code == 137 && cgroups.oom_killed();
    cgroups.remove();
    if let Err(e) = state::exited(c, code, oom) {
        log_line(c, &format!("mini: {e}"));
        return Err(e);
    }
    if remove {
        // `mini wait`s hold the wait lock shared until they have read the
        // exit code: let them, then remove.
        let _waiters_done = StoreLock::exclusive(&c.wait_lock());
        let cs = super::containers(store)?;
        super::events::destroying(c, || cs.remove(&c.id))
            .map_err(|e| Error::new(format!("remove container {}", c.short_id())).because(e))?;
        super::volume::remove_anonymous(store, &record.container.volumes);
    }
    Ok(0)
}

/// Spawn a monitor for container `id` and wait for its one-line report:
/// returns once the container runs (or with the reason it could not start).
pub fn spawn(config: &Config, id: &str) -> Result<i32> {
    use std::io::BufRead;
    let what = || format!("start container {}", &id[..12.min(id.len())]);
    use std::os::unix::process::CommandExt;
    let mut child = std::process::Command::new("/proc/self/exe")
        .arg0(MONITOR_NAME)
        .arg("--root")
        .arg(&config.root)
        .args(["container-monitor", id])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| Error::new(what()).because(format!("spawn its monitor: {e}")))?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        // One line, not EOF: under --init the container's pid 1 keeps a
        // copy of this pipe for as long as it runs.
        let _ = std::io::BufReader::new(out).read_line(&mut line);
    }
    match Report::decode(&line) {
        Some(Report::Running(pid)) => Ok(pid),
        Some(Report::Failed(f)) => {
            let _ = child.wait();
            Err(f.into_error())
        }
        None => {
            let _ = child.wait();
            Err(Error::new(what()).because("its monitor exited before starting it"))
        }
    }
}
