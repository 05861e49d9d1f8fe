//! Our own tar extractor for layers: every path is resolved inside the layer root.
//!
//! The tar crate is used only to *read* entries. Each entry's parent directory is
//! resolved with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) relative to the
//! layer root fd, so `..`, absolute symlinks (`bin -> /usr/bin`, `evil -> /etc`)
//! and hardlink targets all stay inside the layer. Objects are then created with
//! *at() calls on that parent fd using a single plain name, never a path.
//! Resolved parents are cached by their layer-relative path, which keeps the cost
//! near one syscall per created object; the cache is dropped whenever a directory
//! or symlink is removed, since cached resolutions may have gone through it.
//!
//! Paths: leading `/` and `./` are stripped; `a/../b` is normalized lexically; a
//! `..` that would climb above the root is rejected as an [`StoreError::UnsafeEntry`]
//! (as Docker does). Symlink targets are stored verbatim: they are only data.
//!
//! Also used by `mini cp` ([`Extractor::for_copy`]): the same confinement for
//! a copy into a container or onto the host, without whiteout conversion, the
//! archive's top name replaced by the destination's, owners mapped.
//!
//! Whiteouts become overlayfs form: `dir/.wh.NAME` → char device 0:0 `dir/NAME`,
//! `dir/.wh..wh..opq` → xattr `trusted.overlay.opaque=y` on `dir`.
//!
//! Metadata: owner (numeric ids), mode including setuid/setgid/sticky (chmod after
//! chown, since chown clears setuid), PAX `SCHILY.xattr.*` (after chown, which
//! clears security.capability), mtimes (directories in a final pass, after their
//! children stopped changing them).

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rustix::fs::Timespec;
use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, ResolveFlags, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;
use tar::EntryType;

use crate::error::{IoContext, Result, StoreError};

const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// Overlay's opaque marker as a user namespace's overlay (`userxattr`) reads it.
const USER_OPAQUE_XATTR: &str = "user.overlay.opaque";
const WHITEOUT_PREFIX: &[u8] = b".wh.";
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
/// Bound on cached parent fds (RLIMIT_NOFILE's soft limit may be 1024, and
/// a pull runs three extractors at once): the cache holds this many, and
/// as many again may wait in `evicted` until the next entry.
const MAX_CACHED_DIRS: usize = 128;
const COPY_BUF: usize = 256 * 1024;

/// Ownership, permissions, times and xattrs of one entry.
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: Timespec,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Meta {
    fn times(&self) -> Timestamps {
        Timestamps { last_access: self.mtime, last_modification: self.mtime }
    }
}

/// An open directory inside the layer. `setgid` matters because objects
/// created in a setgid directory take its group, so their chown can't be skipped.
struct Dir {
    fd: OwnedFd,
    setgid: Cell<bool>,
}

impl Dir {
    fn new(fd: OwnedFd) -> Dir {
        // Unknown counts as setgid: that only costs a chown.
        let setgid = rustix::fs::fstat(&fd).map(|st| st.st_mode & 0o2000 != 0).unwrap_or(true);
        Dir { fd, setgid: Cell::new(setgid) }
    }
}

impl AsFd for Dir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Maps an entry's (uid, gid) to the owner it gets on disk.
pub type IdMapper = Box<dyn Fn(u32, u32) -> (u32, u32)>;

/// Extracts one tar stream into the directory `root` (an open fd on it).
pub struct Extractor {
    root: Rc<Dir>,
    root_path: PathBuf,
    layer: String,
    cache: HashMap<PathBuf, Rc<Dir>>,
    /// Directory mtimes still to set: last, since creating children changes them.
    dir_times: HashMap<PathBuf, Timestamps>,
    /// Directories whose mtime was set as their fd left the cache (no open
    /// just for that at the end); one resolved again may change, so its
    /// time goes back to `dir_times`.
    dir_times_set: HashMap<PathBuf, Timestamps>,
    /// Directories dropped from the cache during the current entry, which
    /// may still change it (a parent it writes into): their times are set
    /// when the next entry starts.
    evicted: Vec<(PathBuf, Rc<Dir>)>,
    buf: Vec<u8>,
    euid: u32,
    egid: u32,
    /// The process umask, to know when a create mode needs no fchmod.
    umask: u32,
    /// The first component of every name (and hardlink target) replaced
    /// by this one: `mini cp` copies `etc/…` to a destination named `x/…`.
    rename_top: Option<std::ffi::OsString>,
    ids: Option<IdMapper>,
    /// Layers: `.wh.` names are whiteouts. Copies: they are plain names.
    whiteouts: bool,
    opaque_xattr: &'static str,
    /// In a user namespace (rootless): device nodes other than whiteouts
    /// are skipped, owners the namespace does not map are left as ours.
    unprivileged: bool,
    skipped: Cell<Skipped>,
}

