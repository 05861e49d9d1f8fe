//! The command line: global flags, one subcommand per verb. Each verb lives in
//! its own thin file (`cli/<verb>.rs`) holding its clap `Args` and a function
//! that calls the engine; nothing else.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

mod attach;
mod commit;
mod completion;
mod container;
mod cp;
mod create;
mod diff;
mod events;
mod exec;
mod export;
pub mod format;
mod history;
mod images;
mod import;
mod info;
mod inspect;
mod kill;
mod load;
mod login;
mod logs;
mod network;
mod pause;
mod port;
mod prune;
mod ps;
mod pull;
mod push;
mod rename;
mod restart;
mod rm;
mod rmi;
mod run;
mod save;
mod start;
mod stats;
mod stop;
mod tag;
pub mod template;
mod top;
mod unshare;
mod update;
mod volume;
mod wait;

use crate::config::{Config, Defaults, Overrides};
use crate::error::Result;

#[derive(Debug, Parser)]
#[command(name = "mini", version, about = "A small container engine", propagate_version = true)]
pub struct Cli {
    /// Store root (default /var/lib/mini)
    #[arg(long, global = true, env = "MINI_ROOT", value_name = "DIR")]
    root: Option<PathBuf>,
    /// Config file (default /etc/mini/config.toml)
    #[arg(long, global = true, env = "MINI_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Registry mirror for docker.io, tried before Docker Hub (repeatable)
    #[arg(
        long = "registry-mirror",
        global = true,
        env = "MINI_REGISTRY_MIRROR",
        value_delimiter = ',',
        value_name = "URL"
    )]
    registry_mirrors: Vec<String>,
    /// Registry reached over plain http (repeatable; loopback always is)
    #[arg(
        long = "insecure-registry",
        global = true,
        env = "MINI_INSECURE_REGISTRY",
        value_delimiter = ',',
        value_name = "HOST[:PORT]"
    )]
    insecure_registries: Vec<String>,
    /// Base URL of the Alpine release mirror
    #[arg(long, global = true, env = "MINI_ALPINE_MIRROR", value_name = "URL")]
    alpine_mirror: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Pull an image from a registry, or the Alpine minirootfs
    Pull(pull::Args),
    /// Push an image to a registry
    Push(push::Args),
    /// Give an image another name
    Tag(tag::Args),
    /// Log in to a registry (credentials kept in ~/.docker/config.json)
    Login(login::LoginArgs),
    /// Log out of a registry
    Logout(login::LogoutArgs),
    /// List images
    Images(images::Args),
    /// Show a container's or an image's details as JSON
    Inspect(inspect::Args),
    /// Remove images
    Rmi(rmi::Args),
    /// Show the history of an image
    History(history::Args),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Write images to a tar archive (Docker's and the OCI layout)
    Save(save::Args),
    /// Load images from a tar archive
    Load(load::Args),
    /// Make an image from a root filesystem tarball
    Import(import::Args),
    /// Make an image from a container's changes
    Commit(commit::Args),
    /// Run a command in a new container
    Run(run::Args),
    /// Create a container without starting it
    Create(create::Args),
    /// List containers
    Ps(ps::Args),
    /// Show running containers' CPU, memory and PIDs
    Stats(stats::Args),
    /// Remove containers
    Rm(rm::Args),
    /// Export a container's filesystem as a tar archive
    Export(export::Args),
    /// Copy files between a container and the host (or a tar stream)
    Cp(cp::Args),
    /// Show the files a container added (A), changed (C) and deleted (D)
    Diff(diff::Args),
    /// Start stopped or created containers
    Start(start::Args),
    /// Stop running containers (stop signal, then SIGKILL after a timeout)
    Stop(stop::Args),
    /// Send a signal to running containers
    Kill(kill::Args),
    /// Restart containers
    Restart(restart::Args),
    /// Pause all processes within containers (cgroup freezer)
    Pause(pause::Args),
    /// Unpause all processes within containers
    Unpause(pause::Args),
    /// Block until containers exit, then print their exit codes
    Wait(wait::Args),
    /// Show a container's output
    Logs(logs::Args),
    /// Run a command in a running container
    Exec(exec::Args),
    /// Follow a running container's output until it exits
    Attach(attach::Args),
    /// Show the processes of a running container
    Top(top::Args),
    /// List a container's published ports
    Port(port::Args),
    /// Rename a container
    Rename(rename::Args),
    /// Manage networks
    #[command(subcommand)]
    Network(network::Command),
    /// Manage named volumes
    #[command(subcommand)]
    Volume(volume::Command),
    /// Manage containers
    #[command(subcommand)]
    Container(container::Command),
    /// The monitor of a detached container (internal)
    #[command(name = "container-monitor", hide = true)]
    Monitor { id: String },
    /// Manage the whole store
    #[command(subcommand)]
    System(SystemCommand),
    /// Print a shell completion script (bash, zsh, fish)
    Completion(completion::CompletionArgs),
    /// Write man pages into a directory
    Man(completion::ManArgs),
    /// Show mini's version and the host's runtime features
    Version,
    /// Show the store's counts and what this host gives containers
    Info(info::Args),
    /// Show events (create, start, die, destroy, pull, …) as they happen
    Events(events::Args),
    /// Change containers' resource limits and restart policy
    Update(update::Args),
    /// Run a command in rootless mini's user namespace
    Unshare(unshare::Args),
}

