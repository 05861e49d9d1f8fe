//! `mini cp`: files between a container and the host, or a tar stream.
//!
//! A copy is a tar stream between two processes: mini itself on the host
//! side, and a forked child on the container side that first enters the
//! container's filesystem and chroots into it, so every path it resolves,
//! symlinks and `..` included, stays inside the container whatever the
//! container put there. For a running container the child joins the
//! container's mount namespace (setns) and roots itself at the
//! container's own root (`/proc/PID/root`, opened before): it reads and
//! writes through the same mounts the container sees (volumes, /etc
//! files), so the container sees a change at once. For a stopped one the
//! child mounts the container's overlay in a private mount namespace —
//! read-write to copy in, read-only (as `export`) to copy out — which
//! vanishes with the child. The host side writes only below the
//! destination the user named (the extractor resolves every entry inside
//! it). Docker's path rules (a file or a directory, a destination that
//! exists or not, a trailing `/`, `SRC/.` for the contents) are the pure
//! [`place`]. Owners: into the container root-owned unless `-a`, out of it
//! the caller's unless `-a`; under `--userns=auto` the container's ids go
//! through its id map both ways.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use mini_store::extract::{Extractor, IdMapper};
use mini_store::Store;

use super::record::Record;
use super::tree::{Mode, TarWriter};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::runtime::message::Failed;
use crate::runtime::{child, overlay};
use crate::sys::overlay::MountPlan;
use crate::sys::process::{self as p, ns};
use crate::sys::{self, Sys};

/// The flags of `mini cp`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpOptions {
    /// `-a`: keep uid and gid of the source.
    pub archive: bool,
    /// `-L`: copy what a SRC symlink points to.
    pub follow_link: bool,
}

/// One side of a copy as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Side {
    /// `-`: a tar stream on stdin or stdout.
    Stream,
    Host(String),
    Container {
        key: String,
        path: String,
    },
}

impl Side {
    /// Docker's rule: `NAME:PATH` names a container unless the text before
    /// the colon is itself a path (absolute, or holding a `/`).
    pub fn parse(arg: &str) -> Side {
        if arg == "-" {
            return Side::Stream;
        }
        match arg.split_once(':') {
            Some((key, path)) if !key.is_empty() && !arg.starts_with('/') && !key.contains('/') => {
                Side::Container { key: key.to_string(), path: path.to_string() }
            }
            _ => Side::Host(arg.to_string()),
        }
    }
}

/// What a path names, symlinks counting as files (unless followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Missing,
    File,
    Dir,
}

impl Kind {
    /// A trailing `/` is the caller's to judge: `f/` of a file is a File.
    fn of(path: &Path, follow: bool) -> io::Result<Kind> {
        let text = path.to_string_lossy();
        let trimmed = text.trim_end_matches('/');
        let path = if trimmed.is_empty() { Path::new("/") } else { Path::new(trimmed) };
        let meta = if follow { std::fs::metadata(path) } else { std::fs::symlink_metadata(path) };
        match meta {
            Ok(m) if m.is_dir() => Ok(Kind::Dir),
            Ok(_) => Ok(Kind::File),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Kind::Missing),
            Err(e) => Err(e),
        }
    }

    fn byte(self) -> u8 {
        if self == Kind::Dir {
            b'd'
        } else {
            b'f'
        }
    }
}

/// Where a copy lands: extract into `dir` (made first when `create_dir`),
/// the archive's top entry renamed to `rename` when given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub dir: PathBuf,
    pub create_dir: bool,
    pub rename: Option<OsString>,
}

/// The archive's top name for SRC: its base name, or None when the archive
/// holds SRC's contents (`SRC/.`, or `/`).
pub fn archive_name(src: &str) -> Option<OsString> {
    if src == "." || src.ends_with("/.") {
        return None;
    }
    Path::new(src).file_name().map(OsString::from)
}

/// Whether SRC can be copied at all (Docker's checks on the source).
pub fn check_source(src: &str, kind: Kind) -> std::result::Result<(), &'static str> {
    match kind {
        Kind::Missing => Err("no such file or directory"),
        Kind::File if src.ends_with('/') || src.ends_with("/.") => Err("not a directory"),
        _ => Ok(()),
    }
}

