//! `mini pull [-q] [--platform os/arch[/variant]] [--minirootfs] REF`

use clap::Args as ClapArgs;

use crate::config::Config;
use crate::error::Result;
use crate::image::manifest::PlatformSpec;
use crate::pull::alpine;
use crate::pull::{pull, PullOptions};

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Image reference, e.g. alpine, alpine:3.20, 127.0.0.1:5000/app@sha256:…
    pub reference: String,
    /// Suppress progress output; print only the image name
    #[arg(short, long)]
    pub quiet: bool,
    /// Platform to pull from a multi-platform image (default: this host's)
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_parser = parse_platform)]
    pub platform: Option<PlatformSpec>,
    /// Fetch the Alpine minirootfs tarball (REF is alpine[:BRANCH]) from the Alpine mirror
    #[arg(long)]
    pub minirootfs: bool,
}

fn parse_platform(text: &str) -> std::result::Result<PlatformSpec, String> {
    PlatformSpec::parse(text).map_err(|e| e.to_string())
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    let opts = PullOptions { platform: args.platform, quiet: args.quiet };
    let image = if args.minirootfs {
        alpine::pull(config, &args.reference, &opts)?
    } else {
        pull(config, &args.reference, &opts)?
    };
    println!("{}", image.name);
    Ok(0)
}
