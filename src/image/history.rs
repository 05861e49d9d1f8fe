//! `mini history`: an image's history entries from its config, newest
//! first, with the size of the layer each non-empty entry made.
//!
//! Sizes are the unpacked layers' uncompressed tar sizes (the store's
//! layer meta), as Docker shows them: Docker's history reports each
//! layer's diff size, not the compressed blob size of the manifest, which
//! would change with the compression a registry happened to use. Entries
//! marked `empty_layer` made no layer (size 0). As Docker does for a
//! pulled image, only the top row names an image id; the others are
//! `<missing>`, since no local image stands for them.

use mini_store::Store;

use crate::error::Result;
use crate::image::local::LocalImage;

/// One history row, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The image id for the top row, None (`<missing>`) below it.
    pub id: Option<String>,
    pub created: Option<String>,
    pub created_by: String,
    pub size: u64,
    pub comment: String,
}

/// An entry as the config records it: (created, created_by, comment, empty_layer).
pub type Entry = (Option<String>, Option<String>, Option<String>, bool);

/// Rows for `entries` (oldest first, as configs list them) over layer
/// sizes (bottom first): each non-empty entry takes the next layer.
pub fn rows(image_id: &str, entries: &[Entry], layer_sizes: &[u64]) -> Vec<Row> {
    let mut sizes = layer_sizes.iter();
    let mut out: Vec<Row> = entries
        .iter()
        .map(|(created, by, comment, empty)| Row {
            id: None,
            created: created.clone(),
            created_by: by.clone().unwrap_or_default(),
            size: if *empty { 0 } else { sizes.next().copied().unwrap_or(0) },
            comment: comment.clone().unwrap_or_default(),
        })
        .collect();
    out.reverse();
    if let Some(top) = out.first_mut() {
        top.id = Some(image_id.to_string());
    }
    out
}

/// The history of image `text` (reference or id prefix).
pub fn history(store: &Store, text: &str) -> Result<(LocalImage, Vec<Row>)> {
    let image = LocalImage::load(store, text).map_err(|e| e.within(format!("history {text}")))?;
    let entries: Vec<Entry> = image
        .config
        .history()
        .iter()
        .flatten()
        .map(|h| (h.created().clone(), h.created_by().clone(), h.comment().clone(), h.empty_layer().unwrap_or(false)))
        .collect();
    let mut sizes = Vec::new();
    for d in &image.diff_ids {
        sizes.push(store.layers().meta(d)?.map(|m| m.size).unwrap_or(0));
    }
    let rows = rows(&image.id.to_string(), &entries, &sizes);
    Ok((image, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_first_with_sizes_for_non_empty_entries() {
        let e = |by: &str, empty| (Some("2026-01-01T00:00:00Z".to_string()), Some(by.to_string()), None, empty);
        let entries = vec![e("ADD rootfs", false), e("ENV A=1", true), e("COPY x", false)];
        let got = rows("sha256:abc", &entries, &[100, 7]);
        let view: Vec<(Option<&str>, &str, u64)> =
            got.iter().map(|r| (r.id.as_deref(), r.created_by.as_str(), r.size)).collect();
        assert_eq!(view, [(Some("sha256:abc"), "COPY x", 7), (None, "ENV A=1", 0), (None, "ADD rootfs", 100)]);
        assert_eq!(rows("x", &[], &[]), vec![]);
    }
}
