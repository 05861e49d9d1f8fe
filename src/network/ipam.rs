//! Address management for bridge networks, as plain arithmetic: which subnets
//! are acceptable, which address a container gets, and the MAC address that
//! goes with it. Nothing here touches the system; the engine keeps the list of
//! addresses in use and passes it in.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::error::{Error, Result};

/// The shortest prefix mini accepts: anything wider would swallow whole
/// private ranges (and most likely the host's own networks).
const MIN_PREFIX: u8 = 8;
/// The longest prefix mini accepts: a /31 or /32 leaves no address for a
/// container once the network, broadcast and gateway addresses are taken.
const MAX_PREFIX: u8 = 30;

/// Parse a `--subnet` value such as `10.89.0.0/24`.
pub fn parse_subnet(s: &str) -> Result<Ipv4Net> {
    let what = || Error::new(format!("subnet \"{s}\""));
    let net: Ipv4Net = s.parse().map_err(|_| {
        what().because("it is not an IPv4 address with a prefix length").hint("write it like 10.89.0.0/24")
    })?;
    let prefix = net.prefix_len();
    if prefix > MAX_PREFIX {
        return Err(what()
            .because(format!("a /{prefix} leaves no room for containers"))
            .hint(format!("use a prefix of /{MAX_PREFIX} or shorter")));
    }
    if prefix < MIN_PREFIX {
        return Err(what()
            .because(format!("a /{prefix} is too large"))
            .hint(format!("use a prefix between /{MIN_PREFIX} and /{MAX_PREFIX}")));
    }
    if net.addr() != net.network() {
        return Err(what().because("it has host bits set").hint(format!("it should be {}", net.trunc())));
    }
    Ok(net)
}

/// The gateway a network gets when none is given: its first host address,
/// as Docker does.
pub fn default_gateway(subnet: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.network()) + 1)
}

/// Check a `--gateway` value against its subnet.
pub fn check_gateway(subnet: Ipv4Net, gateway: Ipv4Addr) -> Result<()> {
    let what = || Error::new(format!("gateway {gateway}"));
    if !subnet.contains(&gateway) {
        return Err(what()
            .because(format!("it is not in subnet {subnet}"))
            .hint(format!("pick an address inside {subnet}, such as {}", default_gateway(subnet))));
    }
    if let Some(role) = reserved_role(subnet, gateway) {
        return Err(what()
            .because(format!("it is the {role} address of {subnet}"))
            .hint(format!("pick a host address such as {}", default_gateway(subnet))));
    }
    Ok(())
}

/// "network" or "broadcast" when `addr` is one of the two addresses of
/// `subnet` that no host may have.
fn reserved_role(subnet: Ipv4Net, addr: Ipv4Addr) -> Option<&'static str> {
    if addr == subnet.network() {
        Some("network")
    } else if addr == subnet.broadcast() {
        Some("broadcast")
    } else {
        None
    }
}

/// The address for a new container on `subnet`: `wanted` (the `--ip` flag)
/// when it is free, otherwise the lowest free host address.
pub fn pick(subnet: Ipv4Net, gateway: Ipv4Addr, used: &[Ipv4Addr], wanted: Option<Ipv4Addr>) -> Result<Ipv4Addr> {
    match wanted {
        Some(ip) => check_wanted(subnet, gateway, used, ip).map(|()| ip),
        None => lowest_free(subnet, gateway, used),
    }
}

fn check_wanted(subnet: Ipv4Net, gateway: Ipv4Addr, used: &[Ipv4Addr], ip: Ipv4Addr) -> Result<()> {
    let what = || Error::new(format!("assign address {ip}"));
    if !subnet.contains(&ip) {
        return Err(what()
            .because(format!("it is not in subnet {subnet}"))
            .hint(format!("pick an address inside {subnet}")));
    }
    if let Some(role) = reserved_role(subnet, ip) {
        return Err(what()
            .because(format!("it is the {role} address of {subnet}"))
            .hint("pick a host address, or leave --ip out"));
    }
    if ip == gateway {
        return Err(what()
            .because(format!("it is the gateway of {subnet}"))
            .hint("pick another address, or leave --ip out"));
    }
    if used.contains(&ip) {
        return Err(what()
            .because(format!("it is already in use on {subnet}"))
            .hint("pick another address, or leave --ip out to get a free one"));
    }
    Ok(())
}

