//! The overlay mount as the kernel takes it: lower dirs (top first), the
//! upper and work dirs, the target, and the options, rendered for the
//! classic mount(2) when the new mount API is missing. Built by
//! `runtime::overlay` (pure), carried out by [`super::mount`].

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    /// Top layer first.
    pub lowers: Vec<PathBuf>,
    /// None for a read-only overlay (export: the upper dir joins the lowers).
    pub upper: Option<PathBuf>,
    pub work: Option<PathBuf>,
    pub target: PathBuf,
    /// Inside a user namespace overlay keeps its xattrs in `user.*`.
    pub userxattr: bool,
    /// Skip syncing the upper filesystem (overlay's `volatile`, kernel
    /// 5.10+). Unmounting an overlay otherwise syncs the whole filesystem
    /// under `upper` (writeback and a cache flush) each time a container
    /// exits. For containers that never outlive their run (`--rm`), as
    /// Podman does.
    pub volatile: bool,
}

impl MountPlan {
    /// Classic mount(2) option string (used when the new mount API is
    /// missing). Lower paths are written relative to `base` when they live
    /// under it, because the whole string must fit in one page.
    pub fn classic_options(&self, base: Option<&Path>) -> String {
        let short = |p: &PathBuf| -> String {
            match base.and_then(|b| p.strip_prefix(b).ok()) {
                Some(rel) => rel.display().to_string(),
                None => p.display().to_string(),
            }
        };
        let lowers: Vec<String> = self.lowers.iter().map(|p| escape(&short(p))).collect();
        let mut opts = format!("lowerdir={}", lowers.join(":"));
        if let (Some(u), Some(w)) = (&self.upper, &self.work) {
            opts.push_str(&format!(",upperdir={},workdir={}", escape(&short(u)), escape(&short(w))));
        }
        if self.userxattr {
            opts.push_str(",userxattr");
        }
        if self.volatile && self.upper.is_some() {
            opts.push_str(",volatile");
        }
        opts
    }
}

/// Overlay splits option values on ',' and lowerdir on ':'; escape both.
fn escape(p: &str) -> String {
    p.replace('\\', "\\\\").replace(':', "\\:").replace(',', "\\,")
}