/// What an unprivileged extraction left out, for one note to the user.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Skipped {
    pub devices: u32,
    pub owners: u32,
}

impl Extractor {
    /// `root_path` is used for error messages only; `layer` names the layer in them.
    pub fn new(root: OwnedFd, root_path: &Path, layer: &str) -> Extractor {
        Extractor {
            root: Rc::new(Dir::new(root)),
            root_path: root_path.to_path_buf(),
            layer: layer.to_string(),
            cache: HashMap::new(),
            dir_times: HashMap::new(),
            dir_times_set: HashMap::new(),
            evicted: Vec::new(),
            buf: vec![0; COPY_BUF],
            euid: rustix::process::geteuid().as_raw(),
            egid: rustix::process::getegid().as_raw(),
            umask: read_umask(),
            rename_top: None,
            ids: None,
            whiteouts: true,
            opaque_xattr: OPAQUE_XATTR,
            unprivileged: false,
            skipped: Cell::new(Skipped::default()),
        }
    }

    /// For a store used inside a user namespace: overlay's `user.overlay.*`
    /// form, device nodes skipped (the kernel refuses them there, as
    /// rootless Podman skips them), unmapped owners kept as the caller's.
    pub fn unprivileged(mut self) -> Extractor {
        self.opaque_xattr = USER_OPAQUE_XATTR;
        self.unprivileged = true;
        self
    }

    /// What was left out (unprivileged extraction only).
    pub fn skipped(&self) -> Skipped {
        self.skipped.get()
    }

    fn count(&self, f: impl FnOnce(&mut Skipped)) {
        let mut s = self.skipped.get();
        f(&mut s);
        self.skipped.set(s);
    }

    /// A chown's result: in a user namespace an id it does not map gives
    /// EINVAL, and the object stays the namespace root's.
    fn chown_result(&self, r: rustix::io::Result<()>, rel: &Path) -> Result<()> {
        match r {
            Err(Errno::INVAL) if self.unprivileged => {
                self.count(|s| s.owners += 1);
                Ok(())
            }
            r => r.op("change owner of", self.full(rel)),
        }
    }

    /// For copies rather than layers: `.wh.` names stay plain files, the
    /// top name may be replaced, owners go through `ids`.
    pub fn for_copy(mut self, rename_top: Option<std::ffi::OsString>, ids: IdMapper) -> Extractor {
        self.rename_top = rename_top;
        self.ids = Some(ids);
        self.whiteouts = false;
        self
    }

