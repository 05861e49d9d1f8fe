//! Published ports: `-p/--publish` and `-P/--publish-all` parsed the way
//! Docker parses them, the conflicts between them, and the `docker ps` and
//! `docker port` renderings. Pure: the engine resolves ephemeral host ports
//! (host port 0) and installs the forwarding.

use std::cmp::Ordering;
use std::fmt;
use std::net::Ipv4Addr;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// One host port forwarded to one container port.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortMapping {
    /// The host address to listen on; None is every address (0.0.0.0).
    pub host_ip: Option<Ipv4Addr>,
    /// 0 until the container starts: mini then picks a free port.
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

/// An inclusive run of ports, `80` or `8000-8002`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PortRange {
    first: u16,
    last: u16,
}

impl PortRange {
    fn len(self) -> u32 {
        u32::from(self.last - self.first) + 1
    }

    fn ports(self) -> impl Iterator<Item = u16> {
        self.first..=self.last
    }
}

/// Parse one `-p` value: `[[IP:][HOST_PORT]:]CONTAINER_PORT[/PROTO]`, where
/// either port may be a range `FIRST-LAST`.
pub fn parse_publish(spec: &str) -> Result<Vec<PortMapping>> {
    let fail = |cause: String, hint: &str| Error::new(format!("publish port \"{spec}\"")).because(cause).hint(hint);
    // An IPv4 spec has at most two colons; more means an IPv6 host address.
    if spec.starts_with('[') || spec.matches(':').count() > 2 {
        return Err(fail("IPv6 host addresses are not supported".into(), "publish on an IPv4 address or on all"));
    }
    let mut parts: Vec<&str> = spec.split(':').collect();
    let container = parts.pop().unwrap_or_default();
    let host = parts.pop().unwrap_or_default();
    let host_ip = parse_host_ip(parts.pop().unwrap_or_default()).map_err(|cause| fail(cause, FORM_HINT))?;

    let (container, proto) = split_proto(container).map_err(|cause| fail(cause, PROTO_HINT))?;
    if container.is_empty() {
        return Err(fail("it has no container port".into(), FORM_HINT));
    }
    let container = parse_range(container).map_err(|cause| fail(cause, FORM_HINT))?;
    if host.is_empty() {
        // No host port: one ephemeral host port for each container port.
        return Ok(container
            .ports()
            .map(|c| PortMapping { host_ip, host_port: 0, container_port: c, proto })
            .collect());
    }
    let host = parse_range(host).map_err(|cause| fail(cause, FORM_HINT))?;
    // Docker also accepts a host range with a single container port, meaning
    // "any one free port of that range". A mapping here holds one host port,
    // so mini rejects that form instead of half-supporting it.
    if host.len() != container.len() {
        let cause =
            format!("host ports {} and container ports {} differ in length", range_text(host), range_text(container));
        return Err(fail(cause, "map ranges of equal length, e.g. 8000-8002:80-82"));
    }
    let pairs = host.ports().zip(container.ports());
    Ok(pairs.map(|(h, c)| PortMapping { host_ip, host_port: h, container_port: c, proto }).collect())
}

const FORM_HINT: &str = "use [IP:][HOST_PORT:]CONTAINER_PORT[/PROTO], e.g. 8080:80 or 127.0.0.1:8080:80/udp";
const PROTO_HINT: &str = "use tcp or udp";
const PORT_RANGE: &str = "1-65535";

fn range_text(range: PortRange) -> String {
    if range.first == range.last {
        range.first.to_string()
    } else {
        format!("{}-{}", range.first, range.last)
    }
}

/// The host address of a spec; empty and 0.0.0.0 both mean every address.
fn parse_host_ip(text: &str) -> Result<Option<Ipv4Addr>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let ip: Ipv4Addr = text.parse().map_err(|_| format!("\"{text}\" is not an IPv4 address"))?;
    Ok(Some(ip).filter(|ip| !ip.is_unspecified()))
}

/// `80/udp` → (`80`, Udp); no protocol, or an empty one, is tcp (Docker
/// accepts `80/` too, and any case).
fn split_proto(text: &str) -> Result<(&str, Proto), String> {
    let Some((port, proto)) = text.split_once('/') else {
        return Ok((text, Proto::Tcp));
    };
    match proto.to_ascii_lowercase().as_str() {
        "" | "tcp" => Ok((port, Proto::Tcp)),
        "udp" => Ok((port, Proto::Udp)),
        "sctp" => Err("protocol sctp is not supported".into()),
        _ => Err(format!("\"{proto}\" is not a protocol")),
    }
}

