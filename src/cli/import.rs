//! `mini import FILE|- [REPOSITORY[:TAG]] [-c CHANGE]... [-m MESSAGE]`

use clap::Args as ClapArgs;

use crate::config::Config;
use crate::error::Result;

/// What `import` and `commit` write into the new image's config.
#[derive(Debug, ClapArgs)]
pub struct Edits {
    /// Apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, STOPSIGNAL)
    #[arg(short, long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    /// Commit message for the image's history
    #[arg(short, long)]
    pub message: Option<String>,
}

#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(flatten)]
    pub edits: Edits,
    /// Root filesystem tarball (plain or gzip), `-` for stdin
    pub source: String,
    /// Name for the image (untagged without one)
    pub reference: Option<String>,
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    let id = crate::image::build::import(
        config,
        &args.source,
        args.reference.as_deref(),
        &args.edits.changes,
        args.edits.message.as_deref(),
    )?;
    println!("{id}");
    Ok(0)
}