    /// Extracts every entry of `reader` (which is left positioned after the
    /// end-of-archive marker; callers drain it to hash the padding too).
    pub fn extract<R: Read>(&mut self, reader: R) -> Result<()> {
        let mut archive = tar::Archive::new(reader);
        let stream = PathBuf::from(format!("layer {}", self.layer));
        for entry in archive.entries().op("read tar stream of", &stream)? {
            let mut entry = entry.op("read tar entry of", &stream)?;
            self.entry(&mut entry)?;
        }
        self.finish_dir_times()
    }

    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<()> {
        self.set_evicted_times()?;
        let kind = e.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName | EntryType::GNULongLink
        ) {
            return Ok(()); // metadata records, not files (global PAX headers reach us)
        }
        let raw = e.path_bytes().into_owned();
        let rel = self.normalize(&raw)?;
        let meta = self.meta(e, &rel)?;
        let Some(name) = rel.file_name().map(|n| n.as_bytes().to_vec()) else {
            // The root itself ("./"): only a directory entry means anything.
            return if kind == EntryType::Directory { self.root_meta(&meta) } else { Ok(()) };
        };
        let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        if self.whiteouts && name.starts_with(WHITEOUT_PREFIX) {
            return self.whiteout(&parent, &name, &rel, &meta);
        }
        let pfd = self.dir_fd(&parent, true)?;
        match kind {
            EntryType::Directory => self.make_dir(&pfd, &name, &rel, &meta),
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.make_file(&pfd, &name, &rel, &meta, e)
            }
            EntryType::Symlink => {
                let target = e.link_name_bytes().map(|t| t.into_owned()).unwrap_or_default();
                self.make_symlink(&pfd, &name, &rel, &meta, &target)
            }
            EntryType::Link => {
                let target = e.link_name_bytes().map(|t| t.into_owned()).unwrap_or_default();
                self.make_hardlink(&pfd, &name, &rel, &target)
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (ft, dev) = match kind {
                    EntryType::Char => (FileType::CharacterDevice, self.device(e, &rel)?),
                    EntryType::Block => (FileType::BlockDevice, self.device(e, &rel)?),
                    _ => (FileType::Fifo, 0), // fifos' device fields are often blank
                };
                self.make_node(&pfd, &name, &rel, &meta, ft, dev)
            }
            // Volume labels, multi-volume continuations and unknown types carry no file.
            _ => Ok(()),
        }
    }

    fn device<R: Read>(&self, e: &tar::Entry<'_, R>, rel: &Path) -> Result<u64> {
        let h = e.header();
        let op = "read device numbers of tar entry";
        let major = h.device_major().op(op, self.full(rel))?.unwrap_or(0);
        let minor = h.device_minor().op(op, self.full(rel))?.unwrap_or(0);
        Ok(rustix::fs::makedev(major, minor))
    }

    /// Normalizes an entry name to a relative path inside the layer.
    fn normalize(&self, raw: &[u8]) -> Result<PathBuf> {
        let mut parts: Vec<&[u8]> = Vec::new();
        for c in raw.split(|&b| b == b'/') {
            match c {
                b"" | b"." => {}
                b".." => {
                    if parts.pop().is_none() {
                        return Err(self.unsafe_entry(raw, "escapes the layer root"));
                    }
                }
                _ => parts.push(c),
            }
        }
        let mut p = PathBuf::new();
        for (i, c) in parts.into_iter().enumerate() {
            match &self.rename_top {
                Some(top) if i == 0 => p.push(top),
                _ => p.push(OsStr::from_bytes(c)),
            }
        }
        Ok(p)
    }

    fn unsafe_entry(&self, raw: &[u8], reason: &str) -> StoreError {
        StoreError::UnsafeEntry {
            layer: self.layer.clone(),
            entry: String::from_utf8_lossy(raw).into_owned(),
            reason: reason.into(),
        }
    }

    fn full(&self, rel: &Path) -> PathBuf {
        self.root_path.join(rel)
    }

    fn meta<R: Read>(&self, e: &mut tar::Entry<'_, R>, rel: &Path) -> Result<Meta> {
        let h = e.header();
        let at = || self.full(rel);
        let mut m = Meta {
            uid: h.uid().op("read uid of tar entry", at())? as u32,
            gid: h.gid().op("read gid of tar entry", at())? as u32,
            mode: h.mode().op("read mode of tar entry", at())? & 0o7777,
            mtime: Timespec { tv_sec: h.mtime().op("read mtime of tar entry", at())? as i64, tv_nsec: 0 },
            xattrs: Vec::new(),
        };
        if let Some(exts) = e.pax_extensions().op("read PAX header of tar entry", at())? {
            for ext in exts {
                let ext = ext.op("read PAX header of tar entry", at())?;
                let (k, v) = (ext.key_bytes(), ext.value_bytes());
                if let Some(name) = k.strip_prefix(b"SCHILY.xattr.") {
                    m.xattrs.push((name.to_vec(), v.to_vec()));
                } else if k == b"uid" {
                    m.uid = parse_num(v).unwrap_or(m.uid);
                } else if k == b"gid" {
                    m.gid = parse_num(v).unwrap_or(m.gid);
                } else if k == b"mtime" {
                    m.mtime = parse_pax_time(v).unwrap_or(m.mtime);
                }
            }
        }
        if let Some(ids) = &self.ids {
            (m.uid, m.gid) = ids(m.uid, m.gid);
        }
        Ok(m)
    }

    /// The directory fd for a layer-relative path, resolved inside the root and,
    /// if `create`, created (with missing ancestors, mode 0755) when absent.
    fn dir_fd(&mut self, rel: &Path, create: bool) -> Result<Rc<Dir>> {
        if rel.as_os_str().is_empty() {
            return Ok(self.root.clone());
        }
        if let Some(fd) = self.cache.get(rel) {
            return Ok(fd.clone());
        }
        let fd = match self.open_in_root(rel, OFlags::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) if create => {
                let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
                let pfd = self.dir_fd(&parent, true)?;
                let name = rel.file_name().unwrap_or_default();
                match rustix::fs::mkdirat(&*pfd, name, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e).op("create directory", self.full(rel)),
                }
                self.open_in_root(rel, OFlags::empty()).op("open directory", self.full(rel))?
            }
            Err(e) => return Err(e).op("open directory", self.full(rel)),
        };
        if let Some(ts) = self.dir_times_set.remove(rel) {
            self.dir_times.insert(rel.to_path_buf(), ts); // may change again
        }
        let dir = Rc::new(Dir::new(fd));
        self.remember(rel, dir.clone());
        Ok(dir)
    }

    fn open_in_root(&self, rel: &Path, extra: OFlags) -> rustix::io::Result<OwnedFd> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | extra;
        let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
        loop {
            match rustix::fs::openat2(&*self.root, rel, flags, Mode::empty(), resolve) {
                Err(Errno::AGAIN) | Err(Errno::INTR) => continue, // openat2 asks for a retry on rename races
                r => return r,
            }
        }
    }

    fn remember(&mut self, rel: &Path, fd: Rc<Dir>) {
        if self.cache.len() >= MAX_CACHED_DIRS {
            self.drop_cache();
        }
        self.cache.insert(rel.to_path_buf(), fd);
    }

    /// Empties the parent cache; the fds leaving it are kept until the next
    /// entry starts, to set their directories' pending times then.
    fn drop_cache(&mut self) {
        self.evicted.extend(self.cache.drain());
    }

    /// Sets the pending mtime of each directory evicted during the last
    /// entry (which is done changing them) through the fd at hand; one
    /// back in the cache by now keeps its time pending. A later entry that
    /// resolves one again puts its time back (see `dir_fd`).
    fn set_evicted_times(&mut self) -> Result<()> {
        for (rel, dir) in std::mem::take(&mut self.evicted) {
            if self.cache.contains_key(&rel) {
                continue;
            }
            if let Some(ts) = self.dir_times.remove(&rel) {
                rustix::fs::futimens(&*dir, &ts).op("set times of", self.full(&rel))?;
                self.dir_times_set.insert(rel, ts);
            }
        }
        Ok(())
    }

    /// Removes whatever is at `pfd/name` (a whole tree for a directory).
    fn remove_at(&mut self, pfd: &Dir, name: &[u8], rel: &Path) -> Result<()> {
        let st = match rustix::fs::statat(pfd, OsStr::from_bytes(name), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(e).op("stat", self.full(rel)),
        };
        let ft = FileType::from_raw_mode(st.st_mode);
        if ft == FileType::Directory {
            // std's remove_dir_all does not follow symlinks inside the tree; the
            // /proc path names the already-resolved parent.
            std::fs::remove_dir_all(proc_path(pfd, name)).op("remove directory tree", self.full(rel))?;
        } else {
            rustix::fs::unlinkat(pfd, OsStr::from_bytes(name), AtFlags::empty()).op("remove", self.full(rel))?;
        }
        if matches!(ft, FileType::Directory | FileType::Symlink) {
            self.drop_cache(); // cached resolutions may have passed through it
        }
        Ok(())
    }

    /// Runs `create`; if the name is taken, removes the old object and retries once.
    fn create_replacing<T>(
        &mut self,
        pfd: &Dir,
        name: &[u8],
        rel: &Path,
        op: &str,
        mut create: impl FnMut() -> rustix::io::Result<T>,
    ) -> Result<T> {
        match create() {
            Err(Errno::EXIST) => {
                self.remove_at(pfd, name, rel)?;
                create().op(op, self.full(rel))
            }
            r => r.op(op, self.full(rel)),
        }
    }

    fn make_dir(&mut self, pfd: &Dir, name: &[u8], rel: &Path, meta: &Meta) -> Result<()> {
        let n = OsStr::from_bytes(name);
        // Created with its own permission bits, so no fchmod is needed when
        // the umask keeps them all (the old code made it 0700 and chmodded
        // at once: nothing waited in between).
        let create_mode = Mode::from_raw_mode(meta.mode & 0o777);
        let mut created = true;
        match rustix::fs::mkdirat(pfd, n, create_mode) {
            Ok(()) => {}
            Err(Errno::EXIST) => {
                let st = rustix::fs::statat(pfd, n, AtFlags::SYMLINK_NOFOLLOW).op("stat", self.full(rel))?;
                if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                    self.remove_at(pfd, name, rel)?;
                    rustix::fs::mkdirat(pfd, n, create_mode).op("create directory", self.full(rel))?;
                } else {
                    created = false; // made earlier (as a parent, or by an earlier entry): chmod it
                }
            }
            Err(e) => return Err(e).op("create directory", self.full(rel)),
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(pfd, n, flags, Mode::empty()).op("open directory", self.full(rel))?;
        // In a setgid directory a new directory inherits the setgid bit:
        // only fchmod clears it.
        if created && !pfd.setgid.get() {
            self.fd_meta_created(fd.as_fd(), rel, meta, false)?;
        } else {
            self.fd_meta(&fd, rel, meta, pfd.setgid.get())?;
        }
        self.dir_times.insert(rel.to_path_buf(), meta.times());
        self.dir_times_set.remove(rel);
        let dir = Dir { fd, setgid: Cell::new(meta.mode & 0o2000 != 0) };
        self.remember(rel, Rc::new(dir));
        Ok(())
    }

    fn root_meta(&mut self, meta: &Meta) -> Result<()> {
        let root = self.root.clone();
        // The root's own parent is outside the layer: always chown.
        self.fd_meta(&*root, Path::new(""), meta, true)?;
        root.setgid.set(meta.mode & 0o2000 != 0);
        self.dir_times.insert(PathBuf::new(), meta.times());
        Ok(())
    }

    fn make_file<R: Read>(
        &mut self,
        pfd: &Dir,
        name: &[u8],
        rel: &Path,
        meta: &Meta,
        data: &mut tar::Entry<'_, R>,
    ) -> Result<()> {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let n = OsStr::from_bytes(name);
        let create_mode = Mode::from_raw_mode(meta.mode & 0o777);
        let fd =
            self.create_replacing(pfd, name, rel, "create file", || rustix::fs::openat(pfd, n, flags, create_mode))?;
        let mut file = File::from(fd);
        loop {
            let got = match data.read(&mut self.buf) {
                Ok(0) => break,
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).op("read tar data for", self.full(rel)),
            };
            file.write_all(&self.buf[..got]).op("write", self.full(rel))?;
        }
        self.fd_meta_created(file.as_fd(), rel, meta, pfd.setgid.get())?;
        rustix::fs::futimens(&file, &meta.times()).op("set times of", self.full(rel))
    }

    fn make_symlink(&mut self, pfd: &Dir, name: &[u8], rel: &Path, meta: &Meta, target: &[u8]) -> Result<()> {
        let n = OsStr::from_bytes(name);
        let t = OsStr::from_bytes(target);
        self.create_replacing(pfd, name, rel, "create symlink", || rustix::fs::symlinkat(t, pfd, n))?;
        self.at_meta(pfd, name, rel, meta, false)
    }

    fn make_node(&mut self, pfd: &Dir, name: &[u8], rel: &Path, meta: &Meta, ft: FileType, dev: u64) -> Result<()> {
        let n = OsStr::from_bytes(name);
        let mode = Mode::from_raw_mode(meta.mode & 0o777);
        if self.unprivileged && ft != FileType::Fifo && dev != 0 {
            self.count(|s| s.devices += 1);
            return Ok(());
        }
        self.create_replacing(pfd, name, rel, "create device node", || rustix::fs::mknodat(pfd, n, ft, mode, dev))?;
        self.at_meta(pfd, name, rel, meta, true)
    }

    fn make_hardlink(&mut self, pfd: &Dir, name: &[u8], rel: &Path, raw_target: &[u8]) -> Result<()> {
        let target = self.normalize(raw_target)?;
        if target == rel {
            return Ok(()); // a link to itself: nothing to do (removing first would lose it)
        }
        let Some(tname) = target.file_name().map(|n| n.to_os_string()) else {
            return Err(self.unsafe_entry(raw_target, "is a hardlink to the layer root"));
        };
        let tparent = target.parent().unwrap_or(Path::new("")).to_path_buf();
        let tpfd = self.dir_fd(&tparent, false)?;
        let n = OsStr::from_bytes(name);
        // Flags 0: never follow a symlink target; linking the symlink itself is harmless.
        self.create_replacing(pfd, name, rel, "create hardlink", || {
            rustix::fs::linkat(&*tpfd, &tname, pfd, n, AtFlags::empty())
        })
    }

    fn whiteout(&mut self, parent: &Path, name: &[u8], rel: &Path, meta: &Meta) -> Result<()> {
        let pfd = self.dir_fd(parent, true)?;
        if name == OPAQUE_MARKER {
            return rustix::fs::fsetxattr(&*pfd, self.opaque_xattr, b"y", XattrFlags::empty())
                .op("set opaque xattr on", self.full(parent));
        }
        if name.starts_with(WHITEOUT_META_PREFIX) {
            return Ok(()); // other AUFS metadata (.wh..wh.plnk etc.) has no overlay meaning
        }
        let hidden = &name[WHITEOUT_PREFIX.len()..];
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(self.unsafe_entry(rel.as_os_str().as_bytes(), "is a whiteout without a valid name"));
        }
        let target_rel = parent.join(OsStr::from_bytes(hidden));
        self.remove_at(&pfd, hidden, &target_rel)?;
        let n = OsStr::from_bytes(hidden);
        rustix::fs::mknodat(&*pfd, n, FileType::CharacterDevice, Mode::empty(), rustix::fs::makedev(0, 0))
            .op("create whiteout", self.full(&target_rel))?;
        self.chown_at(&pfd, hidden, &target_rel, meta)
    }

    /// chown (when needed), chmod, xattrs on an open fd. Order matters: chown
    /// clears setuid bits and security.capability.
    fn fd_meta(&self, fd: impl AsFd, rel: &Path, meta: &Meta, in_setgid: bool) -> Result<()> {
        self.fd_meta_inner(fd.as_fd(), rel, meta, true, in_setgid)
    }

    /// Like [`Self::fd_meta`] for an object just created with `meta.mode & 0o777`:
    /// the fchmod is skipped when that mode is already exact (no umask bits lost,
    /// no setuid/setgid/sticky), which saves a syscall per file.
    fn fd_meta_created(&self, fd: BorrowedFd<'_>, rel: &Path, meta: &Meta, in_setgid: bool) -> Result<()> {
        let exact = meta.mode & 0o7000 == 0 && meta.mode & self.umask == 0;
        self.fd_meta_inner(fd, rel, meta, !exact, in_setgid)
    }

    /// Whether a new object needs a chown: it is owned by our euid and egid,
    /// unless its directory is setgid (then it took the directory's group).
    fn needs_chown(&self, meta: &Meta, in_setgid: bool) -> bool {
        in_setgid || meta.uid != self.euid || meta.gid != self.egid
    }

    fn fd_meta_inner(&self, fd: BorrowedFd<'_>, rel: &Path, meta: &Meta, chmod: bool, in_setgid: bool) -> Result<()> {
        if self.needs_chown(meta, in_setgid) {
            let r = rustix::fs::fchown(fd, Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid)));
            self.chown_result(r, rel)?;
        }
        if chmod {
            rustix::fs::fchmod(fd, Mode::from_raw_mode(meta.mode)).op("change mode of", self.full(rel))?;
        }
        for (k, v) in &meta.xattrs {
            let r = rustix::fs::fsetxattr(fd, OsStr::from_bytes(k), v, XattrFlags::empty());
            self.xattr_result(r, k, false, rel)?;
        }
        Ok(())
    }

    /// Like Docker, a filesystem without xattr support is not an error; nor is
    /// a `user.*` xattr on a symlink or device, which the kernel never allows.
    fn xattr_result(&self, r: rustix::io::Result<()>, name: &[u8], special: bool, rel: &Path) -> Result<()> {
        match r {
            Ok(()) | Err(Errno::NOTSUP) => Ok(()),
            Err(Errno::PERM) if special && name.starts_with(b"user.") => Ok(()),
            Err(e) => Err(e).op(&format!("set xattr {} on", String::from_utf8_lossy(name)), self.full(rel)),
        }
    }

    fn chown_at(&self, pfd: &Dir, name: &[u8], rel: &Path, meta: &Meta) -> Result<()> {
        if !self.needs_chown(meta, pfd.setgid.get()) {
            return Ok(());
        }
        let (u, g) = (Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid)));
        let r = rustix::fs::chownat(pfd, OsStr::from_bytes(name), u, g, AtFlags::SYMLINK_NOFOLLOW);
        self.chown_result(r, rel)
    }

    /// Metadata for objects we cannot open (symlinks, devices, fifos): by name
    /// relative to the resolved parent, never following the final component.
    fn at_meta(&self, pfd: &Dir, name: &[u8], rel: &Path, meta: &Meta, chmod: bool) -> Result<()> {
        let n = OsStr::from_bytes(name);
        self.chown_at(pfd, name, rel, meta)?;
        if chmod {
            // The object was just created by us as a device or fifo, so following is moot.
            rustix::fs::chmodat(pfd, n, Mode::from_raw_mode(meta.mode), AtFlags::empty())
                .op("change mode of", self.full(rel))?;
        }
        for (k, v) in &meta.xattrs {
            let r = rustix::fs::lsetxattr(proc_path(pfd, name), OsStr::from_bytes(k), v, XattrFlags::empty());
            self.xattr_result(r, k, true, rel)?;
        }
        rustix::fs::utimensat(pfd, n, &meta.times(), AtFlags::SYMLINK_NOFOLLOW).op("set times of", self.full(rel))
    }

    /// Directory mtimes, set last: creating children changed them.
    fn finish_dir_times(&mut self) -> Result<()> {
        self.set_evicted_times()?;
        let times = std::mem::take(&mut self.dir_times);
        for (rel, ts) in &times {
            let set = |fd: BorrowedFd<'_>| rustix::fs::futimens(fd, ts).op("set times of", self.full(rel));
            if rel.as_os_str().is_empty() {
                set(self.root.as_fd())?;
            } else if let Some(dir) = self.cache.get(rel) {
                set(dir.as_fd())?;
            } else {
                match self.open_in_root(rel, OFlags::NOFOLLOW) {
                    Ok(fd) => set(fd.as_fd())?,
                    // Replaced later in the layer by a non-directory or removed: nothing to set.
                    Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => continue,
                    Err(e) => return Err(e).op("open directory", self.full(rel)),
                }
            }
        }
        Ok(())
    }
}

/// `/proc/self/fd/<dirfd>/<name>`: names an object by its resolved parent.
fn proc_path(dir: &Dir, name: &[u8]) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", dir.fd.as_raw_fd())).join(OsStr::from_bytes(name))
}

/// The umask from /proc/self/status (reading it with umask(2) would change it,
/// racing other threads). Unknown means "assume every bit is masked".
fn read_umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        .unwrap_or(0o777)
}

fn parse_num(v: &[u8]) -> Option<u32> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

/// PAX times are decimal seconds with an optional fraction, e.g. `1700000000.123456789`.
fn parse_pax_time(v: &[u8]) -> Option<Timespec> {
    let s = std::str::from_utf8(v).ok()?.trim();
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let tv_sec: i64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    let tv_nsec = if digits.is_empty() { 0 } else { format!("{digits:0<9}").parse().ok()? };
    Some(Timespec { tv_sec, tv_nsec })
}
