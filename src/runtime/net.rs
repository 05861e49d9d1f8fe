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
    /// That of another container (`--network container:X`): its
    /// `/proc/PID/ns/net`, opened by the engine.
    Join(OwnedFd),
    /// The host's (`--network host`).
    Host,
}

impl NetNs {
    /// Whether the child makes a network namespace of its own.
    pub fn is_new(&self) -> bool {
        matches!(self, NetNs::New(_))
    }

    pub fn plug(&self) -> Option<&Plug> {
        match self {
            NetNs::New(plug) => plug.as_ref(),
            _ => None,
        }
    }
}

/// A veth pair from bridge `bridge` to the container's `eth0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plug {
    /// The host end's name (from the container id, at most 15 bytes).
    pub host_if: String,
    pub bridge: String,
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
}

/// The host's half, run by mini once the child made its namespace: the
/// pair, host end up on the bridge, `eth0` moved into process `pid`'s
/// namespace. A host end left by a killed mini under the same name is
/// replaced.
pub fn plug_host_side(pid: i32, plug: &Plug) -> Result<()> {
    let mut nl = Netlink::open()?;
    let bridge = nl
        .link_index(&plug.bridge)?
        .ok_or_else(|| crate::error::Error::new(format!("plug into bridge {}", plug.bridge)).because("it does not exist"))?;
    nl.delete_link(&plug.host_if)?;
    nl.add_veth(&plug.host_if, bridge, CONTAINER_IF, plug.mac, pid)
}

/// The container's half, run by the child inside its namespace: `eth0`
/// up with its address, the default route via the bridge.
pub fn plug_container_side(plug: &Plug) -> Result<()> {
    let mut nl = Netlink::open()?;
    let eth0 = nl
        .link_index(CONTAINER_IF)?
        .ok_or_else(|| crate::error::Error::new("configure eth0").because("mini did not plug it in"))?;
    nl.add_address(eth0, plug.ip, plug.prefix)?;
    nl.set_up(eth0)?;
    nl.add_default_route(plug.gateway)
}
