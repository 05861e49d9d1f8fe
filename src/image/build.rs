//! The one way mini makes an image itself (the Alpine minirootfs, `import`,
//! `commit`): a layer from a tar stream becomes a gzip blob and a diff_id,
//! then config, manifest and record are written, in that order, so a
//! failure at any step leaves at most unreferenced content (which
//! `mini image prune` removes) and never a record naming missing content.

use std::collections::BTreeMap;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use flate2::write::GzEncoder;
use mini_store::content::Ingest;
use mini_store::digest::{Digest, Sha256Reader, Sha256Writer};
use mini_store::images::{ImageRecord, Platform, ANNOTATION_PULLED};
use mini_store::layers::PendingLayer;
use mini_store::Store;
use serde_json::{json, Value};

use crate::config::Config;
use crate::error::{Context, Error, Result};
use crate::image::manifest::{PlatformSpec, OCI_MANIFEST};
use crate::image::reference::Reference;

pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// A layer in the store: its blob (as the manifest lists it) and diff_id.
#[derive(Debug, Clone)]
pub struct Layer {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub diff_id: Digest,
}

impl Layer {
    fn descriptor(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest.to_string(), "size": self.size})
    }
}

/// Where an uncompressed tar stream is written to become a layer: hashed
/// (the diff_id), gzip-compressed and hashed again (the blob digest) in one
/// pass, straight into a content-store ingest.
pub struct LayerSink {
    out: Sha256Writer<GzEncoder<Ingest>>,
}

impl LayerSink {
    pub fn new(store: &Store) -> Result<LayerSink> {
        let ingest = store.content().ingest_any()?;
        Ok(LayerSink { out: Sha256Writer::new(GzEncoder::new(ingest, flate2::Compression::fast())) })
    }

    /// Unpacks the layer from the written blob (what runs is what the
    /// manifest names), and only when that worked commits both: a stream
    /// that is not a tar leaves nothing behind.
    pub fn finish(self, store: &Store) -> Result<Layer> {
        let (gz, diff_id, _) = self.out.finish();
        let mut ingest = gz.finish().context(|| "compress the layer")?;
        ingest.flush().context(|| "write the layer")?;
        let pending = unpack_file(store, ingest.temp_path(), Some(&diff_id))?.1;
        let size = ingest.written();
        let digest = commit(ingest, pending)?;
        Ok(Layer { media_type: OCI_LAYER_GZIP.into(), digest, size, diff_id })
    }
}

impl Write for LayerSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// A layer from a whole tar stream (plain or gzip).
pub fn layer_from_tar(store: &Store, tar: impl Read) -> Result<Layer> {
    let mut sink = LayerSink::new(store)?;
    std::io::copy(&mut decompressed(tar)?, &mut sink).context(|| "read the tar stream")?;
    sink.finish(store)
}

/// `r` as an uncompressed stream: gzip is sniffed from its first bytes.
pub fn decompressed<'a>(r: impl Read + 'a) -> Result<Box<dyn Read + 'a>> {
    let mut r = BufReader::with_capacity(256 * 1024, r);
    let head = io::BufRead::fill_buf(&mut r).context(|| "read the stream")?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) { Box::new(flate2::read::MultiGzDecoder::new(r)) } else { Box::new(r) })
}

/// Makes a verified blob and its unpacked layer visible, blob first;
/// returns the blob's digest.
pub fn commit(blob: Ingest, layer: Option<PendingLayer>) -> Result<Digest> {
    let digest = blob.commit_computed()?;
    if let Some(layer) = layer {
        layer.commit()?;
    }
    Ok(digest)
}

/// Unpacks a stored layer blob (plain or gzip) unless the layer is there;
/// returns its diff_id.
pub fn unpack_blob(store: &Store, blob: &Digest, diff_id: Option<&Digest>) -> Result<Digest> {
    let (diff_id, pending) = unpack_file(store, &store.content().path(blob), diff_id)?;
    if let Some(p) = pending {
        p.commit()?;
    }
    Ok(diff_id)
}

