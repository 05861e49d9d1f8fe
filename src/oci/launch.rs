//! `create` and `start`: the container process made from a bundle's plan,
//! left waiting at its exec for `start`, as runc's exec fifo does.
//!
//! Handshake over one socketpair, bytes from [`message`]: with a new user
//! namespace the child first waits for [`message::MAPPED`] (its id maps
//! written); then it joins its cgroups (join files opened before the
//! clone), joins or makes its namespaces and says [`message::READY`];
//! mini-runc runs the prestart and createRuntime hooks and says go; the
//! child builds its root with the same executor as `mini run`, takes the
//! shared tail to its exec ([`child::exec`]), says [`message::CREATED`]
//! there and blocks opening `exec.fifo` for writing. `start` opens the
//! fifo for reading, which lets the exec happen. Setup failures come back
//! as one [`Failed`] line on the report pipe, as in `mini run`.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::Spec;

use super::bundle;
use super::hooks;
use super::state::{self, Record, Root, Status};
use crate::error::{Error, Result};
use crate::runtime::cgroups::Cgroups;
use crate::runtime::child::{self, Never};
use crate::runtime::message::{self, Failed};
use crate::runtime::plan::{self, Plan, RootFs};
use crate::runtime::rootfs;
use crate::sys::process::{self as p, ns};
use crate::sys::{self, fdpass, Sys};

/// runc's `create` flags.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: u32,
}

/// A created container: its process waits for `start`.
pub struct Created {
    pub record: Record,
    /// The pty master, when `run` relays the terminal itself (no console socket).
    pub master: Option<OwnedFd>,
}

/// Create container `id` from its bundle; on failure nothing is left.
pub fn create(root: &Root, id: &str, o: &CreateOptions) -> Result<Created> {
    let bundle = std::fs::canonicalize(&o.bundle)
        .map_err(|e| Error::new(format!("open bundle {}", o.bundle.display())).because(e))?;
    let spec = bundle::load(&bundle)?;
    let cgroups = plan::cgroups_of(&spec, id)?;
    let host = plan::Host {
        cgroups: &cgroups.plan.dirs,
        in_user_namespace: !crate::rootless::in_initial_namespace(),
        gid_mapped: &crate::rootless::gid_mapped,
    };
    let plan = plan::plan(&spec, RootFs::Bundle(&bundle), &host)?;
    refuse_unsupported_hooks(&spec)?;
    let dir = root.make(id)?;
    let made = create_in(root, &dir, id, &spec, (&plan, &cgroups), &bundle, o);
    if made.is_err() {
        cgroups.remove();
        let _ = root.remove(id);
    }
    made
}

fn refuse_unsupported_hooks(spec: &Spec) -> Result<()> {
    let Some(h) = spec.hooks() else { return Ok(()) };
    for (name, list) in [("createContainer", h.create_container()), ("startContainer", h.start_container())] {
        if list.as_ref().is_some_and(|l| !l.is_empty()) {
            return Err(Error::new(format!("invalid OCI config: hooks.{name}"))
                .because("mini-runc does not run hooks inside the container's namespaces"));
        }
    }
    Ok(())
}

