//! `mini pull`: resolve a reference to one platform's manifest, fetch the
//! config and the missing layers (several at once, see [`layer`]), and
//! record the image. The registry client hands over verified manifests and
//! owns retries; this file is the story.
//!
//! Nothing becomes visible until every digest of the image has verified:
//! layers, blobs, the config and the manifests are made durable together
//! (one syncfs, [`Store::publish`]) and only then renamed into place, and
//! the image record is written last.
//! An interrupted pull therefore leaves temp files that the next `mini`
//! sweeps, and a store that still reads as before.
//!
//! The async side (tokio, current-thread) ends before `pull` returns, and its
//! blocking threads are joined when the runtime drops, so `mini run` can pull
//! and then clone with no other thread alive.

pub mod alpine;
pub mod layer;
pub mod progress;

use std::sync::Arc;

use bytes::Bytes;
use mini_store::digest::Digest;
use mini_store::images::{ImageRecord, Platform, ANNOTATION_INDEX_DIGEST, ANNOTATION_PULLED};
use mini_store::Store;
use oci_spec::image::{Descriptor, ImageManifest};

use crate::config::Config;
use crate::error::{Context, Error, Result};
use crate::image::local::LocalImage;
use crate::image::manifest::{choose_platform, parse_config, Manifest, PlatformSpec, DOCKER_MANIFEST, OCI_MANIFEST};
use crate::image::reference::Reference;
use crate::registry::auth::CredentialStore;
use crate::registry::client::{Document, RegistryClient};
use progress::Progress;

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
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context(|| "start the async runtime")?;
    let pulled = runtime.block_on(Puller { store: &store, config, opts, progress: &progress }.pull(&reference));
    drop(runtime); // joins its blocking threads: none may outlive the pull
    let record = pulled.map_err(|e| e.within(format!("pull {reference}")))?;
    let name = reference.to_string();
    crate::container::events::emit(store.root(), "image", "pull", &name, &[("name", &name)]);
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
        let fetched = layer::fetch_all(self.store, &registry, self.progress, &resolved.manifest, &diff_ids).await?;
        // Everything verified: make it durable, then visible (one wait for
        // all of it), content before the record naming it.
        let (mut blobs, mut layers) = (Vec::new(), Vec::new());
        for layer in fetched {
            let (blob, unpacked) = layer.into_parts();
            blobs.extend(blob);
            layers.extend(unpacked);
        }
        blobs.extend(self.store.content().stage(&config_bytes, &config_digest)?);
        for (bytes, digest) in resolved.documents.iter().rev() {
            blobs.extend(self.store.content().stage(bytes, digest)?);
        }
        self.store.publish(blobs, layers)?;
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
        let Document { bytes, digest } = registry.manifest(reference.digest.as_deref()).await?;
        match Manifest::parse(&bytes, None)? {
            Manifest::Image(manifest) => Ok(Resolved {
                media_type: media_type_of(&manifest),
                size: bytes.len() as u64,
                documents: vec![(bytes, digest.clone())],
                manifest: *manifest,
                digest,
                index: None,
                platform: None,
            }),
            Manifest::Index(index) => {
                let want = self.opts.platform.clone().unwrap_or_else(PlatformSpec::host);
                let entry = choose_platform(&index, &want)?;
                let Document { bytes: inner, digest: inner_digest } =
                    registry.manifest_by_digest(&descriptor_digest(entry)?).await?;
                let Manifest::Image(manifest) = Manifest::parse(&inner, None)? else {
                    return Err(Error::new(format!("read manifest {inner_digest}"))
                        .because("an index inside an index is not supported"));
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
                    manifest: *manifest,
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
        // The store's content verified when it went in; the registry's verifies on the way.
        let bytes = if self.store.content().contains(&digest) {
            Bytes::from(self.store.content().read(&digest)?)
        } else {
            registry.small_blob(&digest, desc.size()).await?
        };
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
}

pub(crate) fn descriptor_digest(desc: &Descriptor) -> Result<Digest> {
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
    annotations
        .insert(ANNOTATION_PULLED.to_string(), chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    ImageRecord {
        name: reference.to_string(),
        digest: r.digest.clone(),
        media_type: r.media_type.clone(),
        size: r.size,
        platform: r.platform.as_ref().map(|p| Platform {
            os: p.os.clone(),
            architecture: p.architecture.clone(),
            variant: p.variant.clone(),
        }),
        annotations,
    }
}
