//! A container's endpoint on a network, from start to stop: under the
//! records' lock an address (IPAM), its published ports held, the bridge
//! made on first use, the firewall brought up to date, its /etc/hosts (and
//! on a user network its peers') rewritten; then the veth plug the runtime
//! carries out. Released when the container stops, by the process that
//! held it, or by the stale sweep of the next mini when that process died.

use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use mini_store::containers::files;
use mini_store::Store;
use sha2::Digest as _;

use super::etc::{self, HostEntry};
use super::ports::{PortMapping, Proto};
use super::records::{Endpoint, Holder, Locked, Networks};
use super::{host, ipam, NetOptions};
use crate::error::{Error, Result};
use crate::runtime::net::{NetNs, Plug, CONTAINER_IF};
use crate::runtime::usermode::{Forward, Helper, Stack, UserMode};
use crate::sys::process as p;

/// The container being attached.
pub struct Who<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub hostname: &'a str,
    pub opts: &'a NetOptions,
}

/// A container's network while it runs: the namespace the runtime gives
/// it, and the sockets that hold its published ports (closed with this).
pub struct Attached {
    pub ns: NetNs,
    _reserved: Vec<OwnedFd>,
    /// The user-mode network's process, ended with this.
    pub helper: Option<Helper>,
}

impl Attached {
    /// No endpoint to hold (none, host, container:X, pasta).
    pub fn bare(ns: NetNs) -> Attached {
        Attached { ns, _reserved: Vec::new(), helper: None }
    }
}

/// A user-mode network (rootless mini's default) for container `id`: the
/// published ports checked free now (the stack binds them) and a host port
/// of 0 chosen, as for a bridge.
pub fn user_mode(store: &Store, id: &str, stack: Stack, ports: &[PortMapping]) -> Result<Attached> {
    let (reserved, ports) = reserve(ports)?;
    drop(reserved); // the stack binds them itself, a moment from now
    let ports = ports
        .iter()
        .map(|m| Forward {
            udp: m.proto == Proto::Udp,
            host_ip: m.host_ip,
            host_port: m.host_port,
            container_port: m.container_port,
        })
        .collect();
    let dir = store.containers_dir().join(id);
    Ok(Attached::bare(NetNs::UserMode(UserMode { stack, ports, dir })))
}

/// Attach container `who` to network `name` for one run.
pub fn attach(store: &Store, who: &Who, name: &str) -> Result<Attached> {
    let what = || format!("connect container {} to network {name}", &who.id[..12]);
    let mut recs = Locked::open(store.root())?;
    let swept = sweep_dead(&mut recs.data);
    recs.data.endpoints.retain(|e| e.container != who.id);
    let (reserved, ports) = reserve(&who.opts.ports)?;
    let (plug, made_bridge) =
        add_endpoint(&mut recs.data, who, name, ports, holder()?, CONTAINER_IF).map_err(|e| e.within(what()))?;
    recs.save()?;
    let publishes = !who.opts.ports.is_empty();
    if made_bridge || publishes || !swept.is_empty() {
        if let Err(e) = host::apply_firewall(&recs.data) {
            recs.data.endpoints.retain(|e| e.container != who.id);
            recs.save()?;
            // A bridge without its NAT rules would look made to the next
            // start, which would then run without them: take it away.
            if made_bridge {
                let _ = host::remove_bridge(&plug.bridge);
            }
            return Err(e.within(what()));
        }
    }
    host::remove_links(&swept.iter().map(|e| e.host_if.clone()).collect::<Vec<_>>());
    let mut touched = neighbours(&recs.data, who.id);
    touched.extend(swept.iter().flat_map(|e| neighbours_on(&recs.data, &e.network)));
    rewrite_hosts(store, &recs.data, &touched);
    Ok(Attached { ns: NetNs::New(Some(plug)), _reserved: reserved, helper: None })
}

