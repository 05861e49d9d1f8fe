//! The Alpine minirootfs as an image source: read the mirror's
//! `latest-releases.yaml`, take the `alpine-minirootfs` entry for this
//! architecture, download the tarball verifying its sha256 while it streams,
//! and store it as a one-layer image with `Cmd ["/bin/sh"]` — the way the
//! official alpine image is built from the same tarball.

use std::collections::BTreeMap;
use std::io::Write;

use futures_util::StreamExt;
use mini_store::content::Ingest;
use mini_store::digest::Digest;
use mini_store::images::{ImageRecord, Platform};
use mini_store::Store;
use serde_json::json;

use super::progress::Progress;
use super::PullOptions;
use crate::config::Config;
use crate::error::{Context, Error, Result};
use crate::image::build;
use crate::image::local::LocalImage;
use crate::image::manifest::PlatformSpec;
use crate::image::reference::Reference;

const FLAVOR: &str = "alpine-minirootfs";
const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One entry of latest-releases.yaml (only the keys mini uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub flavor: String,
    pub branch: String,
    pub arch: String,
    pub version: String,
    pub file: String,
    pub sha256: String,
    pub size: Option<u64>,
    pub date: Option<String>,
    pub time: Option<String>,
}

/// Parse latest-releases.yaml: a YAML list of flat maps whose values may be
/// quoted and continued on more-indented lines (the `desc` entries). Only
/// that subset of YAML is accepted, which is all Alpine's release tooling writes.
pub fn parse_releases(bytes: &[u8]) -> Result<Vec<Release>> {
    let bad = |why: String| Error::new("parse latest-releases.yaml").because(why);
    let text = std::str::from_utf8(bytes).map_err(|e| bad(e.to_string()))?;
    let mut maps: Vec<BTreeMap<String, String>> = Vec::new();
    // The key whose value is still open: a quote not yet closed.
    let mut open: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if let (Some(key), Some(map)) = (&open, maps.last_mut()) {
            let value = map.entry(key.clone()).or_default();
            value.push(' ');
            value.push_str(trimmed.trim_end_matches('"'));
            if trimmed.ends_with('"') {
                open = None;
            }
            continue;
        }
        if trimmed.is_empty() || trimmed == "---" || trimmed.starts_with('#') {
            continue;
        }
        let rest = match trimmed.strip_prefix('-') {
            Some(rest) if line.starts_with('-') => {
                maps.push(BTreeMap::new());
                rest.trim()
            }
            _ => trimmed,
        };
        if rest.is_empty() {
            continue;
        }
        let (key, value) = rest.split_once(':').ok_or_else(|| bad(format!("unexpected line `{line}`")))?;
        let (key, value) = (key.trim().to_string(), value.trim());
        let map = maps.last_mut().ok_or_else(|| bad("a key outside any list entry".into()))?;
        if let Some(unclosed) = value.strip_prefix('"').filter(|v| !v.ends_with('"')) {
            open = Some(key.clone());
            map.insert(key, unclosed.to_string());
        } else {
            map.insert(key, value.trim_matches('"').trim_matches('\'').to_string());
        }
    }
    Ok(maps.into_iter().filter_map(release_of).collect())
}

fn release_of(mut m: BTreeMap<String, String>) -> Option<Release> {
    Some(Release {
        flavor: m.remove("flavor")?,
        branch: m.remove("branch").unwrap_or_default(),
        arch: m.remove("arch")?,
        version: m.remove("version")?,
        file: m.remove("file")?,
        sha256: m.remove("sha256")?,
        size: m.remove("size").and_then(|s| s.parse().ok()),
        date: m.remove("date"),
        time: m.remove("time"),
    })
}

