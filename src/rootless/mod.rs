//! Rootless mode: mini run by an ordinary user.
//!
//! mini then keeps one user namespace per user (with a mount namespace
//! beside it) held by a small `mini-pause` process, like `podman
//! unshare`'s: the caller is root in it, and ids 1.. are the caller's
//! ranges from /etc/subuid and /etc/subgid, mapped by the setuid helpers
//! `newuidmap`/`newgidmap` ([`ns`]). Every mini of that user joins it
//! before touching the store (setns costs microseconds, a new namespace
//! with two helper execs milliseconds), so containers, their monitors,
//! `exec` and `export` all live in the same namespace and see the same
//! owners. From there on the engine is the root engine, with the
//! differences the kernel imposes, decided where they apply: overlay with
//! `userxattr` and the store's `user.overlay.*` form, device nodes bound
//! instead of made, `/sys` bound when sysfs cannot be mounted, cgroups
//! only where v2 delegates them, the network from pasta.
//!
//! Paths ([`Paths`]): the store at `$XDG_DATA_HOME/mini`, the config at
//! `$XDG_CONFIG_HOME/mini/config.toml`, the namespace's pid file and lock
//! in `$XDG_RUNTIME_DIR/mini` (or a private `/tmp/mini-UID`).

pub mod ns;
pub mod subid;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::error::{Error, Result};

/// Set by mini in its own environment once it is in the namespace, so the
/// minis it starts (monitors) know they are rootless although their uid
/// is 0 there: `UID:GID` of the user on the host.
pub const ENV: &str = "_MINI_ROOTLESS";

/// The user mini runs for, as the host knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub name: String,
    pub home: PathBuf,
}

static CURRENT: OnceLock<Option<User>> = OnceLock::new();

/// The rootless user, or None when mini runs as root (decided once).
pub fn current() -> Option<&'static User> {
    CURRENT.get_or_init(detect).as_ref()
}

/// Rootless when the effective uid is not 0, or when a mini that joined
/// its user's namespace started this one (uid 0 there, [`ENV`] set).
fn detect() -> Option<User> {
    let euid = rustix::process::geteuid().as_raw();
    let egid = rustix::process::getegid().as_raw();
    let (uid, gid) = if euid != 0 {
        (euid, egid)
    } else {
        let inside = std::env::var(ENV).ok().and_then(|v| parse_env(&v))?;
        if in_initial_namespace() {
            return None; // a stale variable in root's environment
        }
        inside
    };
    let entry = passwd_entry(uid);
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| entry.as_ref().map(|e| e.1.clone()))
        .unwrap_or_else(|| PathBuf::from("/"));
    let name = entry.map(|e| e.0).unwrap_or_else(|| uid.to_string());
    Some(User { uid, gid, name, home })
}

fn parse_env(v: &str) -> Option<(u32, u32)> {
    let (u, g) = v.split_once(':')?;
    Some((u.parse().ok()?, g.parse().ok()?))
}

/// Whether this process is in the initial user namespace (its uid map is
/// the identity over every id).
pub fn in_initial_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .map(|m| m.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"])
        .unwrap_or(true)
}

/// Whether group id `gid` is mapped in this process's user namespace.
pub fn gid_mapped(gid: u32) -> bool {
    let map = std::fs::read_to_string("/proc/self/gid_map").unwrap_or_default();
    map.lines().any(|l| {
        let f: Vec<u32> = l.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        f.len() == 3 && gid >= f[0] && gid - f[0] < f[2]
    })
}

/// (name, home) of `uid` in /etc/passwd.
fn passwd_entry(uid: u32) -> Option<(String, PathBuf)> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 7 && f[2] == uid.to_string()).then(|| (f[0].to_string(), PathBuf::from(f[5])))
    })
}

/// Where a rootless mini keeps things, from the XDG variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub store: PathBuf,
    pub config_file: PathBuf,
    /// Holds the namespace's pid file and lock.
    pub runtime_dir: PathBuf,
    /// Whether `runtime_dir` is mini's private fallback under /tmp (made
    /// by mini, 0700) rather than inside `$XDG_RUNTIME_DIR`.
    pub private_runtime: bool,
}

