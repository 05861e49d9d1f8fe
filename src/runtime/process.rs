//! The container process: clone into new namespaces, the parent/child
//! handshake, the child's setup up to exec, and the parent's wait.
//!
//! The clone makes only the pid namespace (and, with `--userns`, all of
//! them under the new user namespace); the child unshares the others
//! itself, the network namespace above all being slow to make, while mini
//! makes the container's cgroups: the two CPUs' worth of setup overlap.
//!
//! Handshake over close-on-exec channels. Parent → child: one byte once
//! the cgroups exist (and, under a user namespace, the id maps are written
//! and the root overlay sent): "g" to go on, "n" to go on without cgroups
//! (they are best effort and could not be made); EOF means "abort". The
//! child joins its cgroups itself before unsharing its cgroup namespace.
//! Child → parent: nothing at all when exec succeeds (the write end closes
//! on exec), else one [`Message::Failed`] line that the parent turns into
//! mini's error and exit code.

use crate::error::{Error, Kind};
use crate::sys::process::Exit;

/// What the child can tell the parent before it execs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Failed { kind: Kind, text: String },
}

impl Message {
    pub fn encode(&self) -> Vec<u8> {
        let Message::Failed { kind, text } = self;
        format!("{} {}\n", kind.exit_code(), text.replace('\n', " ")).into_bytes()
    }

    /// None for an empty stream: the child exec'd.
    pub fn decode(bytes: &[u8]) -> Option<Message> {
        if bytes.is_empty() {
            return None;
        }
        let text = String::from_utf8_lossy(bytes);
        let text = text.trim_end();
        let (code, rest) = text.split_once(' ').unwrap_or(("125", text));
        let kind = match code {
            "126" => Kind::CannotExecute,
            "127" => Kind::CommandNotFound,
            _ => Kind::Engine,
        };
        Some(Message::Failed { kind, text: rest.to_string() })
    }

    pub fn into_error(self) -> Error {
        let Message::Failed { kind, text } = self;
        Error::new(text).kind(kind)
    }
}

/// The exit code `mini run` reports for how the container ended: its own
/// code, or 128+n when signal n killed it (as a shell reports it).
pub fn exit_code(exit: Exit) -> i32 {
    match exit {
        Exit::Code(c) => c,
        Exit::Signal(s) => 128 + s,
    }
}

/// Which error kind an execve failure is: not found (127) or cannot be
/// executed (126), as Docker maps them.
pub fn exec_failure_kind(errno: Option<i32>) -> Kind {
    match errno {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => Kind::CommandNotFound,
        _ => Kind::CannotExecute,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell() {
        assert_eq!(exit_code(Exit::Code(0)), 0);
        assert_eq!(exit_code(Exit::Code(72)), 72);
        assert_eq!(exit_code(Exit::Signal(9)), 137);
        assert_eq!(exit_code(Exit::Signal(15)), 143);
        assert_eq!(exec_failure_kind(Some(libc::ENOENT)).exit_code(), 127);
        assert_eq!(exec_failure_kind(Some(libc::EACCES)).exit_code(), 126);
        assert_eq!(exec_failure_kind(Some(libc::ENOEXEC)).exit_code(), 126);
    }

    #[test]
    fn messages_round_trip() {
        let m = Message::Failed { kind: Kind::CommandNotFound, text: "exec \"nope\": not found\nin $PATH".into() };
        let back = Message::decode(&m.encode()).unwrap();
        assert_eq!(back, Message::Failed { kind: Kind::CommandNotFound, text: "exec \"nope\": not found in $PATH".into() });
        assert_eq!(back.into_error().exit_code(), 127);
        assert_eq!(Message::decode(b""), None);
        assert_eq!(Message::decode(b"garbage").unwrap().into_error().exit_code(), 125);
    }
}

// ---------------------------------------------------------------------------
// Starting and waiting.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::cgroups::{self, Cgroups};
use super::rootfs;
use super::spec::RunSpec;
use super::userns::IdMap;
use super::{init, security, tty as rtty};
use crate::error::Result;
use crate::sys::process::{self as p, ns};
use crate::sys::{self, Sys};

/// Everything the child needs, computed before the clone.
pub struct Launch<'a> {
    pub spec: &'a RunSpec,
    /// The overlay; built by the parent itself under `--userns=auto`.
    pub overlay: &'a crate::assemble::MountPlan,
    pub rootfs: &'a rootfs::Plan,
    pub hostname: &'a str,
    /// Set with `--userns=auto`.
    pub idmap: Option<&'a IdMap>,
    /// The container dir; under `--userns=auto` the child starts in it (see
    /// `rootfs::for_user_namespace`).
    pub dir: &'a Path,
    pub cgroups: CgroupEntry<'a>,
    /// Volumes mini clones for the child to attach (`--userns=auto`).
    pub detach: &'a [rootfs::Detach],
}

