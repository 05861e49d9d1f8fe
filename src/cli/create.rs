//! `mini create [OPTIONS] IMAGE [COMMAND] [ARG...]`: prints the new id.

use clap::Args as ClapArgs;

use crate::config::Config;
use crate::error::Result;

#[derive(Debug, ClapArgs)]
#[command(disable_help_flag = true)]
pub struct Args {
    #[command(flatten)]
    pub options: super::run::Options,
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    let env_files = crate::run::read_env_files(&args.options.env_file)?;
    let id = crate::run::create(config, &args.options.flags(), &env_files)?;
    println!("{id}");
    Ok(0)
}
