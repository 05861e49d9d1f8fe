//! The runtime: one process. From a process description ([`spec::RunSpec`])
//! and a mount plan to a process isolated in namespaces under cgroups, and
//! back to an exit code. It knows nothing of images, the store or mini's
//! flags: the engine (`container`) decides, the runtime carries it out.

pub mod cgroups;
pub mod child;
pub mod init;
pub mod message;
pub mod net;
pub mod overlay;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod security;
pub mod spec;
pub mod tty;
pub mod user;
pub mod usermode;
pub mod userns;
