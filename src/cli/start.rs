//! `mini start [-a] [-i] CONTAINER...`: start created or stopped containers
//! (on their existing upper dirs) through a monitor each.

use clap::Args as ClapArgs;

use crate::config::Config;
use crate::error::Result;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Attach: print the container's output until it exits, and exit with its code
    #[arg(short, long)]
    pub attach: bool,
    /// Attach stdin too (the container must have been created with -i)
    #[arg(short, long)]
    pub interactive: bool,
    /// Containers (name, id or id prefix)
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    let store = mini_store::Store::open(&config.root)?;
    if args.attach || args.interactive {
        // Docker attaches to one container only.
        let key = &args.containers[0];
        let (c, _) = crate::container::lifecycle::lookup(&store, "start", key)?;
        let from = crate::container::logs::end_of(&c);
        crate::container::lifecycle::start(config, &store, key)?;
        return crate::container::attach::attach(&store, &c, key, from, args.interactive);
    }
    super::each(&args.containers, |key| crate::container::lifecycle::start(config, &store, key).map(|_| ()))
}