/// Docker's decision table (docs.docker.com, `docker container cp`).
pub fn place(src: &str, src_kind: Kind, dest: &str, dest_kind: Kind) -> std::result::Result<Placement, String> {
    let dir_syntax = dest.ends_with('/') || dest.ends_with("/.");
    let dest_path = PathBuf::from(dest);
    let parent = || match dest_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let named = |name: Option<&std::ffi::OsStr>| Placement {
        dir: parent(),
        create_dir: false,
        rename: name.map(OsString::from),
    };
    let into = |dir: PathBuf, create_dir: bool| Placement { dir, create_dir, rename: None };
    match (src_kind, dest_kind) {
        (Kind::Missing, _) => Err(format!("{src}: no such file or directory")),
        (Kind::File, Kind::Missing) if dir_syntax => Err(format!("{dest}: destination directory must exist")),
        (Kind::File, Kind::File) if dir_syntax => Err(format!("{dest}: not a directory")),
        (Kind::File, Kind::Missing | Kind::File) => Ok(named(dest_path.file_name())),
        (Kind::File, Kind::Dir) => Ok(into(dest_path, false)),
        (Kind::Dir, Kind::File) => Err(format!("{dest}: cannot copy a directory to a file")),
        (Kind::Dir, Kind::Missing) if archive_name(src).is_none() => Ok(into(dest_path, true)),
        (Kind::Dir, Kind::Missing) => Ok(named(dest_path.file_name())),
        (Kind::Dir, Kind::Dir) => Ok(into(dest_path, false)),
    }
}

/// The container side, decided before the fork.
struct Target {
    key: String,
    view: View,
    /// The container's (uid, gid) 0 on the host: (0, 0) without --userns.
    id_base: (u32, u32),
}

enum View {
    /// A running container: its mount namespace and its root.
    Running { mnt: OwnedFd, root: OwnedFd },
    /// A stopped one: its overlay, mounted in the child.
    Stopped(MountPlan),
}

pub fn cp(config: &Config, src: &str, dest: &str, opts: CpOptions) -> Result<()> {
    let what = || format!("copy {src} to {dest}");
    match (Side::parse(src), Side::parse(dest)) {
        (Side::Container { key, path }, to @ (Side::Host(_) | Side::Stream)) => {
            let target = target(config, &key, false).map_err(|e| e.within(what()))?;
            copy_out(&target, &path, &to, opts).map_err(|e| e.within(what()))
        }
        (from @ (Side::Host(_) | Side::Stream), Side::Container { key, path }) => {
            let target = target(config, &key, true).map_err(|e| e.within(what()))?;
            copy_in(&target, &from, &path, opts).map_err(|e| e.within(what()))
        }
        (Side::Container { .. }, Side::Container { .. }) => Err(Error::new(what())
            .because("copying between containers is not supported")
            .hint("copy to the host first")),
        _ => Err(Error::new(what()).because("neither side is a container").hint("name one side CONTAINER:PATH")),
    }
}

/// Find container `key` and how to reach its files (`write`: to copy in).
fn target(config: &Config, key: &str, write: bool) -> Result<Target> {
    let store = Store::open(&config.root)?;
    let (c, state) = super::lifecycle::lookup(&store, "find container", key)?;
    let record = Record::read(&c)?;
    let id_base = record.process.id_map.as_ref().map_or((0, 0), |m| (m.uid_base, m.gid_base));
    let view = match state.pid.filter(|_| super::state::is_running(&state)) {
        Some(pid) => {
            let root = File::open(format!("/proc/{pid}/root"))
                .map_err(|e| Error::new(format!("open the root of container {key}")).because(e))?;
            View::Running { mnt: p::open_ns(pid, "mnt")?, root: root.into() }
        }
        None if write && record.process.id_map.is_some() => {
            return Err(Error::new(format!("container {key}"))
                .because("copying into a stopped --userns=auto container is not supported")
                .hint(format!("start it first: mini start {key}")))
        }
        None => {
            let cfg = c.config().map_err(|e| Error::new(format!("read container {key}")).because(e))?;
            let layers = super::launch::layer_dirs(&store, &cfg)?;
            let dirs = super::launch::dirs_of(&c);
            let mut plan = if write {
                overlay::plan(&layers, &dirs, false)
            } else {
                overlay::read_only_plan(&layers, &dirs, &c.rootfs())
            };
            plan.userxattr = super::launch::userxattr(&store);
            View::Stopped(plan)
        }
    };
    Ok(Target { key: key.to_string(), view, id_base })
}