/// `mini network connect`: running container `who` (process `pid`, held
/// by `holder`) gets an endpoint on one more network, until it stops.
pub fn connect(store: &Store, who: &Who, name: &str, pid: i32, holder: Holder) -> Result<()> {
    let what = || format!("connect container {} to network {name}", who.name);
    let mut recs = Locked::open(store.root())?;
    let net = recs.data.get(name).cloned().ok_or_else(|| not_found(name))?;
    if recs.data.endpoints_of(who.id).any(|e| e.network == net.name) {
        return Err(Error::new(what()).because(format!("it is already connected to {}", net.name)));
    }
    let peer_if = crate::runtime::net::free_peer_name(pid)?;
    let (plug, made_bridge) =
        add_endpoint(&mut recs.data, who, &net.name, Vec::new(), holder, &peer_if).map_err(|e| e.within(what()))?;
    let plugged = crate::runtime::net::plug_running(pid, &plug);
    let firewall = if made_bridge { host::apply_firewall(&recs.data) } else { Ok(()) };
    if let Err(e) = plugged.and(firewall) {
        host::remove_links(std::slice::from_ref(&plug.host_if));
        if made_bridge {
            let _ = host::remove_bridge(&plug.bridge);
        }
        return Err(e.within(what()));
    }
    recs.save()?;
    rewrite_hosts(store, &recs.data, &neighbours(&recs.data, who.id));
    Ok(())
}

/// `mini network disconnect`: the container leaves network `name`.
pub fn disconnect(store: &Store, id: &str, name: &str) -> Result<()> {
    let mut recs = Locked::open(store.root())?;
    let net = recs.data.get(name).cloned().ok_or_else(|| not_found(name))?;
    let (gone, kept) = recs.data.endpoints.drain(..).partition(|e| e.container == id && e.network == net.name);
    recs.data.endpoints = kept;
    if gone.is_empty() {
        return Err(Error::new(format!("disconnect container {} from network {name}", &id[..12]))
            .because("it is not connected to that network"));
    }
    release(store, &mut recs, gone, Links::Delete)?;
    rewrite_hosts(store, &recs.data, &[id.to_string()]);
    Ok(())
}

/// Container `id` is now called `name`: its endpoints say so, and the
/// hosts files of its peers on user networks resolve the new name.
pub fn renamed(store: &Store, id: &str, name: &str) -> Result<()> {
    if !super::records::path(store.root()).exists() {
        return Ok(());
    }
    let mut recs = Locked::open(store.root())?;
    let mut any = false;
    for e in recs.data.endpoints.iter_mut().filter(|e| e.container == id) {
        e.name = name.to_string();
        any = true;
    }
    if any {
        recs.save()?;
        rewrite_hosts(store, &recs.data, &neighbours(&recs.data, id));
    }
    Ok(())
}

/// A new endpoint of `who` on network `name` in `data`: the bridge made if
/// it was not, an address, the MAC; the plug the runtime carries out, and
/// whether the bridge was made now.
fn add_endpoint(
    data: &mut Networks,
    who: &Who,
    name: &str,
    ports: Vec<PortMapping>,
    holder: Holder,
    peer_if: &str,
) -> Result<(Plug, bool)> {
    let net = data.get(name).cloned().ok_or_else(|| not_found(name))?;
    let (bridge_index, made_bridge) = host::ensure_bridge(&net)?;
    let used: Vec<Ipv4Addr> = data.endpoints_on(&net.name).map(|e| e.ip).collect();
    let ip = ipam::pick(net.subnet, net.gateway, &used, who.opts.ip)?;
    let mac = match who.opts.mac.as_deref() {
        Some(m) => ipam::parse_mac(m)?,
        None => ipam::mac_for(ip),
    };
    let plug = Plug {
        host_if: host_if_name(who.id, &net.name),
        peer_if: peer_if.to_string(),
        bridge: net.bridge.clone(),
        bridge_index,
        mac,
        ip,
        prefix: net.subnet.prefix_len(),
        gateway: net.gateway,
    };
    data.endpoints.push(Endpoint {
        container: who.id.to_string(),
        name: who.name.to_string(),
        hostname: who.hostname.to_string(),
        add_hosts: who.opts.add_hosts.clone(),
        network: net.name.clone(),
        ip,
        mac: ipam::format_mac(&mac),
        aliases: who.opts.aliases.clone(),
        host_if: plug.host_if.clone(),
        ports,
        holder,
    });
    Ok((plug, made_bridge))
}

