//! mini as an OCI runtime: a bundle's `config.json` (the runtime-spec's
//! `Spec`, oci-spec's types) run with mini's runtime, under runc's command
//! line, so containerd's runc shim, Podman (conmon) and other OCI tools
//! can drive mini. Invoked as `mini-runc` (a link to the mini binary) or
//! as `mini runtime …`.
//!
//! - [`bundle`]: config.json read into a `Spec` (errors name the field);
//!   `runtime::plan` turns it into what runs, as it does `mini run`'s;
//! - [`state`]: the state directory under `--root`, one module owning it;
//! - [`launch`]: `create` (the process waits at its exec) and `start`;
//! - [`exec`]: another process in a running container;
//! - [`hooks`]: the spec's hooks, state on stdin, with timeouts;
//! - [`features`]: `features`, `spec` and `update`;
//! - [`cli`]: runc's flags and verbs.

pub mod bundle;
pub mod cli;
pub mod exec;
pub mod features;
pub mod hooks;
pub mod launch;
pub mod state;

/// The runtime-spec version mini-runc writes and reports.
pub const OCI_VERSION: &str = "1.0.2";

/// `mini-runc --version`, in runc's shape (tools parse its first line).
pub const VERSION_TEXT: &str = concat!(env!("CARGO_PKG_VERSION"), "\nspec: 1.0.2");

/// Whether argv[0] names the runc-compatible command.
pub fn invoked_as_runc(argv0: &std::ffi::OsStr) -> bool {
    std::path::Path::new(argv0).file_name().is_some_and(|n| n == "mini-runc")
}
