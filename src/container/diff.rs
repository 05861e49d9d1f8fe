//! `mini diff`: what a container changed, read from its overlay upper dir.
//!
//! The upper dir holds every entry the container added or changed (with
//! its parent directories, copied up), a char device 0:0 for each deletion
//! (an overlay whiteout) and `trusted.overlay.opaque=y` on a directory
//! that replaced one of the image's. Each entry is `A` (not in any layer),
//! `C` (in a layer) or `D` (a whiteout); an opaque directory is `C`, and
//! what the layers held in it and the upper dir no longer shows is `D`.
//! Reading the upper dir directly is safe while the container runs (mini
//! only reads it), so diff works running or stopped. The /etc files mini
//! mounts (hostname, hosts, resolv.conf) are not the container's changes
//! and are left out, as Docker leaves out its own.

use std::collections::BTreeSet;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use mini_store::Store;

use crate::config::Config;
use crate::error::{Error, Result};

/// Root's overlay writes the trusted form, a rootless one (userxattr) the user form.
const OPAQUE_XATTRS: [&str; 2] = ["trusted.overlay.opaque", "user.overlay.opaque"];
/// Mount targets of mini's own /etc files.
const ENGINE_FILES: [&str; 3] = ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    Added,
    Changed,
    Deleted,
}

impl Change {
    pub fn letter(self) -> char {
        match self {
            Change::Added => 'A',
            Change::Changed => 'C',
            Change::Deleted => 'D',
        }
    }
}

/// One entry of the upper dir, as overlay means it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upper {
    Whiteout,
    OpaqueDir,
    Dir,
    Other,
}

/// What an upper entry means, given whether a layer below has its path.
pub fn classify(entry: Upper, in_layers: bool) -> Change {
    match (entry, in_layers) {
        (Upper::Whiteout, _) => Change::Deleted,
        (_, true) => Change::Changed,
        (_, false) => Change::Added,
    }
}

/// The layers below, as the classification needs them.
pub trait Lowers {
    fn exists(&self, path: &str) -> bool;
    /// Names in directory `path` of any layer (a merged listing).
    fn children(&self, path: &str) -> BTreeSet<String>;
}

/// Every change, sorted by path as `docker diff` prints them. `upper`:
/// each entry's absolute container path with its kind and, for
/// directories, the names the upper dir holds in it.
pub fn changes(upper: &[(String, Upper, BTreeSet<String>)], lowers: &dyn Lowers) -> Vec<(Change, String)> {
    let mut out = Vec::new();
    for (path, kind, names) in upper {
        let in_layers = lowers.exists(path);
        out.push((classify(*kind, in_layers), path.clone()));
        if *kind == Upper::OpaqueDir && in_layers {
            for old in lowers.children(path).difference(names) {
                out.push((Change::Deleted, format!("{}/{old}", path.trim_end_matches('/'))));
            }
        }
    }
    out.retain(|(_, p)| !ENGINE_FILES.contains(&p.as_str()));
    // /etc copied up only to hold those mount targets is no change either.
    if !out.iter().any(|(_, p)| p.starts_with("/etc/")) {
        out.retain(|(c, p)| !(p == "/etc" && *c == Change::Changed));
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out
}

/// Layer directories, top first.
struct LayerDirs(Vec<PathBuf>);

impl Lowers for LayerDirs {
    fn exists(&self, path: &str) -> bool {
        // A whiteout in an upper layer hides the path in those below.
        for dir in &self.0 {
            match std::fs::symlink_metadata(dir.join(path.trim_start_matches('/'))) {
                Ok(m) => return !is_whiteout(&m),
                Err(_) => continue,
            }
        }
        false
    }

    fn children(&self, path: &str) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for dir in &self.0 {
            let Ok(rd) = std::fs::read_dir(dir.join(path.trim_start_matches('/'))) else { continue };
            names.extend(rd.flatten().map(|e| e.file_name().to_string_lossy().to_string()));
        }
        names.into_iter().filter(|n| self.exists(&format!("{}/{n}", path.trim_end_matches('/')))).collect()
    }
}