/// Release container `id`'s endpoints (it stopped): addresses free, its
/// ports' rules gone, its peers' hosts files without it. Its veths are
/// left to the kernel, which deletes them with the container's network
/// namespace: deleting one here would wait for an RCU grace period
/// (~10 ms, most of what a bridged start costs over `none`).
pub fn detach(store: &Store, id: &str) -> Result<()> {
    if !super::records::path(store.root()).exists() {
        return Ok(());
    }
    let mut recs = Locked::open(store.root())?;
    let (gone, kept) = recs.data.endpoints.drain(..).partition(|e| e.container == id);
    recs.data.endpoints = kept;
    release(store, &mut recs, gone, Links::GoWithTheNamespace)
}

/// What becomes of released endpoints' veth pairs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Links {
    /// The container ended: its namespace takes them.
    GoWithTheNamespace,
    /// The container may live on (its holder was killed, or it leaves one
    /// network): delete the host ends.
    Delete,
}

/// Release the endpoints whose holder died (a killed `mini run` or
/// monitor): run by every mini that starts, creates or lists containers.
pub fn sweep(store: &Store) {
    if !super::records::path(store.root()).exists() {
        return;
    }
    let Ok(mut recs) = Locked::open(store.root()) else { return };
    let gone = sweep_dead(&mut recs.data);
    if let Err(e) = release(store, &mut recs, gone, Links::Delete) {
        eprintln!("mini: warning: {e}");
    }
}

/// Save the records without `gone`, then undo what `gone` held.
fn release(store: &Store, recs: &mut Locked, gone: Vec<Endpoint>, links: Links) -> Result<()> {
    if gone.is_empty() {
        return Ok(());
    }
    recs.save()?;
    if gone.iter().any(|e| !e.ports.is_empty()) {
        host::apply_firewall(&recs.data)?;
    }
    if links == Links::Delete {
        host::remove_links(&gone.iter().map(|e| e.host_if.clone()).collect::<Vec<_>>());
    }
    let touched: Vec<String> = gone.iter().flat_map(|e| neighbours_on(&recs.data, &e.network)).collect();
    rewrite_hosts(store, &recs.data, &touched);
    Ok(())
}

/// Take the endpoints whose holder is gone out of `data`.
fn sweep_dead(data: &mut Networks) -> Vec<Endpoint> {
    let alive = |h: &Holder| p::start_time(h.pid) == Some(h.start_time);
    let (dead, live) = data.endpoints.drain(..).partition(|e| !alive(&e.holder));
    data.endpoints = live;
    dead
}

fn holder() -> Result<Holder> {
    let pid = std::process::id() as i32;
    let start_time = p::start_time(pid).ok_or_else(|| Error::new("read this process's start time from /proc"))?;
    Ok(Holder { pid, start_time })
}

pub fn not_found(name: &str) -> Error {
    Error::new(format!("network {name} not found"))
        .hint("see `mini network ls`, or create it with `mini network create`")
}

/// Hold every published port, resolving ephemeral ones: a busy port fails
/// the start with nothing recorded.
fn reserve(maps: &[PortMapping]) -> Result<(Vec<OwnedFd>, Vec<PortMapping>)> {
    let mut fds = Vec::new();
    let mut resolved = Vec::new();
    for m in maps {
        let ip = m.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        let (fd, port) = crate::sys::net::reserve_port(m.proto == Proto::Tcp, ip, m.host_port).map_err(|e| {
            let why = match e.raw_os_error() {
                Some(libc::EADDRINUSE) => "port is already allocated".to_string(),
                Some(libc::EADDRNOTAVAIL) => format!("{ip} is not an address of this host"),
                _ => e.to_string(),
            };
            Error::new(format!("publish port {ip}:{}/{}", m.host_port, m.proto))
                .because(why)
                .hint("choose another host port, or stop what uses it")
        })?;
        fds.push(fd);
        resolved.push(PortMapping { host_port: port, ..m.clone() });
    }
    Ok((fds, resolved))
}

/// The host end of container `id`'s veth on `network`: stable, so a
/// killed mini's leftover is found and replaced; 15 bytes at most.
pub fn host_if_name(id: &str, network: &str) -> String {
    let h = sha2::Sha256::digest(format!("{id}/{network}").as_bytes());
    format!("mv{}", &hex::encode(h)[..13])
}

fn hosts_path(store: &Store, id: &str) -> PathBuf {
    store.containers_dir().join(id).join(files::HOSTS)
}

