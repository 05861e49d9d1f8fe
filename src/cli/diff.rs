//! `mini diff CONTAINER`

use clap::Args as ClapArgs;

use crate::config::Config;
use crate::error::Result;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Container (name, id or id prefix)
    pub container: String,
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    for (change, path) in crate::container::diff::diff(config, &args.container)? {
        println!("{} {path}", change.letter());
    }
    Ok(0)
}
