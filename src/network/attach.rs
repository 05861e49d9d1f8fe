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
use super::records::{Endpoint, Holder, Locked, Network, Networks};
use super::{host, ipam, NetOptions};
use crate::error::{Error, Result};
use crate::runtime::net::{NetNs, Plug};
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
}

impl Attached {
    /// No endpoint to hold (none, host, container:X).
    pub fn bare(ns: NetNs) -> Attached {
        Attached { ns, _reserved: Vec::new() }
    }
}

/// Attach container `who` to network `name` for one run.
pub fn attach(store: &Store, who: &Who, name: &str) -> Result<Attached> {
    let what = || format!("connect container {} to network {name}", &who.id[..12]);
    let mut recs = Locked::open(store.root())?;
    let swept = sweep_dead(&mut recs.data);
    let net = recs.data.get(name).cloned().ok_or_else(|| not_found(name))?;
    let made_bridge = host::ensure_bridge(&net)?;
    recs.data.endpoints.retain(|e| e.container != who.id);
    let used: Vec<Ipv4Addr> = recs.data.endpoints_on(&net.name).map(|e| e.ip).collect();
    let ip = ipam::pick(net.subnet, net.gateway, &used, who.opts.ip).map_err(|e| e.within(what()))?;
    let (reserved, ports) = reserve(&who.opts.ports)?;
    let mac = match &who.opts.mac {
        Some(m) => ipam::parse_mac(m)?,
        None => ipam::mac_for(ip),
    };
    let holder = holder()?;
    let endpoint = Endpoint {
        container: who.id.to_string(),
        name: who.name.to_string(),
        network: net.name.clone(),
        ip,
        mac: ipam::format_mac(&mac),
        aliases: who.opts.aliases.clone(),
        host_if: host_if_name(who.id, &net.name),
        ports,
        holder,
    };
    let plug = Plug {
        host_if: endpoint.host_if.clone(),
        bridge: net.bridge.clone(),
        mac,
        ip,
        prefix: net.subnet.prefix_len(),
        gateway: net.gateway,
    };
    let publishes = !endpoint.ports.is_empty();
    recs.data.endpoints.push(endpoint);
    recs.save()?;
    if made_bridge || publishes || !swept.is_empty() {
        if let Err(e) = host::apply_firewall(&recs.data) {
            recs.data.endpoints.retain(|e| e.container != who.id);
            recs.save()?;
            return Err(e.within(what()));
        }
    }
    host::remove_links(&swept.iter().map(|e| e.host_if.clone()).collect::<Vec<_>>());
    write_hosts(store, &recs.data, &net, who.id, &who.opts.add_hosts, who.hostname)?;
    if net.resolves_names() {
        refresh_peers(store, &recs.data, &net, who.id);
    }
    Ok(Attached { ns: NetNs::New(Some(plug)), _reserved: reserved })
}

/// Release container `id`'s endpoints (it stopped): addresses free, its
/// ports' rules gone, its veth's host end deleted, its peers' hosts files
/// without it.
pub fn detach(store: &Store, id: &str) -> Result<()> {
    if !super::records::path(store.root()).exists() {
        return Ok(());
    }
    let mut recs = Locked::open(store.root())?;
    let (gone, kept) = recs.data.endpoints.drain(..).partition(|e| e.container == id);
    recs.data.endpoints = kept;
    release(store, &mut recs, gone)
}

/// Release the endpoints whose holder died (a killed `mini run` or
/// monitor): run by every mini that starts, creates or lists containers.
pub fn sweep(store: &Store) {
    if !super::records::path(store.root()).exists() {
        return;
    }
    let Ok(mut recs) = Locked::open(store.root()) else { return };
    let gone = sweep_dead(&mut recs.data);
    if let Err(e) = release(store, &mut recs, gone) {
        eprintln!("mini: warning: {e}");
    }
}

/// Save the records without `gone`, then undo what `gone` held.
fn release(store: &Store, recs: &mut Locked, gone: Vec<Endpoint>) -> Result<()> {
    if gone.is_empty() {
        return Ok(());
    }
    recs.save()?;
    if gone.iter().any(|e| !e.ports.is_empty()) {
        host::apply_firewall(&recs.data)?;
    }
    host::remove_links(&gone.iter().map(|e| e.host_if.clone()).collect::<Vec<_>>());
    for e in &gone {
        if let Some(net) = recs.data.get(&e.network).filter(|n| n.resolves_names()) {
            refresh_peers(store, &recs.data, net, &e.container);
        }
    }
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
    Error::new(format!("network {name} not found")).hint("see `mini network ls`, or create it with `mini network create`")
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

/// Container `id`'s /etc/hosts: its own address and, on a user network,
/// the names of its peers there.
fn write_hosts(
    store: &Store,
    data: &Networks,
    net: &Network,
    id: &str,
    add_hosts: &[(String, String)],
    hostname: &str,
) -> Result<()> {
    let own = data.endpoints_on(&net.name).find(|e| e.container == id).map(|e| e.ip);
    let peers = if net.resolves_names() { peers_of(data, net, id) } else { Vec::new() };
    let text = etc::hosts(hostname, own, add_hosts, &peers);
    rewrite_in_place(&hosts_path(store, id), &text)
}

fn peers_of(data: &Networks, net: &Network, id: &str) -> Vec<HostEntry> {
    data.endpoints_on(&net.name)
        .filter(|e| e.container != id)
        .map(|e| {
            let mut names = vec![e.name.clone()];
            names.extend(e.aliases.iter().cloned());
            names.push(e.container[..12].to_string());
            HostEntry { ip: e.ip.to_string(), names }
        })
        .collect()
}

/// Rewrite the peers' hosts files on `net` (a container came or went);
/// a peer's file that cannot be written is its loss, not ours.
fn refresh_peers(store: &Store, data: &Networks, net: &Network, changed: &str) {
    for e in data.endpoints_on(&net.name).filter(|e| e.container != changed) {
        let path = hosts_path(store, &e.container);
        let Ok(current) = std::fs::read_to_string(&path) else { continue };
        let text = with_peers(&current, &e.ip, &peers_of(data, net, &e.container));
        let _ = rewrite_in_place(&path, &text);
    }
}

/// `current` up to and including the container's own line (its address),
/// then `peers`.
fn with_peers(current: &str, own: &Ipv4Addr, peers: &[HostEntry]) -> String {
    let own = format!("{own}\t");
    let mut out = String::new();
    for line in current.lines() {
        out.push_str(line);
        out.push('\n');
        if line.starts_with(&own) {
            break;
        }
    }
    for p in peers {
        out.push_str(&format!("{}\t{}\n", p.ip, p.names.join(" ")));
    }
    out
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
    fn peers_replace_what_follows_the_own_line() {
        let cur = "127.0.0.1\tlocalhost\n10.89.0.2\tweb\n10.89.0.9\told\n";
        let peers = [HostEntry { ip: "10.89.0.3".into(), names: vec!["db".into()] }];
        assert_eq!(
            with_peers(cur, &"10.89.0.2".parse().unwrap(), &peers),
            "127.0.0.1\tlocalhost\n10.89.0.2\tweb\n10.89.0.3\tdb\n"
        );
    }
}