/// How the container process gets into its cgroups (see `cgroups::join`).
pub enum CgroupEntry<'a> {
    /// Join files mini opened before the clone (under a user namespace,
    /// where the child cannot open host cgroup files itself).
    Opened(&'a [std::fs::File]),
    /// Cgroups mini makes while the child unshares its namespaces; the
    /// child opens their join files once told they exist, or drops their
    /// cgroupfs view from its plan when they could not be made.
    Deferred(&'a Cgroups),
}

impl<'a> CgroupEntry<'a> {
    /// Opened when mini opened the join files, else deferred.
    pub fn of(opened: Option<&'a [std::fs::File]>, cgroups: &'a Cgroups) -> CgroupEntry<'a> {
        opened.map_or(CgroupEntry::Deferred(cgroups), CgroupEntry::Opened)
    }
}

/// A started container process, as seen from mini.
pub struct Started {
    pub pid: i32,
    master: Option<OwnedFd>,
    sigfd: OwnedFd,
    interactive: bool,
}

/// The signals mini handles itself while the container runs.
fn handled() -> Vec<i32> {
    let mut v = p::FORWARDED.to_vec();
    v.push(libc::SIGCHLD);
    v
}

/// Clone the container process and take it up to its exec. Returns once
/// the command runs; a setup or exec failure in the child comes back as
/// this function's error (with the 125/126/127 kind), the child reaped.
pub fn start(l: &Launch) -> Result<Started> {
    p::assert_single_threaded()?;
    // Blocked before the clone so no signal is lost; the child unblocks
    // just before exec.
    p::block(&handled());
    let sigfd = p::signalfd(&handled())?;
    let (go_r, go_w) = p::socketpair()?;
    let (report_r, report_w) = p::pipe()?;
    let pty = if l.spec.tty { Some(p::socketpair()?) } else { None };
    let root_sock = if l.idmap.is_some() { Some(p::socketpair()?) } else { None };
    // The cgroup namespace is unshared by the child once it has joined its
    // cgroups, so that it sees them as its root.
    let flags = match l.idmap {
        Some(_) => ns::USER | ns::PID | SHARED_LATER,
        None => ns::PID,
    };
    let pid = match clone_from_dir(l, flags)? {
        None => {
            drop((go_w, report_r));
            let pty_sock = pty.map(|(_, c)| c);
            let root_sock = root_sock.map(|(_, c)| c);
            child(l, go_r, report_w, pty_sock, root_sock)
        }
        Some(pid) => pid,
    };
    drop((go_r, report_w));
    let pty_parent = pty.map(|(parent_end, _child_end)| parent_end);
    let setup = handshake(l, pid, go_w, root_sock.as_ref().map(|(parent_end, _)| parent_end));
    // The go pipe is closed now: a child still waiting for it exits, so
    // the report always ends. The child's own reason wins over ours (a
    // broken pipe here usually means it failed first).
    let mut report = Vec::new();
    let _ = std::fs::File::from(report_r).read_to_end(&mut report);
    let outcome = match Message::decode(&report) {
        Some(m) => Err(m.into_error()),
        None => setup,
    };
    if let Err(e) = outcome {
        let _ = p::kill(pid, libc::SIGKILL);
        let _ = p::wait(pid, false);
        return Err(e);
    }
    let master = match &pty_parent {
        Some(sock) => sys::tty::recv_fd(sock.as_raw_fd())?,
        None => None,
    };
    Ok(Started { pid, master, sigfd, interactive: l.spec.interactive })
}

