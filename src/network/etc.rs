//! The container's `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf`:
//! files in the container dir, bind-mounted over the image's so the image
//! never changes. Made at create; `hosts` is rewritten in place (the bind
//! mount pins its inode) at each start, once the address is known, and on
//! a user network whenever a peer comes or goes: that is how containers
//! there resolve each other by name and alias without a DNS server of
//! mini's (any resolver reads /etc/hosts first; see docs/networking.md).

use std::net::Ipv4Addr;

use mini_store::containers::files;

/// Docker's fallback when the host has no usable resolver.
const FALLBACK_DNS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// One line of /etc/hosts: an address and its names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    pub ip: String,
    pub names: Vec<String>,
}

/// The content of `/etc/hosts`: localhost, the `--add-host` entries, the
/// container itself (its address, or 127.0.1.1 without one) and, on a
/// user network, its peers.
pub fn hosts(hostname: &str, own: &[Ipv4Addr], extra: &[(String, String)], peers: &[HostEntry]) -> String {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for (name, ip) in extra {
        out.push_str(&format!("{ip}\t{name}\n"));
    }
    if own.is_empty() {
        out.push_str(&format!("127.0.1.1\t{hostname}\n"));
    }
    for ip in own {
        out.push_str(&format!("{ip}\t{hostname}\n"));
    }
    for p in peers {
        out.push_str(&format!("{}\t{}\n", p.ip, p.names.join(" ")));
    }
    out
}

/// `--dns`, `--dns-search`, `--dns-option`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dns {
    pub servers: Vec<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

/// The container's resolv.conf from the host's: loopback nameservers
/// dropped (they would point at the container's own, empty, loopback),
/// each of `dns`'s lists replacing the host's when given, and Docker's
/// public fallback when no nameserver is left.
pub fn resolv_conf(host: &str, dns: &Dns) -> String {
    let mut servers: Vec<String> = Vec::new();
    let mut search: Vec<String> = Vec::new();
    let mut options: Vec<String> = Vec::new();
    let mut other = String::new();
    for line in host.lines() {
        let mut w = line.split_whitespace();
        match w.next() {
            Some("nameserver") => servers.extend(w.next().filter(|a| !is_loopback(a)).map(str::to_string)),
            Some("search") | Some("domain") => search = w.map(str::to_string).collect(),
            Some("options") => options.extend(w.map(str::to_string)),
            Some(c) if c.starts_with('#') || c.starts_with(';') => {}
            Some(_) => other.push_str(&format!("{line}\n")),
            None => {}
        }
    }
    let pick = |given: &[String], host: Vec<String>| if given.is_empty() { host } else { given.to_vec() };
    let mut servers = pick(&dns.servers, servers);
    if servers.is_empty() {
        servers = FALLBACK_DNS.map(str::to_string).to_vec();
    }
    let search = pick(&dns.search, search);
    let options = pick(&dns.options, options);
    let mut out = other;
    for s in servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !search.is_empty() && search != ["."] {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

fn is_loopback(addr: &str) -> bool {
    addr.starts_with("127.") || addr == "::1"
}

/// The container dir's `hostname`, `hosts` and `resolv.conf` at create,
/// as (file name, content).
pub fn files(hostname: &str, hosts: String, resolv: String) -> [(&'static str, String); 3] {
    [(files::HOSTNAME, format!("{hostname}\n")), (files::HOSTS, hosts), (files::RESOLV_CONF, resolv)]
}

/// The host's file `path` (empty when it has none).
pub fn read_host(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_names_localhost_the_extras_the_container_and_its_peers() {
        let h = hosts("abc123", &[], &[], &[]);
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.ends_with("127.0.1.1\tabc123\n"));
        let peers = [HostEntry { ip: "10.89.0.3".into(), names: vec!["db".into(), "database".into()] }];
        let extra = [("gw".to_string(), "10.88.0.1".to_string())];
        let h = hosts("web", &["10.89.0.2".parse().unwrap()], &extra, &peers);
        assert!(h.ends_with("10.88.0.1\tgw\n10.89.0.2\tweb\n10.89.0.3\tdb database\n"), "{h}");
    }

    #[test]
    fn loopback_resolvers_are_dropped_and_fall_back_to_docker_public_ones() {
        let r =
            resolv_conf("search lan\nnameserver 127.0.0.53\nnameserver 10.0.0.1\nnameserver ::1\n", &Dns::default());
        assert_eq!(r, "nameserver 10.0.0.1\nsearch lan\n");
        let r = resolv_conf("nameserver 127.0.0.53\noptions edns0\n", &Dns::default());
        assert_eq!(r, "nameserver 8.8.8.8\nnameserver 8.8.4.4\noptions edns0\n");
    }

    #[test]
    fn dns_flags_replace_the_hosts_lists() {
        let dns = Dns { servers: vec!["1.1.1.1".into()], search: vec!["corp".into()], options: vec!["ndots:2".into()] };
        let r = resolv_conf("nameserver 10.0.0.1\nsearch lan\noptions edns0\n", &dns);
        assert_eq!(r, "nameserver 1.1.1.1\nsearch corp\noptions ndots:2\n");
    }
}
