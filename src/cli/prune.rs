//! `mini image prune` / `mini system prune`: remove blobs and unpacked
//! layers that no image record references.

use clap::Args as ClapArgs;
use mini_store::Store;

use crate::cli::format::human_size;
use crate::config::Config;
use crate::error::Result;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Accepted for Docker compatibility: mini never asks
    #[arg(short, long)]
    pub force: bool,
}

pub fn run(_args: Args, config: &Config) -> Result<i32> {
    let store = Store::open(&config.root)?;
    // A crashed mini's containers (and their cgroups) first.
    crate::container::sweep_stale(&store);
    let report = mini_store::gc::unused(&store)?;
    println!(
        "Deleted {} blobs and {} layers\nTotal reclaimed space: {}",
        report.blobs_removed,
        report.layers_removed,
        human_size(report.bytes_freed)
    );
    Ok(0)
}
