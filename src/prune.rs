//! Garbage collection of the store: everything no image record (and, once
//! containers exist, no container) references is removed.

use mini_store::gc::{self, GcReport};
use mini_store::Store;

use crate::error::Result;

/// Remove unreferenced blobs and layers, holding the store's GC lock so no
/// pull is half-way through committing.
pub fn unused(store: &Store) -> Result<GcReport> {
    let _lock = store.lock_gc_exclusive()?;
    let roots = gc::referenced_by_images(store)?;
    Ok(gc::sweep(store, &roots)?)
}
