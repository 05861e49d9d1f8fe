//! OCI and Docker manifests, indexes, configs and media types; platform
//! choice (pure).
//!
//! Docker's schema2 manifest and manifest list have the same shape as OCI's
//! image manifest and index, so both parse into oci-spec's types; Docker's
//! media types arrive as `MediaType::Other`. Manifests written by some tools
//! (umoci) carry no `mediaType`, so the kind is decided by the field, then by
//! the HTTP Content-Type, then by the document's shape.

use std::fmt;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};

use crate::error::{Error, Result};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1";

/// Every manifest type mini reads, for the `Accept` header. Without the OCI
/// types a registry answers 404 for OCI images; without any, distribution
/// converts to the obsolete schema 1.
pub const ACCEPTED: &[&str] = &[OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST];

/// A fetched manifest document.
#[derive(Debug, Clone)]
pub enum Manifest {
    // Boxed: both are large, and the enum is moved around.
    Image(Box<ImageManifest>),
    Index(Box<ImageIndex>),
}

impl Manifest {
    /// Parse manifest bytes; `content_type` is the HTTP Content-Type if known.
    pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Manifest> {
        let doc: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| Error::new("parse manifest").because(e))?;
        let declared = doc
            .get("mediaType")
            .and_then(|v| v.as_str())
            .or(content_type.map(|c| c.split(';').next().unwrap_or(c).trim()))
            .filter(|t| !t.is_empty() && *t != "application/json" && *t != "text/plain");
        if doc.get("schemaVersion").and_then(|v| v.as_u64()) == Some(1)
            || declared.is_some_and(|t| t.starts_with(DOCKER_SCHEMA1))
        {
            return Err(Error::new("parse manifest")
                .because("Docker schema 1 manifests are not supported")
                .hint("push the image again with a current client"));
        }
        let is_index = match declared {
            Some(OCI_INDEX) | Some(DOCKER_LIST) => true,
            Some(OCI_MANIFEST) | Some(DOCKER_MANIFEST) => false,
            Some(other) if doc.get("manifests").is_none() && doc.get("layers").is_none() => {
                return Err(Error::new("parse manifest").because(format!("unsupported media type `{other}`")))
            }
            _ => doc.get("manifests").is_some(),
        };
        let parsed = if is_index {
            serde_json::from_value(doc).map(|i| Manifest::Index(Box::new(i)))
        } else {
            serde_json::from_value(doc).map(|m| Manifest::Image(Box::new(m)))
        };
        parsed.map_err(|e| Error::new("parse manifest").because(e))
    }
}

/// Parse an image config and check it agrees with its manifest.
pub fn parse_config(bytes: &[u8], manifest: &ImageManifest) -> Result<ImageConfiguration> {
    let config: ImageConfiguration =
        serde_json::from_slice(bytes).map_err(|e| Error::new("parse image config").because(e))?;
    let diff_ids = config.rootfs().diff_ids().len();
    let layers = manifest.layers().len();
    if diff_ids != layers {
        return Err(Error::new("parse image config")
            .because(format!("config lists {diff_ids} layer diff_ids but the manifest has {layers} layers")));
    }
    Ok(config)
}

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// From a layer's media type; anything that is not a layer is refused.
    pub fn from_media_type(media_type: &MediaType) -> Result<Compression> {
        let text = media_type.to_string();
        match media_type {
            MediaType::ImageLayer | MediaType::ImageLayerNonDistributable => Ok(Compression::None),
            MediaType::ImageLayerGzip | MediaType::ImageLayerNonDistributableGzip => Ok(Compression::Gzip),
            MediaType::ImageLayerZstd | MediaType::ImageLayerNonDistributableZstd => Ok(Compression::Zstd),
            _ if text.starts_with("application/vnd.docker.image.rootfs.") => {
                Ok(if text.ends_with(".gzip") { Compression::Gzip } else { Compression::None })
            }
            _ => Err(Error::new("read layer").because(format!("unsupported layer media type `{text}`"))),
        }
    }

    /// Detect compression from a blob's first bytes, as Docker does: a layer
    /// labelled with the wrong type still unpacks.
    pub fn sniff(head: &[u8]) -> Option<Compression> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Some(Compression::Gzip)
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Compression::Zstd)
        } else if head.len() >= 4 {
            Some(Compression::None)
        } else {
            None
        }
    }
}

