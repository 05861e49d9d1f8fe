//! mini's configuration: where the store lives, which registries to reach
//! through which mirrors, which may use plain http, where the Alpine
//! minirootfs comes from, and where containers' cgroups go.
//!
//! Sources, later ones winning: built-in defaults, the config file
//! (`/etc/mini/config.toml`, or `$MINI_CONFIG`), environment variables
//! (`MINI_ROOT`, `MINI_REGISTRY_MIRROR`, `MINI_INSECURE_REGISTRY`,
//! `MINI_ALPINE_MIRROR`), then command-line flags. The file format:
//!
//! ```toml
//! root = "/var/lib/mini"
//! registry-mirrors = ["http://127.0.0.1:5000"]     # tried first for docker.io, like Docker's
//! insecure-registries = ["registry.lan:5000"]      # plain http allowed (localhost always is)
//! alpine-mirror = "http://127.0.0.1:8080"          # default https://dl-cdn.alpinelinux.org/alpine
//! cgroup-parent = "mini"                           # relative to mini's own cgroup, or absolute
//! default-network = "bridge"                       # what `run` uses without --network (as Podman's containers.conf)
//! bridge-name = "mini0"                            # the default network's bridge ...
//! bridge-subnet = "10.88.0.0/16"                   # ... and its subnet (the gateway is its first address)
//! certs-dir = "/etc/mini/certs.d"                  # <host[:port]>/*.crt: CA certificates per registry
//!
//! [registry."quay.io"]                             # per-registry mirrors
//! mirrors = ["http://127.0.0.1:5000"]
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

pub const DEFAULT_ROOT: &str = "/var/lib/mini";
pub const DEFAULT_CONFIG_FILE: &str = "/etc/mini/config.toml";
pub const DEFAULT_ALPINE_MIRROR: &str = "https://dl-cdn.alpinelinux.org/alpine";
/// Docker Hub's canonical registry name and the host that actually serves it.
pub const DOCKER_HUB: &str = "docker.io";

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub root: PathBuf,
    /// Mirrors per registry host ("docker.io", "quay.io", ...), each a base URL.
    pub mirrors: BTreeMap<String, Vec<String>>,
    /// Registries (host[:port]) reached over plain http.
    pub insecure_registries: Vec<String>,
    pub alpine_mirror: String,
    pub cgroup_parent: Option<String>,
    pub default_network: String,
    pub bridge_name: String,
    pub bridge_subnet: ipnet::Ipv4Net,
    /// `log-driver` and `log-opts` (as `KEY=VALUE`): the defaults of
    /// `--log-driver` and `--log-opt`, as Docker's daemon.json has them.
    pub log_driver: Option<String>,
    pub log_opts: Vec<String>,
    /// Per-registry CA certificates, Docker's `certs.d` layout
    /// (`<dir>/<host[:port]>/*.crt`; `registry::tls`).
    pub certs_dir: PathBuf,
}

pub const DEFAULT_BRIDGE_NAME: &str = "mini0";
pub const DEFAULT_BRIDGE_SUBNET: &str = "10.88.0.0/16";

impl Default for Config {
    fn default() -> Config {
        Config {
            root: PathBuf::from(DEFAULT_ROOT),
            mirrors: BTreeMap::new(),
            insecure_registries: Vec::new(),
            alpine_mirror: DEFAULT_ALPINE_MIRROR.to_string(),
            cgroup_parent: None,
            default_network: crate::network::records::DEFAULT.to_string(),
            bridge_name: DEFAULT_BRIDGE_NAME.to_string(),
            bridge_subnet: DEFAULT_BRIDGE_SUBNET.parse().expect("the default subnet parses"),
            log_driver: None,
            log_opts: Vec::new(),
            certs_dir: PathBuf::from(DEFAULT_CONFIG_FILE).with_file_name("certs.d"),
        }
    }
}

/// The config file as written by a user.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct ConfigFile {
    root: Option<PathBuf>,
    #[serde(default)]
    registry_mirrors: Vec<String>,
    #[serde(default)]
    insecure_registries: Vec<String>,
    alpine_mirror: Option<String>,
    cgroup_parent: Option<String>,
    default_network: Option<String>,
    bridge_name: Option<String>,
    bridge_subnet: Option<String>,
    log_driver: Option<String>,
    #[serde(default)]
    log_opts: BTreeMap<String, String>,
    certs_dir: Option<PathBuf>,
    #[serde(default)]
    registry: BTreeMap<String, RegistrySection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RegistrySection {
    #[serde(default)]
    mirrors: Vec<String>,
}

/// What a config file does not say: root's defaults, or a rootless
/// user's (XDG paths; the network from pasta, no bridges).
#[derive(Debug, Clone, PartialEq)]
pub struct Defaults {
    pub root: PathBuf,
    pub config_file: PathBuf,
    pub default_network: String,
}

