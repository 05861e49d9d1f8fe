//! `mini exec`: a new process in a running container.
//!
//! mini opens the container's namespace files (`/proc/<pid1>/ns/*`) and
//! its cgroups' `tasks` files, then forks a helper that joins the
//! cgroups (writing "0", as the container's own pid 1 did), then the user
//! namespace (if the container has its own), ipc, uts, net, pid, cgroup
//! and mount namespaces, in that order. Joining a pid namespace only
//! places the helper's *children* in it, so the helper forks once more:
//! that child resolves the user in the container's /etc/passwd, enters
//! the working directory, gets the same confinement as the container
//! (Docker's capabilities, no_new_privs, seccomp; every fd from 3 up
//! closed on exec) and execs. The helper stays outside, non-dumpable,
//! as the process mini waits for: it forwards signals to the command and
//! exits with its status (`init::reap`). Setup and exec failures come
//! back over a report pipe as in `run` (125, 126, 127).

use std::ffi::OsString;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use mini_store::Store;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::runtime::child::{self, Caps, Never, Seccomp};
use crate::runtime::message::Failed;
use crate::runtime::process::{self, Started};
use crate::runtime::seccomp::{self, Compiled};
use crate::runtime::{init, user::UserSpec};
use crate::sys::fdpass;
use crate::sys::process::{self as p, ns};

/// The flags of `mini exec`.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub interactive: bool,
    pub tty: bool,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub argv: Vec<OsString>,
}

