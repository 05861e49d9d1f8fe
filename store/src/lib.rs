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
//! volumes/<name>/_data, meta.json              named volumes (see [`volumes`])
//! trash/                                       trees being deleted
//! index.lock, gc.lock                          flock files (see [`lock`])
//! overlay-form                                 `user` when the layers hold overlay's user.* form
//! ```
//!
//! Layers are unpacked in one of two forms, fixed for the life of a store:
//! `trusted` (root's: `trusted.overlay.opaque`, device nodes as they are)
//! or `user` (inside a user namespace, where trusted.* xattrs and device
//! nodes cannot be made and overlay mounts with `userxattr`:
//! `user.overlay.opaque`, devices skipped). A process opens only a store of
//! its own form, so a root store is never shared with a rootless one.
//!
//! ```text
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
pub mod volumes;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use content::{ContentStore, Ingest};
pub use digest::{BackgroundHasher, BackgroundSha256Reader, Digest, Sha256Hasher, Sha256Reader, Sha256Writer};
pub use error::{Result, StoreError};
pub use images::{ImageIndex, ImageRecord, Platform};
pub use layers::{LayerMeta, LayerStore, PendingLayer};
pub use lock::StoreLock;
pub use util::rfc3339_now;

/// The event log under a store root (its lines are `mini events`'; the
/// engine's `container::events` writes and reads them), and the one older
/// file it is rotated into.
pub const EVENTS_LOG: &str = "events.log";
pub const EVENTS_LOG_OLD: &str = "events.log.1";

use error::IoContext;

const OCI_LAYOUT: &[u8] = b"{\"imageLayoutVersion\":\"1.0.0\"}";

/// How overlay's markers are written in a store's layers (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XattrForm {
    Trusted,
    User,
}

impl XattrForm {
    /// The form this process can write: `user` inside a user namespace.
    pub fn of_process() -> XattrForm {
        let initial = fs::read_to_string("/proc/self/uid_map")
            .map(|m| m.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"])
            .unwrap_or(true);
        if initial {
            XattrForm::Trusted
        } else {
            XattrForm::User
        }
    }

    fn name(self) -> &'static str {
        match self {
            XattrForm::Trusted => "trusted",
            XattrForm::User => "user",
        }
    }
}

const FORM_FILE: &str = "overlay-form";

/// One opened store root.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    form: XattrForm,
    content: ContentStore,
    images: ImageIndex,
    layers: LayerStore,
}

impl Store {
    /// Opens (creating if missing) the store at `root`, and sweeps what dead
    /// processes left behind. Safe to call from several processes at once.
    pub fn open(root: &Path) -> Result<Store> {
        let form = XattrForm::of_process();
        let fresh = !root.join("index.json").is_file();
        fs::create_dir_all(root).op("create store directory", root)?;
        check_form(root, form, fresh)?;
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
            form,
            content: ContentStore::new(root),
            images: ImageIndex::new(root),
            layers: LayerStore::with_form(root, form),
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

    /// The form of this store's layers: `User` means overlay needs `userxattr`.
    pub fn form(&self) -> XattrForm {
        self.form
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

    /// `volumes/`: named volumes (see [`volumes`]).
    pub fn volumes(&self) -> Result<volumes::Volumes> {
        volumes::Volumes::open(self.root.join("volumes"), self.trash_dir())
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

/// A store records its form when it is made (an old store without the
/// file is root's); a process of the other form is refused, before it
/// could unpack a layer the other one's overlay would misread.
fn check_form(root: &Path, form: XattrForm, fresh: bool) -> Result<()> {
    let file = root.join(FORM_FILE);
    let recorded = match fs::read_to_string(&file) {
        Ok(text) => text.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if fresh && form == XattrForm::User {
                probe_user_xattrs(root)?;
                util::write_new_atomic(&file, b"user\n")?;
            }
            return match (fresh, form) {
                (false, XattrForm::User) => Err(StoreError::WrongForm { root: root.to_path_buf(), form: "trusted" }),
                _ => Ok(()),
            };
        }
        Err(e) => return Err(e).op("read", &file),
    };
    if recorded == form.name() {
        Ok(())
    } else {
        Err(StoreError::WrongForm {
            root: root.to_path_buf(),
            form: if recorded == "user" { "user" } else { "trusted" },
        })
    }
}

/// Overlay in a user namespace keeps its whiteout and opaque markers in
/// user.* xattrs: a filesystem without them (vfat, some FUSE) cannot hold
/// a rootless store.
fn probe_user_xattrs(root: &Path) -> Result<()> {
    let name = "user.mini.probe";
    rustix::fs::setxattr(root, name, b"1", rustix::fs::XattrFlags::empty())
        .map_err(|e| StoreError::NoUserXattrs { root: root.to_path_buf(), reason: io::Error::from(e).to_string() })?;
    let _ = rustix::fs::removexattr(root, name);
    Ok(())
}

#[cfg(test)]
mod tests;