/// In the child: enter the container's filesystem and chroot into it.
fn enter(view: &View) -> Result<()> {
    match view {
        View::Running { mnt, root } => {
            p::setns(mnt, ns::MOUNT, "mount")?;
            sys::fs::chroot_into(root)
        }
        View::Stopped(plan) => {
            sys::fs::private_mount_namespace()?;
            sys::RealSys.mount_overlay(plan)?;
            let root = File::open(&plan.target)
                .map_err(|e| Error::new(format!("open {}", plan.target.display())).because(e))?;
            sys::fs::chroot_into(&root.into())
        }
    }
}

/// The child's whole life: enter, run `body`, report a failure on `ctl`.
fn in_child(view: &View, ctl: OwnedFd, body: impl FnOnce(&mut File) -> Result<()>) -> ! {
    let mut ctl = File::from(ctl);
    match enter(view).and_then(|()| body(&mut ctl)) {
        Ok(()) => p::exit_now(0),
        Err(e) => child::fail(&mut ctl, &e),
    }
}

/// Container → host or stdout.
fn copy_out(t: &Target, src: &str, to: &Side, opts: CpOptions) -> Result<()> {
    if *to == Side::Stream && sys::tty::isatty(1) {
        return Err(Error::new("write to stdout")
            .because("refusing to write a tar archive to a terminal")
            .hint("redirect stdout"));
    }
    let ((data_r, data_w), (ctl_r, ctl_w)) = (p::pipe()?, p::pipe()?);
    p::assert_single_threaded()?;
    let pid = match p::fork()? {
        None => {
            drop((data_r, ctl_r));
            in_child(&t.view, ctl_w, |ctl| send_from_container(t, src, opts, ctl, data_w))
        }
        Some(pid) => pid,
    };
    drop((data_w, ctl_w));
    let mut ctl = File::from(ctl_r);
    let data = File::from(data_r);
    let copied = match first_byte(&mut ctl) {
        Ok(kind) => receive_on_host(to, src, kind, data, opts),
        Err(e) => Err(e),
    };
    finish(pid, ctl, copied)
}

/// In the child: stat SRC inside the container, say what it is, tar it.
fn send_from_container(t: &Target, src: &str, opts: CpOptions, ctl: &mut File, data: OwnedFd) -> Result<()> {
    let path = Path::new("/").join(src);
    let kind = Kind::of(&path, opts.follow_link).map_err(|e| Error::new(format!("stat {src}")).because(e))?;
    check_source(src, kind).map_err(|why| {
        Error::new(format!("find {src} in container {}", t.key)).because(why.replace(&format!("{src}: "), ""))
    })?;
    ctl.write_all(&[kind.byte()]).map_err(|e| Error::new("report to mini").because(e))?;
    let shift = (t.id_base != (0, 0)).then_some(t.id_base);
    write_tar(BufWriter::new(File::from(data)), &path, src, opts.follow_link, shift)
}

/// Tar `path` (typed as `typed`) into `w`: under its base name, or its
/// contents for `DIR/.`.
fn write_tar(w: impl Write, path: &Path, typed: &str, follow: bool, shift: Option<(u32, u32)>) -> Result<()> {
    let what = || format!("archive {typed}");
    let mut tar = TarWriter::new(w, Mode::Export, shift);
    let meta = if follow { std::fs::metadata(path) } else { std::fs::symlink_metadata(path) };
    let meta = meta.map_err(|e| Error::new(what()).because(e))?;
    // The root's /proc, /sys and /dev are runtime mounts, as in export.
    let depth = if std::fs::canonicalize(path).is_ok_and(|p| p == Path::new("/")) { 0 } else { 1 };
    let written = match archive_name(typed) {
        Some(name) => tar.add(path, Path::new(&name), &meta, true, depth),
        None => tar.walk(path, Path::new(""), depth),
    };
    written.and_then(|()| tar.finish().map(drop)).map_err(|e| Error::new(what()).because(e))
}

