//! `mini push [-q] [--format oci] IMAGE`

use clap::Args as ClapArgs;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::push::{push, PushOptions};

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Image name, e.g. 127.0.0.1:5000/team/app:1.0
    pub image: String,
    /// Suppress progress output
    #[arg(short, long)]
    pub quiet: bool,
    /// Manifest format: as stored (default), or oci to convert a Docker one
    #[arg(long, value_name = "oci")]
    pub format: Option<String>,
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    let oci = match args.format.as_deref() {
        None => false,
        Some("oci") => true,
        Some(f) => {
            return Err(Error::new(format!("invalid --format \"{f}\"")).because("the only conversion is to oci"));
        }
    };
    push(config, &args.image, &PushOptions { quiet: args.quiet, oci })?;
    Ok(0)
}
