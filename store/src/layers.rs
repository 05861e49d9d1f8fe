//! Unpacked layers: `layers/<diff-id-hex>/diff` plus `meta.json`, one directory per
//! distinct layer, keyed by the digest of its *uncompressed* tar stream (the
//! diff-id), so every image sharing a layer shares the directory as an overlay lower.
//!
//! On-disk contract: `layers/<hex>/` exists only once its `diff/` holds the complete,
//! verified content and `meta.json` is written. Unpacking happens in
//! `layers/.tmp-<random>/` (flock-held by the unpacker while it lives), the whole
//! tar stream is hashed to its end, the tree is synced with syncfs, and the temp
//! dir is renamed to `layers/<hex>`. If that name already exists another process
//! finished first: that is success and our copy is discarded. Removal renames the
//! layer into `trash/` first, so a half-deleted layer is never visible.

use std::fs;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, Mode, OFlags};
use serde::{Deserialize, Serialize};

use crate::digest::{BackgroundSha256Reader, Digest};
use crate::error::{IoContext, Result, StoreError};
use crate::extract::Extractor;
use crate::util;

/// Prefix of in-progress unpack directories inside `layers/`.
pub(crate) const TMP_PREFIX: &str = ".tmp-";

/// `layers/<hex>/meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerMeta {
    pub diff_id: Digest,
    /// Size of the uncompressed tar stream in bytes.
    pub size: u64,
    /// RFC 3339 time the layer was committed.
    pub unpacked_at: String,
}

/// The layer directories of one store root.
#[derive(Debug, Clone)]
pub struct LayerStore {
    dir: PathBuf,
    trash: PathBuf,
    form: crate::XattrForm,
}

impl LayerStore {
    pub fn new(root: &Path) -> LayerStore {
        LayerStore::with_form(root, crate::XattrForm::Trusted)
    }

    pub fn with_form(root: &Path, form: crate::XattrForm) -> LayerStore {
        LayerStore { dir: root.join("layers"), trash: root.join("trash"), form }
    }

