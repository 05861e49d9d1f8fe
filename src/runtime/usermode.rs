//! User-mode network stacks for a container's own network namespace, as
//! rootless engines use them: pasta (preferred, as Podman 5 prefers it) or
//! slirp4netns. Either gives the container an `eth0` with outbound
//! connectivity through the host's sockets, the gateway address reaching
//! the host's loopback, and published ports forwarded from the host.
//!
//! Both get the namespace as a file descriptor mini opened (their
//! `--netns /proc/self/fd/N`): the kernel lets a process open another's
//! namespace only if it holds every capability that one holds, and pasta
//! drops its capabilities before it opens a path. The [`Helper`] returned
//! is the stack's lifetime: dropping it ends the stack (pasta by SIGKILL,
//! since it keeps SIGTERM blocked and, given an fd, never sees the
//! namespace go; slirp4netns when its exit pipe closes, which also
//! happens when its holder dies).

use std::io::{BufRead, Read, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::net::CONTAINER_IF;
use crate::error::{Error, Result};
use crate::sys::process as p;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    Pasta,
    Slirp4netns,
}

impl Stack {
    pub fn program(self) -> &'static str {
        match self {
            Stack::Pasta => "pasta",
            Stack::Slirp4netns => "slirp4netns",
        }
    }

    /// The first of pasta, slirp4netns found on PATH.
    pub fn detect() -> Option<Stack> {
        [Stack::Pasta, Stack::Slirp4netns].into_iter().find(|s| on_path(s.program()))
    }

    /// The container's resolver: slirp4netns answers DNS on its own
    /// address; pasta forwards to the host's resolvers (None: copy them).
    pub fn nameserver(self) -> Option<&'static str> {
        match self {
            Stack::Pasta => None,
            Stack::Slirp4netns => Some("10.0.2.3"),
        }
    }
}

fn on_path(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|d| p::executable(&d.join(program)))
}

/// One published port: host address and port → the container's port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub udp: bool,
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_port: u16,
}

/// A container's user-mode network, as the engine decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserMode {
    pub stack: Stack,
    pub ports: Vec<Forward>,
    /// The container's directory: pasta's pid file, slirp4netns' API
    /// socket (bound by a relative name, so its path is always short).
    pub dir: PathBuf,
}

/// The running stack; dropping it ends it.
#[derive(Debug)]
pub struct Helper {
    pub pid: i32,
    /// slirp4netns' exit pipe (it ends when this closes).
    _exit: Option<OwnedFd>,
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = p::kill(self.pid, libc::SIGKILL);
    }
}

/// Connect process `pid`'s network namespace; returns once the container
/// side is configured (before the container's command runs).
pub fn start(pid: i32, m: &UserMode) -> Result<Helper> {
    let what = format!("connect the container's network with {}", m.stack.program());
    let netns = p::open_ns(pid, "net")?;
    let fd = p::inheritable(&netns)?;
    let started = match m.stack {
        Stack::Pasta => start_pasta(fd, m),
        Stack::Slirp4netns => start_slirp(fd, m),
    };
    started.map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::new(&what)
            .because(format!("{} is not installed", m.stack.program()))
            .hint("install the passt package (pasta), or run with --network none"),
        _ => {
            let text = e.to_string();
            let hint = if text.contains("tun") {
                "it needs /dev/net/tun readable and writable by you (as root: chmod 0666 /dev/net/tun)"
            } else {
                "run with --network none"
            };
            Error::new(&what).because(text).hint(hint)
        }
    })
}

/// pasta's arguments: `--config-net` copies the host's addresses and
/// routes, the gateway maps to the host's loopback, only the published
/// ports are forwarded.
fn pasta_args(netns_fd: i32, m: &UserMode) -> Vec<String> {
    let mut a: Vec<String> = ["--config-net", "--quiet", "--ns-ifname", CONTAINER_IF].map(String::from).to_vec();
    a.extend(["--netns".to_string(), format!("/proc/self/fd/{netns_fd}")]);
    a.extend(["--pid".to_string(), m.dir.join(PASTA_PID).display().to_string()]);
    for udp in [false, true] {
        let flag = if udp { "-u" } else { "-t" };
        let specs: Vec<String> = m
            .ports
            .iter()
            .filter(|f| f.udp == udp)
            .map(|f| match f.host_ip {
                Some(ip) => format!("{ip}/{}:{}", f.host_port, f.container_port),
                None => format!("{}:{}", f.host_port, f.container_port),
            })
            .collect();
        if specs.is_empty() {
            a.extend([flag.to_string(), "none".to_string()]);
        }
        a.extend(specs.into_iter().flat_map(|s| [flag.to_string(), s]));
    }
    // No forwarding from the namespace to the host's ports; and run as
    // the namespace's root (pasta drops to "nobody" otherwise, who may not
    // write the pid file in the container's directory).
    a.extend(["-T", "none", "-U", "none", "--runas", "0:0"].map(String::from));
    a
}