/// Container `id` and everyone on a user network with it: whose hosts
/// files change when `id` comes or goes.
fn neighbours(data: &Networks, id: &str) -> Vec<String> {
    let mut out = vec![id.to_string()];
    for e in data.endpoints_of(id) {
        out.extend(neighbours_on(data, &e.network));
    }
    out
}

/// The containers on network `name` if it resolves names (else none).
fn neighbours_on(data: &Networks, name: &str) -> Vec<String> {
    match data.get(name) {
        Some(net) if net.resolves_names() => data.endpoints_on(name).map(|e| e.container.clone()).collect(),
        _ => Vec::new(),
    }
}

/// Rewrite the hosts files of containers `ids` (each once) from the
/// records: the file of a running container is all in them. One that
/// cannot be written is that container's loss, not the caller's.
fn rewrite_hosts(store: &Store, data: &Networks, ids: &[String]) {
    let mut done = std::collections::BTreeSet::new();
    for id in ids {
        if done.insert(id.as_str()) {
            if let Some(text) = hosts_of(data, id) {
                let _ = rewrite_in_place(&hosts_path(store, id), &text);
            }
        }
    }
}

/// Container `id`'s /etc/hosts: its addresses, and on user networks the
/// names of its peers there (name, aliases, short id, as Docker's DNS
/// answers them). None when it has no endpoint.
fn hosts_of(data: &Networks, id: &str) -> Option<String> {
    let own: Vec<&Endpoint> = data.endpoints_of(id).collect();
    let first = own.first()?;
    let mut peers: Vec<HostEntry> = Vec::new();
    for mine in &own {
        if !data.get(&mine.network).is_some_and(|n| n.resolves_names()) {
            continue;
        }
        for e in data.endpoints_on(&mine.network).filter(|e| e.container != id) {
            let mut names = vec![e.name.clone()];
            names.extend(e.aliases.iter().cloned());
            names.push(e.container[..12].to_string());
            peers.push(HostEntry { ip: e.ip.to_string(), names });
        }
    }
    let ips: Vec<Ipv4Addr> = own.iter().map(|e| e.ip).collect();
    Some(etc::hosts(&first.hostname, &ips, &first.add_hosts, &peers))
}

/// Truncate and write, keeping the inode a running container has
/// bind-mounted.
fn rewrite_in_place(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::new(format!("write {}", path.display())).because(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ends_are_short_stable_and_distinct() {
        let a = host_if_name(&"a".repeat(64), "bridge");
        assert_eq!(a.len(), 15);
        assert_eq!(a, host_if_name(&"a".repeat(64), "bridge"));
        assert_ne!(a, host_if_name(&"a".repeat(64), "other"));
    }

    #[test]
    fn hosts_files_are_made_from_the_records_alone() {
        let net = |name: &str| super::super::records::Network {
            name: name.into(),
            id: name.into(),
            bridge: "b".into(),
            subnet: "10.89.0.0/24".parse().unwrap(),
            gateway: "10.89.0.1".parse().unwrap(),
            created: String::new(),
        };
        let ep = |id: &str, name: &str, network: &str, ip: &str| Endpoint {
            container: id.repeat(64),
            name: name.into(),
            hostname: format!("{name}-host"),
            add_hosts: vec![("gw".into(), "10.89.0.1".into())],
            network: network.into(),
            ip: ip.parse().unwrap(),
            mac: String::new(),
            aliases: vec![format!("{name}-alias")],
            host_if: String::new(),
            ports: vec![],
            holder: Holder { pid: 1, start_time: 1 },
        };
        let data = Networks {
            networks: vec![net("front"), net("bridge")],
            endpoints: vec![
                ep("a", "web", "front", "10.89.0.2"),
                ep("b", "db", "front", "10.89.0.3"),
                ep("c", "lone", "bridge", "10.88.0.2"),
            ],
        };
        let web = hosts_of(&data, &"a".repeat(64)).unwrap();
        assert!(web.contains("10.89.0.1\tgw\n10.89.0.2\tweb-host\n10.89.0.3\tdb db-alias bbbbbbbbbbbb\n"), "{web}");
        let lone = hosts_of(&data, &"c".repeat(64)).unwrap();
        assert!(lone.ends_with("10.88.0.2\tlone-host\n"), "the default bridge resolves no names: {lone}");
        assert!(hosts_of(&data, "nobody").is_none());
        assert_eq!(neighbours_on(&data, "bridge"), Vec::<String>::new());
    }
}
