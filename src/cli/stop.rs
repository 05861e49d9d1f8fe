//! `mini stop [-t SECONDS] CONTAINER...`: the image's StopSignal (default
//! SIGTERM), then SIGKILL after the timeout.

use std::time::Duration;

use clap::Args as ClapArgs;

use crate::config::Config;
use crate::error::Result;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "time", alias = "timeout", default_value_t = 10, value_name = "SECONDS")]
    pub time: u64,
    /// Containers (name, id or id prefix)
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    let store = mini_store::Store::open(&config.root)?;
    let timeout = Duration::from_secs(args.time);
    super::each(&args.containers, |key| crate::container::lifecycle::stop(&store, key, timeout))
}
