//! `mini pull`: resolve a reference to one platform's manifest, fetch the
//! missing blobs (several layers at once), and record the image.
//!
//! Each layer is streamed once: bytes → blob hash → `ingest/` file, and the
//! same bytes → decompress → diff_id hash → extraction into a temp layer dir.
//! Nothing becomes visible until every digest of the image has verified:
//! layers and blobs are committed (renamed into place) only after all of them
//! are complete, then the config and manifests, and the image record last.
//! An interrupted pull therefore leaves temp files that the next `mini`
//! sweeps, and a store that still reads as before.
//!
//! The async side (tokio, current-thread) ends before `pull` returns, and its
//! blocking threads are joined when the runtime drops, so `mini run` can pull
//! and then clone with no other thread alive.

use std::io::{BufReader, Cursor, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use mini_store::content::Ingest;
use mini_store::digest::Digest;
use mini_store::images::{ImageRecord, Platform, ANNOTATION_INDEX_DIGEST, ANNOTATION_PULLED};
use mini_store::layers::PendingLayer;
use mini_store::Store;
use oci_spec::image::{Descriptor, ImageManifest};

use crate::config::Config;
use crate::error::{Context, Error, Result};
use crate::image::local::LocalImage;
use crate::image::manifest::{choose_platform, parse_config, Compression, Manifest, PlatformSpec, DOCKER_MANIFEST, OCI_MANIFEST};
use crate::image::reference::Reference;
use crate::progress::{LayerProgress, Progress};
use crate::registry::auth::CredentialStore;
use crate::registry::client::{backoff, RegistryClient, MAX_ATTEMPTS};

/// Layers downloaded at once (Docker's default is 3).
const PARALLEL_LAYERS: usize = 3;

#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// `--platform`; the host's platform when absent.
    pub platform: Option<PlatformSpec>,
    /// `-q`: no progress output.
    pub quiet: bool,
}

/// Pull `text` into the store at `config.root` and return the stored image.
pub fn pull(config: &Config, text: &str, opts: &PullOptions) -> Result<LocalImage> {
    let reference = Reference::parse(text)?;
    let store = Arc::new(Store::open(&config.root)?);
    // Holds off `prune` until the record that keeps our blobs alive is written.
    let _gc = store.lock_gc_shared()?;
    let progress = Progress::new(opts.quiet);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context(|| "start the async runtime")?;
    let pulled = runtime.block_on(Puller { store: &store, config, opts, progress: &progress }.pull(&reference));
    drop(runtime); // joins its blocking threads: none may outlive the pull
    let record = pulled.map_err(|e| e.within(format!("pull {reference}")))?;
    LocalImage::from_record(&store, record)
}

struct Puller<'a> {
    store: &'a Arc<Store>,
    config: &'a Config,
    opts: &'a PullOptions,
    progress: &'a Progress,
}

/// The manifest chosen for this host, and what led to it.
struct Resolved {
    manifest: ImageManifest,
    digest: Digest,
    size: u64,
    media_type: String,
    /// The index it was chosen from, if any.
    index: Option<Digest>,
    platform: Option<PlatformSpec>,
    /// Manifest documents to store once everything verified.
    documents: Vec<(Bytes, Digest)>,
}