/// clone(2); under a user namespace from the container dir, so the child
/// starts there (see `rootfs::for_user_namespace`). The parent's working
/// directory is restored.
fn clone_from_dir(l: &Launch, flags: i32) -> Result<Option<i32>> {
    if l.idmap.is_none() {
        return p::clone(flags);
    }
    let cwd = std::env::current_dir().ok();
    std::env::set_current_dir(l.dir).map_err(|e| Error::new(format!("enter {}", l.dir.display())).because(e))?;
    let cloned = p::clone(flags);
    if let (Ok(Some(_)), Some(cwd)) = (&cloned, &cwd) {
        let _ = std::env::set_current_dir(cwd); // the parent only
    }
    cloned
}

/// The namespaces the child unshares itself, unless a user namespace must
/// own them (then the clone makes them all).
const SHARED_LATER: i32 = ns::UTS | ns::MOUNT | ns::NET | ns::IPC;

/// The parent's side of the handshake: the cgroups, the id maps and the
/// mounts it prepares (user namespace only), then "go".
fn handshake(l: &Launch, pid: i32, go: OwnedFd, root_sock: Option<&OwnedFd>) -> Result<()> {
    let with_cgroups = match l.cgroups {
        CgroupEntry::Opened(_) => true,
        CgroupEntry::Deferred(cgroups) => cgroups.make()?,
    };
    if let (Some(map), Some(sock)) = (l.idmap, root_sock) {
        p::write_id_maps(pid, &map.uid_map(), &map.gid_map())?;
        let root = super::userns::overlay_for(pid, l.overlay)?;
        sys::tty::send_fd(sock.as_raw_fd(), root.as_raw_fd())?;
        for v in l.detach {
            let fd = sys::mount::detached_bind(&v.source, v.read_only)?;
            sys::tty::send_fd(sock.as_raw_fd(), fd.as_raw_fd())?;
        }
    }
    p::send_byte(&go, if with_cgroups { b'g' } else { b'n' })
        .map_err(|e| Error::new("signal the container process to go on").because(e))
}

impl Started {
    /// A process started by other means (`exec`), waited for the same way.
    pub fn adopt(pid: i32, master: Option<OwnedFd>, sigfd: OwnedFd, interactive: bool) -> Started {
        Started { pid, master, sigfd, interactive }
    }

    /// The pid, the pty master (-t) and the signalfd, for a monitor that
    /// runs its own loop.
    pub fn into_parts(self) -> (i32, Option<OwnedFd>, OwnedFd) {
        (self.pid, self.master, self.sigfd)
    }

    /// Wait for the container to exit, forwarding signals (and, with -t,
    /// relaying the terminal).
    pub fn wait(self) -> Result<Exit> {
        if let Some(master) = self.master {
            return rtty::relay(master, self.pid, &self.sigfd, self.interactive);
        }
        loop {
            match p::read_signal(&self.sigfd) {
                Some(libc::SIGCHLD) => {
                    if let Some((_, exit)) = p::wait(self.pid, true)? {
                        return Ok(exit);
                    }
                }
                Some(sig) => {
                    let _ = p::kill(self.pid, sig);
                }
                None => {}
            }
        }
    }
}

/// The child: never returns. Any failure is reported to the parent as one
/// line and the child exits with the failure's code.
fn child(l: &Launch, go: OwnedFd, report: OwnedFd, pty_sock: Option<OwnedFd>, root_sock: Option<OwnedFd>) -> ! {
    let mut report = std::fs::File::from(report);
    let err = match setup_and_exec(l, go, &mut report, pty_sock, root_sock) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let kind = if err.exit_code() == 126 {
        Kind::CannotExecute
    } else if err.exit_code() == 127 {
        Kind::CommandNotFound
    } else {
        Kind::Engine
    };
    let _ = report.write_all(&Message::Failed { kind, text: err.to_string() }.encode());
    p::exit_now(err.exit_code())
}

enum Never {}

