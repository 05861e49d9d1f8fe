//! mini's nftables ruleset, as the text of one `nft -f -` script. The whole
//! table is rebuilt from the current networks and published ports each time,
//! so there is no per-rule bookkeeping to drift from reality: the engine
//! computes `ruleset` and feeds it to nft, which applies it atomically.
//!
//! Everything lives in mini's own `inet mini` table and only ever accepts,
//! drops between mini bridges, or rewrites addresses of mini's traffic:
//! every base chain's policy is accept, so the host's own firewall decides
//! everything else.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::ports::Proto;

/// The name of mini's table, in the inet family.
pub const TABLE: &str = "mini";

/// A mini bridge and the subnet of the containers behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeNet {
    /// The interface name; the engine makes these up (`mini0`, ...), so
    /// they never hold a quote.
    pub bridge: String,
    pub subnet: Ipv4Net,
}

/// One published port: traffic to the host's `host_ip:host_port` goes to
/// `container_ip:container_port` behind `bridge`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dnat {
    /// None (or 0.0.0.0) is every local address.
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub proto: Proto,
    pub container_ip: Ipv4Addr,
    pub container_port: u16,
    pub bridge: String,
}

/// The script that replaces mini's table with one for `nets` and `dnats`,
/// in one transaction. Creating the table before deleting it makes the
/// delete succeed whether or not the table exists; with nothing to
/// forward, the script only deletes it. The rules come out sorted, so the
/// same networks and ports give the same text in any order.
pub fn ruleset(nets: &[BridgeNet], dnats: &[Dnat]) -> String {
    let mut script = format!("table inet {TABLE} {{}}\ndelete table inet {TABLE}\n");
    if nets.is_empty() && dnats.is_empty() {
        return script;
    }
    let mut nets: Vec<&BridgeNet> = nets.iter().collect();
    nets.sort_by(|a, b| (&a.bridge, a.subnet).cmp(&(&b.bridge, b.subnet)));
    nets.dedup();
    let mut dnats: Vec<&Dnat> = dnats.iter().collect();
    dnats.sort_by_cached_key(|d| dnat_order(d));
    dnats.dedup();

    let _ = writeln!(script, "table inet {TABLE} {{");
    let chains = [published_chain(&dnats), nat_chains(), postrouting_chain(&nets, &dnats), forward_chain(&nets)];
    script.push_str(&chains.join("\n"));
    script.push_str("}\n");
    script
}

/// Sort key for published ports: by host address and port, then the rest.
fn dnat_order(d: &Dnat) -> (Ipv4Addr, u16, String, Ipv4Addr, u16, String) {
    let host_ip = d.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
    (host_ip, d.host_port, d.proto.to_string(), d.container_ip, d.container_port, d.bridge.clone())
}

/// The DNAT rules of every published port, in a chain of their own so that
/// prerouting (traffic from elsewhere) and output (from the host itself)
/// jump to the very same rules.
fn published_chain(dnats: &[&Dnat]) -> String {
    let mut chain = String::from("\tchain published {\n");
    for d in dnats {
        let daddr = match d.host_ip {
            Some(ip) if !ip.is_unspecified() => format!("ip daddr {ip} "),
            _ => String::new(),
        };
        let _ = writeln!(
            chain,
            "\t\t{daddr}{proto} dport {} dnat ip to {}:{}",
            d.host_port,
            d.container_ip,
            d.container_port,
            proto = d.proto
        );
    }
    chain.push_str("\t}\n");
    chain
}

/// Only traffic addressed to the host itself is published: `fib daddr type
/// local` keeps mini from rewriting traffic the host merely routes. The
/// output hook has no named priority for DNAT, so it uses dstnat's -100.
fn nat_chains() -> String {
    let chain = |name: &str, priority: &str| {
        format!(
            "\tchain {name} {{\n\t\ttype nat hook {name} priority {priority}; policy accept;\n\
             \t\tfib daddr type local jump published\n\t}}\n"
        )
    };
    chain("prerouting", "dstnat") + "\n" + &chain("output", "-100")
}

