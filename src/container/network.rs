//! A container's network as decided at create, from `--network` and its
//! companions (Docker's rules for what goes with which mode), and its
//! /etc files. The endpoint itself (address, ports held, veth) exists
//! only while it runs: `network::attach`.

use std::net::Ipv4Addr;

use mini_store::Store;

use super::spec::RunFlags;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::network::etc::{self, Dns};
use crate::network::records::Network;
use crate::network::{ipam, manage, ports, Mode, NetOptions};

/// What was decided: the mode's text (as recorded), the options, the
/// network (bridge modes), and the /etc files' content.
pub struct Decided {
    pub mode: String,
    pub options: NetOptions,
    pub hosts: String,
    pub resolv: String,
}

/// Decide the network of a new container from its flags, the image's
/// exposed ports and, for `container:X`, X's own /etc files (read by the
/// caller).
pub fn decide(
    config: &Config,
    store: &Store,
    flags: &RunFlags,
    exposed: &[String],
    hostname: &str,
    joined: impl Fn(&str) -> Result<(String, String)>,
) -> Result<Decided> {
    let text = flags.network.clone().unwrap_or_else(|| config.default_network.clone());
    let mode = Mode::parse(&text)?;
    if crate::rootless::current().is_some() {
        rootless_allows(&mode, flags)?;
    }
    let network = match mode.network() {
        Some(name) => Some(manage::resolve(config, store, name, parse_ip(flags.ip.as_deref())?)?),
        None => None,
    };
    check_conflicts(&mode, flags, network.as_ref())?;
    let options = options(flags, exposed, &mode, network.as_ref())?;
    let dns = Dns { servers: flags.dns.clone(), search: flags.dns_search.clone(), options: flags.dns_option.clone() };
    let (hosts, resolv) = match &mode {
        Mode::Container(key) => joined(key)?,
        Mode::Host => {
            let mut hosts = etc::read_host("/etc/hosts");
            for (name, ip) in &options.add_hosts {
                hosts.push_str(&format!("{ip}\t{name}\n"));
            }
            (hosts, with_flags(&etc::read_host("/etc/resolv.conf"), &dns))
        }
        _ => {
            let hosts = etc::hosts(hostname, &[], &options.add_hosts, &[]);
            let mut dns = dns;
            // slirp4netns answers DNS itself, on an address of its own.
            if let (Mode::Stack(stack), true) = (&mode, dns.servers.is_empty()) {
                dns.servers.extend(stack.nameserver().map(String::from));
            }
            (hosts, etc::resolv_conf(&etc::read_host("/etc/resolv.conf"), &dns))
        }
    };
    Ok(Decided { mode: text, options, hosts, resolv })
}

/// The host's own resolv.conf (host mode keeps its loopback resolvers,
/// they are reachable there), with the `--dns*` lists applied if any.
fn with_flags(host: &str, dns: &Dns) -> String {
    if dns == &Dns::default() {
        host.to_string()
    } else {
        etc::resolv_conf(host, dns)
    }
}

fn parse_ip(text: Option<&str>) -> Result<Option<Ipv4Addr>> {
    text.map(|t| t.parse().map_err(|_| Error::new(format!("invalid --ip \"{t}\"")).because("not an IPv4 address")))
        .transpose()
}

/// What a rootless mini cannot do: bridges need root in the host's
/// network namespace; ports below the host's unprivileged start too.
fn rootless_allows(mode: &Mode, flags: &RunFlags) -> Result<()> {
    if let Mode::Network(name) = mode {
        return Err(Error::new(format!("use network {name}"))
            .because("rootless mini cannot make bridges or veth pairs in the host's network namespace")
            .hint("use the default (pasta or slirp4netns), --network none, host or container:NAME"));
    }
    let start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|t| t.trim().parse::<u16>().ok())
        .unwrap_or(1024);
    for spec in &flags.publish {
        for m in ports::parse_publish(spec)? {
            if m.host_port != 0 && m.host_port < start {
                return Err(Error::new(format!("publish port {}", m.host_port))
                    .because(format!(
                        "rootless mini may only listen on ports from {start} (net.ipv4.ip_unprivileged_port_start)"
                    ))
                    .hint(format!(
                        "publish on a port >= {start}, e.g. -p {}:{}",
                        8000 + m.container_port % 1000,
                        m.container_port
                    )));
            }
        }
    }
    Ok(())
}

