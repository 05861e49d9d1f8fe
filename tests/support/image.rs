//! Images put into a store by hand, for hostile layers a registry would
//! not serve: [`build_image`] and the tar helpers it takes.

use std::path::Path;

/// Put a one-layer image named `name` into the store at `root` by hand:
/// the layer is the tar built by `fill`, unpacked through mini-store as a
/// pull would. For hostile images a registry would not serve.
pub fn build_image(root: &Path, name: &str, fill: impl FnOnce(&mut tar::Builder<Vec<u8>>)) {
    use mini_store::{Digest, ImageRecord, Store};
    let store = Store::open(root).expect("open store");
    let mut b = tar::Builder::new(Vec::new());
    fill(&mut b);
    let layer = b.into_inner().expect("tar");
    let diff_id = Digest::of_bytes(&layer);
    store.content().put(&layer).expect("put layer");
    store.layers().unpack(&diff_id, &layer[..]).expect("unpack").commit().expect("commit layer");
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]}
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = store.content().put(&config).expect("put config");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": diff_id.to_string(), "size": layer.len()}]
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let digest = store.content().put(&manifest).expect("put manifest");
    store
        .images()
        .put(ImageRecord {
            name: name.to_string(),
            digest,
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: manifest.len() as u64,
            platform: None,
            annotations: Default::default(),
        })
        .expect("put image record");
}

/// Tar helpers for `build_image`.
pub fn tar_dir(b: &mut tar::Builder<Vec<u8>>, path: &str) {
    let mut h = header();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    b.append_data(&mut h, path, std::io::empty()).unwrap();
}

pub fn tar_symlink(b: &mut tar::Builder<Vec<u8>>, path: &str, target: &str) {
    let mut h = header();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_mode(0o777);
    h.set_size(0);
    b.append_link(&mut h, path, target).unwrap();
}

pub fn tar_file(b: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32, data: &[u8]) {
    let mut h = header();
    h.set_mode(mode);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, path, data).unwrap();
}

fn header() -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}
