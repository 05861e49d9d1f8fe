//! Image archives, the on-disk formats `save` writes and `load` reads.
//!
//! `save` writes what Docker ≥ 25 writes: one tar holding an OCI image
//! layout (`oci-layout`, `index.json` whose entries carry
//! `io.containerd.image.name` and `org.opencontainers.image.ref.name`,
//! `blobs/sha256/<hex>`) and Docker's own index of the same blobs
//! (`manifest.json` `[{Config, RepoTags, Layers}]` with `blobs/sha256/…`
//! paths, and `repositories`), every blob once, layers as stored (so an
//! image pulled from a Docker v2s2 manifest keeps its bytes). The OCI
//! format alone is `--format oci-archive`. Blobs stream from the content
//! store into the tar: memory stays flat whatever the image's size.
//!
//! `load` reads either layout (index.json first, else manifest.json), plain
//! or gzip. A stream cannot seek and may put blobs before or after the
//! manifests, so every entry is spooled into a content-store ingest as it
//! comes, verified against its `blobs/sha256/<hex>` name where it has one;
//! only the small index files are held in memory. Then each image's
//! manifest, config and layers are checked (sizes, digests, the config's
//! diff_ids while the layers unpack) and only then are the records written:
//! a corrupt or interrupted load leaves no record, at most unreferenced
//! blobs and layers that `mini image prune` removes.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use mini_store::content::copy_into;
use mini_store::digest::Digest;
use mini_store::images::{ImageRecord, Platform, ANNOTATION_PULLED};
use mini_store::Store;
use serde_json::{json, Value};

use crate::config::Config;
use crate::error::{Context, Error, Result};
use crate::image::build::{self, OCI_CONFIG, OCI_LAYER_GZIP};
use crate::image::local::{is_untagged, untagged_name, LocalImage};
use crate::image::manifest::{choose_platform, parse_config, Manifest, PlatformSpec, OCI_INDEX, OCI_MANIFEST};
use crate::image::reference::Reference;

const OCI_LAYOUT: &[u8] = b"{\"imageLayoutVersion\":\"1.0.0\"}";
const CONTAINERD_NAME: &str = "io.containerd.image.name";
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Index files larger than this are not an archive's (they are held in memory).
const MAX_INDEX_FILE: u64 = 16 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Docker's layout and the OCI layout in one tar (`docker load` and `podman load` read it).
    Docker,
    /// The OCI layout alone.
    Oci,
}

/// Write `images` as one archive into `out`.
pub fn save(store: &Store, images: &[LocalImage], format: Format, out: impl Write) -> Result<()> {
    let mut tar = tar::Builder::new(out);
    let mut blobs: Vec<(Digest, u64)> = Vec::new();
    for image in images {
        let layers = image.manifest.layers().iter().map(|l| (l.digest().to_string(), l.size()));
        let config = image.manifest.config();
        let all = [(image.record.digest.to_string(), image.record.size), (config.digest().to_string(), config.size())];
        for (d, size) in all.into_iter().chain(layers) {
            let d: Digest = d.parse().map_err(|e| Error::new(format!("save {}", image.name)).because(e))?;
            if !blobs.iter().any(|(b, _)| *b == d) {
                blobs.push((d, size));
            }
        }
    }
    add_bytes(&mut tar, "oci-layout", OCI_LAYOUT)?;
    for dir in ["blobs/", "blobs/sha256/"] {
        add_dir(&mut tar, dir)?;
    }
    for (d, size) in &blobs {
        add_blob(&mut tar, store, d, *size)?;
    }
    add_json(&mut tar, "index.json", &oci_index(images))?;
    if format == Format::Docker {
        let (manifest, repositories) = docker_index(images);
        add_json(&mut tar, "manifest.json", &manifest)?;
        add_json(&mut tar, "repositories", &repositories)?;
    }
    tar.into_inner().and_then(|mut w| w.flush()).context(|| "write the archive")
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// `docker.io/library/busybox:latest` → `busybox:latest`, as Docker's RepoTags say it.
fn familiar(name: &str) -> Option<String> {
    let r = Reference::parse(name).ok().filter(|_| !is_untagged(name))?;
    Some(format!("{}:{}", r.familiar_name(), r.tag?))
}

fn oci_index(images: &[LocalImage]) -> Value {
    let manifests: Vec<Value> = images
        .iter()
        .map(|i| {
            let mut d =
                json!({"mediaType": i.record.media_type, "digest": i.record.digest.to_string(), "size": i.record.size});
            if let Some(r) = Reference::parse(&i.name).ok().filter(|_| !is_untagged(&i.name)) {
                d["annotations"] = json!({CONTAINERD_NAME: i.name, REF_NAME: r.tag.unwrap_or_default()});
            }
            d
        })
        .collect();
    json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})
}

