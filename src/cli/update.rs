//! `mini update [LIMITS] [--restart POLICY] CONTAINER...`: change a
//! container's resource limits and restart policy, as `docker update`.

use clap::Args as ClapArgs;

use crate::config::Config;
use crate::container::update::{self, Changes};
use crate::error::{Error, Result};
use crate::runtime::cgroups::Flags;

#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(flatten)]
    pub resources: Flags,
    /// Restart policy: no, on-failure[:N], always, unless-stopped
    #[arg(long, value_name = "POLICY")]
    pub restart: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(a: Args, config: &Config) -> Result<i32> {
    if let Some(p) = &a.resources.cgroup_parent {
        return Err(Error::new(format!("invalid --cgroup-parent \"{p}\""))
            .because("update cannot move a container to another cgroup")
            .hint("remove the container and create it with --cgroup-parent"));
    }
    let changes = Changes { resources: a.resources, restart: a.restart };
    if changes.resources == Flags::default() && changes.restart.is_none() {
        return Err(Error::new("update").because("nothing to change").hint("give a limit flag or --restart"));
    }
    let store = mini_store::Store::open(&config.root)?;
    super::each(&a.containers, |key| update::update(&store, key, &changes))
}
