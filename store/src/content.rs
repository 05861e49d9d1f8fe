//! Content-addressed blobs: `blobs/sha256/<hex>`, the OCI image layout's blob store.
//!
//! On-disk contract: a file at `blobs/sha256/<hex>` always holds exactly the bytes
//! whose sha256 is `<hex>`. Writes go to `ingest/<random>` (locked with flock by
//! their writer, hashed while streaming), are checked for size and digest, fsynced,
//! renamed into `blobs/sha256/`, and the directory is fsynced. An existing target
//! means another writer already stored the same bytes: that is success. Files in
//! `ingest/` are never read as content; unlocked leftovers are swept by `Store::open`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;

use crate::digest::{Digest, Sha256Hasher};
use crate::error::{IoContext, Result, StoreError};
use crate::util;

/// The blob store of one store root.
#[derive(Debug, Clone)]
pub struct ContentStore {
    blobs: PathBuf,
    ingest: PathBuf,
}

impl ContentStore {
    /// `root` is the store root; its layout must already exist (see `Store::open`).
    pub fn new(root: &Path) -> ContentStore {
        ContentStore { blobs: root.join("blobs").join("sha256"), ingest: root.join("ingest") }
    }

    /// Where the blob lives (whether or not it exists).
    pub fn path(&self, d: &Digest) -> PathBuf {
        self.blobs.join(d.hex())
    }

    pub fn contains(&self, d: &Digest) -> bool {
        self.path(d).is_file()
    }

