//! `mini export`: a container's merged filesystem as a tar stream.
//!
//! The merged view comes from a read-only overlay whose topmost lower is
//! the container's upper dir (so its deletions and opaque dirs apply and
//! no `.wh.` entry is ever seen), mounted in a private mount namespace of
//! this process: it works whether or not the container runs, never
//! touches the running container's own mount, and vanishes if mini is
//! killed. Entries keep owners (shifted back for `--userns=auto`), modes
//! with setuid bits, symlinks, hardlinks (by device and inode) and xattrs
//! (PAX `SCHILY.xattr.*`). Only the directories /proc, /sys and /dev are
//! written, not their contents, and volume contents never are: they live
//! on the host, not in the container's layers.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use mini_store::Store;

use super::launch;
use super::record::Record;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::runtime::overlay;
use crate::sys::{self, Sys};

/// Directories whose contents are runtime mounts, never exported.
const SKIP_CONTENTS: [&str; 3] = ["proc", "sys", "dev"];

pub fn export(config: &Config, key: &str, out: Option<&Path>) -> Result<()> {
    let what = || format!("export {key}");
    if out.is_none() && sys::tty::isatty(1) {
        return Err(Error::new(what())
            .because("refusing to write a tar archive to a terminal")
            .hint("use -o FILE or redirect stdout"));
    }
    let store = Store::open(&config.root)?;
    let cs = super::containers(&store)?;
    let c = cs.find(key).map_err(|e| Error::new(what()).because(e))?;
    let cfg = c.config().map_err(|e| Error::new(what()).because(e))?;
    let record = Record::of(&c, &cfg)?;
    let layers = launch::layer_dirs(&store, &cfg)?;
    let writer: Box<dyn Write> = match out {
        Some(p) => Box::new(File::create(p).map_err(|e| Error::new(format!("create {}", p.display())).because(e))?),
        None => Box::new(io::stdout().lock()),
    };
    sys::fs::private_mount_namespace().map_err(|e| e.within(what()))?;
    let view = c.rootfs();
    let plan = overlay::read_only_plan(&layers, &launch::dirs_of(&c), &view);
    sys::RealSys.mount_overlay(&plan).map_err(|e| e.within(what()))?;
    let mut w =
        TarWriter::new(BufWriter::new(writer), record.process.id_map.as_ref().map(|m| (m.uid_base, m.gid_base)));
    w.walk(&view, Path::new(""), 0).map_err(|e| Error::new(what()).because(e))?;
    w.finish().map_err(|e| Error::new(what()).because(e))
}

/// An io::Error that says what was done to which path.
fn at<'a>(op: &'a str, path: &'a Path) -> impl FnOnce(io::Error) -> io::Error + 'a {
    move |e| io::Error::new(e.kind(), format!("{op} {}: {e}", path.display()))
}

/// The tar writer of `export` and `cp`.
pub(super) struct TarWriter<W: Write> {
    tar: tar::Builder<W>,
    /// (dev, ino) → first path, for hardlinks.
    seen: HashMap<(u64, u64), PathBuf>,
    id_base: Option<(u32, u32)>,
}

impl<W: Write> TarWriter<W> {
    pub(super) fn new(w: W, id_base: Option<(u32, u32)>) -> Self {
        let mut tar = tar::Builder::new(w);
        tar.follow_symlinks(false);
        TarWriter { tar, seen: HashMap::new(), id_base }
    }

    pub(super) fn finish(mut self) -> io::Result<()> {
        self.tar.finish()?;
        self.tar.get_mut().flush()
    }