/// On the host: the tar stream to stdout, or placed at DEST.
fn receive_on_host(to: &Side, src: &str, kind: u8, mut data: File, opts: CpOptions) -> Result<()> {
    let Side::Host(dest) = to else {
        let mut out = io::stdout().lock();
        io::copy(&mut data, &mut out)
            .and_then(|_| out.flush())
            .map_err(|e| Error::new("write to stdout").because(e))?;
        return Ok(());
    };
    let src_kind = if kind == b'd' { Kind::Dir } else { Kind::File };
    let dest_kind = Kind::of(Path::new(dest), true).map_err(|e| Error::new(format!("stat {dest}")).because(e))?;
    let placement = place(src, src_kind, dest, dest_kind).map_err(|why| Error::new("place the copy").because(why))?;
    let (uid, gid) = (rustix::process::geteuid().as_raw(), rustix::process::getegid().as_raw());
    let ids: IdMapper = if opts.archive { Box::new(|u, g| (u, g)) } else { Box::new(move |_, _| (uid, gid)) };
    extract(data, &placement, ids)
}

/// Host → container.
fn copy_in(t: &Target, from: &Side, dest: &str, opts: CpOptions) -> Result<()> {
    let src_kind = match from {
        Side::Host(src) => {
            let kind =
                Kind::of(Path::new(src), opts.follow_link).map_err(|e| Error::new(format!("stat {src}")).because(e))?;
            check_source(src, kind).map_err(|why| Error::new(format!("find {src}")).because(why))?;
            Some(kind)
        }
        _ => None,
    };
    let ((data_r, data_w), (ctl_r, ctl_w)) = (p::pipe()?, p::pipe()?);
    p::assert_single_threaded()?;
    let pid = match p::fork()? {
        None => {
            drop((data_w, ctl_r));
            in_child(&t.view, ctl_w, |ctl| receive_in_container(t, from, src_kind, dest, opts, ctl, data_r))
        }
        Some(pid) => pid,
    };
    drop((data_r, ctl_w));
    // A child that fails mid-copy closes the pipe: its report says why.
    p::ignore_sigpipe();
    let mut ctl = File::from(ctl_r);
    let data = BufWriter::new(File::from(data_w));
    let sent = match (first_byte(&mut ctl), from) {
        (Err(e), _) => Err(e),
        (Ok(_), Side::Host(src)) => write_tar(data, Path::new(src), src, opts.follow_link, None),
        (Ok(_), _) => send_stdin(data),
    };
    finish(pid, ctl, sent)
}

fn send_stdin(mut data: impl Write) -> Result<()> {
    io::copy(&mut io::stdin().lock(), &mut data)
        .and_then(|_| data.flush())
        .map(drop)
        .map_err(|e| Error::new("read the tar stream on stdin").because(e))
}

/// In the child: decide where the copy lands, say so, extract.
fn receive_in_container(
    t: &Target,
    from: &Side,
    src_kind: Option<Kind>,
    dest: &str,
    opts: CpOptions,
    ctl: &mut File,
    data: OwnedFd,
) -> Result<()> {
    let path = Path::new("/").join(dest).to_string_lossy().to_string();
    let dest_kind = Kind::of(Path::new(&path), true).map_err(|e| Error::new(format!("stat {dest}")).because(e))?;
    let placement = match (from, src_kind) {
        (Side::Host(src), Some(kind)) => place(src, kind, &path, dest_kind),
        _ if dest_kind == Kind::Dir => Ok(Placement { dir: path.into(), create_dir: false, rename: None }),
        _ => Err(format!("{dest}: destination must be a directory for a tar stream")),
    }
    .map_err(|why| Error::new(format!("place the copy in container {}", t.key)).because(why))?;
    ctl.write_all(b"k").map_err(|e| Error::new("report to mini").because(e))?;
    let (ub, gb) = t.id_base;
    let ids: IdMapper =
        if opts.archive { Box::new(move |u, g| (u + ub, g + gb)) } else { Box::new(move |_, _| (ub, gb)) };
    extract(File::from(data), &placement, ids)
}

/// Extract the tar stream `data` as `placement` says, then read it to its
/// end: the extractor stops at the end-of-archive blocks, and a sender
/// still writing the padding after them must not get EPIPE.
fn extract(mut data: impl Read, placement: &Placement, ids: IdMapper) -> Result<()> {
    let dir = &placement.dir;
    let what = || format!("copy into {}", dir.display());
    if placement.create_dir {
        std::fs::create_dir(dir).map_err(|e| Error::new(format!("create directory {}", dir.display())).because(e))?;
    }
    let fd = File::open(dir).map_err(|e| Error::new(what()).because(e))?;
    Extractor::new(fd.into(), dir, "copy")
        .for_copy(placement.rename.clone(), ids)
        .extract(&mut data)
        .map_err(|e| Error::from(e).within(what()))?;
    io::copy(&mut data, &mut io::sink()).map(drop).map_err(|e| Error::new(what()).because(e))
}

