//! The host's side of mini's networks, carried out: bridges (made on
//! first use, with the gateway address, up), the sysctls forwarding needs,
//! and table `inet mini` replaced whole from the records (see [`nft`]).
//! "Host" is the network namespace mini runs in; tests run mini in one of
//! their own.

use super::nft::{self, BridgeNet, Dnat};
use super::records::{Network, Networks};
use crate::error::{Error, Result};
use crate::sys::netlink::Netlink;

/// Make `net`'s bridge unless it exists: its index, and true when it was
/// made now (the firewall must then learn about it).
pub fn ensure_bridge(net: &Network) -> Result<(u32, bool)> {
    let mut nl = Netlink::open()?;
    if let Some(index) = nl.link_index(&net.bridge)? {
        return Ok((index, false));
    }
    let what = || format!("set up network {} (bridge {})", net.name, net.bridge);
    let index = nl.ensure_bridge(&net.bridge).map_err(|e| e.within(what()))?;
    nl.add_address(index, net.gateway, net.subnet.prefix_len()).map_err(|e| e.within(what()))?;
    nl.set_up(index).map_err(|e| e.within(what()))?;
    // Forwarding between the bridge and the uplink; 127.0.0.1:PORT
    // DNATed out to the bridge (route_localnet, as netavark does).
    sysctl("net/ipv4/ip_forward", "1")?;
    sysctl(&format!("net/ipv4/conf/{}/route_localnet", net.bridge), "1")?;
    Ok((index, true))
}

/// Delete bridge `name` (gone already is fine).
pub fn remove_bridge(name: &str) -> Result<()> {
    Netlink::open()?.delete_link(name).map(drop)
}

/// Delete the host ends of veth pairs (gone already is fine: a veth goes
/// with its container's network namespace).
pub fn remove_links(names: &[String]) {
    if names.is_empty() {
        return;
    }
    if let Ok(mut nl) = Netlink::open() {
        for n in names {
            let _ = nl.delete_link(n);
        }
    }
}

fn sysctl(key: &str, value: &str) -> Result<()> {
    let path = format!("/proc/sys/{key}");
    std::fs::write(&path, value).map_err(|e| Error::new(format!("set {}", key.replace('/', "."))).because(e))
}

/// The whole table `inet mini` as the records say it should be.
pub fn firewall_of(data: &Networks) -> String {
    let nets: Vec<BridgeNet> =
        data.networks.iter().map(|n| BridgeNet { bridge: n.bridge.clone(), subnet: n.subnet }).collect();
    let mut dnats = Vec::new();
    for e in &data.endpoints {
        let Some(net) = data.get(&e.network) else { continue };
        for p in &e.ports {
            dnats.push(Dnat {
                host_ip: p.host_ip,
                host_port: p.host_port,
                proto: p.proto,
                container_ip: e.ip,
                container_port: p.container_port,
                bridge: net.bridge.clone(),
            });
        }
    }
    nft::ruleset(&nets, &dnats)
}

/// Replace table `inet mini` with the records' ruleset, in one nft
/// transaction (never a moment without the old or the new rules).
pub fn apply_firewall(data: &Networks) -> Result<()> {
    let script = firewall_of(data);
    let fail = |why: String| {
        Error::new("update nftables table inet mini").because(why).hint("is nftables installed (the nft command)?")
    };
    match crate::sys::process::run_with_input("nft", &["-f", "-"], script.as_bytes()) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(said)) => Err(fail(said)),
        Err(e) => Err(fail(format!("run nft: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::super::ports::{PortMapping, Proto};
    use super::super::records::{Endpoint, Holder};
    use super::*;

    #[test]
    fn the_firewall_follows_the_records() {
        let net = Network {
            name: "bridge".into(),
            id: "x".into(),
            bridge: "mini0".into(),
            subnet: "10.88.0.0/16".parse().unwrap(),
            gateway: "10.88.0.1".parse().unwrap(),
            created: String::new(),
        };
        let port = PortMapping { host_ip: None, host_port: 8080, container_port: 80, proto: Proto::Tcp };
        let ep = Endpoint {
            container: "c".repeat(64),
            name: "web".into(),
            hostname: "web".into(),
            add_hosts: vec![],
            network: "bridge".into(),
            ip: "10.88.0.2".parse().unwrap(),
            mac: String::new(),
            aliases: vec![],
            host_if: "mvx".into(),
            ports: vec![port],
            holder: Holder { pid: 1, start_time: 1 },
        };
        let mut data = Networks { networks: vec![net], endpoints: vec![ep] };
        let text = firewall_of(&data);
        assert!(text.contains("tcp dport 8080 dnat ip to 10.88.0.2:80"), "{text}");
        assert!(text.contains("ip saddr 10.88.0.0/16 ip daddr != 10.88.0.0/16 masquerade"), "{text}");
        data.endpoints.clear();
        assert!(!firewall_of(&data).contains("dnat"), "a stopped container publishes nothing");
    }
}
