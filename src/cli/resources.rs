//! The resource flags shared by `run` and `create`, Docker's spelling.
//! Values stay strings here: `runtime::cgroups::limits` parses them, so
//! every bad value gets the same one-line error naming flag and value.

use clap::Args as ClapArgs;

use crate::runtime::cgroups::Flags;

#[derive(Debug, ClapArgs)]
pub struct Resources {
    /// Memory limit (b, k, m, g; at least 6m)
    #[arg(short = 'm', long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory plus swap (-1: unlimited swap; default twice --memory)
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Soft memory limit
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Number of CPUs (e.g. 0.5)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub cpus: Option<String>,
    /// CPU shares, relative weight (cgroup v1 units, 2-262144)
    #[arg(short = 'c', long, value_name = "N", allow_hyphen_values = true)]
    pub cpu_shares: Option<String>,
    /// CPU weight (cgroup v2 units, 1-10000)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub cpu_weight: Option<String>,
    /// CPUs the container may use (0-1,3)
    #[arg(long, value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Maximum number of tasks (-1: unlimited)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<String>,
    /// Parent cgroup: relative to mini's own cgroup, or absolute
    #[arg(long, value_name = "PATH")]
    pub cgroup_parent: Option<String>,
}

impl Resources {
    pub fn flags(&self) -> Flags {
        Flags {
            memory: self.memory.clone(),
            memory_swap: self.memory_swap.clone(),
            memory_reservation: self.memory_reservation.clone(),
            cpus: self.cpus.clone(),
            cpu_shares: self.cpu_shares.clone(),
            cpu_weight: self.cpu_weight.clone(),
            cpuset_cpus: self.cpuset_cpus.clone(),
            pids_limit: self.pids_limit.clone(),
            cgroup_parent: self.cgroup_parent.clone(),
        }
    }
}
