//! `mini attach CONTAINER`: the running container's output from now on,
//! until it exits; exits with its code. (Its stdin is not forwarded.)

use clap::Args as ClapArgs;

use crate::config::Config;
use crate::error::{Error, Result};

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Container (name, id or id prefix)
    pub container: String,
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    let store = mini_store::Store::open(&config.root)?;
    let key = &args.container;
    let (c, state) = crate::lifecycle::lookup(&store, "attach to", key)?;
    if !crate::container::is_running(&state) {
        return Err(Error::new(format!("attach to {key}")).because("container is not running").hint("start it first"));
    }
    crate::logs::attach(&store, &c, key, crate::logs::end_of(&c))
}