fn lowest_free(subnet: Ipv4Net, gateway: Ipv4Addr, used: &[Ipv4Addr]) -> Result<Ipv4Addr> {
    let taken: HashSet<Ipv4Addr> = used.iter().copied().chain([gateway]).collect();
    // hosts() already leaves out the network and broadcast addresses.
    subnet.hosts().find(|ip| !taken.contains(ip)).ok_or_else(|| {
        Error::new(format!("assign an address on {subnet}"))
            .because("every host address is in use")
            .hint("remove unused containers from the network, or create a network with a larger subnet")
    })
}

/// Whether two subnets share any address (one contains the other's start).
pub fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The MAC address of the container at `ip`: Docker's 02:42 followed by the
/// four address bytes. Bit 1 of the first byte marks it locally administered
/// (so it never collides with a vendor address) and bit 0 clear keeps it
/// unicast; deriving it from the address keeps it unique on the bridge.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = ip.octets();
    [0x02, 0x42, a, b, c, d]
}

/// `02:42:0a:59:00:02`: lowercase, colon-separated, two digits a byte.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// Parse a `--mac-address` value: six two-digit hex bytes separated by all
/// colons or all dashes, in either case.
pub fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let what = || Error::new(format!("MAC address \"{s}\""));
    let mac = parse_mac_bytes(s)
        .ok_or_else(|| what().because("it is not six hex bytes").hint("write it like 02:42:0a:59:00:02"))?;
    if mac[0] & 1 == 1 {
        return Err(what()
            .because("it is a multicast address (the low bit of the first byte is set)")
            .hint("use an even first byte, such as 02"));
    }
    if mac == [0; 6] {
        return Err(what().because("it is all zeros").hint("use a unicast address such as 02:42:0a:59:00:02"));
    }
    Ok(mac)
}

