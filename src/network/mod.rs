//! Container networking, Docker's modes: `bridge` (the default network, a
//! `mini0` bridge), user networks (a bridge each, names resolved through
//! `/etc/hosts` entries kept current), `none` (loopback only), `host` and
//! `container:X`. Here: the mode as parsed and the container's network
//! options as recorded. [`records`] owns networks.json (networks, the
//! endpoints of running containers), [`ipam`] the address arithmetic,
//! [`ports`] `-p`/`-P`, [`nft`] the ruleset of table `inet mini`, [`etc`]
//! the container's hosts and resolv.conf, [`host`] the executor on the
//! host's side (bridges, sysctls, nft), [`attach`] a container's
//! endpoints from start to stop, [`manage`] `mini network …`.

pub mod attach;
pub mod etc;
pub mod host;
pub mod ipam;
pub mod manage;
pub mod nft;
pub mod ports;
pub mod records;

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use ports::PortMapping;

/// `--network`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Loopback only.
    None,
    /// The host's network namespace.
    Host,
    /// Another container's network namespace (name or id).
    Container(String),
    /// A network by name: `bridge` (the default) or a user network.
    Network(String),
    /// A user-mode network stack (pasta or slirp4netns) run by mini for
    /// the container: rootless mini's default, as Podman's.
    Stack(Stack),
}

use crate::runtime::usermode::Stack;

/// Rootless mini's default network: pasta, else slirp4netns (as Podman
/// picks), else pasta (whose absence is then reported at run).
pub fn user_mode_default() -> &'static str {
    Stack::detect().unwrap_or(Stack::Pasta).program()
}

impl Mode {
    pub fn parse(text: &str) -> Result<Mode> {
        match text {
            "none" => Ok(Mode::None),
            "host" => Ok(Mode::Host),
            "pasta" => Ok(Mode::Stack(Stack::Pasta)),
            "slirp4netns" => Ok(Mode::Stack(Stack::Slirp4netns)),
            "bridge" | "default" => Ok(Mode::Network(records::DEFAULT.to_string())),
            "" => Err(Error::new("invalid --network \"\"").because("no network named").hint(HINT)),
            t => match t.strip_prefix("container:") {
                Some("") => {
                    Err(Error::new(format!("invalid --network \"{t}\"")).because("no container named").hint(HINT))
                }
                Some(c) => Ok(Mode::Container(c.to_string())),
                None => Ok(Mode::Network(t.to_string())),
            },
        }
    }

    /// Whether the container gets an endpoint on a bridge (addresses,
    /// ports, aliases apply).
    pub fn network(&self) -> Option<&str> {
        match self {
            Mode::Network(n) => Some(n),
            _ => None,
        }
    }
}

const HINT: &str = "use bridge, none, host, container:NAME or a network from `mini network ls`";

/// The network options of a container, decided at create.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetOptions {
    /// `-p`/`-P`, host port 0 meaning "chosen at each start".
    #[serde(default)]
    pub ports: Vec<PortMapping>,
    /// `--ip`.
    #[serde(default)]
    pub ip: Option<Ipv4Addr>,
    /// `--mac-address`, normalised.
    #[serde(default)]
    pub mac: Option<String>,
    /// `--network-alias`.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `--add-host`, as (name, address) with host-gateway resolved.
    #[serde(default)]
    pub add_hosts: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_as_docker_names_them() {
        assert_eq!(Mode::parse("none").unwrap(), Mode::None);
        assert_eq!(Mode::parse("host").unwrap(), Mode::Host);
        assert_eq!(Mode::parse("bridge").unwrap(), Mode::Network("bridge".into()));
        assert_eq!(Mode::parse("default").unwrap(), Mode::Network("bridge".into()));
        assert_eq!(Mode::parse("container:web").unwrap(), Mode::Container("web".into()));
        assert_eq!(Mode::parse("mynet").unwrap(), Mode::Network("mynet".into()));
        assert!(Mode::parse("").is_err());
        assert!(Mode::parse("container:").is_err());
    }
}