/// What the process gets, decided before the fork.
struct Plan {
    namespaces: Vec<(OwnedFd, i32, &'static str)>,
    cgroups: Vec<std::fs::File>,
    user: UserSpec,
    env: Vec<String>,
    workdir: PathBuf,
    no_new_privs: bool,
    /// The container's filter, compiled (none with `--privileged`).
    seccomp: Option<Compiled>,
    /// The container's capabilities and limits: `exec` gets what the
    /// container got.
    caps: Vec<caps::Capability>,
    rlimits: Vec<crate::container::process::Rlimit>,
    argv: Vec<OsString>,
    opts: ExecOptions,
}

pub fn exec(config: &Config, key: &str, opts: ExecOptions) -> Result<i32> {
    let store = Store::open(&config.root)?;
    let plan = plan(&store, key, opts)?;
    p::assert_single_threaded()?;
    let mut handled = p::FORWARDED.to_vec();
    handled.push(libc::SIGCHLD);
    p::block(&handled);
    let sigfd = p::signalfd(&handled)?;
    let (report_r, report_w) = p::pipe()?;
    let pty = if plan.opts.tty { Some(p::socketpair()?) } else { None };
    let helper = match p::fork()? {
        None => {
            drop(report_r);
            helper(&plan, report_w, pty.map(|(_, child_end)| child_end))
        }
        Some(pid) => pid,
    };
    drop(report_w);
    let pty_parent = pty.map(|(parent_end, _child_end)| parent_end);
    let master = match &pty_parent {
        Some(sock) => fdpass::recv_fd(sock.as_raw_fd())?,
        None => None,
    };
    let mut report = Vec::new();
    let _ = std::fs::File::from(report_r).read_to_end(&mut report);
    if let Some(m) = Failed::decode(&report) {
        let _ = p::wait(helper, false);
        return Err(m.into_error());
    }
    let exit = Started::adopt(helper, master, sigfd, plan.opts.interactive).wait()?;
    Ok(process::exit_code(exit))
}

/// Refuse what cannot be exec'd into; open the namespaces and cgroups.
fn plan(store: &Store, key: &str, opts: ExecOptions) -> Result<Plan> {
    let what = || format!("exec in {key}");
    let (c, state) = super::lifecycle::lookup(store, "exec in", key)?;
    let Some(pid) = state.pid.filter(|_| super::state::is_running(&state)) else {
        return Err(Error::new(what()).because("container is not running"));
    };
    if state.paused {
        return Err(Error::new(what())
            .because("container is paused")
            .hint(format!("unpause it first: mini unpause {key}")));
    }
    if opts.argv.is_empty() {
        return Err(Error::new(what()).because("no command given"));
    }
    let record = super::record::Record::read(&c).map_err(|e| e.within(what()))?;
    let mut namespaces = Vec::new();
    let own_user = std::fs::read_link("/proc/self/ns/user").ok();
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/user")).ok();
    if own_user != theirs {
        namespaces.push((p::open_ns(pid, "user")?, ns::USER, "user"));
    }
    for (name, flag) in ns::JOIN_ORDER {
        namespaces.push((p::open_ns(pid, name).map_err(|e| e.within(what()))?, flag, name));
    }
    // Only cgroups that exist: the run may have had none (best effort).
    let dirs: Vec<PathBuf> = record.container.cgroups.dirs().into_iter().filter(|d| d.is_dir()).collect();
    let cgroups = crate::runtime::cgroups::open_join_files(&dirs).unwrap_or_default();
    let user = match &opts.user {
        Some(u) => UserSpec::parse(u)?,
        None => record.process.user.clone(),
    };
    let workdir = match &opts.workdir {
        Some(w) if !w.starts_with('/') => {
            return Err(Error::new(format!("invalid -w \"{w}\"")).because("the working directory must be absolute"))
        }
        Some(w) => PathBuf::from(w),
        None => record.process.workdir.clone(),
    };
    let env = merge_env(&record.process.env, &opts.env, &|k| std::env::var(k).ok())?;
    let no_new_privs = record.process.no_new_privs;
    // The profile the container's spec had (`container::generate`).
    let seccomp = super::generate::seccomp_of(&record.process)?.map(|p| seccomp::compile(&p)).transpose()?;
    let caps = crate::runtime::security::capabilities_of(record.process.capabilities.as_deref())?;
    let rlimits = record.process.rlimits.clone();
    Ok(Plan {
        namespaces,
        cgroups,
        user,
        env,
        workdir,
        no_new_privs,
        seccomp,
        caps,
        rlimits,
        argv: opts.argv.clone(),
        opts,
    })
}

/// The container's environment with `-e` entries applied (KEY=VALUE, or
/// KEY for the host's value, skipped when unset).
fn merge_env(base: &[String], flags: &[String], host: &dyn Fn(&str) -> Option<String>) -> Result<Vec<String>> {
    let mut env = base.to_vec();
    for e in flags {
        let kv = match e.split_once('=') {
            Some(("", _)) => return Err(Error::new(format!("invalid -e \"{e}\"")).because("empty variable name")),
            Some(_) => e.clone(),
            None if e.is_empty() => return Err(Error::new("invalid -e \"\"").because("empty variable name")),
            None => match host(e) {
                Some(v) => format!("{e}={v}"),
                None => continue,
            },
        };
        let key = kv.split('=').next().unwrap_or_default().to_string();
        env.retain(|x| x.split('=').next() != Some(key.as_str()));
        env.push(kv);
    }
    Ok(env)
}

/// The helper: joins everything, forks the command, stays as its reaper.
fn helper(plan: &Plan, report: OwnedFd, pty_sock: Option<OwnedFd>) -> ! {
    let mut report = std::fs::File::from(report);
    let joined = (|| -> Result<i32> {
        // Nothing in the container may ptrace or open /proc/<pid>/exe of
        // mini's own code (the exec'd command is dumpable again).
        p::set_not_dumpable()?;
        crate::runtime::cgroups::join(&plan.cgroups)?;
        for (fd, flag, name) in &plan.namespaces {
            p::setns(fd, *flag, name)?;
        }
        match p::fork()? {
            None => {
                let e = match command(plan, pty_sock.as_ref(), &mut report) {
                    Ok(never) => match never {},
                    Err(e) => e,
                };
                child::fail(&mut report, &e)
            }
            Some(pid) => Ok(pid),
        }
    })();
    match joined {
        Ok(pid) => {
            drop((report, pty_sock));
            init::reap(pid)
        }
        Err(e) => child::fail(&mut report, &e),
    }
}

/// Inside the container: the shared tail of every container process.
fn command(plan: &Plan, pty_sock: Option<&OwnedFd>, report: &mut std::fs::File) -> Result<Never> {
    let cmd = child::Command {
        argv: &plan.argv,
        env: &plan.env,
        workdir: &plan.workdir,
        create_workdir: false,
        no_new_privs: plan.no_new_privs,
        seccomp: plan.seccomp.as_ref().map_or(Seccomp::Off, Seccomp::Profile),
        caps: Caps::Root(&plan.caps),
        rlimits: &plan.rlimits,
        user: &plan.user,
        interactive: plan.opts.interactive,
        init: false,
        die_with_parent: false,
        groups: None,
        umask: None,
        keep_fds: 0,
        gate: None,
    };
    child::exec(&cmd, pty_sock, report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_flags_override_the_containers() {
        let host = |k: &str| (k == "FROM_HOST").then(|| "h".to_string());
        let base = vec!["PATH=/bin".to_string(), "A=1".to_string()];
        let flags = vec!["A=2".to_string(), "B=3".to_string(), "FROM_HOST".to_string(), "UNSET".to_string()];
        assert_eq!(merge_env(&base, &flags, &host).unwrap(), vec!["PATH=/bin", "A=2", "B=3", "FROM_HOST=h"]);
        assert!(merge_env(&base, &["=x".to_string()], &host).is_err());
    }
}
