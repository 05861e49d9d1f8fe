//! Network interface calls.

use std::io;

use crate::error::{Error, Result};

/// Set IFF_UP on interface `name` in the current network namespace.
pub fn interface_up(name: &str) -> Result<()> {
    let what = || format!("bring up interface {name}");
    // SAFETY: plain socket/ioctl calls on a zeroed ifreq whose name we fill
    // (shorter than IFNAMSIZ); the socket is closed on every path.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return Err(Error::new(what()).because(io::Error::last_os_error()));
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in name.bytes().take(libc::IFNAMSIZ - 1).enumerate() {
            req.ifr_name[i] = b as libc::c_char;
        }
        let mut rc = libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req);
        if rc == 0 {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            rc = libc::ioctl(sock, libc::SIOCSIFFLAGS, &req);
        }
        let err = io::Error::last_os_error();
        libc::close(sock);
        if rc == 0 {
            Ok(())
        } else {
            Err(Error::new(what()).because(err))
        }
    }
}

/// Hold `ip:port` (port 0: one the kernel picks) for `tcp` or UDP with a
/// bound socket that never listens: nothing else can bind it while mini
/// publishes it, and nothing is accepted on it (the DNAT rules carry the
/// traffic). Returns the socket and the port.
pub fn reserve_port(tcp: bool, ip: std::net::Ipv4Addr, port: u16) -> io::Result<(std::os::fd::OwnedFd, u16)> {
    use std::os::fd::FromRawFd;
    let kind = if tcp { libc::SOCK_STREAM } else { libc::SOCK_DGRAM };
    // SAFETY: socket/bind/getsockname on a sockaddr_in we fill; the fd
    // becomes owned at once, so every path closes it.
    unsafe {
        let fd = libc::socket(libc::AF_INET, kind | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let sock = std::os::fd::OwnedFd::from_raw_fd(fd);
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_port = port.to_be();
        addr.sin_addr.s_addr = u32::from(ip).to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        if libc::bind(fd, (&addr as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut got: libc::sockaddr_in = std::mem::zeroed();
        let mut got_len = len;
        if libc::getsockname(fd, (&mut got as *mut libc::sockaddr_in).cast(), &mut got_len) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((sock, u16::from_be(got.sin_port)))
    }
}