impl Puller<'_> {
    async fn pull(&self, reference: &Reference) -> Result<ImageRecord> {
        let creds = CredentialStore::load()?;
        let mut registry = RegistryClient::new(self.config, reference, &creds)?;
        let what = reference.tag.as_deref().or(reference.digest.as_deref()).unwrap_or("latest");
        self.progress.say(&format!("{what}: Pulling from {}", reference.repository));
        let resolved = self.resolve(&mut registry, reference).await?;
        let (config_bytes, config_digest) = self.fetch_config(&registry, &resolved).await?;
        let diff_ids = diff_ids(&config_bytes, &resolved.manifest)?;
        let before = self.store.images().get(&reference.to_string())?;
        let fetched = self.fetch_layers(&registry, &resolved.manifest, &diff_ids).await?;
        // Everything verified: make it visible, content before the record naming it.
        for layer in fetched {
            layer.commit()?;
        }
        self.store.content().put_verified(&config_bytes, &config_digest)?;
        for (bytes, digest) in resolved.documents.iter().rev() {
            self.store.content().put_verified(bytes, digest)?;
        }
        let record = record_for(reference, &resolved);
        self.store.images().put(record.clone())?;
        self.progress.say(&format!("Digest: {}", resolved.index.as_ref().unwrap_or(&resolved.digest)));
        let status = match before {
            Some(old) if old.digest == record.digest => "Image is up to date for",
            _ => "Downloaded newer image for",
        };
        self.progress.say(&format!("Status: {status} {reference}"));
        Ok(record)
    }

    /// Fetch the manifest; for an index, choose the platform and fetch its manifest.
    async fn resolve(&self, registry: &mut RegistryClient, reference: &Reference) -> Result<Resolved> {
        let (bytes, _) = registry.first_manifest().await?;
        let digest = verify_document(&bytes, reference.digest.as_deref(), "manifest")?;
        match Manifest::parse(&bytes, None)? {
            Manifest::Image(manifest) => {
                Ok(Resolved {
                    media_type: media_type_of(&manifest),
                    size: bytes.len() as u64,
                    documents: vec![(bytes, digest.clone())],
                    manifest,
                    digest,
                    index: None,
                    platform: None,
                })
            }
            Manifest::Index(index) => {
                let want = self.opts.platform.clone().unwrap_or_else(PlatformSpec::host);
                let entry = choose_platform(&index, &want)?;
                let entry_digest = entry.digest().to_string();
                let (inner, _) = registry.manifest_by_digest(&entry_digest).await?;
                let inner_digest = verify_document(&inner, Some(&entry_digest), "manifest")?;
                let Manifest::Image(manifest) = Manifest::parse(&inner, None)? else {
                    return Err(Error::new(format!("read manifest {inner_digest}")).because("an index inside an index is not supported"));
                };
                let platform = entry.platform().as_ref().map(|p| PlatformSpec {
                    os: p.os().to_string(),
                    architecture: p.architecture().to_string(),
                    variant: p.variant().clone(),
                });
                Ok(Resolved {
                    media_type: media_type_of(&manifest),
                    size: inner.len() as u64,
                    documents: vec![(bytes, digest.clone()), (inner, inner_digest.clone())],
                    manifest,
                    digest: inner_digest,
                    index: Some(digest),
                    platform,
                })
            }
        }
    }

    async fn fetch_config(&self, registry: &RegistryClient, resolved: &Resolved) -> Result<(Bytes, Digest)> {
        let desc = resolved.manifest.config();
        let digest = descriptor_digest(desc)?;
        let bytes = if self.store.content().contains(&digest) {
            Bytes::from(self.store.content().read(&digest)?)
        } else {
            Bytes::from(registry.small_blob(&digest.to_string(), desc.size()).await?)
        };
        verify_document(&bytes, Some(&digest.to_string()), "config")?;
        let config = parse_config(&bytes, &resolved.manifest)?;
        // A single-platform manifest names no platform; its config does.
        if let (Some(want), None) = (&self.opts.platform, &resolved.index) {
            let have = format!("{}/{}", config.os(), config.architecture());
            if have != format!("{}/{}", want.os, want.architecture) {
                return Err(Error::new(format!("image is for {have}"))
                    .because(format!("it does not match the requested platform {want}")));
            }
        }
        Ok((bytes, digest))
    }

    /// Fetch and unpack every layer not yet in the store, a few at a time.
    /// On the first failure the others stop at their next chunk.
    async fn fetch_layers(&self, registry: &RegistryClient, manifest: &ImageManifest, diff_ids: &[Digest]) -> Result<Vec<Fetched>> {
        let cancel = AtomicBool::new(false);
        let jobs = manifest.layers().iter().zip(diff_ids).map(|(desc, diff_id)| {
            let cancel = &cancel;
            async move {
                let result = self.fetch_layer(registry, desc, diff_id, cancel).await;
                if result.is_err() {
                    cancel.store(true, Ordering::SeqCst);
                }
                result
            }
        });
        let results: Vec<Result<Option<Fetched>>> = futures_util::stream::iter(jobs).buffered(PARALLEL_LAYERS).collect().await;
        // A cancelled layer (None) implies a failed one; report that failure.
        results.into_iter().filter_map(Result::transpose).collect()
    }

    /// Fetch one layer; `None` when it stopped because another layer failed.
    async fn fetch_layer(&self, registry: &RegistryClient, desc: &Descriptor, diff_id: &Digest, cancel: &AtomicBool) -> Result<Option<Fetched>> {
        let digest = descriptor_digest(desc)?;
        Compression::from_media_type(desc.media_type()).map_err(|e| e.within(format!("layer {digest}")))?;
        let bar = self.progress.layer(digest.short(), desc.size());
        let have_blob = self.store.content().contains(&digest);
        let have_layer = self.store.layers().contains(diff_id);
        if have_blob && have_layer {
            bar.finish("Already exists");
            return Ok(Some(Fetched { blob: None, layer: None }));
        }
        if cancel.load(Ordering::SeqCst) {
            return Ok(None);
        }
        if have_blob {
            bar.event("Extracting");
            let file = self.store.content().open(&digest)?;
            let layer = unpack_blocking(self.store, diff_id, file).await?;
            bar.finish("Pull complete");
            return Ok(Some(Fetched { blob: None, layer: Some(layer) }));
        }
        bar.event("Pulling fs layer");
        let mut ingest = self.store.content().ingest(&digest, Some(desc.size()))?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
        let unpacker = (!have_layer).then(|| {
            let (store, diff_id) = (Arc::clone(self.store), diff_id.clone());
            tokio::task::spawn_blocking(move || unpack_stream(&store, &diff_id, ChannelReader::new(rx)))
        });
        let download = Download { registry, digest: &digest, size: desc.size(), cancel, bar: &bar };
        let downloaded = download.run(&mut ingest, tx).await;
        let unpacked = match unpacker {
            Some(handle) => Some(handle.await.map_err(|e| Error::new(format!("unpack layer {diff_id}")).because(e))?),
            None => None,
        };
        if !downloaded? {
            return Ok(None);
        }
        // A wrong blob explains any unpack error that followed from it, so check it first.
        ingest.verify().map_err(|e| Error::from(e).within(format!("layer {digest}")))?;
        let layer = unpacked.transpose()?;
        bar.finish("Pull complete");
        Ok(Some(Fetched { blob: Some(ingest), layer }))
    }
}