    /// Size of a stored blob, `None` if absent.
    pub fn size(&self, d: &Digest) -> Result<Option<u64>> {
        let p = self.path(d);
        match fs::metadata(&p) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).op("stat blob", &p),
        }
    }

    /// Reads a whole blob and re-verifies its digest (for small blobs: manifests,
    /// configs). A blob modified on disk behind our back is reported, not used.
    pub fn read(&self, d: &Digest) -> Result<Vec<u8>> {
        let p = self.path(d);
        let bytes = match fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound { what: format!("blob {d}") })
            }
            Err(e) => return Err(e).op("read blob", &p),
        };
        let actual = Digest::of_bytes(&bytes);
        if &actual != d {
            return Err(StoreError::DigestMismatch { what: "stored blob".into(), expected: d.clone(), actual });
        }
        Ok(bytes)
    }

    /// Stores bytes and returns their digest.
    pub fn put(&self, bytes: &[u8]) -> Result<Digest> {
        let d = Digest::of_bytes(bytes);
        self.put_verified(bytes, &d)?;
        Ok(d)
    }

    /// Stores bytes that must hash to `expected`; on mismatch nothing is written.
    pub fn put_verified(&self, bytes: &[u8], expected: &Digest) -> Result<()> {
        let actual = Digest::of_bytes(bytes);
        if &actual != expected {
            return Err(StoreError::DigestMismatch { what: "blob".into(), expected: expected.clone(), actual });
        }
        if self.contains(expected) {
            return Ok(());
        }
        let mut w = self.ingest(expected, Some(bytes.len() as u64))?;
        w.write_all(bytes).op("write blob ingest file", &w.path)?;
        w.commit()
    }

    /// A small blob (a manifest, a config) written to `ingest/` and checked,
    /// for [`crate::Store::publish`] to make durable and visible with the
    /// rest of an image; `None` when the store already has it.
    pub fn stage(&self, bytes: &[u8], expected: &Digest) -> Result<Option<Ingest>> {
        let actual = Digest::of_bytes(bytes);
        if &actual != expected {
            return Err(StoreError::DigestMismatch { what: "blob".into(), expected: expected.clone(), actual });
        }
        if self.contains(expected) {
            return Ok(None);
        }
        let mut w = self.ingest(expected, Some(bytes.len() as u64))?;
        w.write_all(bytes).op("write blob ingest file", &w.path)?;
        Ok(Some(w))
    }

    /// Starts streaming a blob that must hash to `expected` (and have
    /// `expected_size` bytes, if given). Write into the returned [`Ingest`] and
    /// `commit()` it; dropping it without commit removes the temp file.
    pub fn ingest(&self, expected: &Digest, expected_size: Option<u64>) -> Result<Ingest> {
        self.start_ingest(Some(expected.clone()), expected_size)
    }

    /// Starts streaming a blob whose digest is not known in advance (a layer
    /// mini compresses itself, an archive entry without a digest in its
    /// name): it is stored under whatever the bytes hash to, which
    /// [`Ingest::commit_computed`] returns.
    pub fn ingest_any(&self) -> Result<Ingest> {
        self.start_ingest(None, None)
    }

    fn start_ingest(&self, expected: Option<Digest>, expected_size: Option<u64>) -> Result<Ingest> {
        let path = self.ingest.join(util::random_name());
        let file = OpenOptions::new()
            .write(true)
            .read(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .op("create blob ingest file", &path)?;
        // The lock marks the file as in flight, so a concurrent open() won't sweep it.
        rustix::fs::flock(&file, FlockOperation::LockExclusive).op("lock blob ingest file", &path)?;
        Ok(Ingest {
            out: Some(BufWriter::with_capacity(256 * 1024, file)),
            hasher: Sha256Hasher::new(),
            path,
            blobs_dir: self.blobs.clone(),
            expected,
            expected_size,
            written_back: 0,
        })
    }

    /// Opens a stored blob for streaming reads (not re-verified).
    pub fn open(&self, d: &Digest) -> Result<File> {
        let p = self.path(d);
        match File::open(&p) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::NotFound { what: format!("blob {d}") }),
            Err(e) => Err(e).op("open blob", &p),
        }
    }

    /// All stored blobs (names that are not valid digests are ignored).
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.blobs).op("list blobs in", &self.blobs)? {
            let entry = entry.op("list blobs in", &self.blobs)?;
            if let Some(d) = entry.file_name().to_str().and_then(|n| Digest::from_hex(n).ok()) {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes a blob; absent is fine.
    pub fn remove(&self, d: &Digest) -> Result<()> {
        let p = self.path(d);
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).op("remove blob", &p),
        }
        util::fsync_dir(&self.blobs)
    }

    /// Removes abandoned ingest files (their writer died).
    pub(crate) fn sweep_ingest(&self) -> Result<usize> {
        let mut n = 0;
        for entry in fs::read_dir(&self.ingest).op("list ingest dir", &self.ingest)? {
            let path = entry.op("list ingest dir", &self.ingest)?.path();
            if util::is_abandoned(&path) {
                util::remove_any(&path)?;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// A blob being written: hashes while writing to `ingest/<random>`.
pub struct Ingest {
    out: Option<BufWriter<File>>,
    hasher: Sha256Hasher,
    path: PathBuf,
    blobs_dir: PathBuf,
    /// `None` for [`ContentStore::ingest_any`]: whatever the bytes hash to.
    expected: Option<Digest>,
    expected_size: Option<u64>,
    /// Bytes whose writeback was started ([`Ingest::writeback_progress`]).
    written_back: u64,
}

impl Ingest {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.hasher.len()
    }

    /// The temp file (for error messages and progress).
    pub fn temp_path(&self) -> &Path {
        &self.path
    }

    /// Checks size and digest of what was written so far, without making
    /// anything visible (callers verify every blob of an image before
    /// committing any).
    pub fn verify(&self) -> Result<()> {
        let actual = self.hasher.clone().finish();
        if let Some(expected) = self.expected_size {
            if expected != self.written() {
                let what = format!("blob {}", self.expected.as_ref().unwrap_or(&actual));
                return Err(StoreError::SizeMismatch { what, expected, actual: self.written() });
            }
        }
        match &self.expected {
            Some(expected) if *expected != actual => {
                Err(StoreError::DigestMismatch { what: "blob".into(), expected: expected.clone(), actual })
            }
            _ => Ok(()),
        }
    }

    /// Verifies size and digest, fsyncs, and renames into `blobs/sha256/`.
    /// An existing blob with that digest is success.
    pub fn commit(self) -> Result<()> {
        self.commit_computed().map(|_| ())
    }

    /// [`Ingest::commit`], returning the digest the blob is stored under
    /// (the one computed while writing).
    pub fn commit_computed(mut self) -> Result<Digest> {
        let (digest, file) = self.finish_writing()?;
        file.sync_all().op("fsync blob ingest file", &self.path)?;
        if self.place(&digest)? {
            util::fsync_dir(&self.blobs_dir)?;
        }
        drop(file); // releases the flock only after the name is gone
        Ok(digest)
    }

    /// Verifies size and digest and writes out the buffer: the bytes are in
    /// the file (not yet durable). The returned file keeps the flock.
    pub(crate) fn finish_writing(&mut self) -> Result<(Digest, File)> {
        self.verify()?;
        let digest = self.hasher.clone().finish();
        let out = self.out.take().ok_or_else(|| StoreError::Corrupt {
            what: format!("blob ingest file {}", self.path.display()),
            reason: "already committed".into(),
        })?;
        let file = out.into_inner().map_err(|e| e.into_error()).op("write blob ingest file", &self.path)?;
        Ok((digest, file))
    }

    /// Renames the (durable) ingest file to `blobs/sha256/<hex>`; false when
    /// the blob was already there (then Drop removes ours). The caller
    /// fsyncs `blobs/sha256/` when this returned true.
    pub(crate) fn place(&mut self, digest: &Digest) -> Result<bool> {
        let target = self.blobs_dir.join(digest.hex());
        if target.exists() {
            return Ok(false);
        }
        // Rename replaces atomically; a concurrent identical blob is harmless.
        fs::rename(&self.path, &target).op("rename blob into place", &target)?;
        self.path = PathBuf::new();
        Ok(true)
    }

    /// The directory blobs are renamed into.
    pub(crate) fn blobs_dir(&self) -> &Path {
        &self.blobs_dir
    }

    /// Starts writeback of what the buffer has handed to the file since the
    /// last call, once that is at least [`WRITEBACK_STEP`]: the final sync
    /// then finds most of the blob already written.
    fn writeback_progress(&mut self) {
        let Some(out) = &self.out else { return };
        let in_file = self.hasher.len() - out.buffer().len() as u64;
        if in_file >= self.written_back + WRITEBACK_STEP {
            util::start_writeback(out.get_ref(), self.written_back, in_file - self.written_back);
            self.written_back = in_file;
        }
    }
}

/// Bytes of a blob between two writeback starts.
const WRITEBACK_STEP: u64 = 4 << 20;

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let out = self.out.as_mut().ok_or_else(|| io::Error::other("ingest already committed"))?;
        let n = out.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.writeback_progress();
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        match self.out.as_mut() {
            Some(o) => o.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Copies a reader into an ingest (helper for callers with a `Read`).
pub fn copy_into(ingest: &mut Ingest, r: &mut impl Read) -> Result<u64> {
    let path = ingest.path.clone();
    io::copy(r, ingest).op("write blob ingest file", &path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use std::sync::Arc;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("root")).unwrap();
        (dir, s)
    }

    fn ingest_count(s: &Store) -> usize {
        fs::read_dir(s.root().join("ingest")).unwrap().count()
    }

    #[test]
    fn ingest_commit_then_read() {
        let (_d, s) = store();
        let c = s.content();
        let d = Digest::of_bytes(b"hello world");
        let mut w = c.ingest(&d, Some(11)).unwrap();
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        assert_eq!(w.written(), 11);
        w.commit().unwrap();
        assert!(c.contains(&d));
        assert_eq!(c.read(&d).unwrap(), b"hello world");
        assert_eq!(c.size(&d).unwrap(), Some(11));
        assert_eq!(c.list().unwrap(), vec![d.clone()]);
        assert_eq!(ingest_count(&s), 0);
        let mut buf = String::new();
        c.open(&d).unwrap().read_to_string(&mut buf).unwrap();
        assert_eq!(buf, "hello world");
        c.remove(&d).unwrap();
        assert!(!c.contains(&d));
        assert!(matches!(c.read(&d), Err(StoreError::NotFound { .. })));
        c.remove(&d).unwrap();
    }

    #[test]
    fn ingest_digest_mismatch_writes_nothing() {
        let (_d, s) = store();
        let c = s.content();
        let d = Digest::of_bytes(b"expected");
        let mut w = c.ingest(&d, None).unwrap();
        w.write_all(b"something else").unwrap();
        let err = w.commit().unwrap_err();
        assert!(matches!(err, StoreError::DigestMismatch { .. }), "{err}");
        assert!(err.to_string().starts_with(&format!("digest mismatch for blob {d}: got sha256:")), "{err}");
        assert!(!c.contains(&d));
        assert_eq!(ingest_count(&s), 0);
        assert!(c.list().unwrap().is_empty());
    }

    #[test]
    fn ingest_size_mismatch() {
        let (_d, s) = store();
        let c = s.content();
        let d = Digest::of_bytes(b"abc");
        let mut w = c.ingest(&d, Some(4)).unwrap();
        w.write_all(b"abc").unwrap();
        let err = w.commit().unwrap_err();
        assert!(matches!(err, StoreError::SizeMismatch { expected: 4, actual: 3, .. }), "{err}");
        assert!(!c.contains(&d));
        assert_eq!(ingest_count(&s), 0);
    }

    #[test]
    fn verify_checks_without_publishing() {
        let (_d, s) = store();
        let c = s.content();
        let d = Digest::of_bytes(b"abcdef");
        let mut w = c.ingest(&d, Some(6)).unwrap();
        w.write_all(b"abc").unwrap();
        assert!(matches!(w.verify(), Err(StoreError::SizeMismatch { .. })));
        w.write_all(b"def").unwrap();
        w.verify().unwrap();
        assert!(!c.contains(&d), "verify publishes nothing");
        w.commit().unwrap();
        assert_eq!(c.read(&d).unwrap(), b"abcdef");
    }

    #[test]
    fn ingest_any_stores_under_the_computed_digest() {
        let (_d, s) = store();
        let mut w = s.content().ingest_any().unwrap();
        w.write_all(b"unknown in advance").unwrap();
        let d = w.commit_computed().unwrap();
        assert_eq!(d, Digest::of_bytes(b"unknown in advance"));
        assert_eq!(s.content().read(&d).unwrap(), b"unknown in advance");
        assert_eq!(ingest_count(&s), 0);
    }

    #[test]
    fn dropped_ingest_cleans_up() {
        let (_d, s) = store();
        let d = Digest::of_bytes(b"abc");
        let mut w = s.content().ingest(&d, None).unwrap();
        w.write_all(b"ab").unwrap();
        assert_eq!(ingest_count(&s), 1);
        drop(w);
        assert_eq!(ingest_count(&s), 0);
        assert!(!s.content().contains(&d));
    }

    #[test]
    fn put_and_put_verified() {
        let (_d, s) = store();
        let c = s.content();
        let d = c.put(b"{}").unwrap();
        assert_eq!(d, Digest::of_bytes(b"{}"));
        assert_eq!(c.put(b"{}").unwrap(), d); // again: already there
        c.put_verified(b"{}", &d).unwrap();
        let other = Digest::of_bytes(b"other");
        let err = c.put_verified(b"not other", &other).unwrap_err();
        assert!(matches!(err, StoreError::DigestMismatch { .. }));
        assert!(!c.contains(&other));
        assert_eq!(ingest_count(&s), 0);
    }

    #[test]
    fn concurrent_commits_of_same_blob_both_succeed() {
        let (_d, s) = store();
        let s = Arc::new(s);
        let data: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
        let d = Digest::of_bytes(&data);
        let data = Arc::new(data);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (s, d, data) = (s.clone(), d.clone(), data.clone());
                std::thread::spawn(move || {
                    let mut w = s.content().ingest(&d, Some(data.len() as u64)).unwrap();
                    for chunk in data.chunks(7919) {
                        w.write_all(chunk).unwrap();
                    }
                    w.commit()
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap().unwrap();
        }
        assert_eq!(s.content().read(&d).unwrap(), *data);
        assert_eq!(ingest_count(&s), 0);
    }

    #[test]
    fn read_detects_tampering() {
        let (_d, s) = store();
        let d = s.content().put(b"good").unwrap();
        fs::write(s.content().path(&d), b"evil").unwrap();
        assert!(matches!(s.content().read(&d), Err(StoreError::DigestMismatch { .. })));
    }
}
