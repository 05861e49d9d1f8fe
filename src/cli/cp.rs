//! `mini cp [-a] [-L] CONTAINER:SRC DEST|-` and `mini cp [-a] [-L] SRC|- CONTAINER:DEST`

use clap::Args as ClapArgs;

use crate::config::Config;
use crate::container::cp::CpOptions;
use crate::error::Result;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Keep uid and gid of the source (default: root in the container, you on the host)
    #[arg(short, long)]
    pub archive: bool,
    /// Follow a symlink given as SRC
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// CONTAINER:SRC, a host path, or - for a tar stream on stdin
    pub src: String,
    /// CONTAINER:DEST, a host path, or - for a tar stream on stdout
    pub dest: String,
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    let opts = CpOptions { archive: args.archive, follow_link: args.follow_link };
    crate::container::cp::cp(config, &args.src, &args.dest, opts)?;
    Ok(0)
}