impl Paths {
    /// XDG's rules: a variable that is unset, empty or relative is ignored.
    pub fn new(user: &User, env: &dyn Fn(&str) -> Option<String>) -> Paths {
        let xdg = |key: &str| env(key).filter(|v| v.starts_with('/')).map(PathBuf::from);
        let data = xdg("XDG_DATA_HOME").unwrap_or_else(|| user.home.join(".local/share"));
        let config = xdg("XDG_CONFIG_HOME").unwrap_or_else(|| user.home.join(".config"));
        let (runtime_dir, private_runtime) = match xdg("XDG_RUNTIME_DIR") {
            Some(d) => (d.join("mini"), false),
            None => (PathBuf::from(format!("/tmp/mini-{}", user.uid)), true),
        };
        Paths { store: data.join("mini"), config_file: config.join("mini/config.toml"), runtime_dir, private_runtime }
    }

    pub fn of_process(user: &User) -> Paths {
        Paths::new(user, &|k| std::env::var(k).ok())
    }
}

/// Make the runtime dir, refusing one that someone else owns (a runtime
/// dir is where mini trusts a pid file: another user's could point mini
/// at their namespace) or that others may write.
pub fn ensure_runtime_dir(paths: &Paths, uid: u32) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let dir = &paths.runtime_dir;
    let parent = dir.parent().unwrap_or(Path::new("/"));
    if !paths.private_runtime {
        let meta = std::fs::metadata(parent)
            .map_err(|e| Error::new(format!("use XDG_RUNTIME_DIR {}", parent.display())).because(e))?;
        check_owner(parent, meta.uid(), meta.mode(), uid, "XDG_RUNTIME_DIR")?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::new(format!("create mini's runtime dir {}", dir.display())).because(e)),
    }
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| Error::new(format!("use mini's runtime dir {}", dir.display())).because(e))?;
    if !meta.is_dir() {
        return Err(Error::new(format!("use mini's runtime dir {}", dir.display()))
            .because("it is not a directory")
            .hint("remove it, or set XDG_RUNTIME_DIR to a directory of yours"));
    }
    check_owner(dir, meta.uid(), meta.mode(), uid, "mini's runtime dir")
}

fn check_owner(dir: &Path, owner: u32, mode: u32, uid: u32, what: &str) -> Result<()> {
    if owner != uid {
        return Err(Error::new(format!("use {what} {}", dir.display()))
            .because(format!("it is owned by uid {owner}, not by you (uid {uid})"))
            .hint("set XDG_RUNTIME_DIR to a directory you own (e.g. /run/user/UID), or unset it"));
    }
    if mode & 0o022 != 0 {
        return Err(Error::new(format!("use {what} {}", dir.display()))
            .because(format!("others may write to it (mode {:o})", mode & 0o7777))
            .hint(format!("chmod 700 {}", dir.display())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> User {
        User { uid: 1000, gid: 1000, name: "alice".into(), home: "/home/alice".into() }
    }

    #[test]
    fn xdg_paths_and_their_defaults() {
        let p = Paths::new(&alice(), &|_| None);
        assert_eq!(p.store, PathBuf::from("/home/alice/.local/share/mini"));
        assert_eq!(p.config_file, PathBuf::from("/home/alice/.config/mini/config.toml"));
        assert_eq!((p.runtime_dir.as_path(), p.private_runtime), (Path::new("/tmp/mini-1000"), true));
        let env = |k: &str| match k {
            "XDG_DATA_HOME" => Some("/d".to_string()),
            "XDG_CONFIG_HOME" => Some("relative/ignored".to_string()),
            "XDG_RUNTIME_DIR" => Some("/run/user/1000".to_string()),
            _ => None,
        };
        let p = Paths::new(&alice(), &env);
        assert_eq!(p.store, PathBuf::from("/d/mini"));
        assert_eq!(p.config_file, PathBuf::from("/home/alice/.config/mini/config.toml"));
        assert_eq!((p.runtime_dir.as_path(), p.private_runtime), (Path::new("/run/user/1000/mini"), false));
    }

    #[test]
    fn runtime_dirs_of_others_are_refused() {
        let e = check_owner(Path::new("/run/user/0"), 0, 0o700, 1000, "XDG_RUNTIME_DIR").unwrap_err().to_string();
        assert!(e.contains("owned by uid 0, not by you (uid 1000)") && e.contains("XDG_RUNTIME_DIR"), "{e}");
        let e = check_owner(Path::new("/x"), 1000, 0o777, 1000, "mini's runtime dir").unwrap_err().to_string();
        assert!(e.contains("others may write to it (mode 777)"), "{e}");
        assert!(check_owner(Path::new("/x"), 1000, 0o700, 1000, "d").is_ok());
    }

    #[test]
    fn the_environment_marker() {
        assert_eq!(parse_env("1000:1001"), Some((1000, 1001)));
        assert_eq!(parse_env("x"), None);
    }
}