    /// Write the entries of directory `dir` (sorted, for reproducible
    /// archives) named under `prefix`, recursing. At depth 0 `dir` is a
    /// container's root: /proc, /sys and /dev are written without their
    /// contents. Errors name the path they happened on.
    pub(super) fn walk(&mut self, dir: &Path, prefix: &Path, depth: usize) -> io::Result<()> {
        let entries = std::fs::read_dir(dir).map_err(at("read directory", dir))?;
        let mut names: Vec<_> =
            entries.map(|e| e.map(|e| e.file_name())).collect::<io::Result<_>>().map_err(at("read directory", dir))?;
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let meta = std::fs::symlink_metadata(&path).map_err(at("stat", &path))?;
            let skip = depth == 0 && SKIP_CONTENTS.iter().any(|s| name == *s);
            self.add(&path, &prefix.join(&name), &meta, !skip, depth + 1)?;
        }
        Ok(())
    }

    /// Write `path` (described by `meta`) as `name`, and a directory's
    /// contents below it when `recurse`.
    pub(super) fn add(
        &mut self,
        path: &Path,
        name: &Path,
        meta: &std::fs::Metadata,
        recurse: bool,
        depth: usize,
    ) -> io::Result<()> {
        self.entry(path, name, meta).map_err(at("archive", path))?;
        if meta.is_dir() && recurse {
            self.walk(path, name, depth)?;
        }
        Ok(())
    }

    fn entry(&mut self, path: &Path, rel: &Path, meta: &std::fs::Metadata) -> io::Result<()> {
        if meta.file_type().is_socket() {
            return Ok(()); // tar has no sockets (GNU tar skips them too)
        }
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
        let (uid, gid) = self.unshift(meta.uid(), meta.gid());
        h.set_uid(uid.into());
        h.set_gid(gid.into());
        if meta.file_type().is_char_device() || meta.file_type().is_block_device() {
            // The tar crate leaves device numbers at 0:0.
            let rdev = meta.rdev();
            h.set_device_major(libc::major(rdev))?;
            h.set_device_minor(libc::minor(rdev))?;
        }
        let xattrs = crate::sys::fs::xattrs(path).unwrap_or_default();
        if !xattrs.is_empty() {
            let pax: Vec<(String, Vec<u8>)> =
                xattrs.into_iter().map(|(k, v)| (format!("SCHILY.xattr.{k}"), v)).collect();
            self.tar.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
        }
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target = std::fs::read_link(path)?;
            h.set_size(0);
            // A target is data, kept byte for byte: the tar crate's path
            // handling would write `/` as `//` and drop a leading `./`.
            let bytes = target.as_os_str().as_bytes();
            if bytes.len() <= 100 {
                h.set_link_name_literal(bytes)?;
                return self.tar.append_data(&mut h, rel, io::empty());
            }
            return self.tar.append_link(&mut h, rel, target);
        }
        if ft.is_file() && meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = self.seen.get(&key) {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                let first = first.clone();
                return self.tar.append_link(&mut h, rel, first);
            }
            self.seen.insert(key, rel.to_path_buf());
        }
        if ft.is_file() {
            let f = File::open(path)?;
            return self.tar.append_data(&mut h, rel, f);
        }
        h.set_size(0);
        let name = if ft.is_dir() { rel.join("") } else { rel.to_path_buf() };
        self.tar.append_data(&mut h, name, io::empty())
    }

    /// Under --userns=auto files written by the container carry host ids
    /// from its range; the archive carries the container's own ids.
    fn unshift(&self, uid: u32, gid: u32) -> (u32, u32) {
        let Some((ub, gb)) = self.id_base else { return (uid, gid) };
        let range = crate::runtime::userns::RANGE;
        let u = if uid >= ub && uid - ub < range { uid - ub } else { uid };
        let g = if gid >= gb && gid - gb < range { gid - gb } else { gid };
        (u, g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    /// (path, entry type, uid, size, link target) of every entry.
    fn entries(bytes: &[u8]) -> Vec<(String, tar::EntryType, u64, u64, Option<String>)> {
        let mut a = tar::Archive::new(bytes);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                let link = e.link_name().unwrap().map(|l| l.display().to_string());
                (e.path().unwrap().display().to_string(), h.entry_type(), h.uid().unwrap(), h.size().unwrap(), link)
            })
            .collect()
    }

    #[test]
    fn writes_a_sorted_tree_with_links_and_skips_runtime_dirs_contents() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::write(r.join("etc/b"), b"bee").unwrap();
        std::fs::hard_link(r.join("etc/b"), r.join("etc/a")).unwrap();
        symlink("b", r.join("etc/c")).unwrap();
        std::fs::create_dir_all(r.join("proc/1")).unwrap();
        std::fs::set_permissions(r.join("etc/b"), std::fs::Permissions::from_mode(0o4755)).unwrap();
        let mut out = Vec::new();
        let mut w = TarWriter::new(&mut out, None);
        w.walk(r, Path::new(""), 0).unwrap();
        w.finish().unwrap();
        let got = entries(&out);
        let names: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["etc/", "etc/a", "etc/b", "etc/c", "proc/"]);
        assert_eq!((got[1].1, got[1].3), (tar::EntryType::Regular, 3), "first name of the inode carries the data");
        assert_eq!((got[2].1, got[2].4.as_deref()), (tar::EntryType::Link, Some("etc/a")));
        assert_eq!((got[3].1, got[3].4.as_deref()), (tar::EntryType::Symlink, Some("b")));
        let mode = tar::Archive::new(&out[..]).entries().unwrap().nth(1).unwrap().unwrap().header().mode().unwrap();
        assert_eq!(mode & 0o7777, 0o4755);
    }

    #[test]
    fn symlink_targets_are_kept_verbatim() {
        let tmp = tempfile::tempdir().unwrap();
        for (name, target) in [("root", "/"), ("dot", "./x"), ("up", "../../..")] {
            symlink(target, tmp.path().join(name)).unwrap();
        }
        let mut out = Vec::new();
        let mut w = TarWriter::new(&mut out, None);
        w.walk(tmp.path(), Path::new(""), 1).unwrap();
        w.finish().unwrap();
        let links: Vec<_> = entries(&out).into_iter().map(|e| (e.0, e.4.unwrap())).collect();
        let want = [("dot", "./x"), ("root", "/"), ("up", "../../..")];
        assert_eq!(links, want.map(|(a, b)| (a.to_string(), b.to_string())));
    }

    #[test]
    fn ids_from_the_containers_range_are_shifted_back() {
        let w = TarWriter::new(Vec::new(), Some((200_000, 300_000)));
        assert_eq!(w.unshift(200_000, 300_000), (0, 0));
        assert_eq!(w.unshift(201_000, 301_000), (1000, 1000));
        assert_eq!(w.unshift(5, 7), (5, 7), "ids outside the range stay");
    }

    #[test]
    fn walk_errors_name_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let gone = tmp.path().join("gone");
        let mut w = TarWriter::new(Vec::new(), None);
        let e = w.walk(&gone, Path::new(""), 0).unwrap_err().to_string();
        assert!(e.starts_with(&format!("read directory {}", gone.display())) && e.contains("No such file"), "{e}");
    }
}
