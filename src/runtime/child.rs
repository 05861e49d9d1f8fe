//! Inside the container, the last steps before the command runs, shared
//! by the container's first process (`runtime::process`) and by `exec`:
//! user → working directory → stdio → confinement → exec. A failure on
//! the way is reported to mini as one [`Failed`] line, and the process
//! exits with its code (125, 126, 127).

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::message::Failed;
use super::plan::Process;
use super::seccomp::Compiled;
use super::security::CapSets;
use super::user::{User, UserSpec};
use super::{init, security};
use crate::error::{Error, Kind, Result};
use crate::sys::process as p;
use crate::sys::{self};

/// The PATH a command is looked up in when its environment has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What is never returned: `exec` either replaces the process or fails.
pub enum Never {}

/// The command and how it runs.
pub struct Command<'a> {
    pub argv: &'a [OsString],
    /// KEY=VALUE; HOME, unset or empty, comes from the user's passwd
    /// entry (`/` without one), as Docker sets it.
    pub env: &'a [String],
    pub workdir: &'a Path,
    /// A missing working directory is made, owned by the user (as
    /// `docker run` does); `exec` refuses one instead, as `docker exec`.
    pub create_workdir: bool,
    /// Set no_new_privs (`--security-opt no-new-privileges`).
    pub no_new_privs: bool,
    pub seccomp: Seccomp<'a>,
    pub caps: Caps<'a>,
    /// `--ulimit`s, set while mini still may raise them.
    pub rlimits: &'a [super::plan::Rlimit],
    pub user: &'a UserSpec,
    /// Keep stdin (else it is /dev/null).
    pub interactive: bool,
    /// mini's reaper stays as pid 1 and forks the command (`--init`).
    pub init: bool,
    /// Die with mini (the container's first process; `exec`'s helper
    /// outside the container does the reaping instead).
    pub die_with_parent: bool,
    /// Exactly these supplementary groups (an OCI `additionalGids`)
    /// instead of the user's from the container's /etc/group.
    pub groups: Option<&'a [u32]>,
    /// The process's umask (an OCI `process.user.umask`).
    pub umask: Option<u32>,
    /// Fds from 3 up that stay open across exec (runc's
    /// `--preserve-fds`): 3..3+keep_fds.
    pub keep_fds: u32,
    /// Runs last, just before exec, once everything else is set: the OCI
    /// runtime's `create` blocks here until `start` (its exec fifo).
    pub gate: Option<&'a dyn Fn() -> Result<()>>,
}

/// The seccomp filter the process gets.
#[derive(Clone, Copy)]
pub enum Seccomp<'a> {
    /// None (`--privileged`; a bundle without `linux.seccomp`).
    Off,
    /// A compiled `linux.seccomp` profile.
    Profile(&'a Compiled),
}

/// The capabilities the process keeps.
#[derive(Clone, Copy)]
pub enum Caps<'a> {
    /// Docker's model: root keeps these in every set, any other user none;
    /// they are everyone's bounding set.
    Root(&'a [caps::Capability]),
    /// Each set as given, for any user (an OCI `process.capabilities`).
    Sets(&'a CapSets),
}

impl Caps<'_> {
    fn bounding(&self) -> &[caps::Capability] {
        match self {
            Caps::Root(keep) => keep,
            Caps::Sets(sets) => &sets.bounding,
        }
    }
}

impl<'a> Command<'a> {
    /// The command an OCI process describes, with its seccomp program:
    /// runc's defaults (working directory made, stdin kept, no init) for
    /// the caller to adjust. With mini's USER annotation the user is
    /// resolved inside (`user` is [`Process::user_spec`]), with its groups
    /// from the container's /etc/group and capabilities for root only.
    pub fn of(pr: &'a Process, user: &'a UserSpec, seccomp: Option<&'a Compiled>) -> Command<'a> {
        let by_name = pr.user_by_name.is_some();
        Command {
            argv: &pr.args,
            env: &pr.env,
            workdir: &pr.cwd,
            create_workdir: true,
            no_new_privs: pr.no_new_privs,
            seccomp: seccomp.map_or(Seccomp::Off, Seccomp::Profile),
            caps: if by_name { Caps::Root(&pr.caps.bounding) } else { Caps::Sets(&pr.caps) },
            rlimits: &pr.rlimits,
            user,
            interactive: true,
            init: pr.init,
            die_with_parent: false,
            groups: if by_name { None } else { Some(&pr.groups) },
            umask: pr.umask,
            keep_fds: 0,
            gate: None,
        }
    }
}

/// Resolve the user in the container's own /etc/passwd, enter the working
/// directory, set up stdio (a new pty from the container's devpts whose
/// master goes to mini over `pty_sock`, with -t), drop to Docker's
/// confinement and exec.
pub fn exec(cmd: &Command, pty_sock: Option<&OwnedFd>, report: &mut std::fs::File) -> Result<Never> {
    let passwd = std::fs::read("/etc/passwd").ok();
    let group = std::fs::read("/etc/group").ok();
    let mut user = cmd.user.resolve(passwd.as_deref(), group.as_deref())?;
    if let Some(groups) = cmd.groups {
        user.groups = groups.to_vec();
    }
    let env = with_home(cmd.env, &user.home);
    let owner = cmd.create_workdir.then_some((user.uid, user.gid));
    enter_workdir(cmd.workdir, owner)?;
    match pty_sock {
        Some(sock) => pty_stdio(sock)?,
        None if !cmd.interactive => {
            let null = std::fs::File::open("/dev/null").map_err(|e| Error::new("open /dev/null").because(e))?;
            p::dup2(null.as_raw_fd(), 0)?;
        }
        None => {}
    }
    let path = env.iter().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(DEFAULT_PATH).to_string();
    let program = find_program(&cmd.argv[0], &path, &|x: &Path| p::executable(x), &|x: &Path| x.exists())?;
    become_user_and_exec(cmd, &user, &program, &env, report)
}

/// `env` with HOME from the passwd entry where it is unset or empty.
fn with_home(env: &[String], home: &str) -> Vec<String> {
    let mut env: Vec<String> = env.iter().filter(|e| e.as_str() != "HOME=").cloned().collect();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={home}"));
    }
    env
}

