//! The user's namespace: join the one its `mini-pause` process holds, or
//! make it (double fork: the pause process is nobody's child, so no mini
//! ever has to reap it) and then join it.
//!
//! `$RUNTIME/pause.pid` names the holder; `pause.lock` (flock) makes two
//! first minis agree on one. A pid is trusted only while it is alive, is
//! called `mini-pause` and sits in a user namespace other than ours; the
//! namespace files are opened before that check, so a pid reused between
//! the check and the join cannot redirect us.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use super::subid::{self, Map};
use super::{Paths, User};
use crate::error::{Error, Result};
use crate::sys::process::{self as p, ns};

const PAUSE_NAME: &str = "mini-pause";

fn pid_file(paths: &Paths) -> PathBuf {
    paths.runtime_dir.join("pause.pid")
}

/// Join the user's namespace (making it first when there is none), then
/// mark this process's environment for the minis it starts.
pub fn enter(user: &User, paths: &Paths) -> Result<()> {
    if !super::in_initial_namespace() {
        return Ok(()); // started by a mini already inside (a monitor)
    }
    super::ensure_runtime_dir(paths, user.uid)?;
    let held = {
        let _lock = mini_store::StoreLock::exclusive(&paths.runtime_dir.join("pause.lock"))
            .map_err(|e| Error::new("lock rootless mini's namespace").because(e))?;
        match holder(paths) {
            Some(fds) => fds,
            None => {
                // A lost holder (killed) while containers still run in its
                // namespace: hold theirs again, or exec could not reach them.
                let pid = match adoptable(paths) {
                    Some(monitor) => create_in(&monitor)?,
                    None => create(user)?,
                };
                write_pid(paths, pid)?;
                holder(paths).ok_or_else(|| {
                    Error::new("set up rootless mini's user namespace").because("its holder process ended at once")
                })?
            }
        }
    };
    join(&held)?;
    // SAFETY: mini is single-threaded here (checked by setns into a user
    // namespace, which refuses threaded callers).
    unsafe { std::env::set_var(super::ENV, format!("{}:{}", user.uid, user.gid)) };
    Ok(())
}

/// Monitors of running containers list themselves here (`holders/PID`),
/// so a lost holder's namespace can be found again through them.
fn holders_dir(paths: &Paths) -> PathBuf {
    paths.runtime_dir.join("holders")
}

/// A monitor's entry, made when it starts and removed when it ends (a
/// stale one is ignored: its pid is checked like the holder's).
pub struct Registered(PathBuf);

impl Drop for Registered {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Called by a rootless container's monitor.
pub fn register_monitor(paths: &Paths) -> Option<Registered> {
    let dir = holders_dir(paths);
    let _ = std::fs::create_dir(&dir);
    let file = dir.join(std::process::id().to_string());
    std::fs::write(&file, b"").ok().map(|()| Registered(file))
}

/// The namespace files of a live monitor in a namespace other than ours.
fn adoptable(paths: &Paths) -> Option<Held> {
    let entries = std::fs::read_dir(holders_dir(paths)).ok()?;
    entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok()).find_map(|pid| held_by(pid, MONITOR))
}

const MONITOR: &str = "mini-monitor";

/// The namespace files of a live holder.
struct Held {
    user: OwnedFd,
    mnt: OwnedFd,
}

fn holder(paths: &Paths) -> Option<Held> {
    let pid: i32 = std::fs::read_to_string(pid_file(paths)).ok()?.trim().parse().ok()?;
    held_by(pid, PAUSE_NAME)
}

/// Process `pid`'s user and mount namespaces, if it is called `name` and
/// lives in a user namespace other than ours.
fn held_by(pid: i32, name: &str) -> Option<Held> {
    let held = Held { user: p::open_ns(pid, "user").ok()?, mnt: p::open_ns(pid, "mnt").ok()? };
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/user")).ok()?;
    let ours = std::fs::read_link("/proc/self/ns/user").ok()?;
    (comm.trim() == name && theirs != ours).then_some(held)
}

fn join(held: &Held) -> Result<()> {
    let what = "join rootless mini's user namespace";
    p::setns(&held.user, ns::USER, "user").map_err(|e| e.within(what))?;
    p::setns(&held.mnt, ns::MOUNT, "mount").map_err(|e| e.within(what))?;
    // Mapped as 0 already; become 0 in every id the kernel keeps, and drop
    // the host's supplementary groups (unmapped there) where allowed.
    let _ = p::set_ids(0, 0, &[]);
    Ok(())
}

fn write_pid(paths: &Paths, pid: i32) -> Result<()> {
    let file = pid_file(paths);
    let tmp = paths.runtime_dir.join(".pause.pid.tmp");
    std::fs::write(&tmp, format!("{pid}\n"))
        .and_then(|()| std::fs::rename(&tmp, &file))
        .map_err(|e| Error::new(format!("write {}", file.display())).because(e))
}

/// The maps for `user`, checked before anything is made.
fn maps(user: &User) -> Result<(Map, Map)> {
    let read = |f: &str| std::fs::read(f).unwrap_or_default();
    let uids = Map::new(user.uid, &subid::ranges(&read("/etc/subuid"), &user.name, user.uid));
    let gids = Map::new(user.gid, &subid::ranges(&read("/etc/subgid"), &user.name, user.uid));
    subid::need_helper(&uids, "newuidmap", helper("newuidmap").is_some())?;
    subid::need_helper(&gids, "newgidmap", helper("newgidmap").is_some())?;
    Ok((uids, gids))
}

