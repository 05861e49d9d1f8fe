//! One layer of a pull, in one pass: blob bytes ⇢ the `ingest/` file
//! (hashed as written) and, teed through a channel to a blocking thread,
//! ⇢ decompression (gzip, zstd or none, sniffed from the first bytes as
//! Docker does) ⇢ extraction into a pending layer (hashed: the diff_id).
//! Nothing is visible until the caller commits both, after every digest of
//! the image has verified. Layers run a few at a time; the first failure
//! stops the others at their next chunk.

use std::io::{BufReader, Cursor, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use mini_store::content::Ingest;
use mini_store::digest::Digest;
use mini_store::layers::PendingLayer;
use mini_store::Store;
use oci_spec::image::{Descriptor, ImageManifest};

use super::descriptor_digest;
use super::progress::{LayerProgress, Progress};
use crate::error::{Context, Error, Result};
use crate::image::manifest::Compression;
use crate::registry::client::{BlobSink, Downloaded, RegistryClient};

/// Layers downloaded at once (Docker's default is 3).
const PARALLEL_LAYERS: usize = 3;

/// Chunks queued between a download and its unpacker (bounds the memory a
/// pull holds, see docs/benchmarks.md for the peak RSS).
const TEE_CHUNKS: usize = 16;

/// A layer whose digests have verified, waiting to be made visible.
pub struct Fetched {
    blob: Option<Ingest>,
    layer: Option<PendingLayer>,
}

impl Fetched {
    /// The blob and the unpacked layer, for [`mini_store::Store::publish`]
    /// (`None` for what the store already had).
    pub fn into_parts(self) -> (Option<Ingest>, Option<PendingLayer>) {
        (self.blob, self.layer)
    }
}

/// Fetch and unpack every layer of `manifest` not yet in the store.
pub async fn fetch_all(
    store: &Arc<Store>,
    registry: &RegistryClient,
    progress: &Progress,
    manifest: &ImageManifest,
    diff_ids: &[Digest],
) -> Result<Vec<Fetched>> {
    let cancel = AtomicBool::new(false);
    let jobs = manifest.layers().iter().zip(diff_ids).map(|(desc, diff_id)| {
        let cancel = &cancel;
        async move {
            let result = fetch(store, registry, progress, desc, diff_id, cancel).await;
            if result.is_err() {
                cancel.store(true, Ordering::SeqCst);
            }
            result
        }
    });
    let results: Vec<Result<Option<Fetched>>> =
        futures_util::stream::iter(jobs).buffered(PARALLEL_LAYERS).collect().await;
    // A cancelled layer (None) implies a failed one; report that failure.
    results.into_iter().filter_map(Result::transpose).collect()
}

/// Fetch one layer; `None` when it stopped because another layer failed.
async fn fetch(
    store: &Arc<Store>,
    registry: &RegistryClient,
    progress: &Progress,
    desc: &Descriptor,
    diff_id: &Digest,
    cancel: &AtomicBool,
) -> Result<Option<Fetched>> {
    let digest = descriptor_digest(desc)?;
    Compression::from_media_type(desc.media_type()).map_err(|e| e.within(format!("layer {digest}")))?;
    let bar = progress.layer(digest.short(), desc.size());
    let have_blob = store.content().contains(&digest);
    let have_layer = store.layers().contains(diff_id);
    if have_blob && have_layer {
        bar.finish("Already exists");
        return Ok(Some(Fetched { blob: None, layer: None }));
    }
    if cancel.load(Ordering::SeqCst) {
        return Ok(None);
    }
    if have_blob {
        bar.event("Extracting");
        let file = store.content().open(&digest)?;
        let layer = unpack_blocking(store, diff_id, file).await?;
        bar.finish("Pull complete");
        return Ok(Some(Fetched { blob: None, layer: Some(layer) }));
    }
    bar.event("Pulling fs layer");
    let ingest = store.content().ingest(&digest, Some(desc.size()))?;
    // A short queue: chunks can be hundreds of KiB, and a layer whose
    // extraction waits on the disk must hold back its download, not buffer it.
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(TEE_CHUNKS);
    let unpacker = (!have_layer).then(|| {
        let (store, diff_id) = (Arc::clone(store), diff_id.clone());
        tokio::task::spawn_blocking(move || unpack_stream(&store, &diff_id, ChannelReader::new(rx)))
    });
    let mut sink = LayerSink { ingest, tee: Some(tx), cancel, bar: &bar, digest: &digest };
    let downloaded = registry.download_blob(&digest, desc.size(), &mut sink).await;
    let LayerSink { ingest, tee, .. } = sink;
    drop(tee); // the unpacker sees the end of the stream
    let unpacked = match unpacker {
        Some(handle) => Some(handle.await.map_err(|e| Error::new(format!("unpack layer {diff_id}")).because(e))?),
        None => None,
    };
    if downloaded.map_err(|e| e.within(format!("layer {digest}")))? == Downloaded::Cancelled {
        return Ok(None);
    }
    // A wrong blob explains any unpack error that followed from it, so check it first.
    ingest.verify().map_err(|e| Error::from(e).within(format!("layer {digest}")))?;
    let layer = unpacked.transpose()?;
    bar.finish("Pull complete");
    Ok(Some(Fetched { blob: Some(ingest), layer }))
}

/// Where a layer's bytes go: the ingest file, and the unpacker's channel.
struct LayerSink<'a> {
    ingest: Ingest,
    /// None once the unpacker failed: the download goes on, so the blob's
    /// digest can still be checked.
    tee: Option<tokio::sync::mpsc::Sender<Bytes>>,
    cancel: &'a AtomicBool,
    bar: &'a LayerProgress,
    digest: &'a Digest,
}

impl BlobSink for LayerSink<'_> {
    fn written(&self) -> u64 {
        self.ingest.written()
    }

    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        self.ingest.write_all(&chunk).context(|| format!("write layer {} to the store", self.digest))?;
        self.bar.advance(chunk.len() as u64);
        if let Some(tx) = &self.tee {
            if tx.send(chunk).await.is_err() {
                self.tee = None;
            }
        }
        Ok(())
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    fn event(&self, what: &str) {
        self.bar.event(what);
    }
}

/// Unpack a compressed layer from any reader on a blocking thread.
async fn unpack_blocking(
    store: &Arc<Store>,
    diff_id: &Digest,
    input: impl Read + Send + 'static,
) -> Result<PendingLayer> {
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
        Some(Compression::Gzip) => {
            store.layers().unpack(diff_id, flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 16, stream)))
        }
        Some(Compression::Zstd) => {
            let decoder = zstd::stream::read::Decoder::new(stream).context(what)?;
            store.layers().unpack(diff_id, decoder)
        }
        _ => store.layers().unpack(diff_id, stream),
    };
    let pending = unpacked.map_err(|e| Error::from(e).within(what()))?;
    note_skipped(&pending);
    Ok(pending)
}

/// Say what a rootless unpack of a layer left out, in one line.
pub fn note_skipped(pending: &PendingLayer) {
    let s = pending.skipped();
    let mut parts = Vec::new();
    if s.devices > 0 {
        parts.push(format!("skipped {} device node(s), which a user namespace cannot make", s.devices));
    }
    if s.owners > 0 {
        parts.push(format!(
            "kept {} file(s) owned by ids your user namespace does not map as root's (add a range to /etc/subuid)",
            s.owners
        ));
    }
    if !parts.is_empty() {
        eprintln!("mini: note: layer {}: {}", &pending.diff_id().to_string()[..19], parts.join("; "));
    }
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
}
