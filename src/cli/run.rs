//! `mini run [OPTIONS] IMAGE [COMMAND] [ARG...]`

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Args as ClapArgs;

use crate::config::Config;
use crate::error::Result;
use crate::runtime::spec::RunFlags;

/// The flags shared by `run` and `create`.
#[derive(Debug, ClapArgs)]
pub struct Options {
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Keep stdin attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Run mini's init as pid 1: forwards signals, reaps zombies
    #[arg(long)]
    pub init: bool,
    /// Set an environment variable (KEY=VALUE, or KEY to copy the host's)
    #[arg(short, long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    /// Read environment variables from a file
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container (created if missing)
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// User: name|uid[:group|gid]
    #[arg(short, long)]
    pub user: Option<String>,
    /// Container host name (default: the short id)
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Bind mount a host path: /host:/container[:ro]
    #[arg(short, long = "volume", value_name = "SRC:DST[:ro]")]
    pub volume: Vec<String>,
    /// Mount a tmpfs: /path[:options]
    #[arg(long, value_name = "PATH[:OPTS]")]
    pub tmpfs: Vec<String>,
    /// Mount the container's root read-only
    #[arg(long)]
    pub read_only: bool,
    /// Override the image's entrypoint
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// User namespace: host (default) or auto
    #[arg(long, value_name = "host|auto")]
    pub userns: Option<String>,
    /// Pull the image: missing (default), always, never
    #[arg(long, value_name = "missing|always|never")]
    pub pull: Option<String>,
    /// Network: none (loopback only)
    #[arg(long, alias = "net", value_name = "none")]
    pub network: Option<String>,
    #[command(flatten)]
    pub resources: super::resources::Resources,
    /// Image to run
    pub image: String,
    /// Command and arguments, passed byte for byte
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<OsString>,
}

impl Options {
    pub fn flags(&self) -> RunFlags {
        RunFlags {
            image: self.image.clone(),
            command: self.command.clone(),
            entrypoint: self.entrypoint.clone(),
            env: self.env.clone(),
            workdir: self.workdir.clone(),
            user: self.user.clone(),
            hostname: self.hostname.clone(),
            volumes: self.volume.clone(),
            tmpfs: self.tmpfs.clone(),
            read_only: self.read_only,
            rm: self.rm,
            init: self.init,
            interactive: self.interactive,
            tty: self.tty,
            userns: self.userns.clone(),
            pull: self.pull.clone(),
            name: self.name.clone(),
            network: self.network.clone(),
            resources: self.resources.flags(),
        }
    }
}

#[derive(Debug, ClapArgs)]
#[command(disable_help_flag = true)]
pub struct Args {
    /// Run in the background under a monitor; print the container's id
    #[arg(short, long)]
    pub detach: bool,
    #[command(flatten)]
    pub options: Options,
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    let env_files = crate::run::read_env_files(&args.options.env_file)?;
    if args.detach {
        let id = crate::run::run_detached(config, &args.options.flags(), &env_files)?;
        println!("{id}");
        return Ok(0);
    }
    crate::run::run(config, &args.options.flags(), &env_files)
}