/// The child's first word: a kind or "ready" byte, or its failure.
fn first_byte(ctl: &mut File) -> Result<u8> {
    let mut b = [0u8; 1];
    match ctl.read(&mut b) {
        Ok(1) if !b[0].is_ascii_digit() => Ok(b[0]),
        Ok(1) => {
            let mut rest = b.to_vec();
            let _ = ctl.read_to_end(&mut rest);
            Err(Failed::decode(&rest).map_or_else(|| Error::new("copy"), Failed::into_error))
        }
        _ => Err(Error::new("reach the container's side").because("it ended without a word")),
    }
}

/// Wait for the child; its own failure explains more than ours.
fn finish(pid: i32, mut ctl: File, ours: Result<()>) -> Result<()> {
    let mut rest = Vec::new();
    let _ = ctl.read_to_end(&mut rest);
    let _ = p::wait(pid, false);
    match Failed::decode(&rest) {
        Some(f) => Err(f.into_error()),
        None => ours,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Kind::*;

    fn ok(dir: &str, create_dir: bool, rename: Option<&str>) -> std::result::Result<Placement, String> {
        Ok(Placement { dir: dir.into(), create_dir, rename: rename.map(OsString::from) })
    }

    #[test]
    fn sides_follow_dockers_colon_rule() {
        assert_eq!(Side::parse("-"), Side::Stream);
        assert_eq!(Side::parse("c1:/etc"), Side::Container { key: "c1".into(), path: "/etc".into() });
        assert_eq!(Side::parse("/tmp/a:b"), Side::Host("/tmp/a:b".into()));
        assert_eq!(Side::parse("./a:b"), Side::Host("./a:b".into()));
        assert_eq!(Side::parse("plain"), Side::Host("plain".into()));
    }

    #[test]
    fn archive_names_are_base_names_or_contents() {
        assert_eq!(archive_name("/etc"), Some("etc".into()));
        assert_eq!(archive_name("/etc/"), Some("etc".into()));
        assert_eq!(archive_name("/etc/."), None);
        assert_eq!(archive_name("/"), None);
        assert_eq!(check_source("/x", Missing), Err("no such file or directory"));
        assert_eq!(check_source("/f/", File), Err("not a directory"));
        assert_eq!(check_source("/d/.", Dir), Ok(()));
    }

    /// The whole table of `docker container cp`'s reference.
    #[test]
    fn dockers_decision_table() {
        // SRC is a file.
        assert_eq!(place("/a/f", File, "/b/new", Missing), ok("/b", false, Some("new")));
        assert_eq!(place("/a/f", File, "/b/new/", Missing), Err("/b/new/: destination directory must exist".into()));
        assert_eq!(place("/a/f", File, "/b/old", File), ok("/b", false, Some("old")));
        assert_eq!(place("/a/f", File, "/b/old/", File), Err("/b/old/: not a directory".into()));
        assert_eq!(place("/a/f", File, "/b/d", Dir), ok("/b/d", false, None));
        assert_eq!(place("/a/f", File, "/b/d/", Dir), ok("/b/d/", false, None));
        assert_eq!(place("f", File, "new", Missing), ok(".", false, Some("new")));
        // SRC is a directory.
        assert_eq!(place("/a/d", Dir, "/b/new", Missing), ok("/b", false, Some("new")));
        assert_eq!(place("/a/d", Dir, "/b/new/", Missing), ok("/b", false, Some("new")));
        assert_eq!(place("/a/d", Dir, "/b/f", File), Err("/b/f: cannot copy a directory to a file".into()));
        assert_eq!(place("/a/d", Dir, "/b/e", Dir), ok("/b/e", false, None));
        assert_eq!(place("/a/d/", Dir, "/b/e", Dir), ok("/b/e", false, None));
        // SRC/. : the contents, into DEST (made when missing).
        assert_eq!(place("/a/d/.", Dir, "/b/e", Dir), ok("/b/e", false, None));
        assert_eq!(place("/a/d/.", Dir, "/b/new", Missing), ok("/b/new", true, None));
        assert_eq!(place("/a/x", Missing, "/b", Dir), Err("/a/x: no such file or directory".into()));
    }
}
