//! `mini commit`: a container's overlay upper dir becomes a new layer on
//! top of its image's layers. The upper dir is read as it is (the
//! container is frozen meanwhile unless `--pause=false`, as Docker's),
//! written as an OCI layer by [`tree`](super::tree) (whiteouts and opaque
//! dirs in OCI form, ids shifted back for `--userns=auto`), gzip-compressed
//! while hashed straight into a content-store ingest, then config (the
//! image's, with the new diff_id, a history entry and the `--change`
//! edits), manifest and record through the one image builder.

use std::path::Path;

use mini_store::digest::Digest;
use mini_store::images::Platform;
use mini_store::Store;
use serde_json::{json, Value};

use super::record::Record;
use super::tree::{self, Mode, TarWriter};
use crate::config::Config;
use crate::error::{Context, Error, Result};
use crate::image::build::{self, Layer, LayerSink, NewImage};
use crate::image::local::LocalImage;
use crate::image::reference::Reference;

/// What `mini commit` was asked besides the container.
#[derive(Debug, Default)]
pub struct CommitOptions {
    pub name: Option<String>,
    pub changes: Vec<String>,
    pub message: Option<String>,
    pub author: Option<String>,
    /// Freeze a running container while its upper dir is read (`--pause`).
    pub pause: bool,
}

/// Commit container `key`; returns the new image's id.
pub fn commit(config: &Config, key: &str, opts: &CommitOptions) -> Result<Digest> {
    let what = || format!("commit {key}");
    let name = opts.name.as_deref().map(|n| Reference::parse(n).map(|r| r.to_string())).transpose()?;
    let store = Store::open(&config.root)?;
    let _gc = store.lock_gc_shared()?;
    let c = super::find(&store, "commit", key)?;
    let cfg = c.config().map_err(|e| Error::new(what()).because(e))?;
    let record = Record::of(&c, &cfg)?;
    let image = LocalImage::load(&store, &cfg.image_id)
        .map_err(|e| e.within(what()).hint("the container's image was removed"))?;
    let mut sink = TarWriter::new(LayerSink::new(&store)?, Mode::Layer, tree::id_base(&record));
    let _frozen = opts.pause.then(|| Frozen::of(&c, &record)).flatten();
    sink.walk(&c.upper(), Path::new(""), 0).map_err(|e| Error::new(what()).because(e))?;
    drop(_frozen);
    let layer = sink.finish().context(what)?.finish(&store).map_err(|e| e.within(what()))?;
    let base: Value = serde_json::from_slice(&store.content().read(&image.id)?).context(what)?;
    let created_by = record.process.argv.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ");
    let new_config = next_config(base, &layer, &created_by, opts)?;
    let mut layers = base_layers(&image)?;
    layers.push(layer);
    let platform = image.record.platform.clone().unwrap_or_else(|| Platform {
        os: image.config.os().to_string(),
        architecture: image.config.architecture().to_string(),
        variant: image.config.variant().clone(),
    });
    let new = NewImage { config: new_config, layers: &layers, platform, name, manifest_annotations: json!({}) };
    let id = build::write_image(&store, new).map_err(|e| e.within(what()))?.1;
    super::events::container(&c, "commit", &[("imageID", &id.to_string())]);
    Ok(id)
}

/// A running, unpaused container frozen for as long as this lives (as
/// Docker's commit pauses it), so its upper dir is read at one instant.
/// None when it does not run, is paused already, or has no freezer cgroup
/// (rootless without delegation): then it is read as it runs.
struct Frozen<'a>(&'a Record);

impl<'a> Frozen<'a> {
    fn of(c: &mini_store::containers::Container, record: &'a Record) -> Option<Frozen<'a>> {
        let state = c.state().ok()?;
        if !super::state::is_running(&state) || state.paused {
            return None;
        }
        record.container.cgroups.freeze(true).ok().map(|()| Frozen(record))
    }
}

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        let _ = self.0.container.cgroups.freeze(false);
    }
}

/// The image's layers as its manifest lists them, with their diff_ids.
fn base_layers(image: &LocalImage) -> Result<Vec<Layer>> {
    image
        .manifest
        .layers()
        .iter()
        .zip(&image.diff_ids)
        .map(|(d, diff_id)| {
            Ok(Layer {
                media_type: build::oci_layer_type(d.media_type().as_ref()),
                digest: crate::pull::descriptor_digest(d)?,
                size: d.size(),
                diff_id: diff_id.clone(),
            })
        })
        .collect()
}

/// The image's config with the new layer, a history entry and the changes.
fn next_config(mut config: Value, layer: &Layer, created_by: &str, opts: &CommitOptions) -> Result<Value> {
    let created = build::now();
    config["created"] = json!(created);
    if let Some(author) = &opts.author {
        config["author"] = json!(author);
    }
    let diff_ids = &mut config["rootfs"]["diff_ids"];
    match diff_ids.as_array_mut() {
        Some(list) => list.push(json!(layer.diff_id.to_string())),
        None => *diff_ids = json!([layer.diff_id.to_string()]),
    }
    let mut entry = json!({"created": created, "created_by": created_by});
    if let Some(a) = &opts.author {
        entry["author"] = json!(a);
    }
    if let Some(m) = &opts.message {
        entry["comment"] = json!(m);
    }
    match config["history"].as_array_mut() {
        Some(h) => h.push(entry),
        None => config["history"] = json!([entry]),
    }
    if !config["config"].is_object() {
        config["config"] = json!({});
    }
    let inner = config["config"].as_object_mut().expect("just made an object");
    crate::image::change::apply(inner, &opts.changes)?;
    Ok(config)
}
