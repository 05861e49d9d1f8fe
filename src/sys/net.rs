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