/// manifest.json (one entry per image, all its names) and `repositories`.
fn docker_index(images: &[LocalImage]) -> (Value, Value) {
    let mut entries: Vec<(Digest, Value)> = Vec::new();
    let mut repositories = serde_json::Map::new();
    for image in images {
        let tag = familiar(&image.name);
        let top = image.manifest.layers().last().map(|l| l.digest().to_string().replace("sha256:", ""));
        if let (Some(tag), Some(top)) = (&tag, top) {
            let (repo, t) = tag.rsplit_once(':').unwrap_or((tag, "latest"));
            let slot = repositories.entry(repo.to_string()).or_insert_with(|| json!({}));
            slot[t] = json!(top);
        }
        if let Some((_, e)) = entries.iter_mut().find(|(id, _)| *id == image.id) {
            if let (Some(tag), Some(tags)) = (tag, e["RepoTags"].as_array_mut()) {
                tags.push(json!(tag));
            }
            continue;
        }
        let layers: Vec<String> =
            image.manifest.layers().iter().map(|l| format!("blobs/sha256/{}", l.digest().digest())).collect();
        let tags: Vec<String> = tag.into_iter().collect();
        let entry = json!({"Config": blob_path(&image.id), "RepoTags": tags, "Layers": layers});
        entries.push((image.id.clone(), entry));
    }
    (Value::Array(entries.into_iter().map(|(_, e)| e).collect()), Value::Object(repositories))
}

fn header(size: u64, mode: u32, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(0);
    h
}

fn add_dir<W: Write>(tar: &mut tar::Builder<W>, path: &str) -> Result<()> {
    tar.append_data(&mut header(0, 0o755, tar::EntryType::Directory), path, io::empty())
        .context(|| format!("write {path} to the archive"))
}

fn add_bytes<W: Write>(tar: &mut tar::Builder<W>, path: &str, bytes: &[u8]) -> Result<()> {
    tar.append_data(&mut header(bytes.len() as u64, 0o644, tar::EntryType::Regular), path, bytes)
        .context(|| format!("write {path} to the archive"))
}

fn add_json<W: Write>(tar: &mut tar::Builder<W>, path: &str, v: &Value) -> Result<()> {
    add_bytes(tar, path, &serde_json::to_vec(v).context(|| format!("encode {path}"))?)
}

/// One blob, streamed from its file (never held in memory).
fn add_blob<W: Write>(tar: &mut tar::Builder<W>, store: &Store, d: &Digest, size: u64) -> Result<()> {
    let what = || format!("write blob {d} to the archive");
    let file = store.content().open(d).map_err(|e| Error::from(e).within(what()))?;
    let actual = file.metadata().context(what)?.len();
    if actual != size {
        return Err(Error::new(what()).because(format!("the store holds {actual} bytes, the manifest says {size}")));
    }
    tar.append_data(&mut header(size, 0o644, tar::EntryType::Regular), blob_path(d), file).context(what)
}

/// An image that `load` found and verified, ready to be recorded.
pub struct Loaded {
    /// The names to record (none: untagged).
    pub names: Vec<String>,
    pub id: Digest,
}

/// What the archive's entries became: index files in memory, everything
/// else a blob in the content store, by entry path.
#[derive(Default)]
struct Spooled {
    files: HashMap<String, Vec<u8>>,
    blobs: HashMap<String, (Digest, u64)>,
    links: HashMap<String, String>,
}

impl Spooled {
    fn blob(&self, path: &str) -> Result<(Digest, u64)> {
        let mut p = normalize(path);
        for _ in 0..8 {
            match self.links.get(&p) {
                Some(target) => p = target.clone(),
                None => break,
            }
        }
        self.blobs
            .get(&p)
            .cloned()
            .ok_or_else(|| Error::new(format!("read {path} in the archive")).because("no such file in the archive"))
    }
}

