//! The container process: clone into new namespaces, the parent/child
//! handshake, the child's setup up to its shared tail ([`super::child`]),
//! and the parent's wait.
//!
//! The clone makes only the pid namespace (and, with `--userns`, all of
//! them under the new user namespace); the child unshares the others
//! itself, the network namespace above all being slow to make, while mini
//! makes the container's cgroups: the two CPUs' worth of setup overlap.
//!
//! Handshake over close-on-exec channels, in [`super::message`]'s types:
//! parent → child one [`Go`] once the cgroups exist (and, under a user
//! namespace, the id maps are written and the root overlay sent); EOF
//! means "abort". The child joins its cgroups itself before unsharing its
//! cgroup namespace. A network mini connects from outside (a veth pair,
//! a user-mode stack) is made once the child says [`READY`] (after it
//! joined its cgroups; its network namespace exists since it unshared),
//! while the child mounts its root, and announced with [`NET_READY`],
//! which the child waits for before it brings its loopback and its end
//! up and runs its command. Child → parent: nothing at all when exec succeeds
//! (the write end closes on exec), else one [`Failed`] line that the
//! parent turns into mini's error and exit code.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use super::cgroups::{self, Cgroups};
use super::child::{self, Never};
use super::message::{Failed, Go, NET_READY, READY};
use super::net::{self, NetNs};
use super::overlay::MountPlan;
use super::plan::Plan;
use super::rootfs;
use super::tty as rtty;
use crate::error::{Error, Result};
use crate::sys::process::{self as p, ns, Exit};
use crate::sys::{self, Sys};

/// The exit code `mini run` reports for how the container ended: its own
/// code, or 128+n when signal n killed it (as a shell reports it).
pub fn exit_code(exit: Exit) -> i32 {
    match exit {
        Exit::Code(c) => c,
        Exit::Signal(s) => 128 + s,
    }
}

/// Everything the child needs, computed before the clone.
pub struct Launch<'a> {
    /// The container's OCI spec, planned; id maps mean a new user
    /// namespace (`--userns=auto`). `plan.root` is the plan the child
    /// carries out (the caller may have rewritten it, see `rootfs`).
    pub plan: &'a Plan,
    /// The command's argv byte for byte (the spec's are UTF-8 strings).
    pub argv: &'a [std::ffi::OsString],
    /// Keep stdin (else the command gets /dev/null).
    pub interactive: bool,
    /// The overlay; built by the parent itself under `--userns=auto`.
    pub overlay: &'a MountPlan,
    /// The container dir; under `--userns=auto` the child starts in it (see
    /// `rootfs::for_user_namespace`).
    pub dir: &'a Path,
    pub cgroups: CgroupEntry<'a>,
    /// Volumes mini clones for the child to attach (`--userns=auto`).
    pub detach: &'a [rootfs::Detach],
    pub net: &'a NetNs,
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
    /// The user-mode network's process, for its holder to end.
    pub helper: Option<super::usermode::Helper>,
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
    let pty = if l.plan.process.terminal { Some(p::socketpair()?) } else { None };
    let root_sock = if l.plan.uid_map.is_some() { Some(p::socketpair()?) } else { None };
    // The cgroup namespace is unshared by the child once it has joined its
    // cgroups, so that it sees them as its root.
    let flags = match l.plan.uid_map {
        Some(_) => ns::USER | ns::PID | shared_later(l.net),
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
    let (helper, setup) = match setup {
        Ok(helper) => (helper, Ok(())),
        Err(e) => (None, Err(e)),
    };
    let outcome = match Failed::decode(&report) {
        Some(m) => Err(m.into_error()),
        None => setup,
    };
    if let Err(e) = outcome {
        drop(helper); // ends it
        let _ = p::kill(pid, libc::SIGKILL);
        let _ = p::wait(pid, false);
        return Err(e);
    }
    let master = match &pty_parent {
        Some(sock) => sys::fdpass::recv_fd(sock.as_raw_fd())?,
        None => None,
    };
    Ok(Started { pid, helper, master, sigfd, interactive: l.interactive })
}

