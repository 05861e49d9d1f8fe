//! `mini pause CONTAINER...` and `mini unpause CONTAINER...`: freeze every
//! process of each running container through its cgroup's freezer, and
//! thaw them again. One file: the two verbs take the same arguments.

use clap::Args as ClapArgs;

use crate::config::Config;
use crate::error::Result;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Containers (name, id or id prefix)
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn pause(args: Args, config: &Config) -> Result<i32> {
    let store = mini_store::Store::open(&config.root)?;
    super::each(&args.containers, |key| crate::container::lifecycle::pause(&store, key))
}

pub fn unpause(args: Args, config: &Config) -> Result<i32> {
    let store = mini_store::Store::open(&config.root)?;
    super::each(&args.containers, |key| crate::container::lifecycle::unpause(&store, key))
}
