//! `--init`: mini's own small init as the container's pid 1. After the
//! container is fully set up, the setup process forks: the child execs the
//! user's command, and the setup process stays as pid 1, forwarding the
//! signals it receives to that child and reaping every zombie (orphans are
//! re-parented to pid 1). It exits with the command's status, as tini does
//! (128+n when the command died of signal n); the pid namespace dies with
//! it, taking any stragglers along.
//!
//! Why fork rather than re-exec mini as `mini-init`: the forked pid 1 is
//! made non-dumpable before the command exists and stays so, under the
//! same capabilities and seccomp filter as the command. An exec'd init
//! would be dumpable again from its exec until its first prctl, a window in
//! which a process in the container could open /proc/1/exe, the host's
//! mini binary (CVE-2019-5736); closing it needs a sealed copy of the
//! binary, as runc does. Fork also saves an exec per `--init` run.

use crate::runtime::process::exit_code;
use crate::sys::process::{self as p, FORWARDED};

/// Run as pid 1 until `child` exits; never returns. The caller has the
/// forwarded signals and SIGCHLD blocked (inherited from `mini run`).
pub fn reap(child: i32) -> ! {
    let mut all: Vec<i32> = FORWARDED.to_vec();
    all.push(libc::SIGCHLD);
    let set = p::sigset(&all);
    loop {
        match p::wait_signal(&set) {
            libc::SIGCHLD => {
                while let Ok(Some((pid, exit))) = p::wait(-1, true) {
                    if pid == child {
                        p::exit_now(exit_code(exit));
                    }
                }
            }
            sig => {
                let _ = p::kill(child, sig);
            }
        }
    }
}
