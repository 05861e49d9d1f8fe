//! `mini rm [-f] CONTAINER...`

use clap::Args as ClapArgs;

use crate::config::Config;
use crate::error::Result;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Kill a running container first
    #[arg(short, long)]
    pub force: bool,
    /// Containers (name, id or id prefix)
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    let store = mini_store::Store::open(&config.root)?;
    crate::container::sweep_stale(&store);
    let mut failed = None;
    for key in &args.containers {
        match crate::container::remove(&store, key, args.force) {
            Ok(_) => println!("{key}"),
            Err(e) => {
                eprintln!("mini: {e}");
                failed = Some(e);
            }
        }
    }
    match failed {
        Some(e) if args.containers.len() == 1 => Err(e),
        Some(_) => Ok(1),
        None => Ok(0),
    }
}
