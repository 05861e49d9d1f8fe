//! A directory tree as a tar stream, the one writer behind `export` (a
//! container's merged view) and `commit` (its overlay upper dir as an OCI
//! layer). Entries come sorted (reproducible archives) and keep owners
//! (shifted back for `--userns=auto`), modes with setuid bits, symlinks,
//! hardlinks (by device and inode), device numbers and xattrs (PAX
//! `SCHILY.xattr.*`); overlay's own xattrs never go out. Only the
//! directories /proc, /sys and /dev are written, not their contents: those
//! are runtime mounts.
//!
//! In [`Mode::Layer`] the overlay forms become the OCI ones: a whiteout
//! (char device 0/0) is an empty `.wh.<name>` file, an opaque directory
//! (xattr `trusted.overlay.opaque` or `user.overlay.opaque` = `y`) is
//! followed by `.wh..wh..opq`, and the /etc files mini bind-mounts from the
//! container dir (hostname, hosts, resolv.conf) are left out, as Docker does.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::record::Record;

/// Directories whose contents are runtime mounts, never written.
const SKIP_CONTENTS: [&str; 3] = ["proc", "sys", "dev"];
/// Bind-mount targets of the container's own /etc files: not image content.
const ETC_MOUNTS: [&str; 3] = ["etc/hostname", "etc/hosts", "etc/resolv.conf"];
const OPAQUE_XATTRS: [&str; 2] = ["trusted.overlay.opaque", "user.overlay.opaque"];
const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A merged view: written as it is.
    Export,
    /// An overlay upper dir: whiteouts and opaque dirs in OCI form.
    Layer,
}

/// The (uid, gid) base of the container's id range under `--userns=auto`.
pub fn id_base(record: &Record) -> Option<(u32, u32)> {
    record.process.id_map.as_ref().map(|m| (m.uid_base, m.gid_base))
}

/// An io::Error that says what was done to which path.
fn at<'a>(op: &'a str, path: &'a Path) -> impl FnOnce(io::Error) -> io::Error + 'a {
    move |e| io::Error::new(e.kind(), format!("{op} {}: {e}", path.display()))
}

fn is_overlay_xattr(name: &str) -> bool {
    name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.")
}

pub struct TarWriter<W: Write> {
    tar: tar::Builder<W>,
    mode: Mode,
    /// (dev, ino) → first path, for hardlinks.
    seen: HashMap<(u64, u64), PathBuf>,
    id_base: Option<(u32, u32)>,
}

impl<W: Write> TarWriter<W> {
    pub fn new(w: W, mode: Mode, id_base: Option<(u32, u32)>) -> Self {
        let mut tar = tar::Builder::new(w);
        tar.follow_symlinks(false);
        TarWriter { tar, mode, seen: HashMap::new(), id_base }
    }

    /// Ends the archive and hands back the writer, flushed.
    pub fn finish(self) -> io::Result<W> {
        let mut w = self.tar.into_inner()?;
        w.flush()?;
        Ok(w)
    }

    /// Write the entries of directory `dir` (sorted, for reproducible
    /// archives) named under `prefix`, recursing. At depth 0 `dir` is a
    /// container's root: /proc, /sys and /dev are written without their
    /// contents. Errors name the path they happened on.
    pub fn walk(&mut self, dir: &Path, prefix: &Path, depth: usize) -> io::Result<()> {
        let entries = std::fs::read_dir(dir).map_err(at("read directory", dir))?;
        let mut names: Vec<_> =
            entries.map(|e| e.map(|e| e.file_name())).collect::<io::Result<_>>().map_err(at("read directory", dir))?;
        names.sort();
        for name in names {
            let rel = prefix.join(&name);
            if self.mode == Mode::Layer && ETC_MOUNTS.iter().any(|m| rel == Path::new(m)) {
                continue;
            }
            let path = dir.join(&name);
            let meta = std::fs::symlink_metadata(&path).map_err(at("stat", &path))?;
            let skip = depth == 0 && SKIP_CONTENTS.iter().any(|s| name == *s);
            self.add(&path, &rel, &meta, !skip, depth + 1)?;
        }
        Ok(())
    }