fn is_whiteout(m: &std::fs::Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

/// The changes of container `key`.
pub fn diff(config: &Config, key: &str) -> Result<Vec<(Change, String)>> {
    let what = || format!("diff {key}");
    let store = Store::open(&config.root)?;
    let c = super::find(&store, "diff", key)?;
    let cfg = c.config().map_err(|e| Error::new(what()).because(e))?;
    let mut layers = super::launch::layer_dirs(&store, &cfg)?;
    layers.reverse();
    let mut upper = Vec::new();
    walk(&c.upper(), Path::new("/"), &mut upper).map_err(|e| Error::new(what()).because(e))?;
    Ok(changes(&upper, &LayerDirs(layers)))
}

/// Every entry below `root/rel`, with its kind and (directories) its names.
fn walk(root: &Path, rel: &Path, out: &mut Vec<(String, Upper, BTreeSet<String>)>) -> io::Result<()> {
    let dir = root.join(rel.strip_prefix("/").unwrap_or(rel));
    let rd = std::fs::read_dir(&dir).map_err(|e| io::Error::new(e.kind(), format!("read {}: {e}", dir.display())))?;
    let mut names: Vec<_> = rd.map(|e| e.map(|e| e.file_name())).collect::<io::Result<_>>()?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let crel = rel.join(&name);
        let m = std::fs::symlink_metadata(&path)?;
        let kind = if is_whiteout(&m) {
            Upper::Whiteout
        } else if m.is_dir()
            && crate::sys::fs::xattrs(&path)?.iter().any(|(k, v)| OPAQUE_XATTRS.contains(&k.as_str()) && v == b"y")
        {
            Upper::OpaqueDir
        } else if m.is_dir() {
            Upper::Dir
        } else {
            Upper::Other
        };
        let children = if m.is_dir() {
            std::fs::read_dir(&path)?.flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect()
        } else {
            BTreeSet::new()
        };
        out.push((crel.to_string_lossy().to_string(), kind, children));
        if m.is_dir() {
            walk(root, &crel, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Change::*;

    struct Fake(Vec<&'static str>);
    impl Lowers for Fake {
        fn exists(&self, path: &str) -> bool {
            self.0.contains(&path)
        }
        fn children(&self, path: &str) -> BTreeSet<String> {
            let prefix = format!("{path}/");
            self.0
                .iter()
                .filter_map(|p| p.strip_prefix(&prefix))
                .filter(|rest| !rest.contains('/'))
                .map(str::to_string)
                .collect()
        }
    }

    fn names(n: &[&str]) -> BTreeSet<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn classification() {
        assert_eq!(classify(Upper::Whiteout, true), Deleted);
        assert_eq!(classify(Upper::Other, true), Changed);
        assert_eq!(classify(Upper::Other, false), Added);
        assert_eq!(classify(Upper::Dir, true), Changed);
        assert_eq!(classify(Upper::Dir, false), Added);
        assert_eq!(classify(Upper::OpaqueDir, true), Changed);
        assert_eq!(classify(Upper::OpaqueDir, false), Added);
    }

    #[test]
    fn changes_sorted_with_opaque_contents_deleted_and_engine_files_out() {
        let lowers = Fake(vec![
            "/etc",
            "/etc/passwd",
            "/etc/shadow",
            "/etc/hosts",
            "/opt",
            "/opt/r",
            "/opt/r/old",
            "/opt/r/kept",
        ]);
        let upper = vec![
            ("/etc".to_string(), Upper::Dir, names(&["hosts", "passwd", "shadow"])),
            ("/etc/hosts".to_string(), Upper::Other, names(&[])),
            ("/etc/passwd".to_string(), Upper::Other, names(&[])),
            ("/etc/shadow".to_string(), Upper::Whiteout, names(&[])),
            ("/new".to_string(), Upper::Dir, names(&["f"])),
            ("/new/f".to_string(), Upper::Other, names(&[])),
            ("/opt".to_string(), Upper::Dir, names(&["r"])),
            ("/opt/r".to_string(), Upper::OpaqueDir, names(&["kept", "n"])),
            ("/opt/r/kept".to_string(), Upper::Other, names(&[])),
            ("/opt/r/n".to_string(), Upper::Other, names(&[])),
        ];
        let got = changes(&upper, &lowers);
        let want = vec![
            (Changed, "/etc"),
            (Changed, "/etc/passwd"),
            (Deleted, "/etc/shadow"),
            (Added, "/new"),
            (Added, "/new/f"),
            (Changed, "/opt"),
            (Changed, "/opt/r"),
            (Changed, "/opt/r/kept"),
            (Added, "/opt/r/n"),
            (Deleted, "/opt/r/old"),
        ];
        assert_eq!(got, want.into_iter().map(|(c, p)| (c, p.to_string())).collect::<Vec<_>>());
    }

    #[test]
    fn etc_holding_only_engine_files_is_no_change() {
        let lowers = Fake(vec!["/etc"]);
        let upper = vec![
            ("/etc".to_string(), Upper::Dir, names(&["hostname"])),
            ("/etc/hostname".to_string(), Upper::Other, names(&[])),
        ];
        assert_eq!(changes(&upper, &lowers), vec![]);
    }
}
