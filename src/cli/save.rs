//! `mini save IMAGE... [-o FILE] [--format docker-archive|oci-archive]`

use std::path::PathBuf;

use clap::Args as ClapArgs;

use crate::config::Config;
use crate::error::Result;
use crate::image::archive::{self, Format};

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Write to a file instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// docker-archive: Docker's and the OCI layout in one tar (docker and podman load it); oci-archive: OCI only
    #[arg(long, default_value = "docker-archive", value_parser = ["docker-archive", "oci-archive"])]
    pub format: String,
    /// Images (name or id)
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    let format = if args.format == "oci-archive" { Format::Oci } else { Format::Docker };
    archive::save_images(config, &args.images, format, args.output.as_deref())?;
    Ok(0)
}