#[derive(Debug, Subcommand)]
enum ImageCommand {
    /// Pull an image (same as `mini pull`)
    Pull(pull::Args),
    /// Push an image (same as `mini push`)
    Push(push::Args),
    /// Give an image another name (same as `mini tag`)
    Tag(tag::Args),
    /// List images (same as `mini images`)
    #[command(alias = "list")]
    Ls(images::Args),
    /// Show an image's details as JSON
    Inspect(inspect::Args),
    /// Remove images (same as `mini rmi`)
    Rm(rmi::Args),
    /// Show the history of an image (same as `mini history`)
    History(history::Args),
    /// Remove blobs and layers no image uses
    Prune(prune::Args),
    /// Write images to a tar archive (same as `mini save`)
    Save(save::Args),
    /// Load images from a tar archive (same as `mini load`)
    Load(load::Args),
    /// Make an image from a root filesystem tarball (same as `mini import`)
    Import(import::Args),
}

#[derive(Debug, Subcommand)]
enum SystemCommand {
    /// Remove everything no image uses
    Prune(prune::Args),
    /// Rootless: end mini's user namespace, so the next mini makes it anew
    Migrate,
    /// Start the containers whose restart policy says so after a reboot (always; unless-stopped unless stopped)
    Boot,
    /// Show what images, containers and volumes take on disk
    Df(info::Args),
    /// Show the store's counts and what this host gives containers (same as `mini info`)
    Info(info::Args),
}

impl Cli {
    fn config(&self) -> Result<Config> {
        let overrides = Overrides {
            root: self.root.clone(),
            registry_mirrors: self.registry_mirrors.clone(),
            insecure_registries: self.insecure_registries.clone(),
            alpine_mirror: self.alpine_mirror.clone(),
        };
        Config::load(self.config.as_deref(), &overrides, &Defaults::of_process())
    }

    /// Whether the verb works on the store or containers: a rootless mini
    /// does that inside its user namespace.
    fn needs_namespace(&self) -> bool {
        !matches!(
            self.command,
            Command::Completion(_) | Command::Man(_) | Command::Version | Command::Login(_) | Command::Logout(_)
        )
    }
}

