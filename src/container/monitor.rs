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
//! - tells the spawning `mini` one line on its stdout: `ok PID`, or
//!   `err CODE MESSAGE` when the container could not be started.
//!
//! No threads: the monitor clones the container, so it stays
//! single-threaded and waits in a poll loop.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use mini_store::containers::{Container, State, Status};
use mini_store::Store;

use crate::config::Config;
use crate::container::{self, SpecRecord};
use crate::error::{Error, Result};
use crate::logs::{self, Stream};
use crate::runtime::process::{self, exit_code, Launch, Started};
use crate::runtime::cgroups;
use crate::sys::process::{self as p, Exit};
use crate::sys::tty;

/// The hidden verb's body; returns the monitor's exit code (nobody reads it).
pub fn run(config: &Config, id: &str) -> Result<i32> {
    // Nothing the spawner left open (a CI tool's pipe would never see EOF
    // while we live); our stdout is its report pipe: keep it apart from
    // the fds the container inherits.
    p::close_from(3);
    let report = p::dup_cloexec(1)?;
    let _ = p::setsid();
    let store = Store::open(&config.root)?;
    let c = container::containers(&store)?.get(id);
    let _lock = match lock(&c) {
        Ok(lock) => lock,
        Err(e) => {
            say(&report, &format!("err 125 {e}"));
            return Ok(125);
        }
    };
    let record = container::spec_of(&c);
    let cgroup_dirs: Vec<PathBuf> = record.cgroups.iter().map(PathBuf::from).collect();
    let (started, io) = match launch(config, &store, &c, &record) {
        Ok(x) => x,
        Err(e) => {
            say(&report, &format!("err {} {e}", e.exit_code()));
            finish(&store, &c, &record, &cgroup_dirs, e.exit_code());
            return Ok(e.exit_code());
        }
    };
    let pid = started.pid;
    // Running, and reported so, once the log and attach socket exist: a
    // `logs` or `start -i` right after must find them.
    let cref = &c;
    let running = move || {
        let mut state = container::owned_state(Status::Running);
        (state.pid, state.started_at) = (Some(pid), Some(container::now()));
        let _ = cref.write_state(&state);
        say(&report, &format!("ok {pid}"));
    };
    let exit = supervise(&c, started, io, record.interactive, running);
    finish(&store, &c, &record, &cgroup_dirs, exit_code(exit));
    Ok(0)
}

/// One monitor per container: two `start`s racing would otherwise run it
/// twice on one upper dir. The lock lives as long as the monitor (and the
/// container's --init, which inherits it). A monitor that has recorded
/// its container's exit may still hold it for a moment (`restart`), so a
/// busy lock is retried for up to 2 s unless the container runs.
fn lock(c: &Container) -> Result<mini_store::StoreLock> {
    let refuse = || Error::new(format!("start container {}", c.short_id())).because("container is already running");
    for _ in 0..200 {
        if c.state().is_ok_and(|s| container::is_running(&s)) {
            return Err(refuse());
        }
        match mini_store::StoreLock::try_exclusive(&c.dir.join("monitor.lock")) {
            Ok(Some(lock)) => return Ok(lock),
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(10)),
            Err(e) => return Err(Error::new(format!("start container {}", c.short_id())).because(e)),
        }
    }
    Err(refuse())
}

fn say(report: &OwnedFd, line: &str) {
    let _ = tty::write_all(report.as_raw_fd(), format!("{}\n", line.replace('\n', " ")).as_bytes());
}

/// The container's output ends the monitor reads, and (-i) the write end
/// of its stdin, held open so the container does not see end of input.
struct Io {
    out: OwnedFd,
    err: Option<OwnedFd>,
    stdin: Option<OwnedFd>,
}

/// Mount plan and cgroups from the record, stdio pipes, then the same
/// clone and handshake as a foreground run.
fn launch(config: &Config, store: &Store, c: &Container, record: &SpecRecord) -> Result<(Started, Option<Io>)> {
    let cfg = c.config().map_err(|e| Error::new(format!("start container {}", c.short_id())).because(e))?;
    let spec = record.to_spec()?;
    let idmap = record.id_map();
    let layers = container::layer_dirs(store, &cfg.layers)?;
    let (overlay, root, detach) = crate::run::prepare_root(c, &layers, &spec, idmap.as_ref())?;
    // The same cgroups, with the same limits, as when it was created.
    let cgroups = cgroups::Cgroups::for_container(&record.resources, config.cgroup_parent.as_deref(), &c.id)?;
    let mut root = root;
    let tasks = crate::run::prepare_cgroups(&cgroups, &mut root, idmap.is_some())?;
    // The container inherits fds 0-2 (-t replaces them with its pty): make
    // them pipes whose other ends stay here.
    let pipes = if spec.tty { None } else { Some(stdio_pipes(spec.interactive)?) };
    let launched = process::start(&Launch {
        spec: &spec,
        overlay: &overlay,
        rootfs: &root,
        hostname: &record.hostname,
        idmap: idmap.as_ref(),
        dir: &c.dir,
        cgroups: process::CgroupEntry::of(tasks.as_deref(), &cgroups),
        detach: &detach,
    });
    // Our own 0-2 go back to /dev/null, so the pipes end with the container.
    let null = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null");
    if let Ok(null) = &null {
        for fd in 0..3 {
            let _ = p::dup2(null.as_raw_fd(), fd);
        }
    }
    let started = launched?;
    Ok((started, pipes))
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
    Ok(Io { out: out_r, err: Some(err_r), stdin })
}