/// The pid file pasta writes in the container's directory.
pub const PASTA_PID: &str = "pasta.pid";

fn start_pasta(fd: i32, m: &UserMode) -> std::io::Result<Helper> {
    let out = Command::new("pasta").args(pasta_args(fd, m)).stdin(Stdio::null()).output()?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stderr);
        let line = text.lines().rfind(|l| !l.contains("syslog")).unwrap_or("it failed");
        return Err(std::io::Error::other(line.to_string()));
    }
    // It forked into the background once configured; its pid is in the file.
    let pid = std::fs::read_to_string(m.dir.join(PASTA_PID)).ok().and_then(|t| t.trim().parse().ok());
    let pid = pid.ok_or_else(|| std::io::Error::other("it wrote no pid file"))?;
    Ok(Helper { pid, _exit: None })
}

/// The API socket slirp4netns binds, relative to the container's directory.
const SLIRP_SOCKET: &str = "slirp.sock";

fn start_slirp(fd: i32, m: &UserMode) -> std::io::Result<Helper> {
    let (ready_r, ready_w) = p::pipe().map_err(std::io::Error::other)?;
    let (exit_r, exit_w) = p::pipe().map_err(std::io::Error::other)?;
    let ready_fd = p::inheritable(&ready_w).map_err(std::io::Error::other)?;
    let exit_fd = p::inheritable(&exit_r).map_err(std::io::Error::other)?;
    let _ = std::fs::remove_file(m.dir.join(SLIRP_SOCKET));
    let mut child = Command::new("slirp4netns")
        .current_dir(&m.dir)
        .args(["--configure", "--mtu=65520", "--netns-type=path"])
        .arg(format!("--ready-fd={ready_fd}"))
        .arg(format!("--exit-fd={exit_fd}"))
        .arg(format!("--api-socket={SLIRP_SOCKET}"))
        .arg(format!("/proc/self/fd/{fd}"))
        .arg(CONTAINER_IF)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    drop((ready_w, exit_r));
    let pid = child.id() as i32;
    let mut ready = [0u8; 1];
    let ok = std::fs::File::from(ready_r).read_exact(&mut ready).is_ok() && ready[0] == b'1';
    if !ok {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let _ = child.kill();
        let _ = child.wait();
        return Err(std::io::Error::other(err.lines().last().unwrap_or("it ended before it was ready").to_string()));
    }
    let helper = Helper { pid, _exit: Some(exit_w) };
    // The socket's path through an open directory, under sun_path's 108
    // bytes whatever the store's path.
    let dir = std::fs::File::open(&m.dir)?;
    let socket = PathBuf::from(format!("/proc/self/fd/{}/{SLIRP_SOCKET}", dir.as_raw_fd()));
    for f in &m.ports {
        add_hostfwd(&socket, f)?;
    }
    Ok(helper)
}

/// slirp4netns' API: one JSON request per connection, one JSON answer.
fn add_hostfwd(socket: &Path, f: &Forward) -> std::io::Result<()> {
    let mut s = std::os::unix::net::UnixStream::connect(socket)?;
    let req = serde_json::json!({"execute": "add_hostfwd", "arguments": {
        "proto": if f.udp { "udp" } else { "tcp" },
        "host_addr": f.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED).to_string(),
        "host_port": f.host_port, "guest_port": f.container_port}});
    s.write_all(req.to_string().as_bytes())?;
    s.shutdown(std::net::Shutdown::Write)?;
    let mut answer = String::new();
    std::io::BufReader::new(s).read_line(&mut answer)?;
    let v: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
    match v.get("error") {
        Some(e) => Err(std::io::Error::other(format!("forward port {}: {}", f.host_port, e))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasta_forwards_only_what_is_published() {
        let m = UserMode {
            stack: Stack::Pasta,
            ports: vec![
                Forward { udp: false, host_ip: None, host_port: 8080, container_port: 80 },
                Forward {
                    udp: false,
                    host_ip: Some("127.0.0.1".parse().unwrap()),
                    host_port: 8443,
                    container_port: 443,
                },
            ],
            dir: "/c".into(),
        };
        let a = pasta_args(7, &m).join(" ");
        assert!(a.contains("--netns /proc/self/fd/7 --pid /c/pasta.pid"), "{a}");
        assert!(a.contains("-t 8080:80 -t 127.0.0.1/8443:443 -u none -T none -U none --runas 0:0"), "{a}");
        let none = pasta_args(7, &UserMode { ports: vec![], ..m }).join(" ");
        assert!(none.contains("-t none -u none"), "{none}");
    }
}