    /// Write `path` (described by `meta`) as `name`, and a directory's
    /// contents below it when `recurse` (`cp` names its top entry itself).
    pub fn add(
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
        let ft = meta.file_type();
        if ft.is_socket() {
            return Ok(()); // tar has no sockets (GNU tar skips them too)
        }
        if self.mode == Mode::Layer && ft.is_char_device() && meta.rdev() == 0 {
            return self.marker(rel, WHITEOUT_PREFIX);
        }
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
        let (uid, gid) = self.unshift(meta.uid(), meta.gid());
        h.set_uid(uid.into());
        h.set_gid(gid.into());
        if ft.is_char_device() || ft.is_block_device() {
            // The tar crate leaves device numbers at 0:0.
            let rdev = meta.rdev();
            h.set_device_major(libc::major(rdev))?;
            h.set_device_minor(libc::minor(rdev))?;
        }
        let xattrs = crate::sys::fs::xattrs(path).unwrap_or_default();
        let opaque = xattrs.iter().any(|(k, v)| OPAQUE_XATTRS.contains(&k.as_str()) && v == b"y");
        let pax: Vec<(String, Vec<u8>)> = xattrs
            .into_iter()
            .filter(|(k, _)| !is_overlay_xattr(k))
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v))
            .collect();
        if !pax.is_empty() {
            self.tar.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
        }
        if ft.is_symlink() {
            let target = std::fs::read_link(path)?;
            h.set_size(0);
            // A target is data, kept byte for byte: the tar crate's path
            // handling would write `/` as `//` and drop a leading `./`.
            let bytes = std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str());
            if bytes.len() <= 100 {
                h.set_link_name_literal(bytes)?;
                return self.tar.append_data(&mut h, rel, io::empty());
            }
            return self.tar.append_link(&mut h, rel, target);
        }
        if ft.is_file() {
            return self.file(&mut h, path, rel, meta);
        }
        h.set_size(0);
        let name = if ft.is_dir() { rel.join("") } else { rel.to_path_buf() };
        self.tar.append_data(&mut h, name, io::empty())?;
        if ft.is_dir() && opaque && self.mode == Mode::Layer {
            return self.marker(&rel.join(OPAQUE_MARKER), "");
        }
        Ok(())
    }

    /// A regular file, or a hardlink to the first name of its inode.
    fn file(&mut self, h: &mut tar::Header, path: &Path, rel: &Path, meta: &std::fs::Metadata) -> io::Result<()> {
        if meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = self.seen.get(&key) {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                let first = first.clone();
                return self.tar.append_link(h, rel, first);
            }
            self.seen.insert(key, rel.to_path_buf());
        }
        let f = File::open(path)?;
        self.tar.append_data(h, rel, f)
    }

    /// An empty root-owned file named `prefix` + the last component of `rel`
    /// (a whiteout), or `rel` itself when `prefix` is empty.
    fn marker(&mut self, rel: &Path, prefix: &str) -> io::Result<()> {
        let name = rel.file_name().map(|n| format!("{prefix}{}", n.to_string_lossy())).unwrap_or_default();
        let path = rel.with_file_name(name);
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(0);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        self.tar.append_data(&mut h, path, io::empty())
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
        let mut w = TarWriter::new(&mut out, Mode::Export, None);
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
    fn ids_from_the_containers_range_are_shifted_back() {
        let w = TarWriter::new(Vec::new(), Mode::Export, Some((200_000, 300_000)));
        assert_eq!(w.unshift(200_000, 300_000), (0, 0));
        assert_eq!(w.unshift(201_000, 301_000), (1000, 1000));
        assert_eq!(w.unshift(5, 7), (5, 7), "ids outside the range stay");
    }

    #[test]
    fn walk_errors_name_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let gone = tmp.path().join("gone");
        let mut w = TarWriter::new(Vec::new(), Mode::Export, None);
        let e = w.walk(&gone, Path::new(""), 0).unwrap_err().to_string();
        assert!(e.starts_with(&format!("read directory {}", gone.display())) && e.contains("No such file"), "{e}");
    }

    #[test]
    fn layer_mode_writes_oci_whiteouts_and_leaves_out_mounted_etc_files() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::create_dir_all(r.join("opt/fresh")).unwrap();
        for f in ["etc/hosts", "etc/resolv.conf", "etc/hostname", "etc/kept", "opt/fresh/only"] {
            std::fs::write(r.join(f), b"x").unwrap();
        }
        let c = |p: &Path| std::ffi::CString::new(p.display().to_string()).unwrap();
        let opq = c(&r.join("opt/fresh"));
        // SAFETY: valid C strings and buffer.
        let rc = unsafe { libc::lsetxattr(opq.as_ptr(), c"user.overlay.opaque".as_ptr(), b"y".as_ptr().cast(), 1, 0) };
        assert_eq!(rc, 0, "{}", io::Error::last_os_error());
        let gone = c(&r.join("etc/gone"));
        // SAFETY: valid C string; a 0/0 char device is overlay's whiteout (needs CAP_MKNOD).
        let whiteout = unsafe { libc::mknod(gone.as_ptr(), libc::S_IFCHR | 0o600, 0) } == 0;
        let mut out = Vec::new();
        let mut w = TarWriter::new(&mut out, Mode::Layer, None);
        w.walk(r, Path::new(""), 0).unwrap();
        w.finish().unwrap();
        let names: Vec<String> = entries(&out).into_iter().map(|e| e.0).collect();
        let mut want = vec!["etc/", "etc/kept", "opt/", "opt/fresh/", "opt/fresh/.wh..wh..opq", "opt/fresh/only"];
        if whiteout {
            want.insert(1, "etc/.wh.gone");
        }
        assert_eq!(names, want);
        let mut a = tar::Archive::new(&out[..]);
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let xattrs: Vec<String> = e
                .pax_extensions()
                .unwrap()
                .map(|x| x.flatten().map(|x| x.key().unwrap().to_string()).collect())
                .unwrap_or_default();
            assert!(!xattrs.iter().any(|k| k.contains("overlay")), "overlay xattrs never go out: {xattrs:?}");
        }
    }

    #[test]
    fn symlink_targets_are_kept_verbatim() {
        let tmp = tempfile::tempdir().unwrap();
        for (name, target) in [("root", "/"), ("dot", "./x"), ("up", "../../..")] {
            symlink(target, tmp.path().join(name)).unwrap();
        }
        let mut out = Vec::new();
        let mut w = TarWriter::new(&mut out, Mode::Export, None);
        w.walk(tmp.path(), Path::new(""), 1).unwrap();
        w.finish().unwrap();
        let links: Vec<_> = entries(&out).into_iter().map(|e| (e.0, e.4.unwrap())).collect();
        let want = [("dot", "./x"), ("root", "/"), ("up", "../../..")];
        assert_eq!(links, want.map(|(a, b)| (a.to_string(), b.to_string())));
    }
}