/// Log the container's output until it exits; forward signals sent to
/// the monitor (SIGTERM, ...) to it, and (-i) what attached clients write
/// to its stdin.
fn supervise(c: &Container, started: Started, io: Option<Io>, interactive: bool, running: impl FnOnce()) -> Exit {
    let (pid, master, sigfd) = started.into_parts();
    let mut log = logs::Writer::open(&logs::path_of(c)).ok();
    let mut stdin = None;
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
    running();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut fds: Vec<RawFd> = sources.iter().map(|(fd, _)| fd.as_ref().map_or(-1, |f| f.as_raw_fd())).collect();
        let attach_at = fds.len();
        fds.extend(attached.as_ref().map(|a| a.fds()).unwrap_or_default());
        fds.push(sigfd.as_raw_fd());
        let ready = tty::poll_readable(&fds, -1);
        for (i, (fd, stream)) in sources.iter_mut().enumerate() {
            if ready[i] {
                copy_out(fd, *stream, &mut log, &mut buf);
            }
        }
        if let Some(a) = attached.as_mut() {
            a.serve(&ready[attach_at..fds.len() - 1], &mut buf);
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
                            copy_out(fd, *stream, &mut log, &mut buf);
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
        let path = attach_socket(c);
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

/// Where a container's attach socket is.
pub fn attach_socket(c: &Container) -> PathBuf {
    c.dir.join("attach.sock")
}

/// The socket's path through an open fd of its directory (short enough
/// for sun_path whatever the store root).
pub fn short_path(dir: &std::fs::File) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}/attach.sock", dir.as_raw_fd()))
}

/// One read from a source into the log; the source is closed at its end.
fn copy_out(fd: &mut Option<OwnedFd>, stream: Stream, log: &mut Option<logs::Writer>, buf: &mut [u8]) {
    let Some(f) = fd.as_ref() else { return };
    match tty::read(f.as_raw_fd(), buf) {
        Ok(0) => *fd = None,
        Ok(n) => {
            if let Some(l) = log.as_mut() {
                l.write(stream, &buf[..n]);
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Err(_) => *fd = None,
    }
}

/// Record how the container ended (then remove it, --rm), and remove its
/// cgroups.
fn finish(store: &Store, c: &Container, record: &SpecRecord, cgroup_dirs: &[PathBuf], code: i32) {
    let remove = record.rm && !c.is_restarting(); // read before the exit is recorded
    let oom = code == 137 && cgroups::oom_killed(cgroup_dirs);
    container::remove_cgroups(record);
    let mut state = c.state().unwrap_or_else(|_| State::created());
    state.status = Status::Exited;
    (state.exit_code, state.finished_at, state.oom_killed) = (Some(code), Some(container::now()), oom);
    (state.pid, state.monitor_pid, state.monitor_start) = (None, None, None);
    let _ = c.write_state(&state);
    if remove {
        // `mini wait`s hold the wait lock shared until they have read the
        // exit code: let them, then remove.
        let _waiters_done = mini_store::StoreLock::exclusive(&c.dir.join(crate::lifecycle::WAIT_LOCK));
        let _ = container::containers(store).and_then(|cs| {
            cs.remove(&c.id).map_err(|e| Error::new(format!("remove container {}", c.short_id())).because(e))
        });
    }
}

/// Spawn a monitor for container `id` and wait for its one-line report:
/// returns once the container runs (or with the reason it could not start).
pub fn spawn(config: &Config, id: &str) -> Result<i32> {
    use std::io::BufRead;
    let what = || format!("start container {}", &id[..12.min(id.len())]);
    let mut child = std::process::Command::new("/proc/self/exe")
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
    let line = line.trim_end();
    if let Some(pid) = line.strip_prefix("ok ") {
        return pid.parse().map_err(|_| Error::new(what()).because(format!("the monitor said {line:?}")));
    }
    let _ = child.wait();
    // "err CODE TEXT": the child's failure message, as `process` encodes it.
    match line.strip_prefix("err ").and_then(|r| process::Message::decode(r.as_bytes())) {
        Some(m) => Err(m.into_error()),
        None => Err(Error::new(what()).because("its monitor exited before starting it")),
    }
}
