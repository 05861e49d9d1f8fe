//! Container directory + layer chain → [`MountPlan`]: the overlay that
//! becomes the container's root, as data.
//!
//! Contract: `lowers` are listed top layer first (overlayfs order), each an
//! unpacked layer directory shared by every image that has the layer; the
//! container owns `upper` (its changes) and `work` (overlay scratch, same
//! filesystem as `upper`); the overlay is mounted on `target`. Nothing here
//! touches the filesystem: `sys` carries the plan out.

use std::path::{Path, PathBuf};

pub use crate::sys::overlay::MountPlan;

/// Overlayfs' own limit on lower layers.
pub const MAX_LOWERS: usize = 500;

/// The directories of one container, as laid out by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerDirs {
    pub upper: PathBuf,
    pub work: PathBuf,
    pub rootfs: PathBuf,
}

#[cfg(test)]
impl ContainerDirs {
    /// The store's layout under `dir` (`container::launch::dirs_of` is the real one).
    pub fn under(dir: &Path) -> ContainerDirs {
        ContainerDirs { upper: dir.join("upper"), work: dir.join("work"), rootfs: dir.join("rootfs") }
    }
}

/// The overlay for a running container: `layer_dirs` bottom layer first, as
/// images list their diff-ids.
pub fn plan(layer_dirs: &[PathBuf], dirs: &ContainerDirs, userxattr: bool) -> MountPlan {
    MountPlan {
        lowers: layer_dirs.iter().rev().cloned().collect(),
        upper: Some(dirs.upper.clone()),
        work: Some(dirs.work.clone()),
        target: dirs.rootfs.clone(),
        userxattr,
        volatile: false,
    }
}

/// A read-only view of the merged filesystem (for export): the container's
/// upper dir becomes the topmost lower, so its whiteouts and opaque
/// directories apply, and the live container's upper/work stay unshared.
pub fn read_only_plan(layer_dirs: &[PathBuf], dirs: &ContainerDirs, target: &Path) -> MountPlan {
    let mut lowers = vec![dirs.upper.clone()];
    lowers.extend(layer_dirs.iter().rev().cloned());
    MountPlan { lowers, upper: None, work: None, target: target.to_path_buf(), userxattr: false, volatile: false }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers() -> Vec<PathBuf> {
        vec!["/s/layers/aa/diff".into(), "/s/layers/bb/diff".into(), "/s/layers/cc/diff".into()]
    }

    #[test]
    fn lowers_are_top_first_and_dirs_come_from_the_container() {
        let dirs = ContainerDirs::under(Path::new("/s/containers/42"));
        let p = plan(&layers(), &dirs, false);
        assert_eq!(
            p,
            MountPlan {
                lowers: vec!["/s/layers/cc/diff".into(), "/s/layers/bb/diff".into(), "/s/layers/aa/diff".into()],
                upper: Some("/s/containers/42/upper".into()),
                work: Some("/s/containers/42/work".into()),
                target: "/s/containers/42/rootfs".into(),
                userxattr: false,
                volatile: false,
            }
        );
    }

    #[test]
    fn classic_options_shorten_under_base_and_escape() {
        let dirs = ContainerDirs::under(Path::new("/s/containers/42"));
        let mut p = plan(&layers(), &dirs, true);
        p.lowers.push("/odd:dir,x".into());
        assert_eq!(
            p.classic_options(Some(Path::new("/s"))),
            "lowerdir=layers/cc/diff:layers/bb/diff:layers/aa/diff:/odd\\:dir\\,x,\
             upperdir=containers/42/upper,workdir=containers/42/work,userxattr"
        );
        p.volatile = true;
        assert!(p.classic_options(None).ends_with(",userxattr,volatile"));
        // A read-only view has no upper dir to skip syncing.
        let mut view = read_only_plan(&layers(), &dirs, Path::new("/mnt"));
        view.volatile = true;
        assert!(!view.classic_options(None).contains("volatile"));
    }

    #[test]
    fn read_only_view_puts_upper_on_top() {
        let dirs = ContainerDirs::under(Path::new("/c"));
        let p = read_only_plan(&layers(), &dirs, Path::new("/mnt"));
        assert_eq!(p.lowers[0], PathBuf::from("/c/upper"));
        assert_eq!(p.lowers[3], PathBuf::from("/s/layers/aa/diff"));
        assert_eq!(p.upper, None);
        assert_eq!(p.classic_options(None).matches(':').count(), 3);
    }
}