/// Unpacks a layer blob file (plain or gzip) into a pending layer, `None`
/// when the store has the layer already. Without a known diff_id the file
/// is read twice: once to hash it, once to unpack (the store names a layer
/// by its digest before it starts).
pub fn unpack_file(store: &Store, path: &Path, diff_id: Option<&Digest>) -> Result<(Digest, Option<PendingLayer>)> {
    // The path may be an ingest file: the store's error names the layer.
    let what = || "unpack the layer".to_string();
    let open = || std::fs::File::open(path).context(|| format!("open {}", path.display()));
    let diff_id = match diff_id {
        Some(d) => d.clone(),
        None => {
            let mut hashing = Sha256Reader::new(decompressed(open()?)?);
            io::copy(&mut hashing, &mut io::sink()).context(what)?;
            hashing.finish().0
        }
    };
    if store.layers().contains(&diff_id) {
        return Ok((diff_id, None));
    }
    let pending = store.layers().unpack(&diff_id, decompressed(open()?)?).map_err(|e| Error::from(e).within(what()))?;
    crate::pull::layer::note_skipped(&pending);
    Ok((diff_id, Some(pending)))
}

/// A new image's config, layers and name, ready to be written.
pub struct NewImage<'a> {
    pub config: Value,
    pub layers: &'a [Layer],
    pub platform: Platform,
    /// `None`: untagged (the record is named by the image id).
    pub name: Option<String>,
    pub manifest_annotations: Value,
}

/// Writes config, manifest and record; returns the record and the image id.
pub fn write_image(store: &Store, image: NewImage) -> Result<(ImageRecord, Digest)> {
    let config_bytes = serde_json::to_vec(&image.config).context(|| "encode image config")?;
    let id = store.content().put(&config_bytes)?;
    let mut manifest = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": id.to_string(), "size": config_bytes.len()},
        "layers": image.layers.iter().map(Layer::descriptor).collect::<Vec<_>>(),
    });
    if image.manifest_annotations.as_object().is_some_and(|o| !o.is_empty()) {
        manifest["annotations"] = image.manifest_annotations;
    }
    let manifest_bytes = serde_json::to_vec(&manifest).context(|| "encode image manifest")?;
    let digest = store.content().put(&manifest_bytes)?;
    let record = ImageRecord {
        name: image.name.unwrap_or_else(|| crate::image::local::untagged_name(&id)),
        digest,
        media_type: OCI_MANIFEST.to_string(),
        size: manifest_bytes.len() as u64,
        platform: Some(image.platform),
        annotations: BTreeMap::from([(ANNOTATION_PULLED.to_string(), now())]),
    };
    store.images().put(record.clone())?;
    Ok((record, id))
}

/// Now as the configs and history entries write it.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The OCI media type of a layer descriptor (Docker's names mapped to
/// OCI's: a manifest mini writes is OCI throughout).
pub fn oci_layer_type(media_type: &str) -> String {
    match media_type {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => OCI_LAYER_GZIP.into(),
        "application/vnd.docker.image.rootfs.diff.tar" => "application/vnd.oci.image.layer.v1.tar".into(),
        other => other.into(),
    }
}

/// `mini import`: a one-layer image from a rootfs tarball (plain or gzip;
/// `-` is stdin), the inverse of `mini export`. Returns the image id.
pub fn import(
    config: &Config,
    source: &str,
    name: Option<&str>,
    changes: &[String],
    message: Option<&str>,
) -> Result<Digest> {
    let what = || format!("import {source}");
    let name = name.map(|n| Reference::parse(n).map(|r| r.to_string())).transpose()?;
    let created = now();
    let mut image_config = json!({
        "architecture": PlatformSpec::host().architecture, "os": "linux", "created": created,
        "config": {},
        "history": [{"created": created, "created_by": "", "comment": message.map(String::from).unwrap_or_else(|| format!("Imported from {source}"))}],
    });
    let inner = image_config["config"].as_object_mut().expect("an object");
    crate::image::change::apply(inner, changes)?;
    let store = Store::open(&config.root)?;
    let _gc = store.lock_gc_shared()?;
    let layer = match source {
        "-" => layer_from_tar(&store, io::stdin().lock()),
        path => layer_from_tar(&store, std::fs::File::open(path).context(|| format!("open {path}"))?),
    }
    .map_err(|e| e.within(what()).hint("give a tar archive of a root filesystem, e.g. from `mini export`"))?;
    image_config["rootfs"] = json!({"type": "layers", "diff_ids": [layer.diff_id.to_string()]});
    let host = PlatformSpec::host();
    let platform = Platform { os: host.os, architecture: host.architecture, variant: host.variant };
    let image = NewImage { config: image_config, layers: &[layer], platform, name, manifest_annotations: json!({}) };
    let id = write_image(&store, image).map_err(|e| e.within(what()))?.1;
    crate::container::events::emit(store.root(), "image", "import", &id.to_string(), &[]);
    Ok(id)
}