/// Parse the command line and run one verb; returns the process exit code.
pub fn main() -> Result<i32> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // Docker exits 125 on a bad flag; print clap's own text, which
            // already says what was wrong and shows usage.
            let _ = e.print();
            return Ok(125);
        }
        Err(e) => {
            let _ = e.print();
            return Ok(0);
        }
    };
    if let Some(user) = crate::rootless::current().filter(|_| cli.needs_namespace()) {
        crate::rootless::ns::enter(user, &crate::rootless::Paths::of_process(user))?;
    }
    let config = cli.config()?;
    match cli.command {
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => pull::run(a, &config),
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => push::run(a, &config),
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => tag::run(a, &config),
        Command::Login(a) => login::login(a, &config),
        Command::Logout(a) => login::logout(a),
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => images::run(a, &config),
        Command::Inspect(a) => inspect::run(a, &config),
        Command::Image(ImageCommand::Inspect(a)) => inspect::run_images(a, &config),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => rmi::run(a, &config),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => save::run(a, &config),
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => load::run(a, &config),
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => import::run(a, &config),
        Command::Commit(a) => commit::run(a, &config),
        Command::Run(a) => run::run(a, &config),
        Command::Create(a) => create::run(a, &config),
        Command::Ps(a) => ps::run(a, &config),
        Command::Stats(a) => stats::run(a, &config),
        Command::Rm(a) => rm::run(a, &config),
        Command::Export(a) => export::run(a, &config),
        Command::Cp(a) => cp::run(a, &config),
        Command::Diff(a) => diff::run(a, &config),
        Command::History(a) | Command::Image(ImageCommand::History(a)) => history::run(a, &config),
        Command::Start(a) => start::run(a, &config),
        Command::Stop(a) => stop::run(a, &config),
        Command::Kill(a) => kill::run(a, &config),
        Command::Pause(a) => pause::pause(a, &config),
        Command::Unpause(a) => pause::unpause(a, &config),
        Command::Restart(a) => restart::run(a, &config),
        Command::Wait(a) => wait::run(a, &config),
        Command::Logs(a) => logs::run(a, &config),
        Command::Exec(a) => exec::run(a, &config),
        Command::Attach(a) => attach::run(a, &config),
        Command::Top(a) => top::run(a, &config),
        Command::Port(a) => port::run(a, &config),
        Command::Rename(a) => rename::run(a, &config),
        Command::Network(c) => network::run(c, &config),
        Command::Volume(c) => volume::run(c, &config),
        Command::Container(c) => container::run(c, &config),
        Command::Completion(a) => completion::completion(a),
        Command::Man(a) => completion::man(a),
        Command::Version => version(),
        Command::Info(a) | Command::System(SystemCommand::Info(a)) => info::info(a, &config),
        Command::Events(a) => events::run(a, &config),
        Command::Update(a) => update::run(a, &config),
        Command::System(SystemCommand::Df(a)) => info::df(a, &config),
        Command::Monitor { id } => crate::container::monitor::run(&config, &id),
        Command::Image(ImageCommand::Prune(a)) | Command::System(SystemCommand::Prune(a)) => prune::run(a, &config),
        Command::System(SystemCommand::Migrate) => unshare::migrate(&config),
        Command::System(SystemCommand::Boot) => {
            let store = mini_store::Store::open(&config.root)?;
            crate::container::restart::boot(&config, &store)?.iter().for_each(|id| println!("{id}"));
            Ok(0)
        }
        Command::Unshare(a) => unshare::run(a, &config),
    }
}

/// `mini version`: the version, and what this host gives containers.
fn version() -> Result<i32> {
    let host = info::host_facts();
    println!("mini version {}", env!("CARGO_PKG_VERSION"));
    println!(" OS/Arch:         {}/{}", std::env::consts::OS, std::env::consts::ARCH);
    println!(" Kernel:          {}", host.kernel);
    println!(" Cgroups:         {}", host.cgroups);
    println!(
        " Runtime:         mini (built in), seccomp, {} capabilities",
        caps::runtime::thread_all_supported().len()
    );
    Ok(0)
}

/// Run `f` for each container named, as Docker's multi-container verbs
/// do: print each name that succeeded, each error on its own line.
pub fn each(keys: &[String], mut f: impl FnMut(&str) -> Result<()>) -> Result<i32> {
    let mut failed = None;
    for key in keys {
        match f(key) {
            Ok(()) => println!("{key}"),
            Err(e) => {
                if keys.len() > 1 {
                    eprintln!("mini: {e}");
                }
                failed = Some(e);
            }
        }
    }
    outcome(failed, keys.len())
}

/// One container: its error is the verb's (printed once by main, with its
/// exit code); several: the errors were printed, exit 1 as Docker does.
pub fn outcome(failed: Option<crate::error::Error>, count: usize) -> Result<i32> {
    match failed {
        Some(e) if count == 1 => Err(e),
        Some(_) => Ok(1),
        None => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    /// clap's own consistency checks over every verb (unique flag and
    /// group names, …), which otherwise fire only when a verb is parsed.
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
