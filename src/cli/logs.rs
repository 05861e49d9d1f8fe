//! `mini logs [-f] [--tail N] [-t] [--since T] CONTAINER`: what a detached
//! container wrote, stdout to stdout and stderr to stderr.

use clap::Args as ClapArgs;

use crate::config::Config;
use crate::container::logs::{self, Filter};
use crate::error::Result;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Follow the output until the container exits
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end ("all" for every line)
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Only lines after this time (RFC 3339, Unix seconds, or a duration like 10m)
    #[arg(long)]
    pub since: Option<String>,
    /// Container (name, id or id prefix)
    pub container: String,
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    let filter = Filter {
        tail: logs::parse_tail(&args.tail)?,
        since: args.since.as_deref().map(|s| logs::parse_since(s, chrono::Utc::now())).transpose()?,
        timestamps: args.timestamps,
    };
    let store = mini_store::Store::open(&config.root)?;
    let key = &args.container;
    let (c, _) = crate::container::lifecycle::lookup(&store, "logs", key)?;
    let (entries, tail) = logs::read_all(&c, key)?;
    logs::print(&logs::select(&entries, &filter), filter.timestamps);
    if args.follow {
        logs::follow(&c, Some(tail), &filter, &mut || std::thread::sleep(logs::FOLLOW_INTERVAL));
    }
    Ok(0)
}
