//! `mini commit CONTAINER [REPOSITORY[:TAG]] [-c CHANGE]... [-m MESSAGE] [-a AUTHOR]`

use clap::Args as ClapArgs;

use crate::config::Config;
use crate::container::commit::CommitOptions;
use crate::error::Result;

#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(flatten)]
    pub edits: super::import::Edits,
    /// Author (e.g. "Jane <jane@example.com>")
    #[arg(short, long)]
    pub author: Option<String>,
    /// Pause the container while its changes are read (Docker's default;
    /// a container without a freezer cgroup is read as it runs)
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub pause: bool,
    /// Container (name, id or id prefix)
    pub container: String,
    /// Name for the image (untagged without one)
    pub reference: Option<String>,
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    let super::import::Edits { changes, message } = args.edits;
    let opts = CommitOptions { name: args.reference, changes, message, author: args.author, pause: args.pause };
    let id = crate::container::commit::commit(config, &args.container, &opts)?;
    println!("{id}");
    Ok(0)
}
