//! Image records, kept in the OCI layout's `index.json`.
//!
//! Each image mini knows is one descriptor in `index.json`'s `manifests` array:
//! `{mediaType, digest, size, platform?, annotations}` where the annotation
//! `org.opencontainers.image.ref.name` holds the full normalized name (e.g.
//! `docker.io/library/alpine:latest`), so `skopeo inspect oci:ROOT:NAME` finds it.
//! Extra mini annotations (`io.mini.index-digest`, `io.mini.pulled`) ride along.
//!
//! Every change is a read-modify-write under the exclusive `index.lock`, written
//! to a temp file, fsynced and renamed over `index.json`. Descriptors without a
//! ref name, and any fields mini does not know, are preserved untouched.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::digest::Digest;
use crate::error::{IoContext, Result, StoreError};
use crate::lock::StoreLock;
use crate::util;

/// The OCI annotation that names an image in a layout.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation: digest of the multi-platform index the record's manifest came from.
pub const ANNOTATION_INDEX_DIGEST: &str = "io.mini.index-digest";
/// Annotation: when the image was pulled (RFC 3339).
pub const ANNOTATION_PULLED: &str = "io.mini.pulled";

/// An OCI platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// One image known to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    /// Full normalized reference, e.g. `docker.io/library/alpine:latest`.
    pub name: String,
    /// Digest of the (platform-specific) image manifest.
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub platform: Option<Platform>,
    /// Extra annotations (the ref name is not repeated here).
    pub annotations: BTreeMap<String, String>,
}

impl ImageRecord {
    fn to_descriptor(&self) -> Result<Value> {
        let mut annotations: Map<String, Value> =
            self.annotations.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        annotations.insert(REF_NAME.into(), Value::String(self.name.clone()));
        let mut d = Map::new();
        d.insert("mediaType".into(), Value::String(self.media_type.clone()));
        d.insert("digest".into(), Value::String(self.digest.to_string()));
        d.insert("size".into(), Value::from(self.size));
        if let Some(p) = &self.platform {
            let v = serde_json::to_value(p).map_err(|e| StoreError::Corrupt {
                what: format!("platform of image {}", self.name),
                reason: e.to_string(),
            })?;
            d.insert("platform".into(), v);
        }
        d.insert("annotations".into(), Value::Object(annotations));
        Ok(Value::Object(d))
    }

    /// Parses a descriptor written by mini or another tool; `None` if it has no
    /// ref name or is not a descriptor we understand (such entries are kept as is).
    fn from_descriptor(v: &Value) -> Option<ImageRecord> {
        let o = v.as_object()?;
        let ann = o.get("annotations")?.as_object()?;
        let name = ann.get(REF_NAME)?.as_str()?.to_string();
        let digest = o.get("digest")?.as_str()?.parse().ok()?;
        let annotations = ann
            .iter()
            .filter(|(k, _)| k.as_str() != REF_NAME)
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect();
        Some(ImageRecord {
            name,
            digest,
            media_type: o.get("mediaType").and_then(Value::as_str).unwrap_or_default().to_string(),
            size: o.get("size").and_then(Value::as_u64).unwrap_or(0),
            platform: o.get("platform").and_then(|p| serde_json::from_value(p.clone()).ok()),
            annotations,
        })
    }
}

/// Access to `index.json`.
#[derive(Debug, Clone)]
pub struct ImageIndex {
    path: PathBuf,
    lock_path: PathBuf,
}

impl ImageIndex {
    pub fn new(root: &Path) -> ImageIndex {
        ImageIndex { path: root.join("index.json"), lock_path: root.join("index.lock") }
    }

    /// Path of `index.json`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// All image records (descriptors with a ref name), in file order.
    pub fn list(&self) -> Result<Vec<ImageRecord>> {
        let doc = self.load()?;
        Ok(manifests(&doc).iter().filter_map(ImageRecord::from_descriptor).collect())
    }

    /// Every descriptor digest in index.json, records and foreign entries alike
    /// (GC roots: the layout must stay valid for other tools too).
    pub fn all_digests(&self) -> Result<Vec<Digest>> {
        let doc = self.load()?;
        Ok(manifests(&doc).iter().filter_map(|v| v.get("digest")?.as_str()?.parse().ok()).collect())
    }

    /// The record with this exact name.
    pub fn get(&self, name: &str) -> Result<Option<ImageRecord>> {
        Ok(self.list()?.into_iter().find(|r| r.name == name))
    }

    /// Adds a record, replacing any record with the same name.
    pub fn put(&self, rec: ImageRecord) -> Result<()> {
        let desc = rec.to_descriptor()?;
        self.modify(|list| {
            list.retain(|v| ref_name(v) != Some(rec.name.as_str()));
            list.push(desc);
            true
        })
        .map(|_| ())
    }

    /// Removes the record with this name; returns whether it existed.
    pub fn remove(&self, name: &str) -> Result<bool> {
        self.modify(|list| {
            let before = list.len();
            list.retain(|v| ref_name(v) != Some(name));
            list.len() != before
        })
    }

