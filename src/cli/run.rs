//! `mini run [OPTIONS] IMAGE [COMMAND] [ARG...]`

use clap::Args as ClapArgs;

use crate::config::Config;
use crate::container::spec::RunFlags;
use crate::error::Result;

#[derive(Debug, ClapArgs)]
#[command(disable_help_flag = true)]
pub struct Args {
    /// Run in the background under a monitor; print the container's id
    #[arg(short, long)]
    pub detach: bool,
    #[command(flatten)]
    pub flags: RunFlags,
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    let flags = args.flags.split_positionals()?;
    if args.detach {
        let id = crate::container::run::run_detached(config, &flags)?;
        println!("{id}");
        return Ok(0);
    }
    crate::container::run::run(config, &flags)
}