/// Docker's refusals: what only a user network can have, and what a
/// container sharing another's namespace cannot set.
fn check_conflicts(mode: &Mode, flags: &RunFlags, network: Option<&Network>) -> Result<()> {
    let user_network = network.is_some_and(Network::resolves_names);
    if !flags.network_alias.is_empty() && !user_network {
        return Err(Error::new("invalid --network-alias")
            .because("network-scoped aliases are supported only on user networks")
            .hint("create one with `mini network create NAME` and run with --network NAME"));
    }
    if flags.ip.is_some() && !user_network {
        return Err(Error::new("invalid --ip")
            .because("a fixed address is supported only on user networks")
            .hint("create one with `mini network create --subnet CIDR NAME` and run with --network NAME"));
    }
    if let Mode::Container(_) = mode {
        let conflicts = [
            ("--hostname", flags.hostname.is_some()),
            ("-p/-P", !flags.publish.is_empty() || flags.publish_all),
            ("--mac-address", flags.mac_address.is_some()),
            ("--add-host", !flags.add_host.is_empty()),
            ("--dns", !flags.dns.is_empty() || !flags.dns_search.is_empty() || !flags.dns_option.is_empty()),
        ];
        if let Some((flag, _)) = conflicts.iter().find(|(_, set)| *set) {
            return Err(Error::new(format!("invalid {flag}")).because(
                "conflicting options: it cannot be set with --network container:…, which shares that container's",
            ));
        }
    }
    Ok(())
}

fn options(flags: &RunFlags, exposed: &[String], mode: &Mode, network: Option<&Network>) -> Result<NetOptions> {
    let mut publish = Vec::new();
    for spec in &flags.publish {
        publish.extend(ports::parse_publish(spec)?);
    }
    if flags.publish_all {
        let exposed: Vec<_> = exposed.iter().map(|k| ports::parse_exposed(k)).collect::<Result<_>>()?;
        let already: Vec<_> = publish.iter().map(|m| (m.container_port, m.proto)).collect();
        let rest: Vec<_> = exposed.into_iter().filter(|p| !already.contains(p)).collect();
        publish.extend(ports::publish_all(&rest));
    }
    ports::check_conflicts(&publish)?;
    if network.is_none() && !matches!(mode, Mode::Stack(_)) && !publish.is_empty() {
        // As Docker: published ports mean nothing without a bridge.
        eprintln!("mini: warning: published ports are discarded with --network {}", mode_name(mode));
        publish.clear();
    }
    let mac = flags.mac_address.as_deref().map(ipam::parse_mac).transpose()?.map(|m| ipam::format_mac(&m));
    let add_hosts = flags.add_host.iter().map(|h| add_host(h, network)).collect::<Result<_>>()?;
    Ok(NetOptions {
        ports: publish,
        ip: parse_ip(flags.ip.as_deref())?,
        mac,
        aliases: flags.network_alias.clone(),
        add_hosts,
    })
}

fn mode_name(mode: &Mode) -> &str {
    match mode {
        Mode::None => "none",
        Mode::Host => "host",
        Mode::Container(_) => "container",
        Mode::Network(n) => n,
        Mode::Stack(stack) => stack.program(),
    }
}

/// `--add-host NAME:IP` (also `NAME=IP`); `host-gateway` is the address
/// of the host on the container's network (its bridge's gateway).
fn add_host(text: &str, network: Option<&Network>) -> Result<(String, String)> {
    let bad = |why: &str| Error::new(format!("invalid --add-host \"{text}\"")).because(why.to_string());
    let (name, ip) = text.split_once([':', '=']).ok_or_else(|| bad("want HOST:IP"))?;
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(bad("the host name is empty or has spaces"));
    }
    let ip = match ip {
        "host-gateway" => match network {
            Some(n) => n.gateway.to_string(),
            None => return Err(bad("host-gateway needs a bridge network")),
        },
        ip => ip.parse::<std::net::IpAddr>().map_err(|_| bad("not an IP address"))?.to_string(),
    };
    Ok((name.to_string(), ip))
}

