//! `networks.json` in the store root, owned here and nowhere else: the
//! networks (the default `bridge` and user networks) and the endpoints of
//! running containers on them (address, MAC, published ports, the process
//! that holds them). Every change happens under `networks.lock` (flock,
//! gone with a killed mini), read-modify-write, replaced by rename, so 50
//! concurrent `run`s never get one address twice and a reader never sees
//! half a file.
//!
//! No fsync: after a power loss an endpoint list can only be out of date,
//! and every endpoint whose holder is dead is swept anyway (addresses are
//! not kept for stopped containers, as Docker keeps none).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use mini_store::StoreLock;
use serde::{Deserialize, Serialize};

use super::ports::PortMapping;
use crate::error::{Error, Result};

pub const FILE: &str = "networks.json";
const LOCK: &str = "networks.lock";

/// The default network's name, as Docker's.
pub const DEFAULT: &str = "bridge";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    pub name: String,
    /// 64 hex, as Docker's network ids.
    pub id: String,
    /// The Linux bridge in mini's network namespace.
    pub bridge: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub created: String,
}

impl Network {
    /// Whether containers on it resolve each other by name (user
    /// networks do; the default bridge does not, as in Docker).
    pub fn resolves_names(&self) -> bool {
        self.name != DEFAULT
    }
}

/// A running container's attachment to one network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The container's id and name (its name and aliases resolve on user
    /// networks).
    pub container: String,
    pub name: String,
    /// Its host name and `--add-host` entries: with the endpoints, all
    /// its /etc/hosts is made of.
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub add_hosts: Vec<(String, String)>,
    pub network: String,
    pub ip: Ipv4Addr,
    pub mac: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The host end of its veth pair.
    pub host_if: String,
    /// Published ports, host ports resolved.
    #[serde(default)]
    pub ports: Vec<PortMapping>,
    /// The process holding the endpoint (the foreground `mini run` or the
    /// monitor) and its start time: when it is gone, so is the endpoint.
    pub holder: Holder,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: i32,
    pub start_time: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Networks {
    #[serde(default)]
    pub networks: Vec<Network>,
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
}

impl Networks {
    pub fn get(&self, name_or_id: &str) -> Option<&Network> {
        self.networks.iter().find(|n| n.name == name_or_id).or_else(|| {
            let mut by_id = self.networks.iter().filter(|n| name_or_id.len() >= 3 && n.id.starts_with(name_or_id));
            match (by_id.next(), by_id.next()) {
                (Some(n), None) => Some(n),
                _ => None,
            }
        })
    }

    pub fn endpoints_on<'a>(&'a self, network: &'a str) -> impl Iterator<Item = &'a Endpoint> + 'a {
        self.endpoints.iter().filter(move |e| e.network == network)
    }

    pub fn endpoints_of<'a>(&'a self, container: &'a str) -> impl Iterator<Item = &'a Endpoint> + 'a {
        self.endpoints.iter().filter(move |e| e.container == container)
    }
}

pub fn path(root: &Path) -> PathBuf {
    root.join(FILE)
}

/// Read without the lock (renames make every read whole); empty when the
/// store has no networks yet.
pub fn read(root: &Path) -> Result<Networks> {
    let p = path(root);
    match std::fs::read(&p) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| unreadable(&p, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Networks::default()),
        Err(e) => Err(Error::new(format!("read {}", p.display())).because(e)),
    }
}

/// The records under the lock, for one read-modify-write.
pub struct Locked {
    _lock: StoreLock,
    root: PathBuf,
    pub data: Networks,
    before: Networks,
}

impl Locked {
    pub fn open(root: &Path) -> Result<Locked> {
        let lock =
            StoreLock::exclusive(&root.join(LOCK)).map_err(|e| Error::new("lock the network records").because(e))?;
        let data = read(root)?;
        Ok(Locked { _lock: lock, root: root.to_path_buf(), before: data.clone(), data })
    }

    /// Write the records back, if they changed.
    pub fn save(&mut self) -> Result<()> {
        if self.data == self.before {
            return Ok(());
        }
        let p = path(&self.root);
        let tmp = self.root.join(format!(".{FILE}.tmp"));
        let bytes =
            serde_json::to_vec_pretty(&self.data).map_err(|e| Error::new("encode the network records").because(e))?;
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, &p))
            .map_err(|e| Error::new(format!("write {}", p.display())).because(e))?;
        self.before = self.data.clone();
        Ok(())
    }
}

fn unreadable(p: &Path, e: impl std::fmt::Display) -> Error {
    Error::new(format!("read {}", p.display()))
        .because(e)
        .hint("stop all containers, then remove the file: mini recreates the default network")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(name: &str, id: &str) -> Network {
        Network {
            name: name.into(),
            id: id.into(),
            bridge: "b".into(),
            subnet: "10.0.0.0/24".parse().unwrap(),
            gateway: "10.0.0.1".parse().unwrap(),
            created: String::new(),
        }
    }

    #[test]
    fn networks_are_found_by_name_or_unique_id_prefix() {
        let n = Networks { networks: vec![net("a", "abc111"), net("b", "abd222")], endpoints: vec![] };
        assert_eq!(n.get("a").unwrap().id, "abc111");
        assert_eq!(n.get("abd").unwrap().name, "b");
        assert!(n.get("ab").is_none(), "too short");
        assert!(n.get("abx").is_none());
    }

    #[test]
    fn records_round_trip_under_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), Networks::default());
        let mut l = Locked::open(dir.path()).unwrap();
        l.data.networks.push(net("a", "abc"));
        l.save().unwrap();
        drop(l);
        assert_eq!(read(dir.path()).unwrap().networks.len(), 1);
    }
}
