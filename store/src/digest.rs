//! Content digests: `sha256:<64 lowercase hex>` is the only algorithm mini stores.
//!
//! [`Digest`] is the parsed, validated form used as a key everywhere in the store
//! (blob file names, layer directory names, index.json descriptors). The hashing
//! adapters ([`Sha256Writer`], [`Sha256Reader`]) let callers compute a digest while
//! streaming, so no content is ever read twice just to verify it.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use crate::error::StoreError;

/// A validated sha256 digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// Digest of an in-memory byte slice.
    pub fn of_bytes(bytes: &[u8]) -> Digest {
        Digest::from_hasher(Sha256::new_with_prefix(bytes))
    }

    /// Builds a digest from 64 lowercase hex characters (no `sha256:` prefix).
    pub fn from_hex(hex: &str) -> Result<Digest, StoreError> {
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(StoreError::InvalidDigest {
                input: hex.to_string(),
                reason: "expected 64 lowercase hex characters".into(),
            });
        }
        Ok(Digest { hex: hex.to_string() })
    }

    fn from_hasher(h: Sha256) -> Digest {
        Digest { hex: hex::encode(h.finalize()) }
    }

    /// The 64 hex characters.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex characters, for display.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }

    /// Always `"sha256"`.
    pub fn algorithm(&self) -> &str {
        "sha256"
    }
}