/// `mini network connect [--ip IP] [--alias A] NETWORK CONTAINER`: a
/// running container gets an endpoint on one more network until it
/// stops (mini does not connect stopped containers: their networks are
/// the ones they were created with).
pub fn connect(
    config: &Config,
    store: &Store,
    network: &str,
    key: &str,
    (ip, aliases): (Option<&str>, &[String]),
) -> Result<()> {
    let what = || format!("connect container {key} to network {network}");
    let c = super::find(store, "connect", key)?;
    let state = c.state().map_err(|e| Error::new(what()).because(e))?;
    let (Some(pid), Some(holder_pid), true) = (state.pid, state.monitor_pid, super::state::is_running(&state)) else {
        return Err(Error::new(what())
            .because("it is not running")
            .hint("start it first, or create it with --network"));
    };
    let start_time = state.monitor_start.or_else(|| crate::sys::process::start_time(holder_pid)).unwrap_or(0);
    let record = super::record::Record::read(&c)?;
    let name = c.config().map(|cfg| cfg.name).unwrap_or_default();
    let opts = NetOptions {
        ip: parse_ip(ip)?,
        aliases: aliases.to_vec(),
        add_hosts: record.container.net.add_hosts.clone(),
        ..NetOptions::default()
    };
    let net = manage::resolve(config, store, network, opts.ip)?;
    if (!aliases.is_empty() || ip.is_some()) && !net.resolves_names() {
        return Err(Error::new(what()).because("aliases and fixed addresses are supported only on user networks"));
    }
    let who = crate::network::attach::Who { id: &c.id, name: &name, hostname: record.process.hostname(), opts: &opts };
    let holder = crate::network::records::Holder { pid: holder_pid, start_time };
    crate::network::attach::connect(store, &who, &net.name, pid, holder)
}

/// `mini network disconnect NETWORK CONTAINER`.
pub fn disconnect(store: &Store, network: &str, key: &str) -> Result<()> {
    let c = super::find(store, "disconnect", key)?;
    crate::network::attach::disconnect(store, &c.id, network)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(name: &str) -> Network {
        Network {
            name: name.into(),
            id: "x".into(),
            bridge: "mini0".into(),
            subnet: "10.88.0.0/16".parse().unwrap(),
            gateway: "10.88.0.1".parse().unwrap(),
            created: String::new(),
        }
    }

    #[test]
    fn add_host_takes_an_address_or_the_gateway() {
        assert_eq!(add_host("db:10.0.0.5", None).unwrap(), ("db".into(), "10.0.0.5".into()));
        assert_eq!(add_host("gw:host-gateway", Some(&net("bridge"))).unwrap().1, "10.88.0.1");
        assert!(add_host("gw:host-gateway", None).is_err());
        assert!(add_host("nope", None).is_err());
        assert!(add_host("db:300.1.1.1", None).is_err());
    }

    #[test]
    fn aliases_and_fixed_addresses_need_a_user_network() {
        let flags = |alias: bool, ip: bool| RunFlags {
            network_alias: if alias { vec!["a".into()] } else { vec![] },
            ip: ip.then(|| "10.88.0.9".to_string()),
            ..Default::default()
        };
        let bridge = Mode::Network("bridge".into());
        assert!(check_conflicts(&bridge, &flags(true, false), Some(&net("bridge"))).is_err());
        assert!(check_conflicts(&bridge, &flags(false, true), Some(&net("bridge"))).is_err());
        assert!(check_conflicts(&bridge, &flags(true, true), Some(&net("mynet"))).is_ok());
        let joined = Mode::Container("web".into());
        let hostname = RunFlags { hostname: Some("h".into()), ..Default::default() };
        assert!(check_conflicts(&joined, &hostname, None).is_err());
    }
}
