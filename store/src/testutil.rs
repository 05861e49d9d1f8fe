//! Test helpers: tar streams built byte by byte (so hostile names that
//! tar::Builder would refuse can be written), sentinels, and root checks.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use tar::{EntryType, Header};

/// A tar stream assembled entry by entry.
#[derive(Default)]
pub(crate) struct Tar {
    buf: Vec<u8>,
}

pub(crate) struct E<'a> {
    pub name: &'a [u8],
    pub kind: EntryType,
    pub link: &'a [u8],
    pub data: &'a [u8],
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub dev: (u32, u32),
}

impl Default for E<'_> {
    fn default() -> Self {
        E {
            name: b"",
            kind: EntryType::Regular,
            link: b"",
            data: b"",
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 1_600_000_000,
            dev: (0, 0),
        }
    }
}

impl Tar {
    pub fn new() -> Tar {
        Tar::default()
    }

    pub fn entry(&mut self, e: E<'_>) -> &mut Tar {
        let mut h = Header::new_ustar();
        assert!(e.name.len() <= 100, "use pax path for long names");
        h.as_mut_bytes()[..e.name.len()].copy_from_slice(e.name);
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_mtime(e.mtime);
        h.set_size(e.data.len() as u64);
        h.set_entry_type(e.kind);
        if !e.link.is_empty() {
            h.set_link_name_literal(e.link).unwrap();
        }
        if matches!(e.kind, EntryType::Char | EntryType::Block) {
            h.set_device_major(e.dev.0).unwrap();
            h.set_device_minor(e.dev.1).unwrap();
        }
        h.set_cksum();
        self.buf.extend_from_slice(h.as_bytes());
        self.buf.extend_from_slice(e.data);
        self.pad();
        self
    }

    fn pad(&mut self) {
        let rem = self.buf.len() % 512;
        if rem != 0 {
            self.buf.resize(self.buf.len() + 512 - rem, 0);
        }
    }

    /// A PAX extended header applying to the next entry.
    pub fn pax(&mut self, kvs: &[(&str, &[u8])]) -> &mut Tar {
        let mut body = Vec::new();
        for (k, v) in kvs {
            let rest = k.len() + v.len() + 3; // ' ' '=' '\n'
            let mut len = rest + 1;
            while len != rest + len.to_string().len() {
                len = rest + len.to_string().len();
            }
            body.extend_from_slice(format!("{len} {k}=").as_bytes());
            body.extend_from_slice(v);
            body.push(b'\n');
        }
        self.entry(E { name: b"././@PaxHeader", kind: EntryType::XHeader, data: &body, ..E::default() })
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Tar {
        self.entry(E { name: name.as_bytes(), data, ..E::default() })
    }

    pub fn dir(&mut self, name: &str) -> &mut Tar {
        self.entry(E { name: name.as_bytes(), kind: EntryType::Directory, mode: 0o755, ..E::default() })
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Tar {
        self.entry(E {
            name: name.as_bytes(),
            kind: EntryType::Symlink,
            link: target.as_bytes(),
            mode: 0o777,
            ..E::default()
        })
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Tar {
        self.entry(E { name: name.as_bytes(), kind: EntryType::Link, link: target.as_bytes(), ..E::default() })
    }

    /// The finished stream: end-of-archive blocks plus some trailing padding
    /// (which must be hashed as part of the diff-id too).
    pub fn finish(&self) -> Vec<u8> {
        let mut out = self.buf.clone();
        out.resize(out.len() + 1024 + 4096, 0);
        out
    }
}

pub(crate) fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A snapshot of a tree: path → (kind, mode, uid, gid, nlink, mtime, content or link target, xattrs).
pub(crate) fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn walk(base: &Path, p: &Path, out: &mut BTreeMap<String, String>) {
    let m = fs::symlink_metadata(p).unwrap();
    let rel = p.strip_prefix(base).unwrap().display().to_string();
    let mut xattrs = vec![0u8; 4096];
    let n = rustix::fs::llistxattr(p, &mut xattrs[..]).unwrap_or(0);
    let extra = if m.file_type().is_symlink() {
        fs::read_link(p).unwrap().display().to_string()
    } else if m.is_file() {
        String::from_utf8_lossy(&fs::read(p).unwrap()).into_owned()
    } else {
        String::new()
    };
    out.insert(
        rel,
        format!(
            "{:o} {}:{} n{} t{} {:?} x{:?}",
            m.mode(),
            m.uid(),
            m.gid(),
            m.nlink(),
            m.mtime(),
            extra,
            String::from_utf8_lossy(&xattrs[..n])
        ),
    );
    if m.is_dir() {
        let mut names: Vec<_> = fs::read_dir(p).unwrap().map(|e| e.unwrap().path()).collect();
        names.sort();
        for child in names {
            walk(base, &child, out);
        }
    }
}