impl FromStr for Digest {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Digest, StoreError> {
        let Some(hex) = s.strip_prefix("sha256:") else {
            return Err(StoreError::InvalidDigest {
                input: s.to_string(),
                reason: "expected `sha256:` followed by 64 lowercase hex characters".into(),
            });
        };
        Digest::from_hex(hex).map_err(|_| StoreError::InvalidDigest {
            input: s.to_string(),
            reason: "expected `sha256:` followed by 64 lowercase hex characters".into(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest(sha256:{})", self.hex)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Incremental sha256 with a byte count; the building block of the adapters below.
#[derive(Clone, Default)]
pub struct Sha256Hasher {
    inner: Sha256,
    len: u64,
}

impl Sha256Hasher {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
        self.len += bytes.len() as u64;
    }
    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn finish(self) -> Digest {
        Digest::from_hasher(self.inner)
    }
}

/// A writer that hashes everything written through it.
pub struct Sha256Writer<W> {
    inner: W,
    hasher: Sha256Hasher,
}

impl<W: Write> Sha256Writer<W> {
    pub fn new(inner: W) -> Self {
        Sha256Writer { inner, hasher: Sha256Hasher::new() }
    }
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.hasher.len()
    }
    pub fn get_ref(&self) -> &W {
        &self.inner
    }
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
    /// Returns the inner writer, the digest and the byte count.
    pub fn finish(self) -> (W, Digest, u64) {
        let len = self.hasher.len();
        (self.inner, self.hasher.finish(), len)
    }
}

impl Sha256Writer<io::Sink> {
    /// A writer that only hashes.
    pub fn sink() -> Self {
        Sha256Writer::new(io::sink())
    }
}

impl<W: Write> Write for Sha256Writer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes everything read through it.
pub struct Sha256Reader<R> {
    inner: R,
    hasher: Sha256Hasher,
}

impl<R: Read> Sha256Reader<R> {
    pub fn new(inner: R) -> Self {
        Sha256Reader { inner, hasher: Sha256Hasher::new() }
    }
    /// Bytes read so far.
    pub fn read_count(&self) -> u64 {
        self.hasher.len()
    }
    /// Reads the rest of the stream (hashing it) and returns digest and total size.
    pub fn drain(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        let len = self.hasher.len();
        Ok((self.hasher.finish(), len))
    }
    /// Digest and size of what has been read so far.
    pub fn finish(self) -> (Digest, u64) {
        let len = self.hasher.len();
        (self.hasher.finish(), len)
    }
}

impl<R: Read> Read for Sha256Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Batch size handed to the background hashing thread.
const BATCH: usize = 1 << 20;

/// sha256 computed on a helper thread, so hashing overlaps with the caller's
/// work (e.g. creating files while unpacking a layer: on 2 cores this hides most
/// of the ~0.7 s/GB sha256 cost). Bytes are copied into 1 MiB batches; buffers
/// are recycled. If the thread cannot be started it hashes inline.
pub struct BackgroundHasher {
    batch: Vec<u8>,
    len: u64,
    inline: Option<Sha256Hasher>,
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    recycled: Option<std::sync::mpsc::Receiver<Vec<u8>>>,
    worker: Option<std::thread::JoinHandle<Sha256Hasher>>,
}

impl Default for BackgroundHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl BackgroundHasher {
    pub fn new() -> BackgroundHasher {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(2);
        let (back_tx, back_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let spawned = std::thread::Builder::new().name("sha256".into()).spawn(move || {
            let mut h = Sha256Hasher::new();
            for mut buf in rx {
                h.update(&buf);
                buf.clear();
                let _ = back_tx.send(buf);
            }
            h
        });
        let mut me = BackgroundHasher {
            batch: Vec::with_capacity(BATCH),
            len: 0,
            inline: None,
            tx: None,
            recycled: None,
            worker: None,
        };
        match spawned {
            Ok(worker) => {
                me.tx = Some(tx);
                me.recycled = Some(back_rx);
                me.worker = Some(worker);
            }
            Err(_) => me.inline = Some(Sha256Hasher::new()),
        }
        me
    }

    pub fn update(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len() as u64;
        if let Some(h) = self.inline.as_mut() {
            return h.update(bytes);
        }
        while !bytes.is_empty() {
            let take = bytes.len().min(BATCH - self.batch.len());
            self.batch.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.batch.len() == BATCH {
                self.send();
            }
        }
    }

    fn send(&mut self) {
        let next = self.recycled.as_ref().and_then(|r| r.try_recv().ok()).unwrap_or_else(|| Vec::with_capacity(BATCH));
        let full = std::mem::replace(&mut self.batch, next);
        if let Some(tx) = &self.tx {
            // The worker only stops when we drop tx, so send cannot fail
            // unless it panicked; finish() then reports by hashing inline.
            let _ = tx.send(full);
        }
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn finish(mut self) -> Digest {
        if let Some(h) = self.inline.take() {
            return h.finish();
        }
        if !self.batch.is_empty() {
            self.send();
        }
        drop(self.tx.take());
        match self.worker.take().map(|w| w.join()) {
            Some(Ok(h)) => h.finish(),
            // A panicked worker cannot produce a digest; an all-zero one is
            // never equal to an expected digest, so the caller reports a mismatch.
            _ => Digest { hex: "0".repeat(64) },
        }
    }
}

/// A reader that hashes everything read through it on a [`BackgroundHasher`].
pub struct BackgroundSha256Reader<R> {
    inner: R,
    hasher: BackgroundHasher,
}

impl<R: Read> BackgroundSha256Reader<R> {
    pub fn new(inner: R) -> Self {
        BackgroundSha256Reader { inner, hasher: BackgroundHasher::new() }
    }

    /// Reads the rest of the stream (hashing it) and returns digest and total size.
    pub fn drain(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        let len = self.hasher.len();
        Ok((self.hasher.finish(), len))
    }
}

impl<R: Read> Read for BackgroundSha256Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_displays() {
        let d: Digest = EMPTY.parse().unwrap();
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(d.short(), "e3b0c44298fc");
        assert_eq!(d.hex().len(), 64);
        assert_eq!(Digest::of_bytes(b""), d);
    }

    #[test]
    fn rejects_bad_strings_and_names_them() {
        for bad in [
            "",
            "sha256:",
            "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855a",
            "sha256:../../../../etc/passwd000000000000000000000000000000000000000000",
        ] {
            let err = bad.parse::<Digest>().unwrap_err().to_string();
            assert!(err.contains(&format!("`{bad}`")), "{err}");
        }
    }

    #[test]
    fn serde_as_string() {
        let d = Digest::of_bytes(b"x");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{d}\""));
        let back: Digest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
        assert!(serde_json::from_str::<Digest>("\"sha256:zz\"").is_err());
    }

    #[test]
    fn adapters_hash_what_passes() {
        let mut w = Sha256Writer::new(Vec::new());
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        let (buf, d, n) = w.finish();
        assert_eq!(buf, b"hello world");
        assert_eq!(n, 11);
        assert_eq!(d, Digest::of_bytes(b"hello world"));
        let mut r = Sha256Reader::new(&b"hello world"[..]);
        let mut first = [0u8; 5];
        r.read_exact(&mut first).unwrap();
        assert_eq!(r.drain().unwrap(), (d.clone(), 11));
        let mut r = BackgroundSha256Reader::new(&b"hello world"[..]);
        r.read_exact(&mut first).unwrap();
        assert_eq!(r.drain().unwrap(), (d, 11));
    }

    #[test]
    fn background_hasher_matches_across_batches() {
        let data: Vec<u8> = (0..3 * BATCH + 12345).map(|i| (i % 253) as u8).collect();
        let mut h = BackgroundHasher::new();
        for chunk in data.chunks(77_777) {
            h.update(chunk);
        }
        assert_eq!(h.len(), data.len() as u64);
        assert_eq!(h.finish(), Digest::of_bytes(&data));
        assert_eq!(BackgroundHasher::new().finish(), Digest::of_bytes(b""));
    }
}