    /// Read-modify-write under the index lock. `f` returns whether it changed anything.
    fn modify(&self, f: impl FnOnce(&mut Vec<Value>) -> bool) -> Result<bool> {
        let _lock = StoreLock::exclusive(&self.lock_path)?;
        let mut doc = self.load()?;
        let obj = doc.as_object_mut().ok_or_else(|| self.corrupt("not a JSON object"))?;
        let list = match obj.remove("manifests") {
            Some(Value::Array(a)) => a,
            None | Some(Value::Null) => Vec::new(),
            Some(_) => return Err(self.corrupt("`manifests` is not an array")),
        };
        let mut list = list;
        let changed = f(&mut list);
        obj.insert("manifests".into(), Value::Array(list));
        if changed {
            let bytes = serde_json::to_vec_pretty(&doc).map_err(|e| self.corrupt(&e.to_string()))?;
            util::write_atomic(&self.path, &bytes)?;
        }
        Ok(changed)
    }

    fn load(&self) -> Result<Value> {
        let bytes = fs::read(&self.path).op("read image index", &self.path)?;
        let doc: Value = serde_json::from_slice(&bytes).map_err(|e| self.corrupt(&e.to_string()))?;
        if !doc.is_object() {
            return Err(self.corrupt("not a JSON object"));
        }
        Ok(doc)
    }

    fn corrupt(&self, reason: &str) -> StoreError {
        StoreError::Corrupt { what: format!("image index {}", self.path.display()), reason: reason.into() }
    }
}

/// The initial content of index.json.
pub(crate) const EMPTY_INDEX: &[u8] = b"{\n  \"schemaVersion\": 2,\n  \"manifests\": []\n}";

fn manifests(doc: &Value) -> &[Value] {
    doc.get("manifests").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

fn ref_name(v: &Value) -> Option<&str> {
    v.get("annotations")?.get(REF_NAME)?.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    pub(crate) fn record(name: &str, content: &[u8]) -> ImageRecord {
        ImageRecord {
            name: name.into(),
            digest: Digest::of_bytes(content),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: content.len() as u64,
            platform: Some(Platform { os: "linux".into(), architecture: "arm".into(), variant: Some("v7".into()) }),
            annotations: BTreeMap::from([(ANNOTATION_PULLED.to_string(), "2026-11-29T03:00:00Z".to_string())]),
        }
    }

    #[test]
    fn round_trip_replace_remove() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let idx = s.images();
        assert!(idx.list().unwrap().is_empty());
        let a = record("docker.io/library/alpine:latest", b"a");
        let b = record(
            "127.0.0.1:5000/test/busybox@sha256:1111111111111111111111111111111111111111111111111111111111111111",
            b"b",
        );
        idx.put(a.clone()).unwrap();
        idx.put(b.clone()).unwrap();
        assert_eq!(idx.list().unwrap(), vec![a.clone(), b.clone()]);
        let mut a2 = record("docker.io/library/alpine:latest", b"a2");
        a2.platform = None;
        idx.put(a2.clone()).unwrap();
        assert_eq!(idx.list().unwrap(), vec![b.clone(), a2.clone()]);
        assert_eq!(idx.get("docker.io/library/alpine:latest").unwrap(), Some(a2));
        assert!(idx.remove("docker.io/library/alpine:latest").unwrap());
        assert!(!idx.remove("docker.io/library/alpine:latest").unwrap());
        assert_eq!(idx.list().unwrap(), vec![b]);
        // the file on disk is a valid OCI index
        let doc: Value = serde_json::from_slice(&fs::read(idx.path()).unwrap()).unwrap();
        assert_eq!(doc["schemaVersion"], 2);
        assert_eq!(
            doc["manifests"][0]["annotations"][REF_NAME],
            "127.0.0.1:5000/test/busybox@sha256:1111111111111111111111111111111111111111111111111111111111111111"
        );
        assert_eq!(doc["manifests"][0]["platform"]["variant"], "v7");
    }

    #[test]
    fn preserves_foreign_entries_and_fields() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let foreign = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "annotations": {"top": "level"},
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": Digest::of_bytes(b"x").to_string(),
                "size": 1,
                "x-extra": [1, 2, 3]
            }]
        });
        fs::write(s.images().path(), serde_json::to_vec(&foreign).unwrap()).unwrap();
        s.images().put(record("n:1", b"m")).unwrap();
        s.images().remove("n:1").unwrap();
        let doc: Value = serde_json::from_slice(&fs::read(s.images().path()).unwrap()).unwrap();
        assert_eq!(doc, foreign);
        assert!(s.images().list().unwrap().is_empty());
        assert_eq!(s.images().all_digests().unwrap(), vec![Digest::of_bytes(b"x")]);
    }

    #[test]
    fn concurrent_puts_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let idx = s.images().clone();
                std::thread::spawn(move || {
                    for j in 0..5 {
                        idx.put(record(&format!("img{i}-{j}:latest"), b"x")).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(s.images().list().unwrap().len(), 40);
    }

    #[test]
    fn corrupt_index_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        fs::write(s.images().path(), b"{not json").unwrap();
        let err = s.images().list().unwrap_err().to_string();
        assert!(err.starts_with("corrupt image index "), "{err}");
    }
}