    /// `layers/<hex>`.
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.dir.join(diff_id.hex())
    }

    /// `layers/<hex>/diff`: the overlay lower directory.
    pub fn diff_path(&self, diff_id: &Digest) -> PathBuf {
        self.layer_dir(diff_id).join("diff")
    }

    /// True once the layer is committed.
    pub fn contains(&self, diff_id: &Digest) -> bool {
        self.layer_dir(diff_id).join("meta.json").is_file()
    }

    /// The layer's meta.json, `None` if the layer is absent.
    pub fn meta(&self, diff_id: &Digest) -> Result<Option<LayerMeta>> {
        let p = self.layer_dir(diff_id).join("meta.json");
        let bytes = match fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).op("read layer metadata", &p),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Corrupt { what: format!("layer metadata {}", p.display()), reason: e.to_string() })
    }

    /// Extracts an uncompressed tar stream into a temp dir, hashing every byte of
    /// the stream (to EOF, including padding after the end-of-archive blocks).
    /// Returns [`StoreError::DigestMismatch`] (`what: "layer diff_id"`) if it does
    /// not hash to `diff_id`; the temp dir is removed on every error.
    pub fn unpack<R: Read>(&self, diff_id: &Digest, tar: R) -> Result<PendingLayer> {
        let mut pending = self.create_temp(diff_id)?;
        let diff = pending.tmp.join("diff");
        let root = open_dir(&diff)?;
        let mut reader = BackgroundSha256Reader::new(tar);
        let mut extractor = Extractor::new(root, &diff, &diff_id.to_string());
        if self.form == crate::XattrForm::User {
            extractor = extractor.unprivileged();
        }
        extractor.extract(&mut reader)?;
        let stream = format!("layer {diff_id}");
        let (actual, size) = reader.drain().op("read tar stream of", stream)?;
        if &actual != diff_id {
            return Err(StoreError::DigestMismatch { what: "layer diff_id".into(), expected: diff_id.clone(), actual });
        }
        pending.size = size;
        pending.skipped = extractor.skipped();
        // Its writeback starts now, while the other layers still unpack;
        // the durability point is the commit's (or publish's) syncfs.
        pending.start_flush()?;
        Ok(pending)
    }

    fn create_temp(&self, diff_id: &Digest) -> Result<PendingLayer> {
        let tmp = self.dir.join(format!("{TMP_PREFIX}{}", util::random_name()));
        fs::create_dir(&tmp).op("create temp layer directory", &tmp)?;
        let mut pending = PendingLayer {
            tmp,
            target: self.layer_dir(diff_id),
            layers_dir: self.dir.clone(),
            trash: self.trash.clone(),
            diff_id: diff_id.clone(),
            size: 0,
            lock: None,
            skipped: Default::default(),
            flush: None,
        };
        let lock = open_dir(&pending.tmp)?;
        // Marks the dir as in flight, so a concurrent Store::open won't sweep it.
        rustix::fs::flock(&lock, FlockOperation::LockExclusive).op("lock temp layer directory", &pending.tmp)?;
        pending.lock = Some(lock);
        let diff = pending.tmp.join("diff");
        fs::create_dir(&diff).op("create layer diff directory", &diff)?;
        Ok(pending)
    }

    /// All committed layers.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).op("list layers in", &self.dir)? {
            let entry = entry.op("list layers in", &self.dir)?;
            if let Some(d) = entry.file_name().to_str().and_then(|n| Digest::from_hex(n).ok()) {
                if self.contains(&d) {
                    out.push(d);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes a layer (renamed into trash first, then deleted); absent is fine.
    pub fn remove(&self, diff_id: &Digest) -> Result<()> {
        util::remove_via_trash(&self.layer_dir(diff_id), &self.trash)?;
        util::fsync_dir(&self.dir)
    }

    /// Removes temp dirs whose unpacker died.
    pub(crate) fn sweep_temp(&self) -> Result<usize> {
        let mut n = 0;
        for entry in fs::read_dir(&self.dir).op("list layers in", &self.dir)? {
            let entry = entry.op("list layers in", &self.dir)?;
            let is_tmp = entry.file_name().to_str().is_some_and(|n| n.starts_with(TMP_PREFIX));
            if is_tmp && util::is_abandoned(&entry.path()) {
                util::remove_via_trash(&entry.path(), &self.trash)?;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// A verified, unpacked layer not yet visible under its final name.
#[derive(Debug)]
pub struct PendingLayer {
    tmp: PathBuf,
    target: PathBuf,
    layers_dir: PathBuf,
    trash: PathBuf,
    diff_id: Digest,
    size: u64,
    lock: Option<OwnedFd>,
    skipped: crate::extract::Skipped,
    /// The early flush started when the layer was unpacked.
    flush: Option<std::thread::JoinHandle<()>>,
}

impl PendingLayer {
    /// What an unprivileged unpack left out (device nodes, unmapped owners).
    pub fn skipped(&self) -> crate::extract::Skipped {
        self.skipped
    }

    /// Starts writing the unpacked tree to disk without waiting for it: a
    /// syncfs on a thread of its own (joined before the layer is committed
    /// or discarded, so no thread outlives a pull). It is a head start, not
    /// a durability point: its result is ignored, and the commit's own
    /// syncfs, which waits for everything, decides. Measured against a
    /// sync_file_range per file and one sync at the end: store/README.md.
    fn start_flush(&mut self) -> Result<()> {
        let fd = open_dir(&self.tmp)?;
        self.flush = Some(util::flush_in_background(fd));
        Ok(())
    }

    fn join_flush(&mut self) {
        if let Some(h) = self.flush.take() {
            let _ = h.join();
        }
    }

    /// Size of the uncompressed tar stream.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn diff_id(&self) -> &Digest {
        &self.diff_id
    }

    /// Writes meta.json, syncs the tree, and renames into `layers/<hex>`.
    /// An existing layer with that diff-id is success (ours is discarded).
    /// (A pull commits all its layers at once with [`crate::Store::publish`].)
    pub fn commit(mut self) -> Result<()> {
        let Some(meta) = self.write_meta()? else {
            return Ok(()); // Drop discards ours
        };
        // One syncfs flushes every file of the tree (and meta.json) at once.
        util::sync_filesystems(&[(&meta, &self.tmp)])?;
        drop(meta);
        if self.place()? {
            util::fsync_dir(&self.layers_dir)?;
        }
        Ok(())
    }

    /// Writes meta.json into the temp dir (not synced) and returns it open,
    /// for the caller's syncfs; `None` when the layer is already committed
    /// (by another process), so ours is to be discarded.
    pub(crate) fn write_meta(&mut self) -> Result<Option<fs::File>> {
        self.join_flush();
        if self.target.join("meta.json").is_file() {
            return Ok(None);
        }
        let meta = LayerMeta { diff_id: self.diff_id.clone(), size: self.size, unpacked_at: util::rfc3339_now() };
        let bytes = serde_json::to_vec_pretty(&meta).map_err(|e| StoreError::Corrupt {
            what: format!("layer metadata for {}", self.diff_id),
            reason: e.to_string(),
        })?;
        let meta_path = self.tmp.join("meta.json");
        let mut f = util::create_new(&meta_path)?;
        io::Write::write_all(&mut f, &bytes).op("write layer metadata", &meta_path)?;
        Ok(Some(f))
    }

    /// Renames the (durable) temp dir to `layers/<hex>`; false when another
    /// process committed the same layer first. The caller fsyncs `layers/`
    /// when this returned true.
    pub(crate) fn place(&mut self) -> Result<bool> {
        match rustix::fs::renameat(rustix::fs::CWD, &self.tmp, rustix::fs::CWD, &self.target) {
            Ok(()) => {
                self.tmp = PathBuf::new();
                Ok(true)
            }
            // Someone else committed the same layer between our check and rename.
            Err(rustix::io::Errno::EXIST | rustix::io::Errno::NOTEMPTY) => Ok(false),
            Err(e) => Err(e).op("rename layer into place", &self.target),
        }
    }

    /// `layers/`, which [`PendingLayer::place`] renames into.
    pub(crate) fn layers_dir(&self) -> &Path {
        &self.layers_dir
    }

    /// The temp dir (for error messages).
    pub(crate) fn temp_path(&self) -> &Path {
        &self.tmp
    }
}

impl Drop for PendingLayer {
    fn drop(&mut self) {
        self.join_flush();
        if !self.tmp.as_os_str().is_empty() {
            let _ = util::remove_via_trash(&self.tmp, &self.trash);
        }
    }
}

fn open_dir(path: &Path) -> Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    rustix::fs::open(path, flags, Mode::empty()).op("open directory", path)
}

#[cfg(test)]
mod tests;
