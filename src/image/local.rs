//! Images in the store: a record plus its manifest and config, loaded and
//! checked, ready for `run`, `images` and `inspect`.

use mini_store::digest::Digest;
use mini_store::images::ImageRecord;
use mini_store::Store;
use oci_spec::image::{ImageConfiguration, ImageManifest};

use crate::error::{Error, Result};
use crate::image::manifest::{parse_config, Manifest};
use crate::image::reference::Reference;

#[derive(Debug, Clone)]
pub struct LocalImage {
    /// The record's full name, e.g. `docker.io/library/alpine:latest`.
    pub name: String,
    pub record: ImageRecord,
    pub manifest: ImageManifest,
    pub config: ImageConfiguration,
    /// Uncompressed layer digests, bottom layer first.
    pub diff_ids: Vec<Digest>,
    /// The image ID: the config's digest, as Docker shows it.
    pub id: Digest,
}

impl LocalImage {
    /// Find an image by reference (`alpine`, `host:5000/x:tag`) or by ID
    /// prefix (`sha256:ab12…` or `ab12…`, at least 4 hex digits).
    pub fn load(store: &Store, text: &str) -> Result<LocalImage> {
        if let Some(image) = Self::by_id(store, text)? {
            return Ok(image);
        }
        let reference = Reference::parse(text)?;
        match store.images().get(&reference.to_string())? {
            Some(record) => LocalImage::from_record(store, record),
            None => Err(Error::new(format!("no such image: {reference}"))
                .hint(format!("pull it first with `mini pull {text}`"))),
        }
    }

    /// Like `load`, but a missing image is `None` rather than an error.
    pub fn find(store: &Store, text: &str) -> Result<Option<LocalImage>> {
        if let Some(image) = Self::by_id(store, text)? {
            return Ok(Some(image));
        }
        let reference = Reference::parse(text)?;
        store.images().get(&reference.to_string())?.map(|r| LocalImage::from_record(store, r)).transpose()
    }

    fn by_id(store: &Store, text: &str) -> Result<Option<LocalImage>> {
        let hex = text.strip_prefix("sha256:").unwrap_or(text);
        let looks_like_id =
            hex.len() >= 4 && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        if !looks_like_id {
            return Ok(None);
        }
        let mut found: Option<LocalImage> = None;
        for record in store.images().list()? {
            let image = LocalImage::from_record(store, record)?;
            if image.id.hex().starts_with(hex) {
                if found.as_ref().is_some_and(|f| f.id != image.id) {
                    return Err(Error::new(format!("image ID prefix `{text}`"))
                        .because("matches more than one image")
                        .hint("give more digits"));
                }
                found.get_or_insert(image);
            }
        }
        Ok(found)
    }

    /// Load the manifest and config a record points to, verifying both.
    pub fn from_record(store: &Store, record: ImageRecord) -> Result<LocalImage> {
        let what = || format!("read image {}", record.name);
        let bytes = store.content().read(&record.digest).map_err(|e| Error::from(e).within(what()))?;
        let manifest = match Manifest::parse(&bytes, Some(&record.media_type)).map_err(|e| e.within(what()))? {
            Manifest::Image(m) => *m,
            Manifest::Index(_) => {
                return Err(Error::new(what()).because("the record names an index, not an image manifest"))
            }
        };
        let id: Digest = manifest.config().digest().to_string().parse().map_err(|e| Error::new(what()).because(e))?;
        let config_bytes = store.content().read(&id).map_err(|e| Error::from(e).within(what()))?;
        let config = parse_config(&config_bytes, &manifest).map_err(|e| e.within(what()))?;
        let diff_ids = config
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| d.parse::<Digest>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::new(what()).because(e))?;
        Ok(LocalImage { name: record.name.clone(), record, manifest, config, diff_ids, id })
    }

    /// Unpacked size: the sum of the layers' uncompressed tar sizes.
    pub fn size(&self, store: &Store) -> Result<u64> {
        let mut total = 0;
        for d in &self.diff_ids {
            total += store.layers().meta(d)?.map(|m| m.size).unwrap_or(0);
        }
        Ok(total)
    }
}

/// The record name of an untagged image (imported or committed without a
/// name): its id, which `images` shows as `<none>` and `LocalImage::load`
/// finds as an id.
pub fn untagged_name(id: &Digest) -> String {
    id.to_string()
}

/// Whether a record name is an untagged image's.
pub fn is_untagged(name: &str) -> bool {
    name.strip_prefix("sha256:").is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}
