//! `mini create [OPTIONS] IMAGE [COMMAND] [ARG...]`: prints the new id.

use clap::Args as ClapArgs;

use crate::config::Config;
use crate::container::spec::RunFlags;
use crate::error::Result;

#[derive(Debug, ClapArgs)]
#[command(disable_help_flag = true)]
pub struct Args {
    #[command(flatten)]
    pub flags: RunFlags,
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    let id = crate::container::run::create(config, &args.flags.split_positionals()?)?;
    println!("{id}");
    Ok(0)
}
