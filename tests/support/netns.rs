//! [`TestNetns`]: a network namespace of the test's own (`ip netns add`,
//! loopback up). Networking tests run every `mini` command, server and
//! client in it, so bridges, veths, nftables tables and every packet stay
//! inside; on drop (pass or fail) the processes the test started in it are
//! killed by pid and the namespace is deleted, which takes the bridge,
//! the veths and the table with it.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

pub struct TestNetns {
    pub name: String,
    fd: OwnedFd,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip (iproute2 installed?)");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl TestNetns {
    pub fn new() -> TestNetns {
        let name = format!("mini-t{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
        ip(&["netns", "add", &name]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        let fd = std::fs::File::open(format!("/run/netns/{name}")).expect("open the test's netns").into();
        TestNetns { name, fd }
    }

    /// Make `cmd` run inside this namespace.
    pub fn enter(&self, cmd: &mut Command) {
        let fd = self.fd.as_raw_fd();
        // SAFETY: setns in the forked child before exec; no allocation.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }

    /// `prog args…` inside this namespace.
    pub fn cmd(&self, prog: &str, args: &[&str]) -> Command {
        let mut c = Command::new(prog);
        c.args(args);
        self.enter(&mut c);
        c
    }

    /// Run `prog args…` here; (code, stdout, stderr).
    pub fn run(&self, prog: &str, args: &[&str]) -> (i32, String, String) {
        let o = self.cmd(prog, args).output().unwrap_or_else(|e| panic!("run {prog}: {e}"));
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    /// A namespace with an interface that has an address and a default
    /// route (a veth pair with both ends inside): what a user-mode network
    /// stack such as pasta copies into the container. Nothing answers on
    /// it: packets to other addresses go nowhere.
    pub fn with_default_route() -> TestNetns {
        let ns = TestNetns::new();
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let (a, b) = (format!("lan{n}"), format!("lanp{n}"));
        ip(&["-n", &ns.name, "link", "add", &a, "type", "veth", "peer", "name", &b]);
        ip(&["-n", &ns.name, "addr", "add", "10.77.0.2/24", "dev", &a]);
        ip(&["-n", &ns.name, "link", "set", &a, "up"]);
        ip(&["-n", &ns.name, "link", "set", &b, "up"]);
        ip(&["-n", &ns.name, "route", "add", "default", "via", "10.77.0.1"]);
        ns
    }

    /// The interface names in this namespace.
    pub fn links(&self) -> Vec<String> {
        let (_, out, _) = self.run("ip", &["-o", "link", "show"]);
        out.lines().filter_map(|l| l.split(": ").nth(1)).map(|n| n.split('@').next().unwrap_or(n).to_string()).collect()
    }

    /// `nft list table inet mini` here ("" when there is none). nft must
    /// be installed: without it "no table" would pass by itself.
    pub fn nft_table(&self) -> String {
        let (code, out, err) = self.run("nft", &["list", "table", "inet", "mini"]);
        match code {
            0 => out,
            _ if err.contains("No such file or directory") => String::new(),
            _ => panic!("nft list table inet mini failed: {err}"),
        }
    }

    /// An "uplink" standing in for the internet: a veth from this
    /// namespace (address `.1`) to a second namespace of the test's
    /// (address `.2`) on `192.0.2.0/24` (TEST-NET-1, never routed).
    pub fn uplink(&self) -> TestNetns {
        let far = TestNetns::new();
        let (a, b) =
            (format!("up{}", NEXT.fetch_add(1, Ordering::SeqCst)), format!("dn{}", std::process::id() % 10000));
        ip(&["-n", &self.name, "link", "add", &a, "type", "veth", "peer", "name", &b, "netns", &far.name]);
        ip(&["-n", &self.name, "addr", "add", "192.0.2.1/24", "dev", &a]);
        ip(&["-n", &self.name, "link", "set", &a, "up"]);
        ip(&["-n", &far.name, "addr", "add", "192.0.2.2/24", "dev", &b]);
        ip(&["-n", &far.name, "link", "set", &b, "up"]);
        far
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        // Only what this test started runs here: kill it, by pid.
        if let Ok(o) = Command::new("ip").args(["netns", "pids", &self.name]).output() {
            for pid in String::from_utf8_lossy(&o.stdout).split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
                // SAFETY: kill by pid.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}