/// `alpine` → ("latest-stable", "latest"); `alpine:3.20` → ("v3.20", "3.20"); `alpine:edge`.
pub fn branch_and_tag(reference: &Reference) -> Result<(String, String)> {
    if reference.registry != crate::config::DOCKER_HUB
        || reference.repository != "library/alpine"
        || reference.digest.is_some()
    {
        return Err(Error::new(format!("pull --minirootfs {reference}"))
            .because("the minirootfs source only provides alpine[:BRANCH]")
            .hint("use e.g. `mini pull --minirootfs alpine:3.20`"));
    }
    let tag = reference.tag.clone().unwrap_or_else(|| "latest".into());
    let branch = match tag.as_str() {
        "latest" | "latest-stable" => "latest-stable".to_string(),
        "edge" => "edge".to_string(),
        t if t.starts_with('v') => t.to_string(),
        t => format!("v{t}"),
    };
    Ok((branch, tag))
}

fn alpine_arch(platform: &PlatformSpec) -> &str {
    match platform.architecture.as_str() {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "386" => "x86",
        "arm" if platform.variant.as_deref() == Some("v6") => "armhf",
        "arm" => "armv7",
        other => other,
    }
}

/// Pull the minirootfs for `text` (alpine[:BRANCH]) and store it as an image.
pub fn pull(config: &Config, text: &str, opts: &PullOptions) -> Result<LocalImage> {
    let reference = Reference::parse(text)?;
    let (branch, tag) = branch_and_tag(&reference)?;
    let platform = opts.platform.clone().unwrap_or_else(PlatformSpec::host);
    let store = Store::open(&config.root)?;
    let _gc = store.lock_gc_shared()?;
    let progress = Progress::new(opts.quiet);
    let base = format!("{}/{}/releases/{}", config.alpine_mirror.trim_end_matches('/'), branch, alpine_arch(&platform));
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context(|| "start the async runtime")?;
    let fetched = runtime.block_on(fetch(&store, &base, &progress));
    drop(runtime);
    let (release, ingest) = fetched.map_err(|e| e.within(format!("pull --minirootfs {reference}")))?;
    let name = reference.with_tag(&tag).to_string();
    let record = store_image(&store, &release, ingest, &platform, &name)?;
    progress.say(&format!("Status: Downloaded {} {} as {name}", FLAVOR, release.version));
    LocalImage::from_record(&store, record)
}

