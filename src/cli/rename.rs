//! `mini rename CONTAINER NEW_NAME`

use clap::Args as ClapArgs;

use crate::config::Config;
use crate::error::Result;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Container (name, id or id prefix)
    pub container: String,
    pub new_name: String,
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    let store = mini_store::Store::open(&config.root)?;
    crate::container::rename(&store, &args.container, &args.new_name)?;
    Ok(0)
}