/// An `os/arch[/variant]` platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformSpec {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl PlatformSpec {
    /// The platform mini runs on.
    pub fn host() -> PlatformSpec {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" => ("ppc64le", None),
            other => (other, None),
        };
        PlatformSpec { os: "linux".into(), architecture: arch.into(), variant: variant.map(Into::into) }
    }

    pub fn parse(text: &str) -> Result<PlatformSpec> {
        let parts: Vec<&str> = text.split('/').collect();
        let bad =
            || Error::new(format!("invalid platform `{text}`")).hint("use os/arch[/variant], e.g. linux/arm64/v8");
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        let (os, architecture, variant) = match parts.as_slice() {
            [os, arch] => (*os, *arch, None),
            [os, arch, variant] => (*os, *arch, Some(variant.to_string())),
            _ => return Err(bad()),
        };
        let architecture = match architecture {
            "x86_64" | "x86-64" => "amd64",
            "aarch64" => "arm64",
            a => a,
        };
        Ok(PlatformSpec { os: os.to_lowercase(), architecture: architecture.into(), variant })
    }

    /// Variant with the defaults containerd assumes (arm64 means v8).
    fn normalized_variant(&self) -> Option<&str> {
        match (self.architecture.as_str(), self.variant.as_deref()) {
            ("arm64", None) => Some("v8"),
            (_, v) => v,
        }
    }

    fn of(p: &oci_spec::image::Platform) -> PlatformSpec {
        PlatformSpec {
            os: p.os().to_string(),
            architecture: p.architecture().to_string(),
            variant: p.variant().clone(),
        }
    }
}

impl fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// How well an index entry's platform fits `want`: None if not at all,
/// higher is better. A wanted variant must match exactly (arm64 without a
/// variant counts as v8); with no variant wanted, an entry without one wins.
fn fit(have: &PlatformSpec, want: &PlatformSpec) -> Option<u8> {
    if have.os != want.os || have.architecture != want.architecture {
        return None;
    }
    match (want.variant.as_deref(), have.normalized_variant(), want.normalized_variant()) {
        (_, h, w) if h == w => Some(2),
        (None, _, _) if want.architecture != "arm" => Some(1),
        _ => None,
    }
}