/// Read an archive from `input`, verify every image in it, record them.
pub fn load(store: &Store, input: impl Read) -> Result<Vec<Loaded>> {
    let _gc = store.lock_gc_shared()?;
    let spooled = spool(store, build::decompressed(input)?)?;
    let images = if let Some(index) = spooled.files.get("index.json") {
        from_oci_index(store, index)?
    } else if let Some(manifest) = spooled.files.get("manifest.json") {
        from_docker_manifest(store, &spooled, manifest)?
    } else {
        return Err(Error::new("read the archive")
            .because("it holds neither index.json nor manifest.json")
            .hint("give a tar written by `mini save`, `docker save` or `podman save`"));
    };
    let records = images.iter().map(|(desc, names)| verify(store, desc, names)).collect::<Result<Vec<_>>>()?;
    let mut loaded = Vec::new();
    for (records, id) in records {
        let mut names = Vec::new();
        for record in records {
            names.push(record.name.clone());
            store.images().put(record)?;
        }
        loaded.push(Loaded { names: names.into_iter().filter(|n| !is_untagged(n)).collect(), id });
    }
    Ok(loaded)
}

fn spool(store: &Store, input: impl Read) -> Result<Spooled> {
    let mut archive = tar::Archive::new(input);
    let mut out = Spooled::default();
    let bad = |e: io::Error| Error::new("read the archive").because(e).hint("is it a complete tar file?");
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = normalize(&entry.path().map_err(bad)?.to_string_lossy());
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            if let Some(target) = entry.link_name().map_err(bad)? {
                // A symlink is relative to its directory, a hardlink to the archive's root.
                let base = match kind.is_symlink() {
                    true => Path::new(&path).parent().map(Path::to_path_buf).unwrap_or_default(),
                    false => PathBuf::new(),
                };
                let target = normalize(&base.join(target).to_string_lossy());
                out.links.insert(path, target);
            }
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let size = entry.size();
        if ["index.json", "manifest.json", "repositories", "oci-layout"].contains(&path.as_str()) {
            let mut bytes = Vec::new();
            (&mut entry).take(MAX_INDEX_FILE).read_to_end(&mut bytes).map_err(bad)?;
            expect_size(&path, bytes.len() as u64, size)?;
            out.files.insert(path, bytes);
            continue;
        }
        let blob = spool_blob(store, &path, &mut entry, size)?;
        out.blobs.insert(path, blob);
    }
    Ok(out)
}

/// One entry into the content store: checked against the digest its
/// `blobs/sha256/<hex>` name promises, else stored under what it hashes to.
fn spool_blob(store: &Store, path: &str, entry: &mut impl Read, size: u64) -> Result<(Digest, u64)> {
    let what = || format!("read {path} in the archive");
    let named = path.strip_prefix("blobs/sha256/").and_then(|h| Digest::from_hex(h).ok());
    let mut ingest = match &named {
        Some(d) => store.content().ingest(d, Some(size))?,
        None => store.content().ingest_any()?,
    };
    let copied = copy_into(&mut ingest, entry).map_err(|e| Error::from(e).within(what()))?;
    expect_size(path, copied, size)?;
    let digest = ingest.commit_computed().map_err(|e| Error::from(e).within(what()))?;
    Ok((digest, size))
}

fn expect_size(path: &str, got: u64, want: u64) -> Result<()> {
    if got == want {
        return Ok(());
    }
    Err(Error::new(format!("read {path} in the archive"))
        .because(format!("the archive ends after {got} of its {want} bytes"))
        .hint("the archive is truncated"))
}

/// `./a//b` → `a/b`.
fn normalize(path: &str) -> String {
    let p: PathBuf = Path::new(path).components().filter(|c| matches!(c, Component::Normal(_))).collect();
    p.to_string_lossy().into_owned()
}

/// (manifest descriptor: digest, size, media type; names) per image of index.json.
type Found = (Descriptor, Vec<String>);

#[derive(Debug, Clone)]
struct Descriptor {
    digest: Digest,
    size: u64,
    media_type: String,
}

fn from_oci_index(store: &Store, bytes: &[u8]) -> Result<Vec<Found>> {
    let what = "read index.json in the archive";
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| Error::new(what).because(e))?;
    let mut out: Vec<Found> = Vec::new();
    for d in doc["manifests"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let digest: Digest =
            d["digest"].as_str().unwrap_or_default().parse().map_err(|e| Error::new(what).because(e))?;
        let desc = resolve_index(
            store,
            Descriptor {
                digest,
                size: d["size"].as_u64().unwrap_or(0),
                media_type: d["mediaType"].as_str().unwrap_or(OCI_MANIFEST).to_string(),
            },
        )?;
        let ann = &d["annotations"];
        let name = ann[CONTAINERD_NAME].as_str().or(ann[REF_NAME].as_str().filter(|n| n.contains(['/', ':'])));
        let name = name.map(|n| Reference::parse(n).map(|r| r.to_string())).transpose()?;
        match out.iter_mut().find(|(f, _)| f.digest == desc.digest) {
            Some((_, names)) => names.extend(name),
            None => out.push((desc, name.into_iter().collect())),
        }
    }
    if out.is_empty() {
        return Err(Error::new(what).because("it lists no image"));
    }
    Ok(out)
}

