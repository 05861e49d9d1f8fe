//! `mini completion bash|zsh|fish` and `mini man DIR`: shell completions
//! and man pages, generated from the same clap definitions that parse the
//! command line (so they never drift from it). Installed with, e.g.:
//!
//!     mini completion bash > /etc/bash_completion.d/mini
//!     mini man /usr/local/share/man/man1

use std::path::PathBuf;

use clap::{Args as ClapArgs, CommandFactory, ValueEnum};

use super::Cli;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, ClapArgs)]
pub struct CompletionArgs {
    pub shell: Shell,
}

#[derive(Debug, ClapArgs)]
pub struct ManArgs {
    /// Directory to write mini.1 and one page per verb (mini-run.1, …) into
    pub dir: PathBuf,
}

pub fn completion(args: CompletionArgs) -> Result<i32> {
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut Cli::command(), "mini", &mut std::io::stdout());
    Ok(0)
}

pub fn man(args: ManArgs) -> Result<i32> {
    let what = || format!("write man pages to {}", args.dir.display());
    std::fs::create_dir_all(&args.dir).map_err(|e| Error::new(what()).because(e))?;
    clap_mangen::generate_to(Cli::command(), &args.dir).map_err(|e| Error::new(what()).because(e))?;
    Ok(0)
}
