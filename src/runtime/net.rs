//! The container's network namespace, as the engine decided it: a new one
//! (loopback only, or plugged into a bridge by a veth pair), another
//! container's, or the host's. The runtime carries the decision out; the
//! engine (`network`) chose the addresses and made the bridge.

use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;

use crate::error::Result;
use crate::sys::netlink::Netlink;

/// The name of the container's end of its veth pair, as Docker's.
pub const CONTAINER_IF: &str = "eth0";

/// Which network namespace the container process lives in.
pub enum NetNs {
    /// Its own, with loopback up and, when plugged, an `eth0`.
    New(Option<Plug>),
    /// Its own, connected by a user-mode network stack (pasta or
    /// slirp4netns) that mini starts once the namespace exists.
    UserMode(super::usermode::UserMode),
    /// That of another container (`--network container:X`): its
    /// `/proc/PID/ns/net`, opened by the engine.
    Join(OwnedFd),
    /// The host's (`--network host`).
    Host,
}

impl NetNs {
    /// Whether the child makes a network namespace of its own.
    pub fn is_new(&self) -> bool {
        matches!(self, NetNs::New(_) | NetNs::UserMode(_))
    }

    /// Whether mini connects the namespace from outside once it exists.
    pub fn connects_later(&self) -> bool {
        self.plug().is_some() || matches!(self, NetNs::UserMode(_))
    }

    pub fn plug(&self) -> Option<&Plug> {
        match self {
            NetNs::New(plug) => plug.as_ref(),
            _ => None,
        }
    }
}

/// A veth pair from bridge `bridge` to the container's `peer_if`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plug {
    /// The host end's name (from the container id, at most 15 bytes).
    pub host_if: String,
    /// The container's end: `eth0`, then `eth1`… for networks connected
    /// later.
    pub peer_if: String,
    pub bridge: String,
    /// Its index, as the engine found it when it made sure it exists.
    pub bridge_index: u32,
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
}

/// The host's half, run by mini once the child made its namespace: the
/// pair, `peer_if` made inside process `pid`'s namespace, the host end on
/// the bridge and up. A host end left by a killed mini under the same
/// name is replaced.
pub fn plug_host_side(pid: i32, plug: &Plug) -> Result<()> {
    let mut nl = Netlink::open()?;
    let add = |nl: &mut Netlink| nl.add_veth(&plug.host_if, plug.bridge_index, &plug.peer_if, plug.mac, pid);
    if let Err(e) = add(&mut nl) {
        if !nl.delete_link(&plug.host_if)? {
            return Err(e);
        }
        add(&mut nl)?;
    }
    let host_end = nl.link_index(&plug.host_if)?.ok_or_else(|| {
        crate::error::Error::new(format!("plug into bridge {}", plug.bridge)).because("the veth pair vanished")
    })?;
    nl.set_up(host_end)
}

/// The container's half, run by the child inside its namespace: its end
/// up with its address, the default route via the bridge.
pub fn plug_container_side(plug: &Plug) -> Result<()> {
    configure(&mut Netlink::open()?, plug, true)
}

/// Plug a running container (process `pid`) into one more network
/// (`mini network connect`): its new end is configured from a netlink
/// socket opened inside its namespace; its default route stays the first
/// network's, as Docker keeps it.
pub fn plug_running(pid: i32, plug: &Plug) -> Result<()> {
    let mut inside = open_in(pid)?;
    plug_host_side(pid, plug)?;
    configure(&mut inside, plug, false)
}

/// The interface names free for a new end in process `pid`'s namespace:
/// the first of eth1, eth2… that does not exist.
pub fn free_peer_name(pid: i32) -> Result<String> {
    let mut inside = open_in(pid)?;
    for n in 1.. {
        let name = format!("eth{n}");
        if inside.link_index(&name)?.is_none() {
            return Ok(name);
        }
    }
    unreachable!("some ethN is free")
}

fn configure(nl: &mut Netlink, plug: &Plug, default_route: bool) -> Result<()> {
    let index = nl.link_index(&plug.peer_if)?.ok_or_else(|| {
        crate::error::Error::new(format!("configure {}", plug.peer_if)).because("mini did not plug it in")
    })?;
    nl.add_address(index, plug.ip, plug.prefix)?;
    nl.set_up(index)?;
    if default_route {
        nl.add_default_route(plug.gateway)?;
    }
    Ok(())
}

/// A netlink socket of process `pid`'s network namespace: made there
/// (sockets belong to the namespace they are made in), then this thread
/// goes back to its own.
fn open_in(pid: i32) -> Result<Netlink> {
    use crate::sys::process::{ns, setns};
    let open = |p: &str| {
        std::fs::File::open(p).map(OwnedFd::from).map_err(|e| crate::error::Error::new(format!("open {p}")).because(e))
    };
    let own = open("/proc/thread-self/ns/net")?;
    let theirs = open(&format!("/proc/{pid}/ns/net"))?;
    setns(&theirs, ns::NET, "network")?;
    let nl = Netlink::open();
    setns(&own, ns::NET, "own network")?;
    nl
}