fn parse_range(text: &str) -> Result<PortRange, String> {
    let Some((first, last)) = text.split_once('-') else {
        let port = parse_port(text)?;
        return Ok(PortRange { first: port, last: port });
    };
    let range = PortRange { first: parse_port(first)?, last: parse_port(last)? };
    if range.first > range.last {
        return Err(format!("the range {text} ends before it starts"));
    }
    Ok(range)
}

fn parse_port(text: &str) -> Result<u16, String> {
    // Digits only: u16's parser would also take "+80".
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("\"{text}\" is not a port number"));
    }
    match text.parse::<u32>() {
        Ok(port @ 1..=65535) => Ok(port as u16),
        _ => Err(format!("port {text} is out of range {PORT_RANGE}")),
    }
}

/// Parse an image config's ExposedPorts key: `80/tcp`, `53/udp`, or `8080`
/// (tcp).
pub fn parse_exposed(key: &str) -> Result<(u16, Proto)> {
    let fail = |cause: String| {
        Error::new(format!("exposed port \"{key}\" of the image"))
            .because(cause)
            .hint("rebuild the image with EXPOSE PORT[/tcp|/udp]")
    };
    let (port, proto) = split_proto(key).map_err(fail)?;
    let port = parse_port(port).map_err(fail)?;
    Ok((port, proto))
}

/// `-P`: every exposed port on an ephemeral host port of every address.
pub fn publish_all(exposed: &[(u16, Proto)]) -> Vec<PortMapping> {
    let mut maps: Vec<PortMapping> = Vec::new();
    for &(container_port, proto) in exposed {
        let map = PortMapping { host_ip: None, host_port: 0, container_port, proto };
        if !maps.contains(&map) {
            maps.push(map);
        }
    }
    maps
}

/// Refuse two mappings that would listen on the same host port: same port
/// and protocol on the same address, or on any address when either listens
/// on all of them. Ephemeral ports (0) never conflict: each gets its own.
pub fn check_conflicts(maps: &[PortMapping]) -> Result<()> {
    let fixed: Vec<&PortMapping> = maps.iter().filter(|m| m.host_port != 0).collect();
    for (i, a) in fixed.iter().enumerate() {
        let same_address = |b: &&&PortMapping| a.host_ip.is_none() || b.host_ip.is_none() || a.host_ip == b.host_ip;
        let clash =
            fixed[i + 1..].iter().filter(|b| b.host_port == a.host_port && b.proto == a.proto).find(same_address);
        if let Some(b) = clash {
            return Err(Error::new(format!("publish host port {}/{}", a.host_port, a.proto))
                .because(format!("it is published twice, as {} and {}", mapping_text(a), mapping_text(b)))
                .hint("give each mapping its own host port"));
        }
    }
    Ok(())
}

fn host_ip_text(map: &PortMapping) -> String {
    map.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED).to_string()
}

/// `0.0.0.0:8080->80/tcp`
fn mapping_text(map: &PortMapping) -> String {
    format!("{}:{}->{}/{}", host_ip_text(map), map.host_port, map.container_port, map.proto)
}

/// The PORTS column of `docker ps`: sorted by container port, mappings whose
/// host port equals the container port folded into runs
/// (`0.0.0.0:8000-8002->8000-8002/tcp`) and listed first, the others after.
/// This follows docker/cli's DisplayablePorts step for step.
pub fn format_ps(maps: &[PortMapping]) -> String {
    let mut sorted: Vec<&PortMapping> = maps.iter().collect();
    sorted.sort_by_cached_key(|m| (m.container_port, host_ip_text(m), m.host_port, m.proto.to_string()));
    // Runs keyed by (address, protocol), in the order their keys first appear.
    let mut runs: Vec<(String, Proto, u16, u16)> = Vec::new();
    let mut result = Vec::new();
    let mut translated = Vec::new();
    for map in sorted {
        if map.host_port != map.container_port {
            translated.push(mapping_text(map));
            continue;
        }
        let (ip, port) = (host_ip_text(map), map.container_port);
        match runs.iter_mut().find(|(run_ip, proto, ..)| *run_ip == ip && *proto == map.proto) {
            None => runs.push((ip, map.proto, port, port)),
            Some(run) if port == run.3.wrapping_add(1) => run.3 = port,
            Some(run) => {
                result.push(run_text(run));
                (run.2, run.3) = (port, port);
            }
        }
    }
    result.extend(runs.iter().map(run_text));
    result.extend(translated);
    result.join(", ")
}

