//! runc's `exec`: another process in a running container, described by a
//! `process.json` (what containerd's shim passes) or by the config's
//! process with other args. mini-runc joins the container's pid namespace
//! itself and forks: the child is in it, joins the cgroups and the other
//! namespaces (user first), and takes the shared tail to its exec. With
//! `--detach` mini-runc exits once the command runs (the shim, a
//! subreaper, inherits it); otherwise it waits and exits with its status.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use super::launch::write_pid_file;
use super::state::{Root, Status};
use crate::error::{Error, Result};
use crate::runtime::child;
use crate::runtime::message::Failed;
use crate::runtime::process::{exit_code, Started};
use crate::runtime::seccomp::{compile, Compiled};
use crate::sys::fdpass;
use crate::sys::process::{self as p, ns};

#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub process: Option<PathBuf>,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub user: Option<String>,
    pub tty: bool,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: u32,
}

/// The namespaces of `pid` that differ from ours, user first, mount last.
fn namespaces_of(pid: i32) -> Result<Vec<(OwnedFd, i32, &'static str)>> {
    let mut out = Vec::new();
    for (name, flag) in std::iter::once(("user", ns::USER)).chain(ns::JOIN_ORDER) {
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{name}")).ok();
        if theirs.is_some() && theirs != std::fs::read_link(format!("/proc/self/ns/{name}")).ok() {
            out.push((p::open_ns(pid, name)?, flag, name));
        }
    }
    Ok(out)
}

/// The process to exec: `--process FILE`, or the config's with the args
/// and flags given.
fn process_of(r: &super::state::Record, o: &ExecOptions) -> Result<crate::runtime::plan::Process> {
    let mut oci = match &o.process {
        Some(file) => {
            let what = || format!("read the process file {}", file.display());
            let bytes = std::fs::read(file).map_err(|e| Error::new(what()).because(e))?;
            serde_json::from_slice(&bytes).map_err(|e| Error::new(what()).because(e))?
        }
        None => {
            let mut base = r.process.clone();
            base.set_args(Some(o.args.clone()));
            base.set_terminal(Some(o.tty));
            base
        }
    };
    if o.process.is_none() {
        let mut env = oci.env().clone().unwrap_or_default();
        for kv in &o.env {
            let key = kv.split('=').next().unwrap_or_default();
            env.retain(|e| e.split('=').next() != Some(key));
            env.push(kv.clone());
        }
        oci.set_env(Some(env));
        if let Some(c) = &o.cwd {
            oci.set_cwd(c.clone());
        }
        if let Some(u) = &o.user {
            let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
            let bad = || Error::new(format!("invalid --user \"{u}\"")).because("give uid[:gid] as numbers");
            let mut user = oci.user().clone();
            user.set_uid(uid.parse().map_err(|_| bad())?);
            user.set_gid(gid.parse().map_err(|_| bad())?);
            oci.set_user(user);
        }
    }
    crate::runtime::plan::process_of(&oci, "process")
}

pub fn exec(root: &Root, id: &str, o: &ExecOptions) -> Result<i32> {
    let r = root.load(id)?;
    let status = r.status(&root.dir_of(id));
    let what = || format!("exec in container {id}");
    if status != Status::Running {
        return Err(Error::new(what()).because(format!("it is {}, not running", status.as_str())));
    }
    let pid = r.pid.unwrap_or_default();
    let process = process_of(&r, o)?;
    let seccomp = r.seccomp.as_ref().map(|s| compile(s).map_err(|e| e.within(what()))).transpose()?;
    let namespaces = namespaces_of(pid).map_err(|e| e.within(what()))?;
    let dirs: Vec<PathBuf> = r.cgroups.dirs().into_iter().filter(|d| d.is_dir()).collect();
    let cgroups = crate::runtime::cgroups::open_join_files(&dirs)?;
    let console = o.console_socket.as_deref().map(std::os::unix::net::UnixStream::connect).transpose();
    let console = console.map_err(|e| Error::new("connect to the console socket").because(e))?;
    p::assert_single_threaded()?;
    let mut handled = p::FORWARDED.to_vec();
    handled.push(libc::SIGCHLD);
    p::block(&handled);
    let sigfd = p::signalfd(&handled)?;
    if let Some((fd, flag, name)) = namespaces.iter().find(|n| n.1 == ns::PID) {
        p::setns(fd, *flag, name)?; // for the child forked next
    }
    let (report_r, report_w) = p::pipe()?;
    let pty = if process.terminal { Some(p::socketpair()?) } else { None };
    let child_pid = match p::fork()? {
        None => {
            drop(report_r);
            let mut report = std::fs::File::from(report_w);
            let pty_child = pty.map(|(_, c)| c);
            let e = match command(&process, seccomp.as_ref(), &namespaces, &cgroups, o, pty_child.as_ref(), &mut report)
            {
                Ok(never) => match never {},
                Err(e) => e,
            };
            child::fail(&mut report, &e)
        }
        Some(pid) => pid,
    };
    drop(report_w);
    let pty_parent = pty.map(|(parent_end, _)| parent_end);
    let mut master = match &pty_parent {
        Some(sock) => fdpass::recv_fd(sock.as_raw_fd())?,
        None => None,
    };
    let mut report = Vec::new();
    let _ = std::fs::File::from(report_r).read_to_end(&mut report);
    if let Some(m) = Failed::decode(&report) {
        let _ = p::wait(child_pid, false);
        return Err(m.into_error());
    }
    if let (Some(c), Some(m)) = (&console, master.take()) {
        fdpass::send_fd(c.as_raw_fd(), m.as_raw_fd())?;
    }
    if let Some(f) = &o.pid_file {
        write_pid_file(f, child_pid)?;
    }
    if o.detach {
        return Ok(0);
    }
    Ok(exit_code(Started::adopt(child_pid, master, sigfd, true).wait()?))
}

/// In the forked child: cgroups, namespaces, then the shared tail.
fn command(
    process: &crate::runtime::plan::Process,
    seccomp: Option<&Compiled>,
    namespaces: &[(OwnedFd, i32, &'static str)],
    cgroups: &[std::fs::File],
    o: &ExecOptions,
    pty: Option<&OwnedFd>,
    report: &mut std::fs::File,
) -> Result<child::Never> {
    crate::runtime::cgroups::join(cgroups)?;
    for (fd, flag, name) in namespaces.iter().filter(|n| n.1 != ns::PID) {
        p::setns(fd, *flag, name)?;
    }
    let user = process.user_spec();
    let cmd = child::Command {
        create_workdir: false,
        keep_fds: o.preserve_fds,
        ..child::Command::of(process, &user, seccomp)
    };
    child::exec(&cmd, pty, report)
}