fn create_in(
    root: &Root,
    dir: &Path,
    id: &str,
    spec: &Spec,
    (plan, cgroups): (&Plan, &Cgroups),
    bundle: &Path,
    o: &CreateOptions,
) -> Result<Created> {
    let fifo = dir.join(state::FIFO);
    sys::fs::make_fifo(&fifo, 0o622)?;
    let fifo_handle = sys::fs::open_path(&fifo)?;
    let join_files = cgroups.prepare()?;
    let mut record = Record {
        id: id.to_string(),
        pid: None,
        start_time: None,
        bundle: bundle.to_path_buf(),
        rootfs: plan.root.root.clone(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        owner: String::new(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        cgroups: cgroups.clone(),
        hooks: spec.hooks().clone(),
        process: spec.process().clone().unwrap_or_default(),
        seccomp: spec.linux().as_ref().and_then(|l| l.seccomp().clone()),
    };
    root.save(&record)?;
    let console = o.console_socket.as_deref().map(connect_console).transpose()?;
    let (pid, master) = launch(plan, &join_files, &fifo_handle, o, &record, console.as_ref())?;
    record.pid = Some(pid);
    record.start_time = state::start_time(pid);
    let saved = root.save(&record).and_then(|()| o.pid_file.as_deref().map_or(Ok(()), |f| write_pid_file(f, pid)));
    if let Err(e) = saved {
        let _ = p::kill(pid, libc::SIGKILL);
        let _ = p::wait(pid, false);
        return Err(e);
    }
    Ok(Created { record, master })
}

fn connect_console(path: &Path) -> Result<std::os::unix::net::UnixStream> {
    std::os::unix::net::UnixStream::connect(path)
        .map_err(|e| Error::new(format!("connect to the console socket {}", path.display())).because(e))
}

/// Written whole under another name, then renamed: a reader never sees
/// half a pid.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let what = || format!("write the pid file {}", path.display());
    let tmp = path.with_extension("mini-tmp");
    std::fs::write(&tmp, pid.to_string()).map_err(|e| Error::new(what()).because(e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::new(what()).because(e))
}

/// Clone the container process and take it to its exec gate. Returns its
/// pid and, with a terminal but no console socket, the pty master.
fn launch(
    plan: &Plan,
    join_files: &[std::fs::File],
    fifo: &OwnedFd,
    o: &CreateOptions,
    record: &Record,
    console: Option<&std::os::unix::net::UnixStream>,
) -> Result<(i32, Option<OwnedFd>)> {
    p::assert_single_threaded()?;
    let (sync_parent, sync_child) = p::socketpair()?;
    let (report_r, report_w) = p::pipe()?;
    let pty = if plan.process.terminal { Some(p::socketpair()?) } else { None };
    // Joining a pid namespace only moves the children of the caller: this
    // process joins before the clone (it exits after create anyway).
    for n in plan.joins().filter(|n| n.flag == ns::PID || n.flag == ns::USER) {
        if n.flag == ns::USER {
            return Err(Error::new("invalid OCI config: linux.namespaces")
                .because("joining a user namespace by path is not supported"));
        }
        let fd = open_ns_path(n)?;
        p::setns(&fd, n.flag, n.name)?;
    }
    let mut flags = 0;
    for flag in [ns::PID, ns::USER] {
        if plan.has_new(flag) {
            flags |= flag;
        }
    }
    let pid = match p::clone(flags)? {
        None => {
            drop((sync_parent, report_r));
            let pty_child = pty.map(|(_, c)| c);
            let mut report = std::fs::File::from(report_w);
            let e = match child_setup(plan, join_files, fifo, o, &sync_child, pty_child.as_ref(), &mut report) {
                Ok(never) => match never {},
                Err(e) => e,
            };
            child::fail(&mut report, &e)
        }
        Some(pid) => pid,
    };
    drop((sync_child, report_w));
    let pty_parent = pty.map(|(parent_end, _)| parent_end);
    let outcome = parent_side(plan, pid, &sync_parent, pty_parent.as_ref(), record, console);
    let outcome = match outcome {
        Ok(master) => Ok(master),
        Err(e) => {
            drop(sync_parent);
            let mut report = Vec::new();
            let _ = std::fs::File::from(report_r).read_to_end(&mut report);
            let _ = p::kill(pid, libc::SIGKILL);
            let _ = p::wait(pid, false);
            Err(Failed::decode(&report).map_or(e, |m| m.into_error()))
        }
    };
    outcome.map(|master| (pid, master))
}

fn open_ns_path(n: &plan::Namespace) -> Result<OwnedFd> {
    let path = n.path.as_deref().unwrap_or(Path::new(""));
    std::fs::File::open(path)
        .map(OwnedFd::from)
        .map_err(|e| Error::new(format!("join the {} namespace {}", n.name, path.display())).because(e))
}

/// mini-runc's side: the id maps, the hooks, go, the terminal, and the
/// child's word that it waits at its exec.
fn parent_side(
    plan: &Plan,
    pid: i32,
    sync: &OwnedFd,
    pty: Option<&OwnedFd>,
    record: &Record,
    console: Option<&std::os::unix::net::UnixStream>,
) -> Result<Option<OwnedFd>> {
    let ended = || Error::new("create the container").because("its process ended during setup");
    if let (Some(uid_map), Some(gid_map)) = (&plan.uid_map, &plan.gid_map) {
        p::write_id_maps(pid, uid_map, gid_map)?;
        p::send_byte(sync, message::MAPPED).map_err(|_| ended())?;
    }
    if p::recv_byte(sync) != Some(message::READY) {
        return Err(ended());
    }
    let mut creating = record.clone();
    creating.pid = Some(pid);
    let state = creating.state_json(Status::Creating);
    if let Some(h) = &record.hooks {
        hooks::run("prestart", h.prestart().as_deref(), &state)?;
        hooks::run("createRuntime", h.create_runtime().as_deref(), &state)?;
    }
    p::send_byte(sync, message::Go::WithCgroups.encode()).map_err(|_| ended())?;
    let mut master = None;
    if let Some(sock) = pty {
        let fd = fdpass::recv_fd(sock.as_raw_fd())?.ok_or_else(ended)?;
        match console {
            Some(c) => fdpass::send_fd(c.as_raw_fd(), fd.as_raw_fd())?,
            None => master = Some(fd),
        }
    }
    if p::recv_byte(sync) != Some(message::CREATED) {
        return Err(ended());
    }
    Ok(master)
}

/// The child, up to its exec gate.
fn child_setup(
    plan: &Plan,
    join_files: &[std::fs::File],
    fifo: &OwnedFd,
    o: &CreateOptions,
    sync: &OwnedFd,
    pty: Option<&OwnedFd>,
    report: &mut std::fs::File,
) -> Result<Never> {
    let abort = || p::exit_now(125); // mini-runc gave up on us (and says why)
    if plan.uid_map.is_some() {
        if p::recv_byte(sync) != Some(message::MAPPED) {
            abort();
        }
        p::set_ids(0, 0, &[])?;
    }
    crate::runtime::cgroups::join(join_files)?;
    for n in plan.joins().filter(|n| n.flag != ns::PID && n.flag != ns::USER) {
        p::setns(&open_ns_path(n)?, n.flag, n.name)?;
    }
    let new = [ns::UTS, ns::IPC, ns::NET, ns::MOUNT].iter().filter(|f| plan.has_new(**f)).fold(0, |m, f| m | f);
    p::unshare(new)?;
    if plan.has_new(ns::CGROUP) {
        p::unshare(ns::CGROUP)?; // rooted at the cgroups just joined
    }
    p::send_byte(sync, message::READY).map_err(|e| Error::new("tell mini-runc the namespaces exist").because(e))?;
    if p::recv_byte(sync).and_then(message::Go::decode).is_none() {
        abort();
    }
    let s = sys::RealSys;
    rootfs::execute(&plan.root, &s, &[])?;
    if let Some(h) = &plan.hostname {
        s.sethostname(h)?;
    }
    if plan.has_new(ns::NET) {
        s.loopback_up()?;
    }
    if let Some(score) = plan.process.oom_score_adj {
        std::fs::write("/proc/self/oom_score_adj", score.to_string())
            .map_err(|e| Error::new(format!("set oom_score_adj {score}")).because(e))?;
    }
    let user = plan.process.user_spec();
    let fifo_fd = fifo.as_raw_fd();
    let gate = move || -> Result<()> {
        p::send_byte(sync, message::CREATED)
            .map_err(|e| Error::new("tell mini-runc the container is created").because(e))?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/self/fd/{fifo_fd}"))
            .map_err(|e| Error::new("wait for start on the exec fifo").because(e))?;
        f.write_all(b"0").map_err(|e| Error::new("wait for start on the exec fifo").because(e))
    };
    let cmd = child::Command {
        keep_fds: o.preserve_fds,
        gate: Some(&gate),
        ..child::Command::of(&plan.process, &user, plan.seccomp.as_ref())
    };
    child::exec(&cmd, pty, report)
}

/// `start`: let a created container's process exec, then the poststart hooks.
pub fn start(root: &Root, id: &str) -> Result<()> {
    let r = root.load(id)?;
    let dir = root.dir_of(id);
    let status = r.status(&dir);
    if status != Status::Created {
        return Err(Error::new(format!("start container {id}"))
            .because(format!("it is {}, not created", status.as_str()))
            .hint("only a container made by create starts; run makes and starts one"));
    }
    let fifo_path = dir.join(state::FIFO);
    let mut fifo = sys::fs::open_fifo_nonblocking(&fifo_path)?;
    // The child's blocked open for writing returns now; its byte follows.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut byte = [0u8; 1];
    loop {
        match fifo.read(&mut byte) {
            Ok(1) => break,
            Ok(_) | Err(_) if !r.alive() => {
                return Err(Error::new(format!("start container {id}")).because("its process has ended"))
            }
            _ if Instant::now() > deadline => {
                return Err(
                    Error::new(format!("start container {id}")).because("its process did not answer on the exec fifo")
                )
            }
            // Woken by the byte as soon as the child writes it (a FIFO
            // that never had a writer does not report a hang-up).
            _ => {
                sys::tty::poll_readable(&[fifo.as_raw_fd()], 5);
            }
        }
    }
    let _ = std::fs::remove_file(&fifo_path);
    if let Some(h) = &r.hooks {
        if let Err(e) = hooks::run("poststart", h.poststart().as_deref(), &r.state_json(Status::Running)) {
            // runc warns and goes on: the process already runs.
            eprintln!("mini-runc: warning: {e}");
        }
    }
    Ok(())
}