/// clone(2); under a user namespace from the container dir, so the child
/// starts there (see `rootfs::for_user_namespace`). The parent's working
/// directory is restored.
fn clone_from_dir(l: &Launch, flags: i32) -> Result<Option<i32>> {
    if l.plan.uid_map.is_none() {
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
/// own them (then the clone makes them all): all but the network's when
/// the container joins one that exists.
fn shared_later(net: &NetNs) -> i32 {
    let all = ns::UTS | ns::MOUNT | ns::IPC;
    if net.is_new() {
        all | ns::NET
    } else {
        all
    }
}

/// Whether the child tells mini (one [`READY`] byte) that its network
/// namespace exists: only mini can plug a veth into it, and only once it
/// exists. Under a user namespace the clone made it already.
fn reports_ready(l: &Launch) -> bool {
    l.net.connects_later() && l.plan.uid_map.is_none()
}

/// The parent's side of the handshake: the cgroups, the id maps and the
/// mounts it prepares (user namespace only), "go", then the network
/// connected from outside. Returns the user-mode network's pid, if any.
fn handshake(
    l: &Launch,
    pid: i32,
    go: OwnedFd,
    root_sock: Option<&OwnedFd>,
) -> Result<Option<super::usermode::Helper>> {
    let with_cgroups = match l.cgroups {
        CgroupEntry::Opened(_) => true,
        CgroupEntry::Deferred(cgroups) => cgroups.make()?,
    };
    if let (Some(uid_map), Some(gid_map), Some(sock)) = (&l.plan.uid_map, &l.plan.gid_map, root_sock) {
        p::write_id_maps(pid, uid_map, gid_map)?;
        let root = super::userns::overlay_for(pid, l.overlay)?;
        sys::fdpass::send_fd(sock.as_raw_fd(), root.as_raw_fd())?;
        for v in l.detach {
            let fd = sys::mount::detached_bind(&v.source, v.read_only)?;
            sys::fdpass::send_fd(sock.as_raw_fd(), fd.as_raw_fd())?;
        }
    }
    p::send_byte(&go, if with_cgroups { Go::WithCgroups } else { Go::WithoutCgroups }.encode())
        .map_err(|e| Error::new("signal the container process to go on").because(e))?;
    // The network, once its namespace exists, while the child joins its
    // cgroups and mounts its root (it waits for NET_READY before
    // configuring its end and running its command).
    if reports_ready(l) && p::recv_byte(&go) != Some(READY) {
        return Err(Error::new("connect the container's network").because("it ended before making its namespace"));
    }
    if let Some(plug) = l.net.plug() {
        net::plug_host_side(pid, plug)?;
    }
    let helper = match l.net {
        NetNs::UserMode(stack) => Some(super::usermode::start(pid, stack)?),
        _ => None,
    };
    if l.net.connects_later() {
        p::send_byte(&go, NET_READY)
            .map_err(|e| Error::new("tell the container its network is in place").because(e))?;
    }
    Ok(helper)
}

impl Started {
    /// A process started by other means (`exec`), waited for the same way.
    pub fn adopt(pid: i32, master: Option<OwnedFd>, sigfd: OwnedFd, interactive: bool) -> Started {
        Started { pid, helper: None, master, sigfd, interactive }
    }

    /// The pid, the pty master (-t) and the signalfd, for a monitor that
    /// runs its own loop.
    pub fn into_parts(self) -> (i32, Option<OwnedFd>, OwnedFd) {
        (self.pid, self.master, self.sigfd)
    }

    /// Wait for the container to exit, forwarding signals (and, with -t,
    /// relaying the terminal).
    pub fn wait(self) -> Result<Exit> {
        self.wait_seeing(&mut |_| {})
    }

    /// [`Started::wait`], handing what the terminal shows (-t) to `output`
    /// too (a foreground run's log).
    pub fn wait_seeing(self, output: &mut dyn FnMut(&[u8])) -> Result<Exit> {
        if let Some(master) = self.master {
            return rtty::relay(master, self.pid, &self.sigfd, self.interactive, output);
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
    match setup_and_exec(l, go, &mut report, pty_sock, root_sock) {
        Ok(never) => match never {},
        Err(e) => child::fail(&mut report, &e),
    }
}

fn setup_and_exec(
    l: &Launch,
    go: OwnedFd,
    report: &mut std::fs::File,
    pty_sock: Option<OwnedFd>,
    root_sock: Option<OwnedFd>,
) -> Result<Never> {
    if l.plan.uid_map.is_none() {
        p::unshare(shared_later(l.net))?;
    }
    if let NetNs::Join(fd) = l.net {
        p::setns(fd, ns::NET, "network")?;
    }
    let Some(decided) = p::recv_byte(&go).and_then(Go::decode) else {
        p::exit_now(125); // mini gave up on us (and reports why)
    };
    // Cgroups made; id maps written, root overlay sent (user namespace).
    let without_cgroups;
    let rootfs = match (&l.cgroups, decided) {
        (CgroupEntry::Opened(files), _) => {
            cgroups::join(files)?;
            &l.plan.root
        }
        (CgroupEntry::Deferred(c), Go::WithCgroups) => {
            cgroups::join(&cgroups::open_join_files(&c.dirs())?)?;
            &l.plan.root
        }
        (CgroupEntry::Deferred(c), Go::WithoutCgroups) => {
            without_cgroups = cgroups::fs::without(&l.plan.root, &c.plan.dirs);
            &without_cgroups
        }
    };
    if reports_ready(l) {
        p::send_byte(&go, READY).map_err(|e| Error::new("tell mini the network namespace exists").because(e))?;
    }
    p::unshare(ns::CGROUP)?; // rooted at the cgroups just joined
    enter_root(l, rootfs, root_sock)?;
    if l.net.connects_later() && p::recv_byte(&go) != Some(NET_READY) {
        p::exit_now(125); // mini could not connect it (and reports why)
    }
    if let Some(plug) = l.net.plug() {
        sys::RealSys.loopback_up()?;
        net::plug_container_side(plug)?;
    }
    let pr = &l.plan.process;
    let user = pr.user_spec();
    let cmd = child::Command {
        argv: l.argv,
        interactive: l.interactive,
        die_with_parent: true,
        ..child::Command::of(pr, &user, l.plan.seccomp.as_ref())
    };
    child::exec(&cmd, pty_sock.as_ref(), report)
}

/// Mount the container's root as planned and pivot into it; then its host
/// name and loopback interface (its own veth end comes after NET_READY).
fn enter_root(l: &Launch, plan: &rootfs::Plan, root_sock: Option<OwnedFd>) -> Result<()> {
    // Under a user namespace: the root overlay, then one mount per volume.
    let mut detached = Vec::new();
    if let Some(sock) = &root_sock {
        for _ in 0..=l.detach.len() {
            let fd = sys::fdpass::recv_fd(sock.as_raw_fd())?;
            detached.push(fd.ok_or_else(|| Error::new("receive the container's mounts from mini"))?);
        }
    }
    if l.plan.uid_map.is_some() {
        p::set_ids(0, 0, &[])?; // the namespace's root, now that it is mapped
    }
    let sys = sys::RealSys;
    rootfs::execute(plan, &sys, &detached)?;
    if let Some(h) = &l.plan.hostname {
        sys.sethostname(h)?;
    }
    // A plugged namespace's loopback comes up with its veth end, after
    // NET_READY: here it would wait for the RTNL that mini holds while it
    // makes the pair.
    if l.net.is_new() && l.net.plug().is_none() {
        sys.loopback_up()?;
    }
    Ok(())
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
    }
}