fn run_text((ip, proto, first, last): &(String, Proto, u16, u16)) -> String {
    let ports = range_text(PortRange { first: *first, last: *last });
    format!("{ip}:{ports}->{ports}/{proto}")
}

/// `docker port C`: `80/tcp -> 0.0.0.0:8080`, one line a mapping, in
/// natural order.
pub fn format_port_lines(maps: &[PortMapping]) -> Vec<String> {
    let lines = maps.iter().map(|m| format!("{}/{} -> {}:{}", m.container_port, m.proto, host_ip_text(m), m.host_port));
    natural_sorted(lines.collect())
}

/// `docker port C 80`: just the host addresses, `0.0.0.0:8080`, in natural
/// order.
pub fn format_host_addrs(maps: &[PortMapping]) -> Vec<String> {
    natural_sorted(maps.iter().map(|m| format!("{}:{}", host_ip_text(m), m.host_port)).collect())
}

/// The mappings of container port `query` (`80`, `80/udp`; tcp when no
/// protocol is given). None matching is Docker's "No public port" error;
/// the caller adds which container it asked.
pub fn filter_port(maps: &[PortMapping], query: &str) -> Result<Vec<PortMapping>> {
    let (port, proto) = query.split_once('/').unwrap_or((query, ""));
    let proto = if proto.is_empty() { "tcp" } else { proto };
    let port: u16 =
        port.parse().ok().filter(|_| port.bytes().all(|b| b.is_ascii_digit())).ok_or_else(|| {
            Error::new(format!("port \"{query}\"")).because(format!("\"{port}\" is not a port number"))
        })?;
    let found: Vec<PortMapping> =
        maps.iter().filter(|m| m.container_port == port && m.proto.to_string() == proto).cloned().collect();
    if found.is_empty() {
        return Err(Error::new(format!("No public port '{port}/{proto}' published")));
    }
    Ok(found)
}

fn natural_sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort_by(|a, b| natural_cmp(a, b));
    lines
}

/// Order text with runs of digits compared as numbers, so `8080` sorts
/// after `443` (docker/cli sorts `docker port` output this way).
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let (a_digits, a_rest) = split_digits(a);
                let (b_digits, b_rest) = split_digits(b);
                let order = compare_numbers(a_digits, b_digits);
                if order != Ordering::Equal {
                    return order;
                }
                (a, b) = (a_rest, b_rest);
            }
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => (a, b) = (&a[1..], &b[1..]),
        }
    }
}

fn split_digits(s: &[u8]) -> (&[u8], &[u8]) {
    let end = s.iter().position(|b| !b.is_ascii_digit()).unwrap_or(s.len());
    s.split_at(end)
}

