//! Passing an open fd over a unix socket (SCM_RIGHTS): the container's
//! pty master to mini, and under a user namespace the root overlay and
//! volume mounts mini makes for the child.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use crate::error::{Error, Result};

fn last(what: impl Into<String>) -> Error {
    Error::new(what).because(io::Error::last_os_error())
}

/// Run `f` over a msghdr with a one-byte payload and room for one fd's
/// SCM_RIGHTS control message; the buffers live for the call.
///
/// SAFETY: the caller fills and uses the control message within `f` only.
unsafe fn with_fd_msghdr<R>(f: impl FnOnce(&mut libc::msghdr) -> R) -> R {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
    let space = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as usize;
    let mut cbuf = vec![0u8; space];
    let mut msg: libc::msghdr = std::mem::zeroed();
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space;
    f(&mut msg)
}

/// Send one fd over a unix socket (SCM_RIGHTS).
pub fn send_fd(sock: RawFd, fd: RawFd) -> Result<()> {
    // SAFETY: the control buffer was sized with CMSG_SPACE for one fd.
    unsafe {
        with_fd_msghdr(|msg| {
            let cmsg = libc::CMSG_FIRSTHDR(msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
            if libc::sendmsg(sock, msg, 0) < 0 {
                return Err(last("send an fd over a socket"));
            }
            Ok(())
        })
    }
}

/// Receive one fd sent with [`send_fd`]; None when the peer closed first.
pub fn recv_fd(sock: RawFd) -> Result<Option<OwnedFd>> {
    // SAFETY: as in send_fd; the received fd is new and becomes ours.
    unsafe {
        with_fd_msghdr(|msg| {
            let n = libc::recvmsg(sock, msg, libc::MSG_CMSG_CLOEXEC);
            if n < 0 {
                return Err(last("receive an fd over a socket"));
            }
            let cmsg = libc::CMSG_FIRSTHDR(msg);
            if n == 0 || cmsg.is_null() || (*cmsg).cmsg_type != libc::SCM_RIGHTS {
                return Ok(None);
            }
            let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>());
            Ok(Some(OwnedFd::from_raw_fd(fd)))
        })
    }
}