async fn fetch(store: &Store, base: &str, progress: &Progress) -> Result<(Release, Ingest)> {
    crate::registry::tls::init();
    let client = reqwest::Client::builder()
        .user_agent(concat!("mini/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()
        .context(|| "create the http client")?;
    let index_url = format!("{base}/latest-releases.yaml");
    let yaml = get(&client, &index_url).await?.bytes().await.context(|| format!("read {index_url}"))?;
    let releases = parse_releases(&yaml).map_err(|e| e.within(format!("read {index_url}")))?;
    let release = releases
        .into_iter()
        .find(|r| r.flavor == FLAVOR)
        .ok_or_else(|| Error::new(format!("read {index_url}")).because(format!("no {FLAVOR} entry")))?;
    let url = format!("{base}/{}", release.file);
    let expected: Digest =
        format!("sha256:{}", release.sha256).parse().map_err(|e| Error::new(format!("read {index_url}")).because(e))?;
    let mut ingest = store.content().ingest(&expected, release.size)?;
    let bar = progress.layer(expected.short(), release.size.unwrap_or(0));
    let mut body = get(&client, &url).await?.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.context(|| format!("download {url}"))?;
        ingest.write_all(&chunk).context(|| format!("write {} to the store", release.file))?;
        bar.advance(chunk.len() as u64);
    }
    // Flushed and verified before store_image commits it.
    ingest.flush().context(|| format!("write {} to the store", release.file))?;
    ingest.verify().map_err(|e| {
        Error::from(e)
            .within(format!("verify {url}"))
            .hint("the tarball does not match the sha256 in latest-releases.yaml; check the mirror")
    })?;
    bar.finish("Download complete");
    Ok((release, ingest))
}

async fn get(client: &reqwest::Client, url: &str) -> Result<reqwest::Response> {
    let response = client.get(url).send().await.map_err(|e| {
        Error::new(format!("fetch {url}"))
            .because(crate::error::chain(&e))
            .hint("check the Alpine mirror (MINI_ALPINE_MIRROR)")
    })?;
    let status = response.status();
    if !status.is_success() {
        return Err(Error::new(format!("fetch {url}")).because(format!("HTTP {status}")));
    }
    Ok(response)
}

/// Unpack the verified tarball as a layer, commit both, and write config,
/// manifest and record through the one image builder.
fn store_image(
    store: &Store,
    release: &Release,
    ingest: Ingest,
    platform: &PlatformSpec,
    name: &str,
) -> Result<ImageRecord> {
    // The diff_id is not published: unpack_file hashes the uncompressed stream first.
    let (diff_id, pending) = build::unpack_file(store, ingest.temp_path(), None)?;
    let size = ingest.written();
    let digest = build::commit(ingest, pending)?;
    let layer = build::Layer { media_type: build::OCI_LAYER_GZIP.into(), digest, size, diff_id: diff_id.clone() };
    let created = match (&release.date, &release.time) {
        (Some(d), Some(t)) => format!("{d}T{t}Z"),
        _ => build::now(),
    };
    let config = json!({
        "architecture": platform.architecture, "os": platform.os, "created": created,
        "config": {"Env": [PATH_ENV], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
        "history": [
            {"created": created, "created_by": format!("ADD file:{} in / ", release.file)},
            {"created": created, "created_by": "CMD [\"/bin/sh\"]", "empty_layer": true}
        ]
    });
    let image = build::NewImage {
        config,
        layers: &[layer],
        platform: Platform {
            os: platform.os.clone(),
            architecture: platform.architecture.clone(),
            variant: platform.variant.clone(),
        },
        name: Some(name.to_string()),
        manifest_annotations: json!({"org.opencontainers.image.version": release.version, "org.opencontainers.image.source": FLAVOR}),
    };
    Ok(build::write_image(store, image)?.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = r#"---
-
  title: "Standard"
  flavor: alpine-standard
  branch: v3.20
  arch: x86_64
  version: 3.20.3
  file: alpine-standard-3.20.3-x86_64.iso
  sha256: 1111
-
  title: "Mini root filesystem"
  desc: "Minimal root filesystem.
    For use in containers: and chroots."
  flavor: alpine-minirootfs
  branch: v3.20
  arch: x86_64
  version: 3.20.3
  file: alpine-minirootfs-3.20.3-x86_64.tar.gz
  date: 2024-09-06
  time: 07:03:15
  size: 3626002
  sha256: 2222
- flavor: "alpine-virt"
  arch: x86_64
  version: 3.20.3
  file: v.iso
  sha256: 3333
"#;

    #[test]
    fn parses_release_index() {
        let r = parse_releases(YAML.as_bytes()).unwrap();
        assert_eq!(r.len(), 3);
        let mini = r.iter().find(|r| r.flavor == FLAVOR).unwrap();
        assert_eq!(mini.file, "alpine-minirootfs-3.20.3-x86_64.tar.gz");
        assert_eq!(mini.size, Some(3626002));
        assert_eq!(mini.time.as_deref(), Some("07:03:15"));
        assert_eq!(r[2].flavor, "alpine-virt");
        assert!(parse_releases(b"key: outside").is_err());
    }

    #[test]
    fn branches_from_tags() {
        let bt = |s: &str| branch_and_tag(&Reference::parse(s).unwrap()).map(|(b, t)| format!("{b} {t}"));
        assert_eq!(bt("alpine").unwrap(), "latest-stable latest");
        assert_eq!(bt("alpine:3.20").unwrap(), "v3.20 3.20");
        assert_eq!(bt("alpine:edge").unwrap(), "edge edge");
        assert!(bt("busybox").unwrap_err().to_string().contains("only provides alpine"));
    }
}
