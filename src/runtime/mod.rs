//! The runtime: one process. From an OCI runtime `Spec` (planned by
//! [`plan`] into mounts, namespaces and the process) and a root (a
//! bundle's directory or an overlay) to a process isolated in namespaces
//! under cgroups, and back to an exit code. It knows nothing of images,
//! the store or mini's flags: the engine (`container`) decides and writes
//! the spec, mini-runc (`oci`) reads one from a bundle; the runtime
//! carries it out.

pub mod cgroups;
pub mod child;
pub mod init;
pub mod message;
pub mod net;
pub mod overlay;
pub mod plan;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod security;
pub mod tty;
pub mod user;
pub mod usermode;
pub mod userns;
