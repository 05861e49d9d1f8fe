//! `mini export CONTAINER [-o FILE]`

use std::path::PathBuf;

use clap::Args as ClapArgs;

use crate::config::Config;
use crate::error::Result;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Write to a file instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Container (name, id or id prefix)
    pub container: String,
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    crate::container::export::export(config, &args.container, args.output.as_deref())?;
    Ok(0)
}