impl Defaults {
    pub fn root() -> Defaults {
        Defaults {
            root: PathBuf::from(DEFAULT_ROOT),
            config_file: PathBuf::from(DEFAULT_CONFIG_FILE),
            default_network: crate::network::records::DEFAULT.to_string(),
        }
    }

    pub fn rootless(paths: &crate::rootless::Paths) -> Defaults {
        Defaults {
            root: paths.store.clone(),
            config_file: paths.config_file.clone(),
            default_network: crate::network::user_mode_default().to_string(),
        }
    }

    /// This process's: root's, or its rootless user's.
    pub fn of_process() -> Defaults {
        match crate::rootless::current() {
            Some(user) => Defaults::rootless(&crate::rootless::Paths::of_process(user)),
            None => Defaults::root(),
        }
    }
}

/// Values that override the file: from the environment or from flags.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub root: Option<PathBuf>,
    pub registry_mirrors: Vec<String>,
    pub insecure_registries: Vec<String>,
    pub alpine_mirror: Option<String>,
}

impl Config {
    /// Load the config file at `path` (a missing file is fine unless it was
    /// named explicitly) over `defaults` and apply `overrides` on top.
    pub fn load(path: Option<&Path>, overrides: &Overrides, defaults: &Defaults) -> Result<Config> {
        let (path, explicit) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (defaults.config_file.clone(), false),
        };
        let mut config = match std::fs::read_to_string(&path) {
            Ok(text) => Config::parse_over(&text, defaults)
                .map_err(|e| e.within(format!("read config file {}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => Config::over(defaults),
            Err(e) => return Err(Error::new(format!("read config file {}", path.display())).because(e)),
        };
        config.apply(overrides);
        Ok(config)
    }

    /// Parse the TOML text of a config file (over root's defaults).
    #[cfg(test)]
    pub fn parse(text: &str) -> Result<Config> {
        Config::parse_over(text, &Defaults::root())
    }

    fn over(defaults: &Defaults) -> Config {
        Config {
            root: defaults.root.clone(),
            default_network: defaults.default_network.clone(),
            // Beside the config file, as Docker's /etc/docker/certs.d.
            certs_dir: defaults.config_file.with_file_name("certs.d"),
            ..Config::default()
        }
    }

    fn parse_over(text: &str, defaults: &Defaults) -> Result<Config> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| Error::new("parse config").because(e.message()))?;
        let mut config = Config::over(defaults);
        if let Some(root) = file.root {
            config.root = root;
        }
        for (registry, section) in file.registry {
            config.mirrors.entry(registry).or_default().extend(section.mirrors);
        }
        if !file.registry_mirrors.is_empty() {
            config.mirrors.entry(DOCKER_HUB.to_string()).or_default().extend(file.registry_mirrors);
        }
        config.insecure_registries = file.insecure_registries;
        if let Some(m) = file.alpine_mirror {
            config.alpine_mirror = m;
        }
        config.cgroup_parent = file.cgroup_parent;
        if let Some(dir) = file.certs_dir {
            config.certs_dir = dir;
        }
        if let Some(n) = file.default_network {
            crate::network::Mode::parse(&n).map_err(|e| e.within("default-network"))?;
            config.default_network = n;
        }
        if let Some(b) = file.bridge_name {
            check_interface_name(&b)?;
            config.bridge_name = b;
        }
        if let Some(s) = file.bridge_subnet {
            config.bridge_subnet = crate::network::ipam::parse_subnet(&s).map_err(|e| e.within("bridge-subnet"))?;
        }
        for urls in config.mirrors.values() {
            for url in urls {
                check_url(url)?;
            }
        }
        check_url(&config.alpine_mirror)?;
        config.log_driver = file.log_driver;
        config.log_opts = file.log_opts.iter().map(|(k, v)| format!("{k}={v}")).collect();
        crate::container::logs::LogConfig::parse(config.log_driver.as_deref(), &config.log_opts)
            .map_err(|e| e.within("log-driver/log-opts"))?;
        Ok(config)
    }

    fn apply(&mut self, o: &Overrides) {
        if let Some(root) = &o.root {
            self.root = root.clone();
        }
        if !o.registry_mirrors.is_empty() {
            // Like dockerd's flag, mirrors given at run time replace the file's docker.io list.
            self.mirrors.insert(DOCKER_HUB.to_string(), o.registry_mirrors.clone());
        }
        self.insecure_registries.extend(o.insecure_registries.iter().cloned());
        if let Some(m) = &o.alpine_mirror {
            self.alpine_mirror = m.clone();
        }
    }

    /// Mirror base URLs to try, in order, before `registry` itself.
    pub fn mirrors_for(&self, registry: &str) -> &[String] {
        self.mirrors.get(registry).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Whether `host` (host[:port]) may be reached over plain http: loopback
    /// always, as Docker allows, plus every registry listed as insecure.
    pub fn is_insecure(&self, host: &str) -> bool {
        let name = host_without_port(host);
        matches!(name, "localhost" | "127.0.0.1" | "[::1]" | "::1")
            || name.starts_with("127.")
            || self.insecure_registries.iter().any(|r| r == host || r == name)
    }
}

fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().map(|h| &host[..h.len() + 2]).unwrap_or(host);
    }
    host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
}

