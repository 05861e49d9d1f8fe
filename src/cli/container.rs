//! `mini container …`: `prune` (remove every stopped container).

use clap::{Args as ClapArgs, Subcommand};

use crate::config::Config;
use crate::error::Result;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Remove all stopped containers
    Prune(PruneArgs),
}

#[derive(Debug, ClapArgs)]
pub struct PruneArgs {
    /// Do not prompt for confirmation (mini never prompts)
    #[arg(short, long)]
    pub force: bool,
}

pub fn run(cmd: Command, config: &Config) -> Result<i32> {
    match cmd {
        Command::Prune(_) => {
            let store = mini_store::Store::open(&config.root)?;
            let removed = crate::container::lifecycle::prune(&store)?;
            if !removed.is_empty() {
                println!("Deleted Containers:");
                for id in &removed {
                    println!("{id}");
                }
                println!();
            }
            println!("Total reclaimed space: {} containers", removed.len());
            Ok(0)
        }
    }
}