fn setup_and_exec(
    l: &Launch,
    go: OwnedFd,
    report: &mut std::fs::File,
    pty_sock: Option<OwnedFd>,
    root_sock: Option<OwnedFd>,
) -> Result<Never> {
    if l.idmap.is_none() {
        p::unshare(SHARED_LATER)?;
    }
    let mut byte = [0u8; 1];
    if std::fs::File::from(go).read(&mut byte).unwrap_or(0) == 0 {
        p::exit_now(125); // mini gave up on us (and reports why)
    }
    // Cgroups made; id maps written, root overlay sent (user namespace).
    let without_cgroups;
    let rootfs = match l.cgroups {
        CgroupEntry::Opened(files) => {
            cgroups::join(files)?;
            l.rootfs
        }
        CgroupEntry::Deferred(c) if byte[0] == b'g' => {
            cgroups::join(&cgroups::open_join_files(&c.dirs())?)?;
            l.rootfs
        }
        CgroupEntry::Deferred(c) => {
            without_cgroups = cgroups::fs::without(l.rootfs, &c.plan.dirs);
            &without_cgroups
        }
    };
    p::unshare(ns::CGROUP)?; // rooted at the cgroups just joined
    enter_root(l, rootfs, root_sock)?;
    let user = l.spec.user.resolve(
        std::fs::read("/etc/passwd").ok().as_deref(),
        std::fs::read("/etc/group").ok().as_deref(),
    )?;
    let mut env = l.spec.env.clone();
    if l.spec.env_value("HOME").is_none() {
        env.push(format!("HOME={}", user.home));
    }
    enter_workdir(&l.spec.workdir)?;
    stdio(l, pty_sock)?;
    let path = l.spec.env_value("PATH").unwrap_or(super::spec::DEFAULT_PATH).to_string();
    let program = find_program(&l.spec.argv[0], &path, &|p: &Path| p::executable(p), &|p: &Path| p.exists())?;
    become_user_and_exec(l, &user, &program, &env, report)
}

/// Mount the container's root as planned and pivot into it; then its host
/// name and loopback interface.
fn enter_root(l: &Launch, plan: &rootfs::Plan, root_sock: Option<OwnedFd>) -> Result<()> {
    // Under a user namespace: the root overlay, then one mount per volume.
    let mut detached = Vec::new();
    if let Some(sock) = &root_sock {
        for _ in 0..=l.detach.len() {
            let fd = sys::tty::recv_fd(sock.as_raw_fd())?;
            detached.push(fd.ok_or_else(|| Error::new("receive the container's mounts from mini"))?);
        }
    }
    if l.idmap.is_some() {
        p::set_ids(0, 0, &[])?; // the namespace's root, now that it is mapped
    }
    let sys = sys::RealSys;
    rootfs::execute(plan, &sys, &detached)?;
    sys.sethostname(l.hostname)?;
    sys.loopback_up()
}

/// Drop to Docker's capability set and the user, then exec (with
/// `--init`, fork first and stay as pid 1). Seccomp goes last: the filter
/// denies calls made on the way.
fn become_user_and_exec(
    l: &Launch,
    user: &super::user::User,
    program: &Path,
    env: &[String],
    report: &mut std::fs::File,
) -> Result<Never> {
    let filters = confine(user)?;
    p::die_with_parent()?;
    p::cloexec_from(3)?;
    if l.spec.init {
        // mini's own code stays in the container as pid 1: make it
        // non-dumpable before the command exists, so nothing inside can
        // reach /proc/1/exe or /proc/1/mem (the command's exec makes its
        // own process dumpable again, as usual).
        p::set_not_dumpable()?;
    }
    security::apply_seccomp(&filters)?;
    if l.spec.init {
        if let Some(pid) = p::fork()? {
            // pid 1 from here on. Its copy of the report pipe must not keep
            // the pipe open, or mini would never see the command's exec;
            // `reap` never returns, so the File is never dropped twice.
            p::close_raw(report.as_raw_fd());
            init::reap(pid);
        }
    }
    p::reset_signals();
    let e = p::execve(program, &l.spec.argv, env);
    Err(Error::new(format!("exec {}", program.display())).because(&e).kind(exec_failure_kind(e.raw_os_error())))
}

/// Docker's capability set, no_new_privs and the user's ids; returns the
/// seccomp filters, to be applied last (they deny calls made on the way).
/// Shared with `exec`, which confines its process the same way.
pub fn confine(user: &super::user::User) -> Result<Vec<super::seccomp::Insn>> {
    let filters = security::seccomp_program()?;
    security::limit_bounding_set()?;
    p::set_no_new_privs()?;
    p::set_ids(user.uid, user.gid, &user.groups)?;
    security::set_process_caps(user.uid)?;
    Ok(filters)
}

