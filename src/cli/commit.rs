//! `mini commit CONTAINER [REPOSITORY[:TAG]] [-c CHANGE]... [-m MESSAGE] [-a AUTHOR]`

use clap::Args as ClapArgs;

use crate::config::Config;
use crate::container::commit::CommitOptions;
use crate::error::Result;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, STOPSIGNAL)
    #[arg(short, long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    /// Commit message
    #[arg(short, long)]
    pub message: Option<String>,
    /// Author (e.g. "Jane <jane@example.com>")
    #[arg(short, long)]
    pub author: Option<String>,
    /// Accepted for Docker's sake: mini never pauses the container
    #[arg(short, long)]
    pub pause: Option<bool>,
    /// Container (name, id or id prefix)
    pub container: String,
    /// Name for the image (untagged without one)
    pub reference: Option<String>,
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    let opts =
        CommitOptions { name: args.reference, changes: args.changes, message: args.message, author: args.author };
    let id = crate::container::commit::commit(config, &args.container, &opts)?;
    println!("{id}");
    Ok(0)
}
