//! Process-level calls: clone into namespaces, signals, wait, credentials,
//! capabilities, seccomp, id maps, exec. Thin wrappers whose errors name
//! the operation; the decisions live in `runtime`.

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::{Error, Result};

fn last(what: impl Into<String>) -> Error {
    Error::new(what).because(io::Error::last_os_error())
}

/// Namespace flags for clone(2).
pub mod ns {
    pub const UTS: i32 = libc::CLONE_NEWUTS;
    pub const PID: i32 = libc::CLONE_NEWPID;
    pub const MOUNT: i32 = libc::CLONE_NEWNS;
    pub const NET: i32 = libc::CLONE_NEWNET;
    pub const IPC: i32 = libc::CLONE_NEWIPC;
    pub const CGROUP: i32 = libc::CLONE_NEWCGROUP;
    pub const USER: i32 = libc::CLONE_NEWUSER;

    /// The order a process joins another's namespaces in (`exec`), after
    /// its user namespace: the mount namespace last, since after it the
    /// host's /proc (and the other namespaces' files) is gone.
    pub const JOIN_ORDER: [(&str, i32); 6] =
        [("ipc", IPC), ("uts", UTS), ("net", NET), ("pid", PID), ("cgroup", CGROUP), ("mnt", MOUNT)];
}

/// Forking is only safe while no other thread exists (a thread could hold
/// the allocator's lock); the run path never starts one, and this checks.
pub fn assert_single_threaded() -> Result<()> {
    let n = std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(1);
    if n == 1 {
        Ok(())
    } else {
        Err(Error::new("start the container process")
            .because(format!("mini has {n} threads; it must have one to clone safely")))
    }
}

/// clone(2) without a new stack, like fork, into the namespaces in `flags`.
/// Returns `Some(pid)` in the parent and `None` in the child.
pub fn clone(flags: i32) -> Result<Option<i32>> {
    // SAFETY: a fork-like clone (null stack: the child gets a copy-on-write
    // image) of a single-threaded process.
    let rc = unsafe {
        libc::syscall(libc::SYS_clone, (flags | libc::SIGCHLD) as libc::c_ulong, 0usize, 0usize, 0usize, 0usize)
    };
    match rc {
        -1 => Err(last("clone the container process into new namespaces")),
        0 => Ok(None),
        pid => Ok(Some(pid as i32)),
    }
}

/// Run `work` in a forked child in its own session, not waited for (it
/// outlives a `mini` that exits right after). Falls back to running it
/// here when fork fails.
pub fn spawn_detached(work: impl FnOnce()) {
    match fork() {
        Ok(Some(_)) => {}
        Ok(None) => {
            // SAFETY: setsid has no preconditions.
            unsafe { libc::setsid() };
            work();
            exit_now(0);
        }
        Err(_) => work(),
    }
}

/// unshare(2) of the namespaces in `flags`.
pub fn unshare(flags: i32) -> Result<()> {
    // SAFETY: unshare with flag constants.
    if unsafe { libc::unshare(flags) } != 0 {
        return Err(last("unshare namespaces"));
    }
    Ok(())
}

/// fork(2), for the --init reaper's child.
pub fn fork() -> Result<Option<i32>> {
    clone(0)
}

pub fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| Error::new("create a pipe").because(io::Error::from(e)))
}

/// A connected pair of unix stream sockets (close-on-exec).
pub fn socketpair() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) } != 0 {
        return Err(last("create a socket pair"));
    }
    // SAFETY: both were just returned by the kernel and are ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Send one byte on a socket without raising SIGPIPE when the peer is
