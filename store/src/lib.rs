//! mini-store: the on-disk store of the mini container engine.
//!
//! Layout of a store root (default `/var/lib/mini`, chosen by the caller):
//!
//! ```text
//! oci-layout, index.json, blobs/sha256/<hex>   a valid OCI image layout (skopeo, umoci read it)
//! ingest/<random>                              blob downloads in flight; never read as content
//! layers/<diff-id-hex>/diff, meta.json         one unpacked directory per distinct layer
//! layers/.tmp-<random>/                        layer unpacks in flight
//! containers/                                  container dirs (owned by the runtime side)
//! trash/                                       trees being deleted
//! index.lock, gc.lock                          flock files (see [`lock`])
//! ```
//!
//! Rules: nothing becomes visible until verified (temp, hash while streaming,
//! fsync, rename, fsync the directory); an existing target means "already done";
//! a process killed at any instant leaves a store that [`Store::open`] reads
//! without error and sweeps (abandoned ingest files, temp layers, trash).

pub mod containers;
pub mod content;
pub mod digest;
pub mod error;
pub mod extract;
pub mod gc;
pub mod images;
pub mod layers;
pub mod lock;
#[cfg(test)]
mod testutil;
mod util;

use std::fs;
use std::path::{Path, PathBuf};

pub use content::{ContentStore, Ingest};
pub use digest::{BackgroundHasher, BackgroundSha256Reader, Digest, Sha256Hasher, Sha256Reader, Sha256Writer};
pub use error::{Result, StoreError};
pub use images::{ImageIndex, ImageRecord, Platform};
pub use layers::{LayerMeta, LayerStore, PendingLayer};
pub use lock::StoreLock;
pub use util::rfc3339_now;

use error::IoContext;

const OCI_LAYOUT: &[u8] = b"{\"imageLayoutVersion\":\"1.0.0\"}";

/// One opened store root.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    content: ContentStore,
    images: ImageIndex,
    layers: LayerStore,
}

impl Store {
    /// Opens (creating if missing) the store at `root`, and sweeps what dead
    /// processes left behind. Safe to call from several processes at once.
    pub fn open(root: &Path) -> Result<Store> {
        for dir in ["", "blobs/sha256", "ingest", "layers", "containers", "trash"] {
            let p = root.join(dir);
            fs::create_dir_all(&p).op("create store directory", &p)?;
        }
        // First writer wins: never replace an index.json that may already hold images.
        // (Checked first: every `mini run` opens the store, and the atomic
        // write costs two fsyncs.)
        for (name, bytes) in [("oci-layout", OCI_LAYOUT), ("index.json", images::EMPTY_INDEX)] {
            if !root.join(name).is_file() {
                util::write_new_atomic(&root.join(name), bytes)?;
            }
        }
        let store = Store {
            root: root.to_path_buf(),
            content: ContentStore::new(root),
            images: ImageIndex::new(root),
            layers: LayerStore::new(root),
        };
        store.sweep()?;
        Ok(store)
    }

    /// Removes abandoned ingest files, temp layer dirs and trash.
    fn sweep(&self) -> Result<()> {
        self.content.sweep_ingest()?;
        self.layers.sweep_temp()?;
        // Temp files of util::write_atomic (index.json, oci-layout) are never
        // locked; they live for milliseconds, so a minute-old one is abandoned.
        for entry in fs::read_dir(&self.root).op("list store root", &self.root)? {
            let entry = entry.op("list store root", &self.root)?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.contains(".tmp-") && util::older_than(&entry.path(), 60) {
                util::remove_any(&entry.path())?;
            }
        }
        let trash = self.root.join("trash");
        for entry in fs::read_dir(&trash).op("list trash dir", &trash)? {
            let path = entry.op("list trash dir", &trash)?.path();
            // Trash entries are renamed in whole and deleted by whoever put them
            // there; a concurrent deleter finding them gone is fine.
            util::remove_any(&path)?;
        }
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    pub fn images(&self) -> &ImageIndex {
        &self.images
    }

    pub fn layers(&self) -> &LayerStore {
        &self.layers
    }

    /// `containers/`: one dir per container, managed by the runtime side.
    pub fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }

    /// The containers' directories (see [`containers`]).
    pub fn containers(&self) -> Result<containers::Containers> {
        containers::Containers::open(self.containers_dir(), self.trash_dir())
    }

    /// `trash/`: rename trees here, then delete them.
    pub fn trash_dir(&self) -> PathBuf {
        self.root.join("trash")
    }

    /// Makes verified blobs and unpacked layers visible together, with one
    /// wait for durability for all of them (rather than an fsync per blob
    /// and a syncfs per layer, each waiting in series): every blob's bytes
    /// are handed to its file and every layer gets its meta.json, then one
    /// syncfs per filesystem involved makes all of it durable, and only then
    /// is each renamed into place (`blobs/sha256/`, `layers/`) and those two
    /// directories fsynced. Objects another process stored first are
    /// discarded, as with `commit`. See store/README.md, "Durability".
    pub fn publish(&self, blobs: Vec<Ingest>, layers: Vec<PendingLayer>) -> Result<()> {
        let mut staged = Vec::with_capacity(blobs.len());
        for mut blob in blobs {
            let (digest, file) = blob.finish_writing()?;
            staged.push((blob, digest, file));
        }
        let mut pending = Vec::with_capacity(layers.len());
        for mut layer in layers {
            if let Some(meta) = layer.write_meta()? {
                pending.push((layer, meta));
            } // else: committed by another process; Drop discards ours
        }
        let blob_fds = staged.iter().map(|(b, _, f)| (f, b.temp_path()));
        let fds: Vec<(&fs::File, &Path)> = blob_fds.chain(pending.iter().map(|(l, m)| (m, l.temp_path()))).collect();
        util::sync_filesystems(&fds)?;
        // Everything is durable: now names may point at it.
        let mut placed_blob = None;
        for (blob, digest, _) in &mut staged {
            if blob.place(digest)? {
                placed_blob = Some(blob.blobs_dir().to_path_buf());
            }
        }
        let mut placed_layer = None;
        for (layer, _) in &mut pending {
            if layer.place()? {
                placed_layer = Some(layer.layers_dir().to_path_buf());
            }
        }
        for dir in placed_blob.iter().chain(&placed_layer) {
            util::fsync_dir(dir)?;
        }
        Ok(())
    }

    /// Held shared by pulls and container creation while they add content not
    /// yet referenced by an image record.
    pub fn lock_gc_shared(&self) -> Result<StoreLock> {
        StoreLock::shared(&self.root.join("gc.lock"))
    }

    /// Held exclusive by garbage collection.
    pub fn lock_gc_exclusive(&self) -> Result<StoreLock> {
        StoreLock::exclusive(&self.root.join("gc.lock"))
    }
}

#[cfg(test)]
mod tests;