/// A layer whose digests have verified, waiting to be made visible.
struct Fetched {
    blob: Option<Ingest>,
    layer: Option<PendingLayer>,
}

impl Fetched {
    fn commit(self) -> Result<()> {
        if let Some(blob) = self.blob {
            blob.commit()?;
        }
        if let Some(layer) = self.layer {
            layer.commit()?;
        }
        Ok(())
    }
}

/// One blob download into an ingest file, teed to an unpacker, retried and
/// resumed with `Range` after transient failures.
struct Download<'a> {
    registry: &'a RegistryClient,
    digest: &'a Digest,
    size: u64,
    cancel: &'a AtomicBool,
    bar: &'a LayerProgress,
}

impl Download<'_> {
    /// Returns whether the blob was fetched (false: cancelled).
    async fn run(&self, ingest: &mut Ingest, tx: tokio::sync::mpsc::Sender<Bytes>) -> Result<bool> {
        let mut tee = Some(tx);
        let mut attempt = 1;
        loop {
            let offset = ingest.written();
            let failure = match self.registry.open_blob(&self.digest.to_string(), offset).await {
                Ok(body) => match self.copy(body, ingest, &mut tee).await? {
                    CopyEnd::Complete => return Ok(true),
                    CopyEnd::Cancelled => return Ok(false),
                    CopyEnd::Cut(e) => e,
                },
                Err(e) => return Err(e),
            };
            // A body that ends with an error after its full length failed the
            // client's digest check; the ingest's own check will say so.
            if ingest.written() >= self.size {
                return Ok(true);
            }
            if attempt >= MAX_ATTEMPTS {
                return Err(Error::new(format!("download layer {} from {}", self.digest, self.registry.url()))
                    .because(format!("{e} (after {MAX_ATTEMPTS} attempts, {} of {} bytes)", ingest.written(), self.size, e = failure)));
            }
            self.bar.event(&format!("Retrying in {:?}", backoff(attempt)));
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
        }
    }

    /// Copy one response body into the ingest (and the unpacker).
    async fn copy(&self, mut body: crate::registry::client::BlobBody, ingest: &mut Ingest, tee: &mut Option<tokio::sync::mpsc::Sender<Bytes>>) -> Result<CopyEnd> {
        use std::io::Write;
        self.bar.set_position(ingest.written());
        self.bar.event("Downloading");
        while let Some(chunk) = body.stream.next().await {
            if self.cancel.load(Ordering::SeqCst) {
                return Ok(CopyEnd::Cancelled);
            }
            let mut chunk = match chunk {
                Ok(c) => c,
                Err(e) => return Ok(CopyEnd::Cut(e)),
            };
            if body.skip > 0 {
                // The registry ignored Range: drop what we already have.
                let n = body.skip.min(chunk.len() as u64) as usize;
                body.skip -= n as u64;
                chunk = chunk.slice(n..);
            }
            if ingest.written() + chunk.len() as u64 > self.size {
                return Err(Error::new(format!("download layer {}", self.digest))
                    .because(format!("registry sent more than the {} bytes the manifest declares", self.size)));
            }
            ingest.write_all(&chunk).context(|| format!("write layer {} to the store", self.digest))?;
            self.bar.advance(chunk.len() as u64);
            if let Some(tx) = tee {
                // A closed channel means the unpacker failed; keep downloading
                // so the blob digest can still be checked.
                if tx.send(chunk).await.is_err() {
                    *tee = None;
                }
            }
        }
        self.bar.event("Download complete");
        Ok(CopyEnd::Complete)
    }
}

