//! Container networking. Only `none` so far: a fresh network namespace with
//! a loopback interface that is up (done inside the child, see
//! `runtime::process`), and the per-container `/etc/hostname`, `/etc/hosts`
//! and `/etc/resolv.conf`, written into the container dir and bind-mounted
//! over the image's files so the image itself never changes.

use mini_store::containers::files;

/// The content of `/etc/hosts` for a container named `hostname`.
pub fn hosts(hostname: &str) -> String {
    format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n\
         127.0.1.1\t{hostname}\n"
    )
}

/// The host's resolver config minus loopback nameservers, which would point
/// at the container's own (empty) loopback.
pub fn resolv_conf(host: &str) -> String {
    host.lines()
        .filter(|l| {
            let mut w = l.split_whitespace();
            !(w.next() == Some("nameserver") && w.next().is_some_and(|a| a.starts_with("127.") || a == "::1"))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The container dir's `hostname`, `hosts` and `resolv.conf`, as
/// (file name, content); `host_resolv` is the host's /etc/resolv.conf.
pub fn etc_files(hostname: &str, host_resolv: &str) -> [(&'static str, String); 3] {
    [
        (files::HOSTNAME, format!("{hostname}\n")),
        (files::HOSTS, hosts(hostname)),
        (files::RESOLV_CONF, resolv_conf(host_resolv)),
    ]
}

/// The host's resolver config (empty when it has none).
pub fn host_resolv_conf() -> String {
    std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_names_localhost_and_the_container() {
        let h = hosts("abc123");
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.ends_with("127.0.1.1\tabc123\n"));
    }

    #[test]
    fn loopback_resolvers_are_dropped() {
        let r = resolv_conf("search lan\nnameserver 127.0.0.53\nnameserver 10.0.0.1\nnameserver ::1\n");
        assert_eq!(r, "search lan\nnameserver 10.0.0.1\n");
    }
}