fn parse_mac_bytes(s: &str) -> Option<[u8; 6]> {
    let separator = if s.contains(':') { ':' } else { '-' };
    let parts: Vec<&str> = s.split(separator).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (byte, part) in mac.iter_mut().zip(parts) {
        if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    Some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn a_plain_subnet_parses() {
        assert_eq!(parse_subnet("10.89.0.0/24").unwrap(), net("10.89.0.0/24"));
        assert_eq!(parse_subnet("172.30.0.0/16").unwrap(), net("172.30.0.0/16"));
        assert_eq!(parse_subnet("10.0.0.0/8").unwrap(), net("10.0.0.0/8"));
        assert_eq!(parse_subnet("10.89.0.4/30").unwrap(), net("10.89.0.4/30"));
    }

    #[test]
    fn malformed_subnets_are_rejected() {
        for bad in ["", "10.89.0.0", "10.89.0.0/", "10.89.0/24", "10.89.0.0/33", "10.89.0.256/24", "fd00::/64", "x/24"]
        {
            let err = parse_subnet(bad).unwrap_err().to_string();
            assert!(err.starts_with(&format!("subnet \"{bad}\": ")), "{err}");
            assert!(err.contains("10.89.0.0/24"), "the hint shows the form: {err}");
        }
    }

    #[test]
    fn prefixes_without_room_for_containers_are_rejected() {
        let err = parse_subnet("10.89.0.0/31").unwrap_err().to_string();
        assert_eq!(
            err,
            "subnet \"10.89.0.0/31\": a /31 leaves no room for containers (use a prefix of /30 or shorter)"
        );
        assert!(parse_subnet("10.89.0.1/32").is_err());
    }

    #[test]
    fn prefixes_wider_than_8_are_rejected() {
        let err = parse_subnet("10.0.0.0/7").unwrap_err().to_string();
        assert_eq!(err, "subnet \"10.0.0.0/7\": a /7 is too large (use a prefix between /8 and /30)");
        assert!(parse_subnet("0.0.0.0/0").is_err());
    }

    #[test]
    fn host_bits_are_rejected_with_the_corrected_subnet() {
        let err = parse_subnet("10.89.0.1/24").unwrap_err().to_string();
        assert_eq!(err, "subnet \"10.89.0.1/24\": it has host bits set (it should be 10.89.0.0/24)");
        let err = parse_subnet("172.20.5.0/16").unwrap_err().to_string();
        assert!(err.ends_with("(it should be 172.20.0.0/16)"), "{err}");
    }

    #[test]
    fn the_default_gateway_is_the_first_host() {
        assert_eq!(default_gateway(net("10.89.0.0/24")), ip("10.89.0.1"));
        assert_eq!(default_gateway(net("172.30.0.0/16")), ip("172.30.0.1"));
    }

    #[test]
    fn a_gateway_inside_the_subnet_is_accepted() {
        check_gateway(net("10.89.0.0/24"), ip("10.89.0.1")).unwrap();
        check_gateway(net("10.89.0.0/24"), ip("10.89.0.254")).unwrap();
    }

    #[test]
    fn a_gateway_outside_the_subnet_is_rejected() {
        let err = check_gateway(net("10.89.0.0/24"), ip("10.90.0.1")).unwrap_err().to_string();
        assert_eq!(
            err,
            "gateway 10.90.0.1: it is not in subnet 10.89.0.0/24 \
             (pick an address inside 10.89.0.0/24, such as 10.89.0.1)"
        );
    }

    #[test]
    fn a_gateway_on_the_network_or_broadcast_address_is_rejected() {
        let err = check_gateway(net("10.89.0.0/24"), ip("10.89.0.0")).unwrap_err().to_string();
        assert!(err.starts_with("gateway 10.89.0.0: it is the network address of 10.89.0.0/24"), "{err}");
        let err = check_gateway(net("10.89.0.0/24"), ip("10.89.0.255")).unwrap_err().to_string();
        assert!(err.starts_with("gateway 10.89.0.255: it is the broadcast address of 10.89.0.0/24"), "{err}");
    }

    #[test]
    fn pick_takes_the_lowest_free_host() {
        let subnet = net("10.89.0.0/24");
        let gw = ip("10.89.0.1");
        assert_eq!(pick(subnet, gw, &[], None).unwrap(), ip("10.89.0.2"));
        assert_eq!(pick(subnet, gw, &[ip("10.89.0.2"), ip("10.89.0.3")], None).unwrap(), ip("10.89.0.4"));
        // A hole left by a removed container is filled first.
        assert_eq!(pick(subnet, gw, &[ip("10.89.0.3")], None).unwrap(), ip("10.89.0.2"));
    }

    #[test]
    fn pick_skips_a_gateway_that_is_not_the_first_host() {
        let subnet = net("10.89.0.0/24");
        assert_eq!(pick(subnet, ip("10.89.0.254"), &[], None).unwrap(), ip("10.89.0.1"));
        assert_eq!(pick(subnet, ip("10.89.0.2"), &[ip("10.89.0.1")], None).unwrap(), ip("10.89.0.3"));
    }

    #[test]
    fn pick_reports_a_full_subnet() {
        // A /30 has two hosts: the gateway and one container.
        let subnet = net("10.89.0.4/30");
        let gw = ip("10.89.0.5");
        assert_eq!(pick(subnet, gw, &[], None).unwrap(), ip("10.89.0.6"));
        let err = pick(subnet, gw, &[ip("10.89.0.6")], None).unwrap_err().to_string();
        assert_eq!(
            err,
            "assign an address on 10.89.0.4/30: every host address is in use (remove unused containers from the \
             network, or create a network with a larger subnet)"
        );
    }

    #[test]
    fn pick_honours_a_free_wanted_address() {
        let subnet = net("10.89.0.0/24");
        let got = pick(subnet, ip("10.89.0.1"), &[ip("10.89.0.2")], Some(ip("10.89.0.50"))).unwrap();
        assert_eq!(got, ip("10.89.0.50"));
    }

    #[test]
    fn pick_rejects_a_wanted_address_outside_the_subnet() {
        let err = pick(net("10.89.0.0/24"), ip("10.89.0.1"), &[], Some(ip("10.90.0.5"))).unwrap_err().to_string();
        assert_eq!(
            err,
            "assign address 10.90.0.5: it is not in subnet 10.89.0.0/24 (pick an address inside 10.89.0.0/24)"
        );
    }

    #[test]
    fn pick_rejects_the_network_broadcast_and_gateway_addresses() {
        let subnet = net("10.89.0.0/24");
        let gw = ip("10.89.0.1");
        let cases = [
            ("10.89.0.0", "it is the network address of 10.89.0.0/24"),
            ("10.89.0.255", "it is the broadcast address of 10.89.0.0/24"),
            ("10.89.0.1", "it is the gateway of 10.89.0.0/24"),
        ];
        for (wanted, cause) in cases {
            let err = pick(subnet, gw, &[], Some(ip(wanted))).unwrap_err().to_string();
            assert!(err.starts_with(&format!("assign address {wanted}: {cause} (")), "{err}");
        }
    }

    #[test]
    fn pick_rejects_a_wanted_address_in_use() {
        let err = pick(net("10.89.0.0/24"), ip("10.89.0.1"), &[ip("10.89.0.7")], Some(ip("10.89.0.7")))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("assign address 10.89.0.7: it is already in use on 10.89.0.0/24 ("), "{err}");
    }

    #[test]
    fn overlapping_subnets() {
        assert!(overlaps(net("10.89.0.0/24"), net("10.89.0.0/24")));
        assert!(overlaps(net("10.89.0.0/16"), net("10.89.5.0/24")));
        assert!(overlaps(net("10.89.5.0/24"), net("10.89.0.0/16")));
        assert!(!overlaps(net("10.89.0.0/24"), net("10.89.1.0/24")));
        assert!(!overlaps(net("10.89.0.0/25"), net("10.89.0.128/25")));
    }

    #[test]
    fn macs_follow_the_address() {
        assert_eq!(mac_for(ip("10.89.0.2")), [0x02, 0x42, 10, 89, 0, 2]);
        assert_eq!(format_mac(&mac_for(ip("172.17.0.2"))), "02:42:ac:11:00:02");
        assert_eq!(format_mac(&[0xde, 0xad, 0xbe, 0xef, 0, 0xff]), "de:ad:be:ef:00:ff");
    }

    #[test]
    fn macs_parse_with_colons_or_dashes() {
        assert_eq!(parse_mac("02:42:ac:11:00:02").unwrap(), [0x02, 0x42, 0xac, 0x11, 0, 2]);
        assert_eq!(parse_mac("02-42-AC-11-00-02").unwrap(), [0x02, 0x42, 0xac, 0x11, 0, 2]);
        assert_eq!(parse_mac(&format_mac(&[0x0e, 1, 2, 3, 4, 5])).unwrap(), [0x0e, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn malformed_macs_are_rejected() {
        for bad in [
            "",
            "02:42:ac:11:00",
            "02:42:ac:11:00:02:03",
            "2:42:ac:11:00:02",
            "02:42-ac:11:00:02",
            "02:42:ac:11:00:zz",
            "+2:42:ac:11:00:02",
        ] {
            let err = parse_mac(bad).unwrap_err().to_string();
            assert_eq!(
                err,
                format!("MAC address \"{bad}\": it is not six hex bytes (write it like 02:42:0a:59:00:02)")
            );
        }
    }

    #[test]
    fn multicast_and_zero_macs_are_rejected() {
        let err = parse_mac("01:00:5e:00:00:01").unwrap_err().to_string();
        assert!(err.starts_with("MAC address \"01:00:5e:00:00:01\": it is a multicast address"), "{err}");
        assert!(parse_mac("ff:ff:ff:ff:ff:ff").is_err());
        let err = parse_mac("00:00:00:00:00:00").unwrap_err().to_string();
        assert!(err.starts_with("MAC address \"00:00:00:00:00:00\": it is all zeros"), "{err}");
    }
}