/// Report `e` to mini over `report` and exit with its code.
pub fn fail(report: &mut std::fs::File, e: &Error) -> ! {
    let _ = report.write_all(&Failed::of(e).encode());
    p::exit_now(e.exit_code())
}

/// Drop to Docker's capability set and the user, then exec (with
/// `--init`, fork first and stay as pid 1). With no_new_privs the filter
/// goes last; without it the kernel accepts a filter only from a process
/// holding CAP_SYS_ADMIN, so it goes first, while mini still has every
/// capability (none of the calls made after it is one the filter denies).
fn become_user_and_exec(
    cmd: &Command,
    user: &User,
    program: &Path,
    env: &[String],
    report: &mut std::fs::File,
) -> Result<Never> {
    let filter = match cmd.seccomp {
        Seccomp::Off => None,
        Seccomp::Profile(c) => Some((c.program.as_slice(), c.flags)),
    };
    for r in cmd.rlimits {
        p::setrlimit(&r.name, r.soft, r.hard)?;
    }
    if !cmd.no_new_privs {
        if let Some((program, flags)) = filter {
            security::apply_seccomp(program, flags)?;
        }
    }
    confine(user, cmd)?;
    if cmd.die_with_parent {
        p::die_with_parent()?;
    }
    p::cloexec_from(3 + cmd.keep_fds)?;
    if let Some(mask) = cmd.umask {
        p::set_umask(mask);
    }
    if cmd.init {
        // mini's own code stays in the container as pid 1: make it
        // non-dumpable before the command exists, so nothing inside can
        // reach /proc/1/exe or /proc/1/mem (the command's exec makes its
        // own process dumpable again, as usual).
        p::set_not_dumpable()?;
    }
    // The exec fifo is waited on before a no_new_privs filter, which may
    // deny the calls that takes (as runc orders them; `init` never has a
    // gate).
    if let Some(gate) = cmd.gate {
        gate()?;
    }
    if cmd.no_new_privs {
        if let Some((program, flags)) = filter {
            security::apply_seccomp(program, flags)?;
        }
    }
    if cmd.init {
        if let Some(pid) = p::fork()? {
            // pid 1 from here on. Its copy of the report pipe must not keep
            // the pipe open, or mini would never see the command's exec;
            // `reap` never returns, so the File is never dropped twice.
            p::close_raw(report.as_raw_fd());
            init::reap(pid);
        }
    }
    p::reset_signals();
    let e = p::execve(program, cmd.argv, env);
    Err(Error::new(format!("exec {}", program.display())).because(&e).kind(exec_failure_kind(e.raw_os_error())))
}

/// The container's capability set, no_new_privs if asked, and the
/// user's ids.
fn confine(user: &User, cmd: &Command) -> Result<()> {
    security::limit_bounding_set(cmd.caps.bounding())?;
    if cmd.no_new_privs {
        p::set_no_new_privs()?;
    }
    match cmd.caps {
        Caps::Root(keep) => {
            p::set_ids(user.uid, user.gid, &user.groups)?;
            security::set_process_caps(user.uid, keep)
        }
        Caps::Sets(sets) => {
            // Keep the permitted set across the switch to a non-root user.
            p::set_keep_caps(true)?;
            p::set_ids(user.uid, user.gid, &user.groups)?;
            p::set_keep_caps(false)?;
            security::set_cap_sets(sets)
        }
    }
}

