//! `mini push`: the story, in the order a registry needs it: authenticate
//! for push, then each layer (already there? mountable from another
//! repository of the registry that this store knows holds it? else
//! upload) and the config, and the manifest last, so a reader of the tag
//! never finds a manifest whose blobs are missing. The manifest goes up
//! byte for byte as the store holds it (a Docker v2s2 image keeps its
//! digest) unless `--format oci` asks for the OCI media types.

use std::sync::Arc;

use mini_store::digest::Digest;
use mini_store::Store;
use serde_json::Value;

use crate::config::Config;
use crate::error::{Context, Error, Result};
use crate::image::local::LocalImage;
use crate::image::manifest::{DOCKER_MANIFEST, OCI_MANIFEST};
use crate::image::reference::Reference;
use crate::pull::progress::Progress;
use crate::registry::auth::CredentialStore;
use crate::registry::upload::Uploader;

#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    pub quiet: bool,
    /// `--format oci`: convert a Docker v2s2 manifest to OCI media types.
    pub oci: bool,
}

/// Push image `text`; returns the pushed manifest's digest.
pub fn push(config: &Config, text: &str, opts: &PushOptions) -> Result<Digest> {
    crate::sys::process::ignore_sigpipe();
    let store = Store::open(&config.root)?;
    let reference = Reference::parse(text)?;
    let image = LocalImage::load(&store, text)?;
    let what = || format!("push {reference}");
    let stored = store.content().read(&image.record.digest).map_err(|e| Error::new(what()).because(e))?;
    let (manifest, media_type) = if opts.oci && image.record.media_type == DOCKER_MANIFEST {
        (to_oci(&stored).map_err(|e| e.within(what()))?, OCI_MANIFEST.to_string())
    } else {
        (stored, image.record.media_type.clone())
    };
    let uploader = Uploader::new(config, &reference, &CredentialStore::load()?)?;
    let progress = Progress::new(opts.quiet);
    progress.say(&format!("The push refers to repository [{}/{}]", reference.registry, reference.repository));
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context(|| "start the async runtime")?;
    let story = async {
        uploader.authenticate().await?;
        let mounts = mount_sources(&store, &reference)?;
        // Every blob at once, as docker push and skopeo do: the registry
        // hashes and stores one while mini sends the next. The config goes
        // with them (shown as docker shows it: not at all); only the
        // manifest has to wait for all of them.
        let quiet = Progress::Quiet;
        let mut blobs = Vec::new();
        for layer in image.manifest.layers() {
            let digest: Digest = layer.digest().to_string().parse().map_err(|e| Error::new(what()).because(e))?;
            blobs.push((digest, layer.size(), &progress));
        }
        let config_blob = image.manifest.config();
        let digest: Digest = config_blob.digest().to_string().parse().map_err(|e| Error::new(what()).because(e))?;
        blobs.push((digest, config_blob.size(), &quiet));
        let sends = blobs.iter().map(|(digest, size, shown)| send(&store, &uploader, shown, digest, *size, &mounts));
        futures_util::future::try_join_all(sends).await?;
        uploader.manifest(manifest.clone(), &media_type).await
    };
    let pushed = runtime.block_on(story);
    drop(runtime);
    pushed.map_err(|e| e.within(what()))?;
    let digest = Digest::of_bytes(&manifest);
    let tag = reference.tag.as_deref().unwrap_or("latest");
    progress.say(&format!("{tag}: digest: {digest} size: {}", manifest.len()));
    let name = reference.to_string();
    crate::container::events::emit(store.root(), "image", "push", &name, &[("name", &name)]);
    Ok(digest)
}

/// One blob, shown as Docker shows a layer: already there, mounted from
/// another repository, or pushed with a progress bar.
async fn send(
    store: &Store,
    up: &Uploader,
    progress: &Progress,
    digest: &Digest,
    size: u64,
    mounts: &[(Digest, String)],
) -> Result<()> {
    let line = progress.layer(&digest.hex()[..12], size);
    if up.exists(digest).await? {
        line.finish("Layer already exists");
        return Ok(());
    }
    for (_, repo) in mounts.iter().filter(|(d, _)| d == digest) {
        if up.mount(digest, repo).await {
            line.finish(&format!("Mounted from {repo}"));
            return Ok(());
        }
    }
    line.event("Pushing");
    let shown = Arc::new(line);
    let bar = shown.clone();
    let sent = Arc::new(move |n: u64| bar.set_position(n));
    up.upload(store.content().path(digest), digest, size, sent).await?;
    shown.finish("Pushed");
    Ok(())
}

/// (blob, repository) pairs for cross-repository mounts: the layers of
/// every other image this store pulled from the same registry.
fn mount_sources(store: &Store, target: &Reference) -> Result<Vec<(Digest, String)>> {
    let mut out = Vec::new();
    for record in store.images().list()? {
        let Ok(r) = Reference::parse(&record.name) else { continue };
        if r.registry != target.registry || r.repository == target.repository {
            continue;
        }
        let Ok(image) = LocalImage::from_record(store, record) else { continue };
        for layer in image.manifest.layers() {
            if let Ok(d) = layer.digest().to_string().parse::<Digest>() {
                out.push((d, r.repository.clone()));
            }
        }
    }
    Ok(out)
}

/// A Docker v2s2 manifest with OCI media types (same blobs, new digest).
fn to_oci(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut v: Value = serde_json::from_slice(bytes).map_err(|e| Error::new("read the manifest").because(e))?;
    v["mediaType"] = Value::from(OCI_MANIFEST);
    v["config"]["mediaType"] = Value::from("application/vnd.oci.image.config.v1+json");
    if let Some(layers) = v["layers"].as_array_mut() {
        for l in layers {
            let oci = match l["mediaType"].as_str() {
                Some("application/vnd.docker.image.rootfs.diff.tar.gzip") => {
                    "application/vnd.oci.image.layer.v1.tar+gzip"
                }
                Some("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip") => {
                    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
                }
                Some(other) => other,
                None => "application/vnd.oci.image.layer.v1.tar+gzip",
            }
            .to_string();
            l["mediaType"] = Value::from(oci);
        }
    }
    serde_json::to_vec(&v).map_err(|e| Error::new("encode the manifest").because(e))
}

/// `mini tag SOURCE TARGET`: one more name for an image (a record with
/// the same manifest); returns the target's full name.
pub fn tag(store: &Store, source: &str, target: &str) -> Result<String> {
    let image = LocalImage::load(store, source)?;
    let target = Reference::parse(target)?;
    if target.digest.is_some() {
        return Err(Error::new(format!("tag {source} {target}")).because("a tag cannot name a digest"));
    }
    let mut record = image.record.clone();
    record.name = target.to_string();
    store.images().put(record)?;
    crate::container::events::emit(
        store.root(),
        "image",
        "tag",
        &image.id.to_string(),
        &[("name", &target.to_string())],
    );
    Ok(target.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_manifests_convert_to_oci_media_types() {
        let v2 = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
            "config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:aa","size":1},
            "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"sha256:bb","size":2}]}"#;
        let oci: Value = serde_json::from_slice(&to_oci(v2).unwrap()).unwrap();
        assert_eq!(oci["mediaType"], OCI_MANIFEST);
        assert_eq!(oci["config"]["mediaType"], "application/vnd.oci.image.config.v1+json");
        assert_eq!(oci["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");
        assert_eq!(oci["layers"][0]["digest"], "sha256:bb");
    }
}