/// gone (mini runs with SIGPIPE's default action; the caller wants EPIPE).
pub fn send_byte(fd: &OwnedFd, byte: u8) -> io::Result<()> {
    // SAFETY: one byte from a live buffer on an fd we own.
    let n = unsafe { libc::send(fd.as_raw_fd(), [byte].as_ptr().cast(), 1, libc::MSG_NOSIGNAL) };
    if n == 1 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The start time of `pid` (clock ticks since boot), to tell a live
/// process from a reused pid; None when it is gone or a zombie (an
/// orphaned monitor may wait a while for its reaper).
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

/// Field 22 of /proc/PID/stat, None for a zombie.
fn parse_start_time(stat: &str) -> Option<u64> {
    let mut after = stat[stat.rfind(')')? + 2..].split_whitespace();
    if after.next()? == "Z" {
        return None;
    }
    after.nth(18)?.parse().ok()
}

/// The resource limits `--ulimit` names, as Docker (and ulimit) call them.
pub const RLIMITS: [(&str, libc::__rlimit_resource_t); 16] = [
    ("as", libc::RLIMIT_AS),
    ("core", libc::RLIMIT_CORE),
    ("cpu", libc::RLIMIT_CPU),
    ("data", libc::RLIMIT_DATA),
    ("fsize", libc::RLIMIT_FSIZE),
    ("locks", libc::RLIMIT_LOCKS),
    ("memlock", libc::RLIMIT_MEMLOCK),
    ("msgqueue", libc::RLIMIT_MSGQUEUE),
    ("nice", libc::RLIMIT_NICE),
    ("nofile", libc::RLIMIT_NOFILE),
    ("nproc", libc::RLIMIT_NPROC),
    ("rss", libc::RLIMIT_RSS),
    ("rtprio", libc::RLIMIT_RTPRIO),
    ("rttime", libc::RLIMIT_RTTIME),
    ("sigpending", libc::RLIMIT_SIGPENDING),
    ("stack", libc::RLIMIT_STACK),
];

fn rlimit_resource(name: &str) -> Option<libc::__rlimit_resource_t> {
    RLIMITS.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
}

/// This process's (soft, hard) limit of resource `name`.
pub fn getrlimit(name: &str) -> Option<(u64, u64)> {
    let resource = rlimit_resource(name)?;
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit into a local struct.
    (unsafe { libc::getrlimit(resource, &mut r) } == 0).then_some((r.rlim_cur, r.rlim_max))
}

/// Set resource `name`'s limits (`u64::MAX` is unlimited).
pub fn setrlimit(name: &str, soft: u64, hard: u64) -> Result<()> {
    let resource =
        rlimit_resource(name).ok_or_else(|| Error::new(format!("set the {name} limit")).because("unknown resource"))?;
    let r = libc::rlimit { rlim_cur: soft, rlim_max: hard };
    // SAFETY: setrlimit from a local struct.
    if unsafe { libc::setrlimit(resource, &r) } != 0 {
        return Err(last(format!("set the {name} limit to {soft}:{hard}")));
    }
    Ok(())
}

/// Run `program args…` with `input` on its stdin; Ok(()) when it exits
/// 0, else Err(what it said: stderr, or stdout when stderr is empty).
/// Spawning errors come back as they are. For the tools mini drives by
/// their stdin (nft -f -, credential helpers).
pub fn run_with_input(program: &str, args: &[&str], input: &[u8]) -> io::Result<std::result::Result<(), String>> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child =
        Command::new(program).args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        // A tool that exits early says why on stderr: its closed stdin must
        // be an EPIPE here, not a SIGPIPE that ends mini (whose default
        // disposition it is, see `default_sigpipe`).
        // SAFETY: swapping one signal's disposition and restoring it.
        let before = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
        let _ = stdin.write_all(input);
        drop(stdin);
        // SAFETY: as above.
        unsafe { libc::signal(libc::SIGPIPE, before) };
    }
    let out = child.wait_with_output()?;
    if out.status.success() {
        return Ok(Ok(()));
    }
    let said = if out.stderr.is_empty() { &out.stdout } else { &out.stderr };
    Ok(Err(String::from_utf8_lossy(said).trim().to_string()))
}

/// Read one byte from a socket; None at EOF or on an error.
pub fn recv_byte(fd: &OwnedFd) -> Option<u8> {
    let mut byte = 0u8;
    loop {
        // SAFETY: one byte into a live local on an fd we own.
        let n = unsafe { libc::recv(fd.as_raw_fd(), (&mut byte as *mut u8).cast(), 1, 0) };
        match n {
            1 => return Some(byte),
            -1 if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => continue,
            _ => return None,
        }
    }
}

/// The signals a foreground `mini run` forwards to its container.
pub const FORWARDED: [i32; 7] =
    [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2, libc::SIGWINCH];

pub type SigSet = libc::sigset_t;

pub fn sigset(signals: &[i32]) -> SigSet {
    // SAFETY: sigemptyset/sigaddset initialise and fill a local set.
    unsafe {
        let mut set: SigSet = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in signals {
            libc::sigaddset(&mut set, *s);
        }
        set
    }
}

/// Block `signals`; returns the previous mask.
pub fn block(signals: &[i32]) -> SigSet {
    let set = sigset(signals);
    // SAFETY: valid sets.
    unsafe {
        let mut old: SigSet = std::mem::zeroed();
        libc::sigprocmask(libc::SIG_BLOCK, &set, &mut old);
        old
    }
}

