//! `mini network create|ls|inspect|rm|prune`, and the default network's
//! record, made from the configuration the first time a container needs
//! it.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use mini_store::Store;
use serde_json::json;

use super::records::{self, Locked, Network, Networks, DEFAULT};
use super::{attach, host, ipam};
use crate::config::Config;
use crate::error::{Error, Result};

/// Where user networks' subnets come from when none is given (as
/// Podman's 10.89.N.0/24).
const POOL: (u8, u8) = (10, 89);

/// The network a container on `name` will use, checked at create: the
/// default one's record made from `config` if it is missing, a user
/// network required to exist, a `--ip` required to fit it.
pub fn resolve(config: &Config, store: &Store, name: &str, ip: Option<Ipv4Addr>) -> Result<Network> {
    let mut recs = Locked::open(store.root())?;
    if name == DEFAULT && recs.data.get(DEFAULT).is_none() {
        let net = default_network(config);
        recs.data.networks.push(net);
        recs.save()?;
    }
    let net = recs.data.get(name).cloned().ok_or_else(|| attach::not_found(name))?;
    if let Some(ip) = ip {
        ipam::pick(net.subnet, net.gateway, &[], Some(ip)).map_err(|e| e.within(format!("invalid --ip {ip}")))?;
    }
    Ok(net)
}

fn default_network(config: &Config) -> Network {
    Network {
        name: DEFAULT.to_string(),
        id: mini_store::containers::new_id(),
        bridge: config.bridge_name.clone(),
        subnet: config.bridge_subnet,
        gateway: ipam::default_gateway(config.bridge_subnet),
        created: mini_store::rfc3339_now(),
    }
}

/// `mini network create`; returns the new network's id.
pub fn create(
    config: &Config,
    store: &Store,
    name: &str,
    subnet: Option<&str>,
    gateway: Option<&str>,
) -> Result<String> {
    let what = || format!("create network {name}");
    check_name(name).map_err(|e| e.within(what()))?;
    let mut recs = Locked::open(store.root())?;
    if recs.data.get(DEFAULT).is_none() {
        recs.data.networks.push(default_network(config));
    }
    if recs.data.networks.iter().any(|n| n.name == name) || ["host", "none", "default"].contains(&name) {
        return Err(Error::new(what()).because(format!("a network named {name} already exists")));
    }
    let subnet = match subnet {
        Some(s) => {
            let s = ipam::parse_subnet(s).map_err(|e| e.within(what()))?;
            if let Some(other) = recs.data.networks.iter().find(|n| ipam::overlaps(n.subnet, s)) {
                return Err(Error::new(what())
                    .because(format!("subnet {s} overlaps network {} ({})", other.name, other.subnet))
                    .hint("choose a subnet that no other network uses"));
            }
            s
        }
        None => free_subnet(&recs.data).ok_or_else(|| {
            Error::new(what()).because("no free subnet left in 10.89.0.0/16").hint("give one with --subnet")
        })?,
    };
    let gateway = match gateway {
        Some(g) => {
            let g: Ipv4Addr =
                g.parse().map_err(|_| Error::new(what()).because(format!("invalid gateway address \"{g}\"")))?;
            ipam::check_gateway(subnet, g).map_err(|e| e.within(what()))?;
            g
        }
        None => ipam::default_gateway(subnet),
    };
    let id = mini_store::containers::new_id();
    let bridge = format!("minibr-{}", &id[..8]);
    let created = mini_store::rfc3339_now();
    recs.data.networks.push(Network { name: name.to_string(), id: id.clone(), bridge, subnet, gateway, created });
    recs.save()?;
    crate::container::events::emit(store.root(), "network", "create", &id, &[("name", name), ("type", "bridge")]);
    Ok(id)
}

/// Docker's rule for network names.
fn check_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
        Ok(())
    } else {
        Err(Error::new(format!("invalid network name \"{name}\""))
            .because("only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"))
    }
}

fn free_subnet(data: &Networks) -> Option<Ipv4Net> {
    (0..=255u8)
        .map(|n| Ipv4Net::new(Ipv4Addr::new(POOL.0, POOL.1, n, 0), 24).expect("a /24"))
        .find(|s| !data.networks.iter().any(|n| ipam::overlaps(n.subnet, *s)))
}

/// `mini network rm`: refused for the default network and while
/// containers run on it; its bridge and rules go.
pub fn remove(store: &Store, key: &str) -> Result<String> {
    let what = || format!("remove network {key}");
    let mut recs = Locked::open(store.root())?;
    let net = recs.data.get(key).cloned().ok_or_else(|| attach::not_found(key))?;
    if net.name == DEFAULT {
        return Err(Error::new(what()).because("bridge is the default network and cannot be removed"));
    }
    let users: Vec<&str> = recs.data.endpoints_on(&net.name).map(|e| e.name.as_str()).collect();
    if !users.is_empty() {
        return Err(Error::new(what())
            .because(format!("network has active endpoints ({})", users.join(", ")))
            .hint("stop those containers first"));
    }
    recs.data.networks.retain(|n| n.id != net.id);
    recs.save()?;
    remove_bridge(&recs.data, &net)?;
    crate::container::events::emit(
        store.root(),
        "network",
        "destroy",
        &net.id,
        &[("name", &net.name), ("type", "bridge")],
    );
    Ok(net.name)
}

