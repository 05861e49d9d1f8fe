//! Garbage collection: everything not reachable from a root can be removed.
//!
//! Roots come from index.json: every descriptor (mini's image records and entries
//! written by other tools) and, for records, the index blob named by the
//! `io.mini.index-digest` annotation. From each manifest we keep its config and
//! layer blobs, and from each config the `rootfs.diff_ids` (unpacked layers).
//! Callers add container roots (layers used by containers) before sweeping.
//!
//! Concurrency: the caller must hold the exclusive `gc.lock` (see
//! [`crate::Store::lock_gc_exclusive`]) while computing roots and sweeping, and
//! pulls hold it shared, so in-flight content is never mistaken for garbage.

use std::collections::HashSet;

use serde_json::Value;

use crate::digest::Digest;
use crate::error::{Result, StoreError};
use crate::images::ANNOTATION_INDEX_DIGEST;
use crate::Store;

/// What must be kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roots {
    pub blobs: HashSet<Digest>,
    pub layers: HashSet<Digest>,
}

/// What a sweep removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub blobs_removed: usize,
    pub layers_removed: usize,
    pub bytes_freed: u64,
}

/// Nesting limit for index → manifest → config walks (guards against cycles).
const MAX_DEPTH: usize = 4;

/// Remove every blob and layer that no image record and no container
/// references, holding the exclusive GC lock so no pull is half-way
/// through committing and no `run` is between choosing an image and
/// recording its container.
pub fn unused(store: &Store) -> Result<GcReport> {
    let _lock = store.lock_gc_exclusive()?;
    let mut roots = referenced_by_images(store)?;
    let (layers, blobs) = store.containers()?.roots()?;
    roots.layers.extend(layers.iter().filter_map(|l| l.parse().ok()));
    roots.blobs.extend(blobs.iter().filter_map(|b| b.parse().ok()));
    sweep(store, &roots)
}

/// Blobs and layers reachable from index.json.
pub fn referenced_by_images(store: &Store) -> Result<Roots> {
    let mut roots = Roots::default();
    for d in store.images().all_digests()? {
        walk(store, &d, &mut roots, 0)?;
    }
    for rec in store.images().list()? {
        if let Some(idx) = rec.annotations.get(ANNOTATION_INDEX_DIGEST) {
            // A malformed annotation protects nothing, but must not stop GC.
            if let Ok(d) = idx.parse::<Digest>() {
                roots.blobs.insert(d);
            }
        }
    }
    Ok(roots)
}

/// Keeps `d` and, if it is a manifest or index we can read, what it references.
fn walk(store: &Store, d: &Digest, roots: &mut Roots, depth: usize) -> Result<()> {
    if !roots.blobs.insert(d.clone()) || depth > MAX_DEPTH {
        return Ok(());
    }
    let bytes = match store.content().read(d) {
        Ok(b) => b,
        Err(StoreError::NotFound { .. }) => return Ok(()), // nothing below it to protect
        Err(e) => return Err(e),
    };
    let Ok(doc) = serde_json::from_slice::<Value>(&bytes) else {
        return Ok(()); // a layer or other non-JSON blob referenced directly
    };
    for m in descriptors(doc.get("manifests")) {
        walk(store, &m, roots, depth + 1)?;
    }
    for l in descriptors(doc.get("layers")) {
        roots.blobs.insert(l);
    }
    if let Some(cfg) = doc.get("config").and_then(|c| c.get("digest")).and_then(Value::as_str) {
        let cfg: Digest = cfg.parse()?;
        roots.blobs.insert(cfg.clone());
        add_diff_ids(store, &cfg, roots)?;
    }
    Ok(())
}

fn add_diff_ids(store: &Store, cfg: &Digest, roots: &mut Roots) -> Result<()> {
    let bytes = match store.content().read(cfg) {
        Ok(b) => b,
        Err(StoreError::NotFound { .. }) => return Ok(()),
        Err(e) => return Err(e),
    };
    let doc: Value = serde_json::from_slice(&bytes)
        .map_err(|e| StoreError::Corrupt { what: format!("image config {cfg}"), reason: e.to_string() })?;
    let ids = doc.get("rootfs").and_then(|r| r.get("diff_ids")).and_then(Value::as_array);
    for id in ids.into_iter().flatten() {
        let s = id.as_str().unwrap_or_default();
        roots.layers.insert(s.parse()?);
    }
    Ok(())
}

fn descriptors(v: Option<&Value>) -> Vec<Digest> {
    v.and_then(Value::as_array).into_iter().flatten().filter_map(|d| d.get("digest")?.as_str()?.parse().ok()).collect()
}

/// Removes every blob and layer not in `roots`.
pub fn sweep(store: &Store, roots: &Roots) -> Result<GcReport> {
    let mut report = GcReport::default();
    for d in store.content().list()? {
        if roots.blobs.contains(&d) {
            continue;
        }
        report.bytes_freed += store.content().size(&d)?.unwrap_or(0);
        store.content().remove(&d)?;
        report.blobs_removed += 1;
    }
    for d in store.layers().list()? {
        if roots.layers.contains(&d) {
            continue;
        }
        report.bytes_freed += store.layers().meta(&d).ok().flatten().map(|m| m.size).unwrap_or(0);
        store.layers().remove(&d)?;
        report.layers_removed += 1;
    }
    Ok(report)
}