/// Let a write to a closed pipe end mini quietly, as it ends `docker` and
/// C tools (`mini inspect x | head`), instead of Rust's ignore-and-panic.
pub fn default_sigpipe() {
    // SAFETY: setting one signal's disposition to its default.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Let writes to a closed pipe or socket fail with EPIPE instead of
/// ending mini: for a writer that reports why its reader went away, and
/// for registry uploads, where a dropped connection is retried.
pub fn ignore_sigpipe() {
    // SAFETY: setting one signal's disposition to SIG_IGN.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Unblock everything and restore default dispositions (before exec).
pub fn reset_signals() {
    // SAFETY: resetting dispositions and the mask of this process.
    unsafe {
        for s in 1..libc::SIGRTMIN() {
            if s != libc::SIGKILL && s != libc::SIGSTOP {
                libc::signal(s, libc::SIG_DFL);
            }
        }
        let mut empty: SigSet = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}

/// A signalfd for `signals` (which the caller has blocked).
pub fn signalfd(signals: &[i32]) -> Result<OwnedFd> {
    let set = sigset(signals);
    // SAFETY: valid set; a new fd is returned.
    let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC) };
    if fd < 0 {
        return Err(last("create a signalfd"));
    }
    // SAFETY: fd is new and ours.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Read one signal number from a signalfd.
pub fn read_signal(fd: &OwnedFd) -> Option<i32> {
    // SAFETY: reading one siginfo into a correctly sized buffer.
    unsafe {
        let mut info: libc::signalfd_siginfo = std::mem::zeroed();
        let n =
            libc::read(fd.as_raw_fd(), (&mut info as *mut libc::signalfd_siginfo).cast(), std::mem::size_of_val(&info));
        (n == std::mem::size_of_val(&info) as isize).then_some(info.ssi_signo as i32)
    }
}

/// Wait for the next blocked signal in `set` (sigwaitinfo).
pub fn wait_signal(set: &SigSet) -> i32 {
    loop {
        // SAFETY: valid set; no siginfo wanted.
        let s = unsafe { libc::sigwaitinfo(set, std::ptr::null_mut()) };
        if s > 0 {
            return s;
        }
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

/// waitpid(2); `pid` -1 for any child. None: nothing to reap (WNOHANG) or no children.
pub fn wait(pid: i32, nohang: bool) -> Result<Option<(i32, Exit)>> {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, if nohang { libc::WNOHANG } else { 0 }) };
        if rc == -1 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ECHILD) => return Ok(None),
                _ => return Err(Error::new(format!("wait for process {pid}")).because(e)),
            }
        }
        if rc == 0 {
            return Ok(None);
        }
        if libc::WIFEXITED(status) {
            return Ok(Some((rc, Exit::Code(libc::WEXITSTATUS(status)))));
        }
        if libc::WIFSIGNALED(status) {
            return Ok(Some((rc, Exit::Signal(libc::WTERMSIG(status)))));
        }
    }
}

pub fn kill(pid: i32, sig: i32) -> Result<()> {
    // SAFETY: plain kill(2).
    if unsafe { libc::kill(pid, sig) } == 0 {
        Ok(())
    } else {
        Err(last(format!("send signal {sig} to process {pid}")))
    }
}

/// Whether `pid` exists (signal 0; a zombie counts).
pub fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks existence.
    pid > 0 && (unsafe { libc::kill(pid, 0) } == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

/// Die with SIGKILL when the parent (mini) dies, so a killed `mini run`
/// takes its container with it. Cleared by credential changes: call it
/// after setting user and groups.
pub fn die_with_parent() -> Result<()> {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) } != 0 {
        return Err(last("set the parent-death signal"));
    }
    Ok(())
}

/// PR_SET_DUMPABLE 0: other processes (even root in the container) cannot
/// ptrace this one or open its /proc/<pid>/exe, mem, fd.
pub fn set_not_dumpable() -> Result<()> {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong, 0, 0, 0) } != 0 {
        return Err(last("make mini's init non-dumpable"));
    }
    Ok(())
}

/// The process's name as `ps -o comm`, top and /proc/PID/comm show it
/// (at most 15 bytes; the rest is cut by the kernel).
pub fn set_name(name: &str) -> Result<()> {
    let c = std::ffi::CString::new(name).map_err(|_| Error::new(format!("name the process {name:?}")))?;
    // SAFETY: PR_SET_NAME reads a NUL-terminated string that outlives the call.
    if unsafe { libc::prctl(libc::PR_SET_NAME, c.as_ptr() as libc::c_ulong, 0, 0, 0) } != 0 {
        return Err(last("name the process"));
    }
    Ok(())
}

