//! `mini tag SOURCE TARGET`: another name for an image.

use clap::Args as ClapArgs;

use crate::config::Config;
use crate::error::Result;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Image (name or id)
    pub source: String,
    /// The new name, e.g. 127.0.0.1:5000/team/app:1.0
    pub target: String,
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    let store = mini_store::Store::open(&config.root)?;
    crate::push::tag(&store, &args.source, &args.target)?;
    Ok(0)
}
