//! Image references as Docker parses them (pure).
//!
//! `alpine` is `docker.io/library/alpine:latest`; `host:port/name:tag` names
//! another registry; `name@sha256:<hex>` pins a manifest. The grammar follows
//! distribution's reference package: lowercase path components joined by
//! `.`, `_`, `__` or dashes; a first component is a registry when it holds a
//! `.` or `:` or is `localhost`; tags are `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.

use std::fmt;

use crate::config::DOCKER_HUB;
use crate::error::{Error, Result};

/// A normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry host[:port], `docker.io` for Docker Hub.
    pub registry: String,
    /// Repository path, e.g. `library/alpine`.
    pub repository: String,
    /// Tag; `latest` when neither tag nor digest was given.
    pub tag: Option<String>,
    /// `sha256:<hex>` when pinned by digest.
    pub digest: Option<String>,
}

const MAX_NAME_LEN: usize = 255;

impl Reference {
    /// Parse `text` the way `docker pull` does.
    pub fn parse(text: &str) -> Result<Reference> {
        let bad = |why: &str| {
            Error::new(format!("invalid reference format: `{text}`"))
                .because(why.to_string())
                .hint("use NAME[:TAG] or NAME@sha256:DIGEST, e.g. alpine:3.20")
        };
        if text.is_empty() {
            return Err(bad("empty reference"));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((name, digest)) => (name, Some(parse_digest(digest).map_err(|w| bad(&w))?)),
            None => (text, None),
        };
        let (name, tag) = split_tag(rest);
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                return Err(bad(&format!("invalid tag `{tag}`")));
            }
        }
        if name.len() > MAX_NAME_LEN {
            return Err(bad("repository name longer than 255 characters"));
        }
        let (registry, path) = split_registry(name);
        if let Some(registry) = registry {
            if !valid_registry(registry) {
                return Err(bad(&format!("invalid registry `{registry}`")));
            }
        }
        if path.is_empty() {
            return Err(bad("missing repository name"));
        }
        for component in path.split('/') {
            if component.chars().any(|c| c.is_ascii_uppercase()) {
                return Err(bad("repository name must be lowercase"));
            }
            if !valid_component(component) {
                return Err(bad(&format!("invalid repository name component `{component}`")));
            }
        }
        let registry = match registry {
            None | Some("index.docker.io") | Some("registry-1.docker.io") => DOCKER_HUB.to_string(),
            Some(r) => r.to_string(),
        };
        let repository =
            if registry == DOCKER_HUB && !path.contains('/') { format!("library/{path}") } else { path.to_string() };
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(Reference { registry, repository, tag, digest })
    }

    /// `registry/repository`, e.g. `docker.io/library/alpine`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The shortest name Docker would show: `alpine`, `user/app`, `host:5000/x`.
    pub fn familiar_name(&self) -> String {
        if self.registry == DOCKER_HUB {
            self.repository.strip_prefix("library/").unwrap_or(&self.repository).to_string()
        } else {
            self.name()
        }
    }

    /// The same repository with another tag (any digest dropped).
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference { tag: Some(tag.to_string()), digest: None, ..self.clone() }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Split `name[:tag]`, minding that a registry may carry a `:port`.
fn split_tag(s: &str) -> (&str, Option<&str>) {
    match s.rfind(':') {
        Some(i) if !s[i + 1..].contains('/') => (&s[..i], Some(&s[i + 1..])),
        _ => (s, None),
    }
}

fn split_registry(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (Some(first), rest),
        _ => (None, name),
    }
}

fn parse_digest(d: &str) -> std::result::Result<String, String> {
    let hex =
        d.strip_prefix("sha256:").ok_or_else(|| format!("unsupported digest `{d}` (only sha256 is supported)"))?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(format!("invalid digest `{d}`: want 64 lowercase hex characters"));
    }
    Ok(d.to_string())
}

fn valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric() || c == '_')
        && tag.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn valid_registry(r: &str) -> bool {
    let (host, port) = match r.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || r.starts_with('[') => (h, Some(p)),
        _ => (r, None),
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    let host_ok = if let Some(v6) = host.strip_prefix('[') {
        v6.ends_with(']') && v6.len() > 1
    } else {
        !host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    };
    port_ok && host_ok
}

/// One path component: `[a-z0-9]+` runs joined by `.`, `_`, `__` or dashes.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Reference {
        Reference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn normalizes_like_docker() {
        assert_eq!(p("alpine").to_string(), "docker.io/library/alpine:latest");
        assert_eq!(p("alpine:3.20").to_string(), "docker.io/library/alpine:3.20");
        assert_eq!(p("user/app").to_string(), "docker.io/user/app:latest");
        assert_eq!(p("docker.io/alpine").to_string(), "docker.io/library/alpine:latest");
        assert_eq!(p("index.docker.io/library/alpine").to_string(), "docker.io/library/alpine:latest");
        assert_eq!(p("localhost/app").to_string(), "localhost/app:latest");
        assert_eq!(p("127.0.0.1:5000/test/busybox:oci").to_string(), "127.0.0.1:5000/test/busybox:oci");
        assert_eq!(p("quay.io/a/b/c:v1.2-rc_3").repository, "a/b/c");
        assert_eq!(p("my_app__x.y-z---w").repository, "library/my_app__x.y-z---w");
    }

    #[test]
    fn digests() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = p(&format!("alpine@{d}"));
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert_eq!(r.to_string(), format!("docker.io/library/alpine@{d}"));
        let r = p(&format!("host:5000/x:1@{d}"));
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert_eq!(r.registry, "host:5000");
    }

    #[test]
    fn familiar_names() {
        assert_eq!(p("alpine").familiar_name(), "alpine");
        assert_eq!(p("user/app").familiar_name(), "user/app");
        assert_eq!(p("127.0.0.1:5000/test/busybox").familiar_name(), "127.0.0.1:5000/test/busybox");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "Alpine",
            "alpine:",
            ":tag",
            "alpine::1",
            "-alpine",
            "alpine-",
            "a//b",
            "a/",
            "alpine@sha256:abc",
            "alpine@md5:0123",
            "alpine:bad tag",
            "alpine:-x",
            "host:port/x",
            "UPPER/x",
            "a..b",
            "a_-b",
        ] {
            let e = Reference::parse(bad).expect_err(bad);
            assert!(e.to_string().starts_with("invalid reference format"), "{bad}: {e}");
            assert_eq!(e.exit_code(), 125);
        }
        let long = "a".repeat(256);
        assert!(Reference::parse(&long).is_err());
        assert!(Reference::parse(&format!("x:{}", "t".repeat(129))).is_err());
    }
}