/// Source NAT. Containers reach the outside world from the host's address;
/// connections to a published port from the host's loopback (127.0.0.1
/// DNATed out of a bridge, which the engine allows with route_localnet)
/// come from the bridge's address, since the container cannot answer
/// 127.0.0.1; and a container reaching a published port of its own network
/// through the host (hairpin) comes from the bridge's address too, or the
/// answer would go straight back to it and not through the DNAT. `ct status
/// dnat` keeps direct container-to-container traffic as it is.
fn postrouting_chain(nets: &[&BridgeNet], dnats: &[&Dnat]) -> String {
    let mut chain =
        String::from("\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n");
    for net in nets {
        let (bridge, subnet) = (&net.bridge, net.subnet);
        let _ = writeln!(chain, "\t\tip saddr {subnet} ip daddr != {subnet} masquerade");
        let _ = writeln!(chain, "\t\toifname \"{bridge}\" ip saddr 127.0.0.0/8 masquerade");
    }
    for d in dnats {
        let Some(net) = nets.iter().find(|net| net.bridge == d.bridge) else {
            continue;
        };
        let _ = writeln!(
            chain,
            "\t\toifname \"{}\" ip saddr {} ip daddr {} {} dport {} ct status dnat masquerade",
            d.bridge, net.subnet, d.container_ip, d.proto, d.container_port
        );
    }
    chain.push_str("\t}\n");
    chain
}

