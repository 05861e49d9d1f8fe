//! `mini attach [--no-stdin] CONTAINER`: the running container's output
//! from now on and (if it was started with -i) our stdin to it, until it
//! exits; exits with its code.

use clap::Args as ClapArgs;

use crate::config::Config;
use crate::error::{Error, Result};

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Do not attach stdin
    #[arg(long)]
    pub no_stdin: bool,
    /// Container (name, id or id prefix)
    pub container: String,
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    let store = mini_store::Store::open(&config.root)?;
    let key = &args.container;
    let (c, state) = crate::container::lifecycle::lookup(&store, "attach to", key)?;
    if !crate::container::state::is_running(&state) {
        return Err(Error::new(format!("attach to {key}")).because("container is not running").hint("start it first"));
    }
    if state.paused {
        return Err(Error::new(format!("attach to {key}"))
            .because("container is paused")
            .hint(format!("unpause it first: mini unpause {key}")));
    }
    crate::container::attach::attach(&store, &c, key, crate::container::logs::end_of(&c), !args.no_stdin)
}