/// An index inside the archive's index.json: the host's platform in it.
fn resolve_index(store: &Store, desc: Descriptor) -> Result<Descriptor> {
    let bytes = read_blob(store, &desc)?;
    match Manifest::parse(&bytes, Some(&desc.media_type))? {
        Manifest::Image(_) => Ok(desc),
        Manifest::Index(index) => {
            let entry = choose_platform(&index, &PlatformSpec::host())?;
            let digest = crate::pull::descriptor_digest(entry)?;
            Ok(Descriptor { digest, size: entry.size(), media_type: entry.media_type().to_string() })
        }
    }
}

fn read_blob(store: &Store, desc: &Descriptor) -> Result<Vec<u8>> {
    let what = || format!("read blob {} named by the archive", desc.digest);
    let missing = || Error::new(what()).because("the archive does not hold it");
    let size = store.content().size(&desc.digest)?.ok_or_else(missing)?;
    if desc.size != 0 && size != desc.size {
        return Err(Error::new(what()).because(format!("{size} bytes, the descriptor says {}", desc.size)));
    }
    store.content().read(&desc.digest).map_err(|e| Error::from(e).within(what()))
}

/// Docker's manifest.json: the config and layers by path; the manifest is
/// written here (OCI, layer types sniffed from the blobs).
fn from_docker_manifest(store: &Store, spooled: &Spooled, bytes: &[u8]) -> Result<Vec<Found>> {
    let what = "read manifest.json in the archive";
    let doc: Vec<Value> = serde_json::from_slice(bytes).map_err(|e| Error::new(what).because(e))?;
    let mut out = Vec::new();
    for entry in &doc {
        let (config, config_size) = spooled.blob(entry["Config"].as_str().unwrap_or_default())?;
        let mut layers = Vec::new();
        for path in entry["Layers"].as_array().map(Vec::as_slice).unwrap_or_default() {
            let (digest, size) = spooled.blob(path.as_str().unwrap_or_default())?;
            layers.push(
                json!({"mediaType": sniff_layer_type(store, &digest)?, "digest": digest.to_string(), "size": size}),
            );
        }
        let manifest = json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config.to_string(), "size": config_size},
            "layers": layers,
        });
        let manifest = serde_json::to_vec(&manifest).context(|| "encode image manifest")?;
        let digest = store.content().put(&manifest)?;
        let names = entry["RepoTags"].as_array().map(Vec::as_slice).unwrap_or_default();
        let names = names
            .iter()
            .map(|n| Reference::parse(n.as_str().unwrap_or_default()).map(|r| r.to_string()))
            .collect::<Result<_>>()?;
        let desc = Descriptor { digest, size: manifest.len() as u64, media_type: OCI_MANIFEST.into() };
        out.push((desc, names));
    }
    Ok(out)
}

fn sniff_layer_type(store: &Store, d: &Digest) -> Result<&'static str> {
    let mut head = [0u8; 4];
    let mut f = store.content().open(d)?;
    let n = f.read(&mut head).context(|| format!("read blob {d}"))?;
    Ok(match crate::image::manifest::Compression::sniff(&head[..n]) {
        Some(crate::image::manifest::Compression::Gzip) => OCI_LAYER_GZIP,
        Some(crate::image::manifest::Compression::Zstd) => "application/vnd.oci.image.layer.v1.tar+zstd",
        _ => "application/vnd.oci.image.layer.v1.tar",
    })
}

