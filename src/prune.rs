//! Garbage collection of the store: everything no image record (and, once
//! containers exist, no container) references is removed.

use mini_store::gc::{self, GcReport};
use mini_store::Store;

use crate::error::Result;

/// Remove unreferenced blobs and layers, holding the store's GC lock so no
/// pull is half-way through committing.
pub fn unused(store: &Store) -> Result<GcReport> {
    let _lock = store.lock_gc_exclusive()?;
    let mut roots = gc::referenced_by_images(store)?;
    // Containers keep their image's layers and blobs alive.
    let containers = store.containers().map_err(|e| crate::error::Error::new("list containers").because(e))?;
    let (layers, blobs) = containers.roots().map_err(|e| crate::error::Error::new("list containers").because(e))?;
    roots.layers.extend(layers.iter().filter_map(|l| l.parse().ok()));
    roots.blobs.extend(blobs.iter().filter_map(|b| b.parse().ok()));
    Ok(gc::sweep(store, &roots)?)
}