/// Create the working directory if missing (as root, as Docker does) and
/// enter it.
fn enter_workdir(dir: &Path) -> Result<()> {
    let what = || format!("working directory {}", dir.display());
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => return Err(Error::new(what()).because("not a directory")),
        Ok(_) => {}
        Err(_) => std::fs::create_dir_all(dir).map_err(|e| Error::new(format!("create {}", what())).because(e))?,
    }
    std::env::set_current_dir(dir).map_err(|e| Error::new(format!("enter {}", what())).because(e))
}

/// stdin is /dev/null without -i; -t gives 0,1,2 a pty from the
/// container's devpts whose other end goes to mini.
fn stdio(l: &Launch, pty_sock: Option<OwnedFd>) -> Result<()> {
    if let Some(sock) = pty_sock {
        return pty_stdio(&sock);
    }
    if !l.spec.interactive {
        let null = std::fs::File::open("/dev/null").map_err(|e| Error::new("open /dev/null").because(e))?;
        p::dup2(null.as_raw_fd(), 0)?;
    }
    Ok(())
}

/// 0, 1 and 2 become a new pty from the container's devpts, whose master
/// goes to mini over `sock` (shared with `exec -t`).
pub fn pty_stdio(sock: &OwnedFd) -> Result<()> {
    let (master, slave) = sys::tty::open_pty("/dev/ptmx")?;
    // Sized before exec (mini's relay starts only after it): the
    // command's first look at its terminal must see the host's size.
    if sys::tty::isatty(0) {
        sys::tty::copy_winsize(0, slave.as_raw_fd());
    }
    sys::tty::send_fd(sock.as_raw_fd(), master.as_raw_fd())?;
    drop(master);
    p::setsid()?;
    p::set_controlling_tty(slave.as_raw_fd())?;
    for fd in 0..3 {
        p::dup2(slave.as_raw_fd(), fd)?;
    }
    // -t without -i: stdin stays the terminal, but mini copies nothing to it.
    Ok(())
}

/// The program to exec: `argv0` itself when it has a '/', else the first
/// executable match in `path` (the container's PATH), as execvp does.
pub fn find_program(
    argv0: &OsString,
    path: &str,
    is_executable: &dyn Fn(&Path) -> bool,
    exists: &dyn Fn(&Path) -> bool,
) -> Result<PathBuf> {
    let name = Path::new(argv0);
    if argv0.is_empty() {
        return Err(Error::new("exec \"\"").because("empty command").kind(Kind::CommandNotFound));
    }
    if argv0.as_encoded_bytes().contains(&b'/') {
        return Ok(name.to_path_buf());
    }
    let mut found_not_exec = None;
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(name);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
        if found_not_exec.is_none() && exists(&candidate) {
            found_not_exec = Some(candidate);
        }
    }
    let shown = name.display();
    match found_not_exec {
        Some(c) => Err(Error::new(format!("exec \"{shown}\""))
            .because(format!("{} is not executable", c.display()))
            .kind(Kind::CannotExecute)),
        None => Err(Error::new(format!("exec \"{shown}\""))
            .because("executable file not found in $PATH")
            .kind(Kind::CommandNotFound)),
    }
}

#[cfg(test)]
mod find_tests {
    use super::*;

    #[test]
    fn path_lookup_finds_first_executable_and_maps_failures() {
        let exec = |p: &Path| p == Path::new("/bin/sh") || p == Path::new("/usr/bin/sh");
        let exists = |p: &Path| exec(p) || p == Path::new("/usr/local/bin/data");
        let f = |a: &str| find_program(&OsString::from(a), "/usr/local/bin::/bin:/usr/bin", &exec, &exists);
        assert_eq!(f("sh").unwrap(), PathBuf::from("/bin/sh"));
        assert_eq!(f("./x").unwrap(), PathBuf::from("./x"));
        assert_eq!(f("/nope").unwrap(), PathBuf::from("/nope"));
        let e = f("nope").unwrap_err();
        assert_eq!((e.exit_code(), e.to_string().as_str()), (127, "exec \"nope\": executable file not found in $PATH"));
        assert_eq!(f("data").unwrap_err().exit_code(), 126);
        assert_eq!(f("").unwrap_err().exit_code(), 127);
    }
}