/// Pick the manifest for `want` from an index; the error lists what exists.
pub fn choose_platform<'a>(index: &'a ImageIndex, want: &PlatformSpec) -> Result<&'a Descriptor> {
    let mut best: Option<(&Descriptor, u8)> = None;
    for entry in index.manifests() {
        let Some(platform) = entry.platform() else { continue };
        if let Some(score) = fit(&PlatformSpec::of(platform), want) {
            if best.is_none_or(|(_, s)| score > s) {
                best = Some((entry, score));
            }
        }
    }
    best.map(|(d, _)| d).ok_or_else(|| {
        let available: Vec<String> = index
            .manifests()
            .iter()
            .filter_map(|d| d.platform().as_ref().map(|p| PlatformSpec::of(p).to_string()))
            .collect();
        Error::new(format!("no image for platform {want}"))
            .because(format!(
                "the index offers {}",
                if available.is_empty() { "no platforms".into() } else { available.join(", ") }
            ))
            .hint("choose one with --platform")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index_json(platforms: &[(&str, &str, Option<&str>)]) -> Vec<u8> {
        let entries: Vec<serde_json::Value> = platforms
            .iter()
            .enumerate()
            .map(|(i, (os, arch, variant))| {
                let mut p = serde_json::json!({"os": os, "architecture": arch});
                if let Some(v) = variant {
                    p["variant"] = serde_json::json!(v);
                }
                serde_json::json!({
                    "mediaType": OCI_MANIFEST, "size": 100 + i,
                    "digest": format!("sha256:{}", format!("{i}").repeat(64)), "platform": p
                })
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": entries})).unwrap()
    }

    fn choose(platforms: &[(&str, &str, Option<&str>)], want: &str) -> Result<u64> {
        let Manifest::Index(index) = Manifest::parse(&index_json(platforms), None).unwrap() else {
            panic!("not an index")
        };
        choose_platform(&index, &PlatformSpec::parse(want).unwrap()).map(|d| d.size() - 100)
    }

    #[test]
    fn platform_choice_is_variant_aware() {
        let both = [
            ("linux", "amd64", None),
            ("linux", "arm64", Some("v8")),
            ("linux", "arm", Some("v7")),
            ("linux", "arm", Some("v6")),
        ];
        assert_eq!(choose(&both, "linux/amd64").unwrap(), 0);
        assert_eq!(choose(&both, "linux/arm64").unwrap(), 1);
        assert_eq!(choose(&both, "linux/arm64/v8").unwrap(), 1);
        assert_eq!(choose(&both, "linux/arm/v6").unwrap(), 3);
        assert_eq!(choose(&both, "linux/arm/v7").unwrap(), 2);
        assert_eq!(choose(&[("linux", "arm64", None)], "linux/arm64/v8").unwrap(), 0);
        assert_eq!(choose(&[("linux", "amd64", Some("v3")), ("linux", "amd64", None)], "linux/amd64").unwrap(), 1);
        let e = choose(&both, "linux/s390x").unwrap_err().to_string();
        assert!(e.contains("no image for platform linux/s390x"), "{e}");
        assert!(e.contains("linux/amd64, linux/arm64/v8, linux/arm/v7, linux/arm/v6"), "{e}");
        assert!(choose(&both, "linux/arm64/v9").is_err());
    }

    #[test]
    fn parses_platforms() {
        assert_eq!(PlatformSpec::parse("linux/x86_64").unwrap().to_string(), "linux/amd64");
        assert_eq!(PlatformSpec::parse("linux/arm64/v8").unwrap().variant.as_deref(), Some("v8"));
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d"] {
            assert!(PlatformSpec::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(PlatformSpec::host().os, "linux");
    }

    #[test]
    fn detects_manifest_kinds() {
        let image = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","size":2},"layers":[]}"#;
        assert!(matches!(Manifest::parse(image, None).unwrap(), Manifest::Image(_)));
        assert!(matches!(Manifest::parse(image, Some(OCI_MANIFEST)).unwrap(), Manifest::Image(_)));
        assert!(matches!(Manifest::parse(&index_json(&[]), Some(DOCKER_LIST)).unwrap(), Manifest::Index(_)));
        let s1 = br#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#;
        assert!(Manifest::parse(s1, None).unwrap_err().to_string().contains("schema 1"));
        assert!(Manifest::parse(b"not json", None).unwrap_err().to_string().starts_with("parse manifest"));
        let art = br#"{"schemaVersion":2,"mediaType":"application/vnd.example+json"}"#;
        assert!(Manifest::parse(art, None).unwrap_err().to_string().contains("unsupported media type"));
    }

    #[test]
    fn compression_from_type_and_magic() {
        use Compression::*;
        let t = |s: &str| Compression::from_media_type(&MediaType::from(s));
        assert_eq!(t("application/vnd.oci.image.layer.v1.tar+gzip").unwrap(), Gzip);
        assert_eq!(t("application/vnd.oci.image.layer.v1.tar+zstd").unwrap(), Zstd);
        assert_eq!(t("application/vnd.oci.image.layer.v1.tar").unwrap(), None);
        assert_eq!(t("application/vnd.docker.image.rootfs.diff.tar.gzip").unwrap(), Gzip);
        assert_eq!(t("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip").unwrap(), Gzip);
        assert!(t("application/vnd.oci.image.config.v1+json").is_err());
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8, 0]), Some(Gzip));
        assert_eq!(Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd]), Some(Zstd));
        assert_eq!(Compression::sniff(b"etc/"), Some(None));
        assert_eq!(Compression::sniff(b"e"), Option::None);
    }
}
