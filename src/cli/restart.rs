//! `mini restart [-t SECONDS] CONTAINER...`: stop (if running), then start.
//! Takes exactly `stop`'s flags.

use std::time::Duration;

use crate::config::Config;
use crate::error::Result;

pub use super::stop::Args;

pub fn run(args: Args, config: &Config) -> Result<i32> {
    let store = mini_store::Store::open(&config.root)?;
    let timeout = Duration::from_secs(args.time);
    super::each(&args.containers, |key| crate::container::lifecycle::restart(config, &store, key, timeout))
}
