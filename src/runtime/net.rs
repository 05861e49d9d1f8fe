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
    /// Its own, connected by a user-mode network stack (pasta) that mini
    /// starts once the namespace exists.
    UserMode(Pasta),
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

/// pasta for one container: a tap `eth0` in its namespace with the host's
/// addresses and routes copied (`--config-net`), the gateway address
/// mapped to the host's loopback, and the published ports forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pasta {
    /// `-t` specs (`[ADDR/]HOSTPORT:PORT`), then `-u` specs.
    pub tcp: Vec<String>,
    pub udp: Vec<String>,
    /// Where pasta writes its pid (the container dir's).
    pub pid_file: std::path::PathBuf,
}

pub const PASTA: &str = "pasta";

impl Pasta {
    /// pasta's arguments for the namespace open as fd `netns_fd`.
    ///
    /// By fd, not `/proc/PID/ns/net`: pasta drops its capabilities before
    /// it opens the path, and the kernel lets a process open another's
    /// namespace only if it holds every capability that one does (the
    /// waiting container process still holds them all); mini opens it.
    pub fn args(&self, netns_fd: i32) -> Vec<String> {
        let specs = |flag: &str, v: &[String]| -> Vec<String> {
            if v.is_empty() {
                vec![flag.to_string(), "none".to_string()]
            } else {
                v.iter().flat_map(|s| [flag.to_string(), s.clone()]).collect()
            }
        };
        let mut args = vec!["--config-net".to_string(), "--quiet".to_string(), "--ns-ifname".to_string()];
        args.push(CONTAINER_IF.to_string());
        args.extend(["--netns".to_string(), format!("/proc/self/fd/{netns_fd}")]);
        args.extend(["--pid".to_string(), self.pid_file.display().to_string()]);
        args.extend(specs("-t", &self.tcp));
        args.extend(specs("-u", &self.udp));
        args.extend(["-T", "none", "-U", "none"].map(String::from));
        // pasta drops to "nobody" before it opens the namespace, whose
        // file only its owner may open: mini's root (rootless: the user).
        args.extend(["--runas", "0:0"].map(String::from));
        args
    }
}

/// Start pasta for process `pid`'s namespace; returns once the namespace
/// is connected (pasta forks into the background then), with pasta's pid.
pub fn start_pasta(pid: i32, pasta: &Pasta) -> Result<i32> {
    use crate::error::Error;
    let what = "connect the container's network with pasta";
    let netns = crate::sys::process::open_ns(pid, "net")?;
    let fd = crate::sys::process::inheritable(&netns)?;
    let out =
        std::process::Command::new(PASTA).args(pasta.args(fd)).stdin(std::process::Stdio::null()).output().map_err(
            |e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::new(what)
                    .because("pasta is not installed")
                    .hint("install the passt package (apt-get install passt), or run with --network none"),
                _ => Error::new(what).because(e),
            },
        )?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stderr);
        let line = text.lines().rfind(|l| !l.contains("syslog")).unwrap_or("it failed").to_string();
        let hint = if line.contains("tun") {
            "pasta needs /dev/net/tun readable and writable by you (as root: chmod 0666 /dev/net/tun)"
        } else {
            "run with --network none, or check `pasta --config-net` on this host"
        };
        return Err(Error::new(what).because(line).hint(hint));
    }
    std::fs::read_to_string(&pasta.pid_file)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| Error::new(what).because(format!("it wrote no pid to {}", pasta.pid_file.display())))
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