fn check_url(url: &str) -> Result<()> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(Error::new(format!("mirror URL `{url}`"))
            .because("not an http:// or https:// URL")
            .hint("write mirrors as full URLs, e.g. http://127.0.0.1:5000"))
    }
}

/// A Linux interface name: 1 to 15 bytes, no '/', no whitespace.
fn check_interface_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && !name.contains(['/', ':', '"', '\\'])
        && !name.contains(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err(Error::new(format!("invalid bridge-name \"{name}\""))
            .because("an interface name is 1-15 bytes without / : \" \\ or spaces"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_keys_are_checked() {
        let c = Config::parse("default-network = \"none\"\nbridge-name = \"br9\"\nbridge-subnet = \"10.70.0.0/24\"\n")
            .unwrap();
        assert_eq!((c.default_network.as_str(), c.bridge_name.as_str()), ("none", "br9"));
        assert_eq!(c.bridge_subnet.to_string(), "10.70.0.0/24");
        assert_eq!(Config::default().bridge_subnet.to_string(), "10.88.0.0/16");
        assert!(Config::parse("bridge-subnet = \"10.70.0.1/24\"\n").is_err());
        assert!(Config::parse("bridge-name = \"a-name-far-too-long\"\n").is_err());
        assert!(Config::parse("default-network = \"\"\n").is_err());
    }

    #[test]
    fn parses_all_keys() {
        let c = Config::parse(
            r#"
            root = "/srv/mini"
            registry-mirrors = ["http://127.0.0.1:5000"]
            insecure-registries = ["reg.lan:5000"]
            alpine-mirror = "http://127.0.0.1:8080"
            cgroup-parent = "ci"
            [registry."quay.io"]
            mirrors = ["https://mirror.example"]
            "#,
        )
        .unwrap();
        assert_eq!(c.root, PathBuf::from("/srv/mini"));
        assert_eq!(c.mirrors_for("docker.io"), ["http://127.0.0.1:5000"]);
        assert_eq!(c.mirrors_for("quay.io"), ["https://mirror.example"]);
        assert!(c.mirrors_for("ghcr.io").is_empty());
        assert_eq!(c.alpine_mirror, "http://127.0.0.1:8080");
        assert_eq!(c.cgroup_parent.as_deref(), Some("ci"));
        assert!(c.is_insecure("reg.lan:5000"));
    }

    #[test]
    fn rejects_unknown_keys_and_bad_urls() {
        assert!(Config::parse("rooot = \"/x\"").unwrap_err().to_string().contains("rooot"));
        let e = Config::parse("registry-mirrors = [\"127.0.0.1:5000\"]").unwrap_err();
        assert!(e.to_string().contains("not an http:// or https:// URL"), "{e}");
    }

    #[test]
    fn overrides_win() {
        let mut c = Config::parse("registry-mirrors = [\"http://a\"]").unwrap();
        c.apply(&Overrides {
            root: Some("/r".into()),
            registry_mirrors: vec!["http://b".into()],
            insecure_registries: vec!["x:1".into()],
            alpine_mirror: Some("http://m".into()),
        });
        assert_eq!(c.root, PathBuf::from("/r"));
        assert_eq!(c.mirrors_for("docker.io"), ["http://b"]);
        assert!(c.is_insecure("x:1"));
        assert_eq!(c.alpine_mirror, "http://m");
    }

    #[test]
    fn rootless_defaults_come_from_xdg_and_the_file_still_wins() {
        let user = crate::rootless::User { uid: 1000, gid: 1000, name: "a".into(), home: "/home/a".into() };
        let d = Defaults::rootless(&crate::rootless::Paths::new(&user, &|_| None));
        assert_eq!(d.root, PathBuf::from("/home/a/.local/share/mini"));
        assert_eq!(d.config_file, PathBuf::from("/home/a/.config/mini/config.toml"));
        let c = Config::parse_over("", &d).unwrap();
        assert_eq!((c.root.as_path(), c.default_network.as_str()), (d.root.as_path(), d.default_network.as_str()));
        assert!(["pasta", "slirp4netns"].contains(&d.default_network.as_str()));
        let c = Config::parse_over("root = \"/srv/x\"\ndefault-network = \"none\"\n", &d).unwrap();
        assert_eq!((c.root.as_path(), c.default_network.as_str()), (Path::new("/srv/x"), "none"));
        assert_eq!(Config::over(&Defaults::root()), Config::default());
    }

    #[test]
    fn loopback_is_always_insecure() {
        let c = Config::default();
        assert!(c.is_insecure("127.0.0.1:5000"));
        assert!(c.is_insecure("localhost:5000"));
        assert!(c.is_insecure("localhost"));
        assert!(c.is_insecure("[::1]:5000"));
        assert!(!c.is_insecure("registry-1.docker.io"));
        assert!(!c.is_insecure("example.com:5000"));
    }
}
