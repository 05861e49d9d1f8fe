//! What the store holds and how much of it is in use: the counts `mini
//! info` shows and the table of `mini system df` (Docker's TYPE, TOTAL,
//! ACTIVE, SIZE, RECLAIMABLE). Layers shared by several images count
//! once, as Docker counts them; a container's size is its overlay upper
//! dir (what it wrote); a volume's is its data dir.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use mini_store::containers::Status;
use mini_store::Store;

use super::record::Record;
use crate::error::Result;
use crate::image::local::LocalImage;

/// One kind of thing in the store.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Kind {
    pub total: usize,
    /// Images a container uses, running containers, volumes a container mounts.
    pub active: usize,
    pub size: u64,
    /// What removing the inactive ones would free.
    pub reclaimable: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub images: Kind,
    pub containers: Kind,
    pub volumes: Kind,
    pub running: usize,
    pub paused: usize,
    pub stopped: usize,
}

pub fn measure(store: &Store) -> Result<Usage> {
    let mut u = Usage::default();
    let cs = super::containers(store)?;
    let mut used_images = HashSet::new();
    let mut used_volumes = HashSet::new();
    for id in cs.ids()? {
        let c = cs.get(&id);
        let Some(state) = c.state().ok().and_then(|s| super::settle_or_warn(&cs, &c, s)) else { continue };
        let Ok(cfg) = c.config() else { continue };
        used_images.insert(cfg.image_id.clone());
        if let Ok(record) = Record::of(&c, &cfg) {
            used_volumes.extend(record.container.volumes);
        }
        let size = tree_size(&c.upper());
        let running = state.status == Status::Running;
        match (running, state.paused) {
            (true, true) => u.paused += 1,
            (true, false) => u.running += 1,
            (false, _) => u.stopped += 1,
        }
        u.containers.total += 1;
        u.containers.size += size;
        if running {
            u.containers.active += 1;
        } else {
            u.containers.reclaimable += size;
        }
    }
    // Layers of all images, and of the images some container uses.
    let (mut all, mut used) = (BTreeSet::new(), BTreeSet::new());
    let mut ids = HashSet::new();
    for record in store.images().list()? {
        let Ok(image) = LocalImage::load(store, &record.name) else { continue };
        if !ids.insert(image.id.to_string()) {
            continue;
        }
        u.images.total += 1;
        if used_images.contains(&image.id.to_string()) {
            u.images.active += 1;
            used.extend(image.diff_ids.iter().cloned());
        }
        all.extend(image.diff_ids.iter().cloned());
    }
    for d in &all {
        let size = store.layers().meta(d)?.map(|m| m.size).unwrap_or(0);
        u.images.size += size;
        if !used.contains(d) {
            u.images.reclaimable += size;
        }
    }
    for v in super::volume::list(store)? {
        let size = tree_size(&v.data());
        u.volumes.total += 1;
        u.volumes.size += size;
        if used_volumes.contains(&v.name) {
            u.volumes.active += 1;
        } else {
            u.volumes.reclaimable += size;
        }
    }
    Ok(u)
}

/// Bytes of the regular files under `dir` (allocated size, as `du`), not
/// following symlinks; what cannot be read counts nothing.
pub fn tree_size(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                total += meta.blocks() * 512;
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_size_counts_allocated_bytes_without_following_links() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/f"), vec![1u8; 10_000]).unwrap();
        std::os::unix::fs::symlink("/usr", d.path().join("link")).unwrap();
        let size = tree_size(d.path());
        assert!((10_000..=20_480).contains(&size), "{size}");
        assert_eq!(tree_size(&d.path().join("missing")), 0);
    }
}