/// Check one image whole (manifest, config, every layer blob, the diff_ids
/// while unpacking) and make its records (not yet written).
fn verify(store: &Store, desc: &Descriptor, names: &[String]) -> Result<(Vec<ImageRecord>, Digest)> {
    let what = || format!("load image {}", names.first().cloned().unwrap_or_else(|| desc.digest.to_string()));
    let bytes = read_blob(store, desc).map_err(|e| e.within(what()))?;
    let Manifest::Image(manifest) = Manifest::parse(&bytes, Some(&desc.media_type))? else {
        return Err(Error::new(what()).because("an index inside an index is not supported"));
    };
    let config_desc = manifest.config();
    let id = crate::pull::descriptor_digest(config_desc)?;
    let config_bytes =
        read_blob(store, &Descriptor { digest: id.clone(), size: config_desc.size(), media_type: String::new() })
            .map_err(|e| e.within(what()))?;
    let config = parse_config(&config_bytes, &manifest).map_err(|e| e.within(what()))?;
    for (layer, diff_id) in manifest.layers().iter().zip(config.rootfs().diff_ids()) {
        let blob = crate::pull::descriptor_digest(layer)?;
        let diff_id: Digest = diff_id.parse().map_err(|e| Error::new(what()).because(e))?;
        let layer_desc = Descriptor { digest: blob.clone(), size: layer.size(), media_type: String::new() };
        if store.content().size(&blob)?.is_none_or(|s| s != layer.size()) {
            read_blob(store, &layer_desc).map_err(|e| e.within(what()))?;
        }
        build::unpack_blob(store, &blob, Some(&diff_id)).map_err(|e| e.within(what()))?;
    }
    let platform = Platform {
        os: config.os().to_string(),
        architecture: config.architecture().to_string(),
        variant: config.variant().clone(),
    };
    let media_type =
        serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| v["mediaType"].as_str().map(String::from));
    let names = if names.is_empty() { vec![untagged_name(&id)] } else { names.to_vec() };
    let records = names
        .into_iter()
        .map(|name| ImageRecord {
            name,
            digest: desc.digest.clone(),
            media_type: media_type.clone().unwrap_or_else(|| desc.media_type.clone()),
            size: bytes.len() as u64,
            platform: Some(platform.clone()),
            annotations: BTreeMap::from([(ANNOTATION_PULLED.to_string(), build::now())]),
        })
        .collect();
    Ok((records, id))
}

/// `mini save`: the named images into `output` (stdout when `None`). A file
/// is written under a temporary name and renamed when complete, so a
/// failed save leaves nothing behind.
pub fn save_images(config: &Config, names: &[String], format: Format, output: Option<&Path>) -> Result<()> {
    let what = || format!("save {}", names.join(" "));
    if output.is_none() && crate::sys::tty::isatty(1) {
        return Err(Error::new(what())
            .because("cowardly refusing to save to a terminal")
            .hint("use the -o flag or redirect stdout"));
    }
    let store = Store::open(&config.root)?;
    let images = names.iter().map(|n| LocalImage::load(&store, n)).collect::<Result<Vec<_>>>()?;
    let Some(path) = output else {
        let out = io::BufWriter::with_capacity(256 * 1024, io::stdout().lock());
        return save(&store, &images, format, out).map_err(|e| e.within(what()));
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.mini-save-{}", std::process::id()));
    let written = write_file(&tmp, |f| save(&store, &images, format, io::BufWriter::with_capacity(256 * 1024, f)));
    let renamed = written.and_then(|()| std::fs::rename(&tmp, path).context(|| format!("write {}", path.display())));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed.map_err(|e| e.within(what()))
}

/// Create `path`, fill it with `f`, and sync it.
fn write_file(path: &Path, f: impl FnOnce(&std::fs::File) -> Result<()>) -> Result<()> {
    let file = std::fs::File::create(path).context(|| format!("create {}", path.display()))?;
    f(&file)?;
    file.sync_all().context(|| format!("write {}", path.display()))
}

/// `mini load`: an archive from `input` (stdin when `None`); returns the
/// lines Docker prints (`Loaded image: NAME`, `Loaded image ID: sha256:…`).
pub fn load_images(config: &Config, input: Option<&Path>) -> Result<Vec<String>> {
    let store = Store::open(&config.root)?;
    let loaded = match input {
        Some(p) => {
            let file = std::fs::File::open(p).context(|| format!("open {}", p.display()))?;
            load(&store, file).map_err(|e| e.within(format!("load {}", p.display())))?
        }
        None => load(&store, io::stdin().lock()).map_err(|e| e.within("load from stdin"))?,
    };
    let mut lines = Vec::new();
    for image in loaded {
        let name = image.names.first().cloned().unwrap_or_else(|| image.id.to_string());
        crate::container::events::emit(store.root(), "image", "load", &name, &[("name", &name)]);
        if image.names.is_empty() {
            lines.push(format!("Loaded image ID: {}", image.id));
        }
        lines.extend(image.names.iter().map(|n| format!("Loaded image: {}", familiar(n).unwrap_or_else(|| n.clone()))));
    }
    Ok(lines)
}
