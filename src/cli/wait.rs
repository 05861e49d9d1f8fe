//! `mini wait CONTAINER...`: block until each exits; print its exit code.

use clap::Args as ClapArgs;

use crate::config::Config;
use crate::error::Result;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Containers (name, id or id prefix)
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    let store = mini_store::Store::open(&config.root)?;
    let mut failed = None;
    for key in &args.containers {
        match crate::container::lifecycle::wait(&store, key) {
            Ok(code) => println!("{code}"),
            Err(e) => {
                if args.containers.len() > 1 {
                    eprintln!("mini: {e}");
                }
                failed = Some(e);
            }
        }
    }
    super::outcome(failed, args.containers.len())
}
