//! The container's record: what was asked for it, decided once at create
//! and written once, as config.json's `spec`. Two parts: the process
//! description (the runtime's [`RunSpec`]) and the container options (what
//! the engine does around the process: removal, network, stop signal, the
//! cgroups planned for it). Every start — a foreground run, the monitor,
//! `start` and `restart` from anywhere, with any configuration by then —
//! runs exactly this; `exec`, `stats`, `stop` and `rm` read it too.

use mini_store::containers::{Container, ContainerConfig};
use serde::{Deserialize, Serialize};

use crate::container::process::RunSpec;
use crate::error::{Error, Result};
use crate::runtime::cgroups::{self, Cgroups};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub process: RunSpec,
    pub container: ContainerOptions,
}

/// The engine's side of a container: everything that is not the process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerOptions {
    /// The image as the user typed it (what `ps` shows).
    pub image_ref: String,
    /// `--rm`: removed when it exits (kept across a `restart`).
    pub rm: bool,
    /// The named volumes it mounts (`volume rm` refuses them while it exists).
    #[serde(default)]
    pub volumes: Vec<String>,
    /// `--log-driver`, `--log-opt`: how its output is logged.
    #[serde(default)]
    pub log: super::logs::LogConfig,
    /// `--restart`: what its monitor does when it exits.
    #[serde(default)]
    pub restart: super::restart::Policy,
    /// `--network` as given (or the configured default).
    pub network: String,
    /// Ports, fixed address, MAC, aliases, extra hosts.
    #[serde(default)]
    pub net: crate::network::NetOptions,
    /// The image's StopSignal (`stop` sends it, else SIGTERM).
    /// `--health-cmd` or the image's HEALTHCHECK, decided at create.
    #[serde(default)]
    pub health: Option<super::health::Check>,
    pub stop_signal: Option<String>,
    /// The resource flags as given (`inspect` shows them).
    pub resources: cgroups::Flags,
    /// The cgroups planned at create: the same ones at every start.
    pub cgroups: Cgroups,
    /// The /etc files (hostname, hosts, resolv.conf: name and content) of a
    /// container that keeps them off the disk, written at every start into
    /// its own /dev tmpfs and bound from there (`--rm` with `--network
    /// none` or `host`: nothing rewrites them while it runs, and its
    /// directory goes when it ends). Empty: they are files in its
    /// directory, as for every other container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub etc_in_memory: Vec<(String, String)>,
}

impl ContainerOptions {
    /// Whether a container with these options keeps its /etc files in
    /// memory: `--rm`, no user namespace (its plan is rewritten for a
    /// child that cannot see the store), and a network whose /etc files
    /// no other container or `network connect` rewrites later.
    pub fn etc_fits_in_memory(&self, userns: bool) -> bool {
        self.rm && !userns && matches!(self.network.as_str(), "none" | "host")
    }
}

impl Record {
    /// The record inside an already read config.json; an unreadable one
    /// is an error naming the container and the file.
    pub fn of(c: &Container, cfg: &ContainerConfig) -> Result<Record> {
        Record::deserialize(&cfg.spec).map_err(|e| unreadable(c, e))
    }

    /// Read config.json and the record in it.
    pub fn read(c: &Container) -> Result<Record> {
        let cfg = c.config().map_err(|e| unreadable(c, e))?;
        Record::of(c, &cfg)
    }

    /// The value stored as config.json's `spec`.
    pub fn to_value(&self) -> Result<serde_json::Value> {
        serde_json::to_value(self).map_err(|e| Error::new("encode the container's record").because(e))
    }
}

fn unreadable(c: &Container, why: impl std::fmt::Display) -> Error {
    Error::new(format!("read the record of container {}", c.short_id()))
        .because(format!("{}: {why}", c.config_path().display()))
        .hint("remove the container (mini rm -f) and create it again")
}
