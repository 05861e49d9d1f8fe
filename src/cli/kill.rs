//! `mini kill [-s SIGNAL] CONTAINER...`: a signal (default SIGKILL) to
//! each container's pid 1.

use clap::Args as ClapArgs;

use crate::config::Config;
use crate::error::Result;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Signal name (TERM, SIGTERM) or number
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    /// Containers (name, id or id prefix)
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    let sig = crate::container::lifecycle::parse_signal(&args.signal)?;
    let store = mini_store::Store::open(&config.root)?;
    super::each(&args.containers, |key| crate::container::lifecycle::kill(&store, key, sig))
}