/// How one response body ended.
enum CopyEnd {
    Complete,
    /// The stream broke off (retry and resume).
    Cut(std::io::Error),
    /// Another layer failed; stop quietly.
    Cancelled,
}

/// Unpack a compressed layer from any reader on a blocking thread.
async fn unpack_blocking(store: &Arc<Store>, diff_id: &Digest, input: impl Read + Send + 'static) -> Result<PendingLayer> {
    let (store, diff_id2) = (Arc::clone(store), diff_id.clone());
    tokio::task::spawn_blocking(move || unpack_stream(&store, &diff_id2, input))
        .await
        .map_err(|e| Error::new(format!("unpack layer {diff_id}")).because(e))?
}

/// Decompress (gzip, zstd or none, detected from the first bytes as Docker
/// does) and extract into a pending layer, verifying the diff_id.
fn unpack_stream(store: &Store, diff_id: &Digest, mut input: impl Read + Send) -> Result<PendingLayer> {
    let what = || format!("unpack layer {diff_id}");
    let mut head = Vec::with_capacity(4);
    (&mut input).take(4).read_to_end(&mut head).context(what)?;
    let stream = Cursor::new(head.clone()).chain(input);
    let unpacked = match Compression::sniff(&head) {
        Some(Compression::Gzip) => store.layers().unpack(diff_id, flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 16, stream))),
        Some(Compression::Zstd) => {
            let decoder = zstd::stream::read::Decoder::new(stream).context(what)?;
            store.layers().unpack(diff_id, decoder)
        }
        _ => store.layers().unpack(diff_id, stream),
    };
    unpacked.map_err(|e| Error::from(e).within(what()))
}

/// `Read` over the chunks a download task sends; EOF when the sender is gone.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl ChannelReader {
    fn new(rx: tokio::sync::mpsc::Receiver<Bytes>) -> ChannelReader {
        ChannelReader { rx, current: Bytes::new() }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

/// Check a fetched document against the digest it must have (when known)
/// and return its digest.
fn verify_document(bytes: &[u8], expected: Option<&str>, what: &str) -> Result<Digest> {
    let actual = Digest::of_bytes(bytes);
    if let Some(expected) = expected {
        if actual.to_string() != expected {
            return Err(Error::new(format!("verify {what} {expected}"))
                .because(format!("digest mismatch: the registry sent content with digest {actual}")));
        }
    }
    Ok(actual)
}

fn descriptor_digest(desc: &Descriptor) -> Result<Digest> {
    let text = desc.digest().to_string();
    text.parse::<Digest>().map_err(|e| Error::new(format!("read descriptor digest `{text}`")).because(e))
}

fn diff_ids(config_bytes: &[u8], manifest: &ImageManifest) -> Result<Vec<Digest>> {
    let config = parse_config(config_bytes, manifest)?;
    config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| d.parse::<Digest>().map_err(|e| Error::new(format!("read diff_id `{d}` in image config")).because(e)))
        .collect()
}

fn media_type_of(manifest: &ImageManifest) -> String {
    match manifest.media_type() {
        Some(t) => t.to_string(),
        // Docker's schema2 always names its type; an untyped one is OCI.
        None if manifest.config().media_type().to_string().contains("docker") => DOCKER_MANIFEST.to_string(),
        None => OCI_MANIFEST.to_string(),
    }
}

fn record_for(reference: &Reference, r: &Resolved) -> ImageRecord {
    let mut annotations = std::collections::BTreeMap::new();
    if let Some(index) = &r.index {
        annotations.insert(ANNOTATION_INDEX_DIGEST.to_string(), index.to_string());
    }
    annotations.insert(ANNOTATION_PULLED.to_string(), chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    ImageRecord {
        name: reference.to_string(),
        digest: r.digest.clone(),
        media_type: r.media_type.clone(),
        size: r.size,
        platform: r.platform.as_ref().map(|p| Platform { os: p.os.clone(), architecture: p.architecture.clone(), variant: p.variant.clone() }),
        annotations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_reader_reassembles_chunks() {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let writer = std::thread::spawn(move || {
            for part in [&b"hel"[..], b"", b"lo ", b"world"] {
                tx.blocking_send(Bytes::copy_from_slice(part)).unwrap();
            }
        });
        let mut out = String::new();
        ChannelReader::new(rx).read_to_string(&mut out).unwrap();
        writer.join().unwrap();
        assert_eq!(out, "hello world");
    }

    #[test]
    fn documents_verify_against_expected_digest() {
        let d = Digest::of_bytes(b"{}");
        assert_eq!(verify_document(b"{}", Some(&d.to_string()), "manifest").unwrap(), d);
        let e = verify_document(b"{ }", Some(&d.to_string()), "manifest").unwrap_err().to_string();
        assert!(e.contains("digest mismatch") && e.contains(&d.to_string()), "{e}");
    }
}
