//! `mini update [LIMITS] [--restart POLICY] CONTAINER...`: change a
//! container's resource limits and restart policy, as `docker update`.

use clap::Args as ClapArgs;

use crate::config::Config;
use crate::container::update::{self, Changes};
use crate::error::{Error, Result};
use crate::runtime::cgroups::Flags;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Memory limit (b, k, m, g; at least 6m)
    #[arg(short = 'm', long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory plus swap (-1: unlimited swap)
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
    /// Restart policy: no, on-failure[:N], always, unless-stopped
    #[arg(long, value_name = "POLICY")]
    pub restart: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(a: Args, config: &Config) -> Result<i32> {
    let resources = Flags {
        memory: a.memory,
        memory_swap: a.memory_swap,
        memory_reservation: a.memory_reservation,
        cpus: a.cpus,
        cpu_shares: a.cpu_shares,
        cpu_weight: a.cpu_weight,
        cpuset_cpus: a.cpuset_cpus,
        pids_limit: a.pids_limit,
        cgroup_parent: None,
    };
    let changes = Changes { resources, restart: a.restart };
    if changes.resources == Flags::default() && changes.restart.is_none() {
        return Err(Error::new("update").because("nothing to change").hint("give a limit flag or --restart"));
    }
    let store = mini_store::Store::open(&config.root)?;
    super::each(&a.containers, |key| update::update(&store, key, &changes))
}
