//! `mini load [-i FILE]`

use std::path::PathBuf;

use clap::Args as ClapArgs;

use crate::config::Config;
use crate::error::Result;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Read from a file instead of stdin (plain or gzip tar)
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Accepted for Docker's sake; mini prints no progress here
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    for line in crate::image::archive::load_images(config, args.input.as_deref())? {
        println!("{line}");
    }
    Ok(0)
}