/// Isolation: a mini network never reaches another one (Docker's
/// DOCKER-ISOLATION chains). Answers of established connections pass first.
fn forward_chain(nets: &[&BridgeNet]) -> String {
    let mut chain = String::from(
        "\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n\
         \t\tct state established,related accept\n",
    );
    let mut bridges: Vec<&str> = nets.iter().map(|net| net.bridge.as_str()).collect();
    bridges.dedup();
    for from in &bridges {
        for to in bridges.iter().filter(|to| *to != from) {
            let _ = writeln!(chain, "\t\tiifname \"{from}\" oifname \"{to}\" drop");
        }
    }
    chain.push_str("\t}\n");
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(bridge: &str, subnet: &str) -> BridgeNet {
        BridgeNet { bridge: bridge.into(), subnet: subnet.parse().unwrap() }
    }

    fn dnat(host_ip: Option<&str>, host_port: u16, proto: Proto, container: &str, bridge: &str) -> Dnat {
        let (ip, port) = container.split_once(':').unwrap();
        Dnat {
            host_ip: host_ip.map(|ip| ip.parse().unwrap()),
            host_port,
            proto,
            container_ip: ip.parse().unwrap(),
            container_port: port.parse().unwrap(),
            bridge: bridge.into(),
        }
    }

    const EXPECTED: &str = r#"table inet mini {}
delete table inet mini
table inet mini {
	chain published {
		udp dport 5353 dnat ip to 10.90.0.2:53
		tcp dport 8080 dnat ip to 10.89.0.2:80
		ip daddr 127.0.0.1 tcp dport 9000 dnat ip to 10.89.0.3:9000
	}

	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		fib daddr type local jump published
	}

	chain output {
		type nat hook output priority -100; policy accept;
		fib daddr type local jump published
	}

	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 10.89.0.0/24 ip daddr != 10.89.0.0/24 masquerade
		oifname "mini0" ip saddr 127.0.0.0/8 masquerade
		ip saddr 10.90.0.0/16 ip daddr != 10.90.0.0/16 masquerade
		oifname "mini1" ip saddr 127.0.0.0/8 masquerade
		oifname "mini1" ip saddr 10.90.0.0/16 ip daddr 10.90.0.2 udp dport 53 ct status dnat masquerade
		oifname "mini0" ip saddr 10.89.0.0/24 ip daddr 10.89.0.2 tcp dport 80 ct status dnat masquerade
		oifname "mini0" ip saddr 10.89.0.0/24 ip daddr 10.89.0.3 tcp dport 9000 ct status dnat masquerade
	}

	chain forward {
		type filter hook forward priority filter; policy accept;
		ct state established,related accept
		iifname "mini0" oifname "mini1" drop
		iifname "mini1" oifname "mini0" drop
	}
}
"#;

    fn representative() -> (Vec<BridgeNet>, Vec<Dnat>) {
        let nets = vec![net("mini1", "10.90.0.0/16"), net("mini0", "10.89.0.0/24")];
        let dnats = vec![
            dnat(Some("127.0.0.1"), 9000, Proto::Tcp, "10.89.0.3:9000", "mini0"),
            dnat(None, 8080, Proto::Tcp, "10.89.0.2:80", "mini0"),
            dnat(Some("0.0.0.0"), 5353, Proto::Udp, "10.90.0.2:53", "mini1"),
        ];
        (nets, dnats)
    }

    #[test]
    fn the_whole_ruleset_for_two_networks_and_three_ports() {
        let (nets, dnats) = representative();
        assert_eq!(ruleset(&nets, &dnats), EXPECTED);
    }

    #[test]
    fn the_text_does_not_depend_on_input_order() {
        let (mut nets, mut dnats) = representative();
        nets.reverse();
        dnats.rotate_left(1);
        assert_eq!(ruleset(&nets, &dnats), EXPECTED);
    }

    #[test]
    fn nothing_to_forward_only_deletes_the_table() {
        assert_eq!(ruleset(&[], &[]), "table inet mini {}\ndelete table inet mini\n");
    }

    #[test]
    fn one_network_without_ports_has_no_isolation_rules() {
        let text = ruleset(&[net("mini0", "10.89.0.0/24")], &[]);
        assert!(text.contains("\tchain published {\n\t}\n"), "{text}");
        assert!(text.contains("\t\tip saddr 10.89.0.0/24 ip daddr != 10.89.0.0/24 masquerade\n"), "{text}");
        assert!(text.contains("\t\tct state established,related accept\n\t}\n"), "{text}");
        assert!(!text.contains("drop"), "{text}");
    }

    #[test]
    fn three_networks_drop_every_ordered_pair() {
        let nets = [net("mini2", "10.91.0.0/24"), net("mini0", "10.89.0.0/24"), net("mini1", "10.90.0.0/24")];
        let text = ruleset(&nets, &[]);
        let drops: Vec<&str> = text.lines().filter(|l| l.ends_with(" drop")).map(str::trim).collect();
        assert_eq!(
            drops,
            [
                r#"iifname "mini0" oifname "mini1" drop"#,
                r#"iifname "mini0" oifname "mini2" drop"#,
                r#"iifname "mini1" oifname "mini0" drop"#,
                r#"iifname "mini1" oifname "mini2" drop"#,
                r#"iifname "mini2" oifname "mini0" drop"#,
                r#"iifname "mini2" oifname "mini1" drop"#,
            ]
        );
    }

    #[test]
    fn a_port_on_an_unknown_bridge_gets_no_hairpin_rule() {
        let text = ruleset(&[], &[dnat(None, 8080, Proto::Tcp, "10.89.0.2:80", "gone0")]);
        assert!(text.contains("\t\ttcp dport 8080 dnat ip to 10.89.0.2:80\n"), "{text}");
        assert!(!text.contains("gone0"), "{text}");
    }

    #[test]
    fn duplicates_are_written_once() {
        let n = net("mini0", "10.89.0.0/24");
        let d = dnat(None, 8080, Proto::Tcp, "10.89.0.2:80", "mini0");
        let text = ruleset(&[n.clone(), n], &[d.clone(), d]);
        assert_eq!(text.matches("dnat ip to").count(), 1, "{text}");
        assert_eq!(text.matches("ip daddr != 10.89.0.0/24").count(), 1, "{text}");
    }
}