/// Compare two digit strings by value, without overflowing on long ones.
fn compare_numbers(a: &[u8], b: &[u8]) -> Ordering {
    let strip = |s: &[u8]| -> usize { s.iter().position(|&d| d != b'0').unwrap_or(s.len()) };
    let (a, b) = (&a[strip(a)..], &b[strip(b)..]);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(host_ip: Option<&str>, host_port: u16, container_port: u16, proto: Proto) -> PortMapping {
        PortMapping { host_ip: host_ip.map(|ip| ip.parse().unwrap()), host_port, container_port, proto }
    }

    fn tcp(host_port: u16, container_port: u16) -> PortMapping {
        map(None, host_port, container_port, Proto::Tcp)
    }

    fn err(spec: &str) -> String {
        parse_publish(spec).unwrap_err().to_string()
    }

    #[test]
    fn a_container_port_alone_gets_an_ephemeral_host_port() {
        assert_eq!(parse_publish("80").unwrap(), vec![tcp(0, 80)]);
        assert_eq!(parse_publish("80/tcp").unwrap(), vec![tcp(0, 80)]);
        assert_eq!(parse_publish("53/udp").unwrap(), vec![map(None, 0, 53, Proto::Udp)]);
    }

    #[test]
    fn host_and_container_ports() {
        assert_eq!(parse_publish("8080:80").unwrap(), vec![tcp(8080, 80)]);
        assert_eq!(parse_publish("8080:80/udp").unwrap(), vec![map(None, 8080, 80, Proto::Udp)]);
        assert_eq!(parse_publish(":80").unwrap(), vec![tcp(0, 80)]);
    }

    #[test]
    fn a_host_address() {
        assert_eq!(parse_publish("127.0.0.1:8080:80").unwrap(), vec![map(Some("127.0.0.1"), 8080, 80, Proto::Tcp)]);
        assert_eq!(parse_publish("127.0.0.1::80").unwrap(), vec![map(Some("127.0.0.1"), 0, 80, Proto::Tcp)]);
        assert_eq!(parse_publish("192.168.1.5:53:53/udp").unwrap(), vec![map(Some("192.168.1.5"), 53, 53, Proto::Udp)]);
    }

    #[test]
    fn every_address_is_no_address() {
        assert_eq!(parse_publish("0.0.0.0:8080:80").unwrap(), vec![tcp(8080, 80)]);
        assert_eq!(parse_publish("::80").unwrap(), vec![tcp(0, 80)]);
    }

    #[test]
    fn protocols_take_any_case_and_default_to_tcp() {
        assert_eq!(parse_publish("80/").unwrap(), vec![tcp(0, 80)]);
        assert_eq!(parse_publish("8080:80/TCP").unwrap(), vec![tcp(8080, 80)]);
        assert_eq!(parse_publish("80/Udp").unwrap(), vec![map(None, 0, 80, Proto::Udp)]);
    }

    #[test]
    fn ranges_map_port_by_port() {
        assert_eq!(parse_publish("8000-8002:80-82").unwrap(), vec![tcp(8000, 80), tcp(8001, 81), tcp(8002, 82)]);
        assert_eq!(
            parse_publish("127.0.0.1:5000-5001:5000-5001/udp").unwrap(),
            vec![map(Some("127.0.0.1"), 5000, 5000, Proto::Udp), map(Some("127.0.0.1"), 5001, 5001, Proto::Udp)]
        );
        assert_eq!(parse_publish("80-82").unwrap(), vec![tcp(0, 80), tcp(0, 81), tcp(0, 82)]);
        assert_eq!(parse_publish("8080-8080:80").unwrap(), vec![tcp(8080, 80)]);
    }

    #[test]
    fn ranges_of_different_lengths_are_rejected() {
        assert_eq!(
            err("8000-8002:80"),
            "publish port \"8000-8002:80\": host ports 8000-8002 and container ports 80 differ in length \
             (map ranges of equal length, e.g. 8000-8002:80-82)"
        );
        assert!(err("8000-8001:80-82").contains("host ports 8000-8001 and container ports 80-82 differ in length"));
        assert!(err("8000:80-82").contains("differ in length"));
    }

    #[test]
    fn backwards_ranges_are_rejected() {
        assert!(err("82-80").starts_with("publish port \"82-80\": the range 82-80 ends before it starts ("));
    }

    #[test]
    fn bad_port_numbers_are_rejected() {
        assert_eq!(
            err("99999:80"),
            format!("publish port \"99999:80\": port 99999 is out of range 1-65535 ({FORM_HINT})")
        );
        assert!(err("0").contains(": port 0 is out of range 1-65535 ("));
        assert!(err("8080:0").contains(": port 0 is out of range 1-65535 ("));
        assert!(err("0:80").contains(": port 0 is out of range 1-65535 ("));
        assert!(err("65536").contains("port 65536 is out of range"));
        assert!(err("99999999999999999999").contains("is out of range"));
        assert!(err("http").contains(": \"http\" is not a port number ("));
        assert!(err("+80").contains("\"+80\" is not a port number"));
        assert!(err("80-").contains("\"\" is not a port number"));
        assert!(err("8080:x").contains("\"x\" is not a port number"));
        assert!(parse_publish("65535:65535").is_ok());
        assert!(parse_publish("1:1").is_ok());
    }

    #[test]
    fn a_missing_container_port_is_rejected() {
        assert!(err("").contains(": it has no container port ("));
        assert!(err("8080:").contains(": it has no container port ("));
        assert!(err("/udp").contains(": it has no container port ("));
    }

    #[test]
    fn bad_protocols_are_rejected() {
        assert_eq!(err("80/icmp"), "publish port \"80/icmp\": \"icmp\" is not a protocol (use tcp or udp)");
        assert_eq!(err("80/sctp"), "publish port \"80/sctp\": protocol sctp is not supported (use tcp or udp)");
    }

    #[test]
    fn bad_host_addresses_are_rejected() {
        assert!(
            err("localhost:8080:80").starts_with("publish port \"localhost:8080:80\": \"localhost\" is not an IPv4")
        );
        assert!(err("10.0.0.300:8080:80").contains("\"10.0.0.300\" is not an IPv4 address"));
    }

    #[test]
    fn ipv6_host_addresses_are_not_supported() {
        for spec in ["[::1]:8080:80", "::1:8080:80", ":::80", "[fe80::1]::80"] {
            assert_eq!(
                err(spec),
                format!(
                    "publish port \"{spec}\": IPv6 host addresses are not supported \
                     (publish on an IPv4 address or on all)"
                )
            );
        }
    }

    #[test]
    fn exposed_port_keys() {
        assert_eq!(parse_exposed("80/tcp").unwrap(), (80, Proto::Tcp));
        assert_eq!(parse_exposed("53/udp").unwrap(), (53, Proto::Udp));
        assert_eq!(parse_exposed("8080").unwrap(), (8080, Proto::Tcp));
        let err = parse_exposed("80/sctp").unwrap_err().to_string();
        assert!(err.starts_with("exposed port \"80/sctp\" of the image: protocol sctp is not supported ("), "{err}");
        assert!(parse_exposed("http/tcp").is_err());
        assert!(parse_exposed("0/tcp").is_err());
        assert!(parse_exposed("8000-8002/tcp").is_err());
    }

    #[test]
    fn publish_all_gives_each_exposed_port_an_ephemeral_host_port() {
        let exposed = [(80, Proto::Tcp), (53, Proto::Udp), (80, Proto::Tcp), (53, Proto::Tcp)];
        assert_eq!(publish_all(&exposed), vec![tcp(0, 80), map(None, 0, 53, Proto::Udp), map(None, 0, 53, Proto::Tcp)]);
        assert!(publish_all(&[]).is_empty());
    }

    #[test]
    fn distinct_host_ports_do_not_conflict() {
        let maps = [
            tcp(8080, 80),
            tcp(8081, 80),
            map(None, 8080, 80, Proto::Udp),
            map(Some("127.0.0.1"), 9000, 90, Proto::Tcp),
            map(Some("127.0.0.2"), 9000, 90, Proto::Tcp),
            tcp(0, 80),
            tcp(0, 81),
        ];
        check_conflicts(&maps).unwrap();
        check_conflicts(&[]).unwrap();
    }

    #[test]
    fn the_same_host_port_twice_conflicts() {
        let err = check_conflicts(&[tcp(8080, 80), tcp(8080, 81)]).unwrap_err().to_string();
        assert_eq!(
            err,
            "publish host port 8080/tcp: it is published twice, as 0.0.0.0:8080->80/tcp and 0.0.0.0:8080->81/tcp \
             (give each mapping its own host port)"
        );
        let same_ip = [map(Some("127.0.0.1"), 53, 53, Proto::Udp), map(Some("127.0.0.1"), 53, 54, Proto::Udp)];
        assert!(check_conflicts(&same_ip).is_err());
    }

    #[test]
    fn every_address_conflicts_with_a_specific_one() {
        let maps = [map(Some("127.0.0.1"), 8080, 80, Proto::Tcp), tcp(9090, 90), tcp(8080, 81)];
        let err = check_conflicts(&maps).unwrap_err().to_string();
        assert!(err.contains("as 127.0.0.1:8080->80/tcp and 0.0.0.0:8080->81/tcp"), "{err}");
        assert!(check_conflicts(&[tcp(8080, 81), map(Some("10.0.0.1"), 8080, 80, Proto::Tcp)]).is_err());
    }

    #[test]
    fn ps_lists_translated_ports_by_container_port() {
        let maps = [map(Some("127.0.0.1"), 9000, 90, Proto::Udp), tcp(8080, 80)];
        assert_eq!(format_ps(&maps), "0.0.0.0:8080->80/tcp, 127.0.0.1:9000->90/udp");
        assert_eq!(format_ps(&[]), "");
    }

    #[test]
    fn ps_folds_same_numbered_ports_into_runs() {
        let maps = [tcp(8002, 8002), tcp(8000, 8000), tcp(8001, 8001), tcp(3000, 80), map(None, 53, 53, Proto::Udp)];
        assert_eq!(format_ps(&maps), "0.0.0.0:53->53/udp, 0.0.0.0:8000-8002->8000-8002/tcp, 0.0.0.0:3000->80/tcp");
    }

    #[test]
    fn ps_breaks_a_run_at_a_gap() {
        // As in docker/cli, a broken run is printed when the gap is found and
        // the last run of each key at the end.
        let maps = [tcp(80, 80), tcp(81, 81), tcp(83, 83), tcp(90, 90), map(Some("127.0.0.1"), 82, 82, Proto::Tcp)];
        assert_eq!(
            format_ps(&maps),
            "0.0.0.0:80-81->80-81/tcp, 0.0.0.0:83->83/tcp, 0.0.0.0:90->90/tcp, 127.0.0.1:82->82/tcp"
        );
    }

    #[test]
    fn port_lines_are_in_natural_order() {
        let maps = [tcp(8443, 443), map(Some("127.0.0.1"), 9000, 90, Proto::Udp), tcp(8080, 80), tcp(8081, 80)];
        assert_eq!(
            format_port_lines(&maps),
            ["80/tcp -> 0.0.0.0:8080", "80/tcp -> 0.0.0.0:8081", "90/udp -> 127.0.0.1:9000", "443/tcp -> 0.0.0.0:8443"]
        );
        assert!(format_port_lines(&[]).is_empty());
    }

    #[test]
    fn host_addresses_are_in_natural_order() {
        let maps = [tcp(10000, 80), map(Some("127.0.0.1"), 9000, 80, Proto::Tcp), tcp(8080, 80)];
        assert_eq!(format_host_addrs(&maps), ["0.0.0.0:8080", "0.0.0.0:10000", "127.0.0.1:9000"]);
    }

    #[test]
    fn natural_order_compares_numbers_by_value() {
        assert_eq!(natural_cmp("a9", "a10"), Ordering::Less);
        assert_eq!(natural_cmp("a010", "a9"), Ordering::Greater);
        assert_eq!(natural_cmp("a", "a1"), Ordering::Less);
        assert_eq!(natural_cmp("b1", "a2"), Ordering::Greater);
        assert_eq!(natural_cmp("x1y", "x1y"), Ordering::Equal);
        assert_eq!(natural_cmp("99999999999999999999999", "100000000000000000000000"), Ordering::Less);
    }

    #[test]
    fn filter_port_finds_the_mappings_of_one_container_port() {
        let maps = [tcp(8080, 80), map(Some("127.0.0.1"), 8081, 80, Proto::Tcp), map(None, 5353, 80, Proto::Udp)];
        assert_eq!(filter_port(&maps, "80").unwrap(), maps[..2].to_vec());
        assert_eq!(filter_port(&maps, "80/tcp").unwrap(), maps[..2].to_vec());
        assert_eq!(filter_port(&maps, "80/udp").unwrap(), maps[2..].to_vec());
    }

    #[test]
    fn filter_port_reports_a_port_not_published() {
        let maps = [tcp(8080, 80)];
        assert_eq!(filter_port(&maps, "81").unwrap_err().to_string(), "No public port '81/tcp' published");
        assert_eq!(filter_port(&maps, "80/udp").unwrap_err().to_string(), "No public port '80/udp' published");
        assert_eq!(filter_port(&[], "80").unwrap_err().to_string(), "No public port '80/tcp' published");
    }

    #[test]
    fn filter_port_rejects_a_query_that_is_not_a_port() {
        let err = filter_port(&[tcp(8080, 80)], "http/tcp").unwrap_err().to_string();
        assert_eq!(err, "port \"http/tcp\": \"http\" is not a port number");
        assert!(filter_port(&[], "70000").is_err());
        assert!(filter_port(&[], "+80").is_err());
    }

    #[test]
    fn proto_is_lowercase_text() {
        assert_eq!(Proto::Tcp.to_string(), "tcp");
        assert_eq!(Proto::Udp.to_string(), "udp");
        assert_eq!(serde_json::to_string(&Proto::Udp).unwrap(), "\"udp\"");
        assert_eq!(serde_json::from_str::<Proto>("\"tcp\"").unwrap(), Proto::Tcp);
    }

    #[test]
    fn mappings_round_trip_through_json() {
        let m = map(Some("127.0.0.1"), 8080, 80, Proto::Udp);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"host_ip":"127.0.0.1","host_port":8080,"container_port":80,"proto":"udp"}"#);
        assert_eq!(serde_json::from_str::<PortMapping>(&json).unwrap(), m);
    }
}