pub fn set_no_new_privs() -> Result<()> {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) } != 0 {
        return Err(last("set no_new_privs"));
    }
    Ok(())
}

/// Mark every fd from 3 up close-on-exec, so nothing of mini's leaks into
/// the container while the sync pipe still works until exec.
pub fn cloexec_from(first: u32) -> Result<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags.
    if unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) } != 0 {
        return Err(last("mark file descriptors close-on-exec"));
    }
    Ok(())
}

/// Set the process's umask (it cannot fail).
pub fn set_umask(mask: u32) {
    // SAFETY: umask only replaces the process's mask.
    unsafe { libc::umask(mask as libc::mode_t) };
}

pub fn dup2(from: RawFd, to: RawFd) -> Result<()> {
    // SAFETY: dup2 on descriptors we own.
    if unsafe { libc::dup2(from, to) } < 0 {
        return Err(last(format!("dup fd {from} to {to}")));
    }
    Ok(())
}

pub fn setsid() -> Result<()> {
    // SAFETY: no arguments.
    if unsafe { libc::setsid() } < 0 {
        return Err(last("start a session"));
    }
    Ok(())
}

/// Make `fd` (a tty) the controlling terminal of this session.
pub fn set_controlling_tty(fd: RawFd) -> Result<()> {
    // SAFETY: TIOCSCTTY takes an int argument.
    if unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) } < 0 {
        return Err(last("set the controlling terminal"));
    }
    Ok(())
}

/// Switch to `uid`/`gid` with supplementary `groups`.
/// PR_SET_KEEPCAPS: whether the permitted capabilities survive a switch
/// away from uid 0.
pub fn set_keep_caps(on: bool) -> Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, libc::c_ulong::from(on), 0, 0, 0) } != 0 {
        return Err(last("set keep-caps"));
    }
    Ok(())
}

pub fn set_ids(uid: u32, gid: u32, groups: &[u32]) -> Result<()> {
    // SAFETY: plain credential calls with valid pointers.
    unsafe {
        if libc::setgroups(groups.len(), groups.as_ptr()) != 0 && !setgroups_denied() {
            return Err(last(format!("set supplementary groups {groups:?}")));
        }
        if libc::setresgid(gid, gid, gid) != 0 {
            return Err(last(format!("set group id {gid}")));
        }
        if libc::setresuid(uid, uid, uid) != 0 {
            return Err(last(format!("set user id {uid}")));
        }
    }
    Ok(())
}

/// Whether this user namespace forbids setgroups (rootless mini without a
/// subordinate gid range): the process keeps the groups it has, as
/// Podman's does there.
fn setgroups_denied() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny")
}

/// Write `/proc/<pid>/{uid_map,gid_map}` (and deny setgroups first, as
/// the kernel requires of an unprivileged writer; root may keep it).
pub fn write_id_maps(pid: i32, uid_map: &str, gid_map: &str) -> Result<()> {
    for (file, text) in [("uid_map", uid_map), ("gid_map", gid_map)] {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, text).map_err(|e| Error::new(format!("write {path}")).because(e))?;
    }
    Ok(())
}

/// The maps an unprivileged process may write for a namespace it owns:
/// its own uid and gid alone, with setgroups denied first (the kernel's
/// condition for an unprivileged gid_map).
pub fn write_own_id_maps(pid: i32, uid_map: &str, gid_map: &str) -> Result<()> {
    for (file, text) in [("setgroups", "deny"), ("uid_map", uid_map), ("gid_map", gid_map)] {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, text).map_err(|e| Error::new(format!("write {path}")).because(e))?;
    }
    Ok(())
}

/// /dev/null on stdin, stdout and stderr (a process that outlives the
/// command that started it must hold none of its pipes).
pub fn null_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
        for fd in 0..3 {
            let _ = dup2(null.as_raw_fd(), fd);
        }
    }
}

/// Sleep in pause(2) until a signal ends the process.
pub fn pause_forever() -> ! {
    loop {
        // SAFETY: pause has no arguments.
        unsafe { libc::pause() };
    }
}