/// A removed network's bridge and, if it existed, the firewall without it.
fn remove_bridge(data: &Networks, net: &Network) -> Result<()> {
    let existed = crate::sys::netlink::Netlink::open()?.link_index(&net.bridge)?.is_some();
    if existed {
        host::remove_bridge(&net.bridge)?;
        host::apply_firewall(data)?;
    }
    Ok(())
}

/// `mini network prune`: every user network without containers; with
/// `all`, the default network too once nothing uses it (what `mini system
/// reset` needs: nothing of mini's left in the host's namespace).
pub fn prune(store: &Store, all: bool) -> Result<Vec<String>> {
    attach::sweep(store);
    let mut recs = Locked::open(store.root())?;
    let unused: Vec<Network> = recs
        .data
        .networks
        .iter()
        .filter(|n| (all || n.name != DEFAULT) && recs.data.endpoints_on(&n.name).next().is_none())
        .cloned()
        .collect();
    recs.data.networks.retain(|n| !unused.contains(n));
    recs.save()?;
    for n in &unused {
        remove_bridge(&recs.data, n)?;
    }
    Ok(unused.into_iter().map(|n| n.name).collect())
}

/// The networks, the default one first (made if missing, as Docker always
/// lists `bridge`).
pub fn list(config: &Config, store: &Store) -> Result<Vec<Network>> {
    attach::sweep(store);
    resolve(config, store, DEFAULT, None)?;
    Ok(records::read(store.root())?.networks)
}

/// `mini network inspect`, as Docker's JSON.
pub fn inspect(store: &Store, key: &str) -> Result<serde_json::Value> {
    attach::sweep(store);
    let data = records::read(store.root())?;
    let net = data.get(key).ok_or_else(|| attach::not_found(key))?;
    let containers: serde_json::Map<String, serde_json::Value> = data
        .endpoints_on(&net.name)
        .map(|e| {
            let v = json!({
                "Name": e.name,
                "MacAddress": e.mac,
                "IPv4Address": format!("{}/{}", e.ip, net.subnet.prefix_len()),
                "Aliases": e.aliases,
            });
            (e.container.clone(), v)
        })
        .collect();
    Ok(json!({
        "Name": net.name,
        "Id": net.id,
        "Created": net.created,
        "Driver": "bridge",
        "Scope": "local",
        "IPAM": {"Driver": "default", "Config": [{"Subnet": net.subnet.to_string(), "Gateway": net.gateway.to_string()}]},
        "Containers": containers,
        "Options": {"com.docker.network.bridge.name": net.bridge},
    }))
}

/// `NetworkSettings` of `docker inspect CONTAINER`: its endpoints while
/// it runs (none when stopped, as Docker keeps no address for it).
pub fn container_settings(data: &Networks, id: &str) -> serde_json::Value {
    let mut ports = serde_json::Map::new();
    let mut networks = serde_json::Map::new();
    let mut first = None;
    for e in data.endpoints_of(id) {
        let Some(net) = data.get(&e.network) else { continue };
        for p in &e.ports {
            let host_ip = p.host_ip.map_or_else(|| "0.0.0.0".to_string(), |ip| ip.to_string());
            let key = format!("{}/{}", p.container_port, p.proto);
            let entry = ports.entry(key).or_insert_with(|| json!([]));
            if let Some(list) = entry.as_array_mut() {
                list.push(json!({"HostIp": host_ip, "HostPort": p.host_port.to_string()}));
            }
        }
        let v = json!({
            "NetworkID": net.id, "IPAddress": e.ip.to_string(), "IPPrefixLen": net.subnet.prefix_len(),
            "Gateway": net.gateway.to_string(), "MacAddress": e.mac, "Aliases": e.aliases,
        });
        first.get_or_insert_with(|| v.clone());
        networks.insert(net.name.clone(), v);
    }
    let first = first.unwrap_or_else(|| json!({}));
    json!({
        "Ports": ports,
        "IPAddress": first["IPAddress"].as_str().unwrap_or(""),
        "IPPrefixLen": first["IPPrefixLen"].as_u64().unwrap_or(0),
        "Gateway": first["Gateway"].as_str().unwrap_or(""),
        "MacAddress": first["MacAddress"].as_str().unwrap_or(""),
        "Networks": networks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_names_follow_docker() {
        assert!(check_name("my-net_1.a").is_ok());
        assert!(check_name("-bad").is_err());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
    }

    #[test]
    fn free_subnets_skip_used_ones() {
        let mut data = Networks::default();
        assert_eq!(free_subnet(&data).unwrap().to_string(), "10.89.0.0/24");
        data.networks.push(Network {
            name: "a".into(),
            id: "x".into(),
            bridge: "b".into(),
            subnet: "10.89.0.0/23".parse().unwrap(),
            gateway: "10.89.0.1".parse().unwrap(),
            created: String::new(),
        });
        assert_eq!(free_subnet(&data).unwrap().to_string(), "10.89.2.0/24");
    }
}
