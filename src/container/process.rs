//! The process description the engine keeps: everything about one
//! container's process that `create` decided (`container::spec` builds it
//! from the image config and the flags), kept in the container's record
//! so every later start runs exactly that. Each start turns it into the
//! OCI runtime `Spec` the runtime runs (`container::generate`).

use std::ffi::OsString;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::runtime::user::UserSpec;
use crate::runtime::userns::IdMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Userns {
    Host,
    Auto,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub source: PathBuf,
    pub target: PathBuf,
    pub read_only: bool,
}

/// A `--ulimit`: the runtime's resource limit.
pub use crate::runtime::plan::Rlimit;

/// A host device node given to the container (`--device`, or every host
/// device with `--privileged`): bound at `target`, and allowed in the
/// device cgroup for `perms` (`rwm`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub source: PathBuf,
    pub target: PathBuf,
    /// `c` (character) or `b` (block).
    pub kind: char,
    pub major: u32,
    pub minor: u32,
    pub perms: String,
}

impl Device {
    /// Its line for a v1 `devices.allow`.
    pub fn cgroup_rule(&self) -> String {
        format!("{} {}:{} {}", self.kind, self.major, self.minor, self.perms)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tmpfs {
    pub target: PathBuf,
    pub options: Option<String>,
}

/// Everything the container's process needs, validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// Byte for byte as given (serialized as bytes when not UTF-8).
    pub argv: Vec<OsString>,
    /// How many leading words of `argv` are the entrypoint (`inspect`
    /// shows `Config.Entrypoint` and `Config.Cmd` apart, as Docker).
    #[serde(default)]
    pub entrypoint_len: usize,
    /// KEY=VALUE, in order, keys unique. HOME is added inside the container
    /// once the user is resolved, unless set here.
    pub env: Vec<String>,
    pub workdir: PathBuf,
    /// `-u` or the image's User, resolved inside the container's root.
    pub user: UserSpec,
    pub hostname: Option<String>,
    pub volumes: Vec<Volume>,
    pub tmpfs: Vec<Tmpfs>,
    pub read_only: bool,
    pub init: bool,
    pub interactive: bool,
    pub tty: bool,
    pub userns: Userns,
    /// `--security-opt no-new-privileges`: off by default, as Docker's,
    /// so setuid binaries (su, ping) work in the container.
    #[serde(default)]
    pub no_new_privs: bool,
    /// `--cap-add`/`--cap-drop` applied to Docker's default set, as
    /// `CAP_…` names; None (records from before these flags) is the
    /// default set.
    #[serde(default)]
    pub capabilities: Option<Vec<String>>,
    /// `--ulimit`, set before the command runs.
    #[serde(default)]
    pub rlimits: Vec<Rlimit>,
    /// `--shm-size` in bytes (Docker's 64 MiB when None).
    #[serde(default)]
    pub shm_size: Option<u64>,
    /// `--sysctl` (namespaced ones only), written in the container's
    /// /proc/sys before it becomes read-only.
    #[serde(default)]
    pub sysctls: Vec<(String, String)>,
    /// `--device` nodes (and the host's, `--privileged`).
    #[serde(default)]
    pub devices: Vec<Device>,
    /// Volume targets to fill with what the image has there when the
    /// volume is empty at start (named volumes, as Docker copies them).
    #[serde(default)]
    pub fill: Vec<PathBuf>,
    /// `--privileged`: every capability, no seccomp filter, no masked or
    /// read-only paths, writable /sys, the host's devices.
    #[serde(default)]
    pub privileged: bool,
    /// Where container ids 0.. map on the host (`--userns=auto`), chosen
    /// once at create.
    #[serde(default)]
    pub id_map: Option<IdMap>,
    /// `--security-opt seccomp=…`: mini's default profile unless given.
    #[serde(default)]
    pub seccomp: SeccompChoice,
}

/// The seccomp filter a container asked for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeccompChoice {
    /// Docker's default profile, for the container's capabilities
    /// (`container::seccomp`).
    #[default]
    Default,
    /// `seccomp=unconfined`: no filter.
    Unconfined,
    /// `seccomp=FILE`: the file's profile, resolved at create for the
    /// container's capabilities and this machine.
    Profile(oci_spec::runtime::LinuxSeccomp),
}

impl RunSpec {
    /// Docker always sets HOSTNAME; the default (the short id) is only
    /// known once the container exists.
    pub fn set_hostname_default(&mut self, hostname: &str) {
        if self.hostname.is_none() {
            self.hostname = Some(hostname.to_string());
        }
        if self.env_value("HOSTNAME").is_none() {
            let at = usize::from(!self.env.is_empty());
            self.env.insert(at, format!("HOSTNAME={hostname}"));
        }
    }

    pub fn hostname(&self) -> &str {
        self.hostname.as_deref().unwrap_or_default()
    }

    pub fn env_value(&self, key: &str) -> Option<&str> {
        self.env.iter().find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
    }
}