fn helper(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p::executable(p))
}

/// Start the holder and map its namespace; returns its pid.
fn create(user: &User) -> Result<i32> {
    let what = "set up rootless mini's user namespace";
    let (uids, gids) = maps(user)?;
    let (ready_r, ready_w) = p::pipe()?;
    let (go_r, go_w) = p::pipe()?;
    match p::fork()? {
        None => {
            drop((ready_r, go_w));
            // The middle child: fork the holder and leave, so the holder
            // is reparented at once and never becomes anyone's zombie.
            match p::fork() {
                Ok(None) => hold(ready_w, go_r),
                _ => p::exit_now(0),
            }
        }
        Some(middle) => {
            drop((ready_w, go_r));
            let _ = p::wait(middle, false);
            let mut ready = std::fs::File::from(ready_r);
            let mut line = String::new();
            let _ = ready.read_to_string(&mut line);
            let Some(pid) = line.strip_prefix("ok ").and_then(|p| p.trim().parse::<i32>().ok()) else {
                return Err(no_namespace(line.strip_prefix("err ").unwrap_or("its holder process ended")));
            };
            let mapped = write_maps(pid, &uids, &gids);
            if mapped.is_err() {
                let _ = p::kill(pid, libc::SIGKILL);
                return mapped.map(|_| 0).map_err(|e| e.within(what));
            }
            std::fs::File::from(go_w)
                .write_all(b"g")
                .map_err(|e| Error::new(what).because(format!("wake its holder process: {e}")))?;
            if uids.range.is_none() || gids.range.is_none() {
                eprintln!("{}", subid::fallback_note(&user.name));
            }
            Ok(pid)
        }
    }
}

/// A new holder in the namespaces of `held` (a running monitor's).
fn create_in(held: &Held) -> Result<i32> {
    let (ready_r, ready_w) = p::pipe()?;
    match p::fork()? {
        None => {
            drop(ready_r);
            match p::fork() {
                Ok(None) => {
                    let _ = p::set_name(PAUSE_NAME);
                    let mut ready = std::fs::File::from(ready_w);
                    if join(held).is_err() {
                        p::exit_now(1);
                    }
                    let _ = write!(ready, "ok {}", std::process::id());
                    drop(ready);
                    let _ = p::setsid();
                    p::null_stdio();
                    p::close_from(3);
                    p::pause_forever()
                }
                _ => p::exit_now(0),
            }
        }
        Some(middle) => {
            drop(ready_w);
            let _ = p::wait(middle, false);
            let mut line = String::new();
            let _ = std::fs::File::from(ready_r).read_to_string(&mut line);
            line.strip_prefix("ok ").and_then(|p| p.trim().parse().ok()).ok_or_else(|| {
                Error::new("hold rootless mini's user namespace again").because("joining a running monitor's failed")
            })
        }
    }
}

/// Why no user namespace could be made, with the usual fixes.
fn no_namespace(cause: &str) -> Error {
    Error::new("create a user namespace for rootless mini").because(cause.to_string()).hint(
        "enable unprivileged user namespaces: sysctl -w user.max_user_namespaces=15000 \
         (and kernel.unprivileged_userns_clone=1 where that sysctl exists)",
    )
}

/// The holder: unshare, say so with its pid, wait to be mapped, then sit
/// in its own session with nothing open until killed.
fn hold(ready: OwnedFd, go: OwnedFd) -> ! {
    let mut ready = std::fs::File::from(ready);
    let _ = p::set_name(PAUSE_NAME); // before "ok": mini checks the name next
    if let Err(e) = p::unshare(ns::USER | ns::MOUNT) {
        let _ = write!(ready, "err {e}");
        p::exit_now(1);
    }
    let _ = write!(ready, "ok {}", std::process::id());
    drop(ready);
    let mut byte = [0u8];
    if std::fs::File::from(go).read_exact(&mut byte).is_err() {
        p::exit_now(1); // mini could not map us: nobody may use this namespace
    }
    let _ = p::setsid();
    p::null_stdio();
    p::close_from(3);
    p::pause_forever()
}

fn write_maps(pid: i32, uids: &Map, gids: &Map) -> Result<()> {
    if uids.range.is_none() && gids.range.is_none() {
        return p::write_own_id_maps(pid, &uids.own_line(), &gids.own_line());
    }
    for (tool, map) in [("newuidmap", uids), ("newgidmap", gids)] {
        let out = std::process::Command::new(tool)
            .arg(pid.to_string())
            .args(map.helper_args())
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| Error::new(format!("run {tool}")).because(e))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(Error::new(format!("map ids with {tool} {}", map.helper_args().join(" ")))
                .because(err.trim().to_string())
                .hint("check your entries in /etc/subuid and /etc/subgid"));
        }
    }
    Ok(())
}

/// `mini system migrate`: end the holder, so the next mini makes the
/// namespace again (after /etc/subuid changed). Refused while containers
/// run in it.
pub fn migrate(paths: &Paths, running: usize) -> Result<()> {
    if running > 0 {
        return Err(Error::new("restart rootless mini's user namespace")
            .because(format!("{running} container(s) run in it"))
            .hint("stop them first: mini stop $(mini ps -q)"));
    }
    let file = pid_file(paths);
    let Ok(text) = std::fs::read_to_string(&file) else { return Ok(()) };
    if let Ok(pid) = text.trim().parse::<i32>() {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == PAUSE_NAME {
            let _ = p::kill(pid, libc::SIGKILL);
        }
    }
    let _ = std::fs::remove_file(&file);
    Ok(())
}
