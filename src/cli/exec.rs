//! `mini exec [-i] [-t] [-e K=V] [-u USER] [-w DIR] CONTAINER CMD...`

use std::ffi::OsString;

use clap::Args as ClapArgs;

use crate::config::Config;
use crate::container::exec::ExecOptions;
use crate::error::Result;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Keep stdin attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Set an environment variable (KEY=VALUE, or KEY to copy the host's)
    #[arg(short, long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    /// User: name|uid[:group|gid]
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// Container (name, id or id prefix)
    pub container: String,
    /// Command and arguments
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<OsString>,
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    let opts = ExecOptions {
        interactive: args.interactive,
        tty: args.tty,
        env: args.env,
        user: args.user,
        workdir: args.workdir,
        argv: args.command,
    };
    crate::container::exec::exec(config, &args.container, opts)
}
