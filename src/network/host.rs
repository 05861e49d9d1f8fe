//! The host's side of mini's networks, carried out: bridges (made on
//! first use, with the gateway address, up), the sysctls forwarding needs,
//! and table `inet mini` replaced whole from the records (see [`nft`]).
//! "Host" is the network namespace mini runs in; tests run mini in one of
//! their own.

use std::io::Write;
use std::process::{Command, Stdio};

use super::nft::{self, BridgeNet, Dnat};
use super::records::{Network, Networks};
use crate::error::{Error, Result};
use crate::sys::netlink::Netlink;

/// Make `net`'s bridge unless it exists; true when it was made now (the
/// firewall must then learn about it).
pub fn ensure_bridge(net: &Network) -> Result<bool> {
    let mut nl = Netlink::open()?;
    if nl.link_index(&net.bridge)?.is_some() {
        return Ok(false);
    }
    let what = || format!("set up network {} (bridge {})", net.name, net.bridge);
    let index = nl.ensure_bridge(&net.bridge).map_err(|e| e.within(what()))?;
    nl.add_address(index, net.gateway, net.subnet.prefix_len()).map_err(|e| e.within(what()))?;
    nl.set_up(index).map_err(|e| e.within(what()))?;
    // Forwarding between the bridge and the uplink; 127.0.0.1:PORT
    // DNATed out to the bridge (route_localnet, as netavark does).
    sysctl("net/ipv4/ip_forward", "1")?;
    sysctl(&format!("net/ipv4/conf/{}/route_localnet", net.bridge), "1")?;
    Ok(true)
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
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("run nft: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(script.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| fail(format!("run nft: {e}")))?;
    if !out.status.success() {
        return Err(fail(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    Ok(())
}