/// execve(2) of `path`; only returns on failure.
pub fn execve(path: &Path, argv: &[OsString], env: &[String]) -> io::Error {
    let c = |b: &[u8]| CString::new(b).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL));
    let prog = match c(path.as_os_str().as_bytes()) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let Ok(args) = argv.iter().map(|a| c(a.as_bytes())).collect::<io::Result<Vec<_>>>() else {
        return io::Error::from_raw_os_error(libc::EINVAL);
    };
    let Ok(envs) = env.iter().map(|e| c(e.as_bytes())).collect::<io::Result<Vec<_>>>() else {
        return io::Error::from_raw_os_error(libc::EINVAL);
    };
    let mut argp: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argp.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = envs.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: NUL-terminated arrays of valid C strings that outlive the call.
    unsafe { libc::execve(prog.as_ptr(), argp.as_ptr(), envp.as_ptr()) };
    io::Error::last_os_error()
}

/// Whether `path` is a regular file we may execute (access X_OK).
pub fn executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else { return false };
    let is_file = std::fs::metadata(path).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false);
    // SAFETY: valid C string.
    is_file && unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0
}

/// close(2) of a descriptor whose owner will never drop it (see `--init`).
pub fn close_raw(fd: RawFd) {
    // SAFETY: the caller guarantees nothing else closes or uses `fd`.
    unsafe { libc::close(fd) };
}

/// One BPF instruction, laid out as the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// Load a seccomp BPF program for this thread with SECCOMP_FILTER_FLAG_*
/// `flags` (TSYNC, LOG, SPEC_ALLOW). Needs no_new_privs or CAP_SYS_ADMIN.
pub fn load_seccomp(program: &[Insn], flags: u32) -> io::Result<()> {
    // Insn has `struct sock_filter`'s layout (repr(C): u16, u8, u8, u32).
    let prog = libc::sock_fprog {
        len: u16::try_from(program.len()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at `program`, alive for the call; the kernel
    // copies the instructions.
    let r = unsafe {
        libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, flags, &prog as *const libc::sock_fprog)
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    if r > 0 {
        // TSYNC: the id of a thread that could not take the filter.
        return Err(io::Error::other(format!("thread {r} cannot synchronize to the seccomp filter")));
    }
    Ok(())
}

/// `_exit(2)`: leave the child without running the parent's destructors.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: terminates the process.
    unsafe { libc::_exit(code) }
}

/// Open this process's user namespace file of `pid` (for idmapped mounts).
pub fn open_ns(pid: i32, ns: &str) -> Result<OwnedFd> {
    let path = format!("/proc/{pid}/ns/{ns}");
    std::fs::File::open(&path).map(OwnedFd::from).map_err(|e| Error::new(format!("open {path}")).because(e))
}

/// setns(2): join the namespace `fd` refers to (`nstype` one CLONE_NEW* flag).
pub fn setns(fd: &OwnedFd, nstype: i32, name: &str) -> Result<()> {
    // SAFETY: setns on an fd we own.
    if unsafe { libc::setns(fd.as_raw_fd(), nstype) } != 0 {
        return Err(last(format!("join the container's {name} namespace")));
    }
    Ok(())
}

/// A close-on-exec duplicate of `fd` numbered 3 or above.
pub fn dup_cloexec(fd: RawFd) -> Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC returns a new fd that becomes ours.
    let n = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if n < 0 {
        return Err(last(format!("duplicate fd {fd}")));
    }
    // SAFETY: n is new and ours.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// Clear close-on-exec on `fd` so the next program mini starts inherits
/// it (mini is single-threaded: no other spawn can take it along); returns
/// its number.
pub fn inheritable(fd: &OwnedFd) -> Result<RawFd> {
    // SAFETY: F_SETFD on an fd we own.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, 0) } < 0 {
        return Err(last("pass a file descriptor on"));
    }
    Ok(fd.as_raw_fd())
}

/// Put `fd` in non-blocking mode (the monitor's log pipes: a read never
/// waits for more than what poll reported).
pub fn set_nonblocking(fd: RawFd) -> Result<()> {
    // SAFETY: F_GETFL/F_SETFL on an fd we own.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl < 0 || libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) < 0 {
            return Err(last(format!("make fd {fd} non-blocking")));
        }
    }
    Ok(())
}

/// Close every fd from `first` up (the monitor drops whatever its
/// spawner left open without close-on-exec, so it holds no one's pipe).
pub fn close_from(first: u32) {
    // SAFETY: close_range on fds this process owns and no longer uses.
    unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_times_skip_the_command_name_and_zombies() {
        let stat = "77 (a) b) S 1 77 77 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 12345 1000 10";
        assert_eq!(parse_start_time(stat), Some(12345));
        assert_eq!(parse_start_time(&stat.replace(") S ", ") Z ")), None);
    }
}
