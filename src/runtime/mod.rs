//! The runtime: from a RunSpec and a mount plan to a process isolated in
//! namespaces, and back to an exit code.

pub mod cgroups;
pub mod init;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod security;
pub mod spec;
pub mod tty;
pub mod user;
pub mod userns;