/// Enter the working directory; with `owner`, first make its missing
/// parts, each owned by the user (not by root: as Docker does).
fn enter_workdir(dir: &Path, owner: Option<(u32, u32)>) -> Result<()> {
    let what = || format!("working directory {}", dir.display());
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => return Err(Error::new(what()).because("not a directory")),
        Ok(_) => {}
        Err(_) => {
            if let Some((uid, gid)) = owner {
                make_owned(dir, uid, gid).map_err(|e| Error::new(format!("create {}", what())).because(e))?;
            }
        }
    }
    std::env::set_current_dir(dir).map_err(|e| Error::new(format!("enter {}", what())).because(e))
}

/// mkdir -p, chowning only the directories it makes.
fn make_owned(dir: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
    for d in missing.into_iter().rev() {
        match std::fs::create_dir(d) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
            _ => std::os::unix::fs::chown(d, Some(uid), Some(gid))?,
        }
    }
    Ok(())
}

/// 0, 1 and 2 become a new pty from the container's devpts, whose master
/// goes to mini over `sock`.
fn pty_stdio(sock: &OwnedFd) -> Result<()> {
    let (master, slave) = sys::tty::open_pty("/dev/ptmx")?;
    // Sized before exec (mini's relay starts only after it): the
    // command's first look at its terminal must see the host's size.
    if sys::tty::isatty(0) {
        sys::tty::copy_winsize(0, slave.as_raw_fd());
    }
    sys::fdpass::send_fd(sock.as_raw_fd(), master.as_raw_fd())?;
    drop(master);
    p::setsid()?;
    p::set_controlling_tty(slave.as_raw_fd())?;
    for fd in 0..3 {
        p::dup2(slave.as_raw_fd(), fd)?;
    }
    // -t without -i: stdin stays the terminal, but mini copies nothing to it.
    Ok(())
}

/// Which error kind an execve failure is: not found (127) or cannot be
/// executed (126), as Docker maps them.
pub fn exec_failure_kind(errno: Option<i32>) -> Kind {
    match errno {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => Kind::CommandNotFound,
        _ => Kind::CannotExecute,
    }
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
        // Checked here, before an OCI `create` reports success (as runc
        // does), not left to execve after `start`.
        if !exists(name) {
            return Err(Error::new(format!("exec \"{}\"", name.display()))
                .because(format!("stat {}: no such file or directory", name.display()))
                .kind(Kind::CommandNotFound));
        }
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
mod tests {
    use super::*;

    #[test]
    fn path_lookup_finds_first_executable_and_maps_failures() {
        let exec = |p: &Path| p == Path::new("/bin/sh") || p == Path::new("/usr/bin/sh");
        let exists = |p: &Path| exec(p) || p == Path::new("/usr/local/bin/data") || p == Path::new("./x");
        let f = |a: &str| find_program(&OsString::from(a), "/usr/local/bin::/bin:/usr/bin", &exec, &exists);
        assert_eq!(f("sh").unwrap(), PathBuf::from("/bin/sh"));
        assert_eq!(f("./x").unwrap(), PathBuf::from("./x"));
        assert_eq!(f("/usr/local/bin/data").unwrap(), PathBuf::from("/usr/local/bin/data"));
        let e = f("/nope").unwrap_err();
        assert_eq!(
            (e.exit_code(), e.to_string().as_str()),
            (127, "exec \"/nope\": stat /nope: no such file or directory")
        );
        let e = f("nope").unwrap_err();
        assert_eq!((e.exit_code(), e.to_string().as_str()), (127, "exec \"nope\": executable file not found in $PATH"));
        assert_eq!(f("data").unwrap_err().exit_code(), 126);
        assert_eq!(f("").unwrap_err().exit_code(), 127);
    }

    #[test]
    fn home_comes_from_passwd_when_unset_or_empty() {
        let e = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(with_home(&e(&["A=1"]), "/root"), e(&["A=1", "HOME=/root"]));
        assert_eq!(with_home(&e(&["HOME=", "A=1"]), "/home/app"), e(&["A=1", "HOME=/home/app"]));
        assert_eq!(with_home(&e(&["HOME=/x"]), "/root"), e(&["HOME=/x"]));
    }

    #[test]
    fn missing_workdir_parts_are_made_owned_by_the_user() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let (uid, gid) = (unsafe { libc::geteuid() }, unsafe { libc::getegid() });
        make_owned(&tmp.path().join("a/b/c"), uid, gid).unwrap();
        let m = std::fs::metadata(tmp.path().join("a/b/c")).unwrap();
        assert!(m.is_dir() && m.uid() == uid && m.gid() == gid);
    }

    #[test]
    fn exec_failures_map_to_docker_codes() {
        assert_eq!(exec_failure_kind(Some(libc::ENOENT)).exit_code(), 127);
        assert_eq!(exec_failure_kind(Some(libc::EACCES)).exit_code(), 126);
        assert_eq!(exec_failure_kind(Some(libc::ENOEXEC)).exit_code(), 126);
    }
}
