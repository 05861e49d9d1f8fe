//! rtnetlink, synchronously: the links, addresses and routes a container's
//! network needs, each one request and its acknowledgement on a netlink
//! socket of the caller's network namespace. No `ip` processes (each would
//! cost about a millisecond of a ~5 ms start) and no async runtime (the
//! runtime side stays threadless).

use std::io;
use std::net::Ipv4Addr;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo,
    LinkMessage,
};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol};
use netlink_packet_route::route::{RouteScope, RouteType};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::error::{Error, Result};

/// One rtnetlink socket, bound to the network namespace it was opened in.
pub struct Netlink {
    socket: Socket,
    seq: u32,
}

impl Netlink {
    pub fn open() -> Result<Netlink> {
        let fail = |e| Error::new("open a netlink socket").because(e);
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(fail)?;
        socket.bind_auto().map_err(fail)?;
        socket.connect(&SocketAddr::new(0, 0)).map_err(fail)?;
        Ok(Netlink { socket, seq: 0 })
    }

    /// The index of interface `name`, or None when there is none.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::GetLink(msg), 0) {
            Ok(Some(RouteNetlinkMessage::NewLink(link))) => Ok(Some(link.header.index)),
            Ok(_) => Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(Error::new(format!("look up interface {name}")).because(e)),
        }
    }

    /// Bridge `name`, made (down) unless it exists; its index.
    pub fn ensure_bridge(&mut self, name: &str) -> Result<u32> {
        if let Some(index) = self.link_index(name)? {
            return Ok(index);
        }
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]));
        match self.request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL) {
            Ok(_) => {}
            // Another mini made it meanwhile.
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => return Err(Error::new(format!("create bridge {name}")).because(e)),
        }
        self.link_index(name)?.ok_or_else(|| Error::new(format!("create bridge {name}")).because("it vanished"))
    }

    /// A veth pair: `host` on bridge `master` here, its peer `peer` (with
    /// MAC `peer_mac`) in the network namespace of process `peer_pid`,
    /// both down. One request: the pair never exists half-made.
    pub fn add_veth(&mut self, host: &str, master: u32, peer: &str, peer_mac: [u8; 6], peer_pid: i32) -> Result<()> {
        let mut peer_msg = LinkMessage::default();
        peer_msg.attributes.push(LinkAttribute::IfName(peer.to_string()));
        peer_msg.attributes.push(LinkAttribute::Address(peer_mac.to_vec()));
        peer_msg.attributes.push(LinkAttribute::NetNsPid(peer_pid as u32));
        // One queue each way from the start: veth makes one per CPU unless
        // told, then cuts them to one once registered, and a cut waits for
        // an RCU grace period with the RTNL held, for each end (0.8 ms of
        // a start, and every other netlink user of the host waits too).
        let one_queue = [LinkAttribute::NumTxQueues(1), LinkAttribute::NumRxQueues(1)];
        peer_msg.attributes.extend(one_queue.clone());
        let mut msg = LinkMessage::default();
        msg.attributes.extend(one_queue);
        msg.attributes.push(LinkAttribute::IfName(host.to_string()));
        msg.attributes.push(LinkAttribute::Controller(master));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_msg))),
        ]));
        self.request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)
            .map(drop)
            .map_err(|e| Error::new(format!("create veth pair {host}/{peer}")).because(e))
    }

    /// Set interface `index` up, without an IPv6 link-local address
    /// (mini's networks are IPv4): none to make, announce and tear down
    /// again, which is time on every start and stop.
    pub fn set_up(&mut self, index: u32) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        msg.attributes.push(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(vec![AfSpecInet6::AddrGenMode(
            In6AddrGenMode::None,
        )])]));
        self.request(RouteNetlinkMessage::SetLink(msg), 0)
            .map(drop)
            .map_err(|e| Error::new(format!("bring up interface {index}")).because(e))
    }

    /// Address `ip/prefix` on interface `index`; already there is fine.
    pub fn add_address(&mut self, index: u32, ip: Ipv4Addr, prefix: u8) -> Result<()> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = prefix;
        msg.header.index = index;
        msg.attributes.push(AddressAttribute::Local(ip.into()));
        msg.attributes.push(AddressAttribute::Address(ip.into()));
        let broadcast = ipnet::Ipv4Net::new(ip, prefix).map(|n| n.broadcast()).unwrap_or(ip);
        msg.attributes.push(AddressAttribute::Broadcast(broadcast));
        match self.request(RouteNetlinkMessage::NewAddress(msg), NLM_F_CREATE | NLM_F_EXCL) {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(Error::new(format!("add address {ip}/{prefix}")).because(e)),
        }
    }

    /// The default route via `gateway`.
    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> Result<()> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Universe;
        msg.header.kind = RouteType::Unicast;
        msg.attributes.push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        self.request(RouteNetlinkMessage::NewRoute(msg), NLM_F_CREATE | NLM_F_EXCL)
            .map(drop)
            .map_err(|e| Error::new(format!("add the default route via {gateway}")).because(e))
    }

    /// Delete interface `name`; false when there was none.
    pub fn delete_link(&mut self, name: &str) -> Result<bool> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::DelLink(msg), 0) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(Error::new(format!("delete interface {name}")).because(e)),
        }
    }

    /// Send one request and read up to its acknowledgement; the answer
    /// message, if the kernel sent one before the ack (a GET's).
    fn request(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<Option<RouteNetlinkMessage>> {
        self.seq += 1;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = self.seq;
        let mut req = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        req.finalize();
        let mut buf = vec![0; req.header.length as usize];
        req.serialize(&mut buf);
        self.socket.send(&buf, 0)?;
        let mut answer = None;
        let mut recv = vec![0u8; 16 * 1024];
        loop {
            let n = self.socket.recv(&mut &mut recv[..], 0)?;
            let mut at = 0;
            while at < n {
                let reply: NetlinkMessage<RouteNetlinkMessage> = NetlinkMessage::deserialize(&recv[at..n])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = reply.header.length as usize;
                if reply.header.sequence_number == self.seq {
                    match reply.payload {
                        NetlinkPayload::Error(e) if e.code.is_some() => return Err(e.to_io()),
                        NetlinkPayload::Error(_) | NetlinkPayload::Done(_) => return Ok(answer),
                        NetlinkPayload::InnerMessage(m) => answer = Some(m),
                        _ => {}
                    }
                }
                if len == 0 {
                    break;
                }
                at += len;
            }
        }
    }
}
