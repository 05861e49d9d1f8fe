//! `mini volume create|ls|inspect|rm|prune`.

use clap::{Args as ClapArgs, Subcommand};
use mini_store::Store;

use crate::config::Config;
use crate::container::volume;
use crate::error::Result;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a volume (a random name when none is given)
    Create(CreateArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show volumes' details as JSON
    Inspect(NamesArgs),
    /// Remove volumes no container uses
    #[command(alias = "remove")]
    Rm(NamesArgs),
    /// Remove unused anonymous volumes (-a: every unused volume)
    Prune(PruneArgs),
}

#[derive(Debug, ClapArgs)]
pub struct CreateArgs {
    /// Set metadata: KEY=VALUE
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Driver: only local
    #[arg(short, long, default_value = "local")]
    pub driver: String,
    pub name: Option<String>,
}

#[derive(Debug, ClapArgs)]
pub struct LsArgs {
    /// Only names
    #[arg(short, long)]
    pub quiet: bool,
    /// table, json or a Go template ("{{.Name}} {{.Mountpoint}}")
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, ClapArgs)]
pub struct NamesArgs {
    #[arg(required = true)]
    pub volumes: Vec<String>,
}

#[derive(Debug, ClapArgs)]
pub struct PruneArgs {
    /// Every unused volume, not only anonymous ones
    #[arg(short, long)]
    pub all: bool,
    /// Accepted for Docker compatibility: mini never asks
    #[arg(short, long)]
    pub force: bool,
}

pub fn run(cmd: Command, config: &Config) -> Result<i32> {
    let store = Store::open(&config.root)?;
    match cmd {
        Command::Create(a) => {
            if a.driver != "local" {
                return Err(crate::error::Error::new("create volume")
                    .because(format!("driver \"{}\" is not supported; only local is", a.driver)));
            }
            println!("{}", volume::create(&store, a.name.as_deref(), &a.labels)?);
            Ok(0)
        }
        Command::Ls(a) => {
            let format = super::template::Format::parse(a.format.as_deref())?;
            let vols = volume::list(&store)?;
            if a.quiet {
                vols.iter().for_each(|v| println!("{}", v.name));
                return Ok(0);
            }
            let json: Vec<serde_json::Value> = vols
                .iter()
                .map(|v| {
                    let mountpoint = v.data().display().to_string();
                    serde_json::json!({"Driver": "local", "Name": v.name, "Mountpoint": mountpoint, "Scope": "local"})
                })
                .collect();
            let titles =
                [("Driver", "DRIVER"), ("Name", "VOLUME NAME"), ("Mountpoint", "MOUNTPOINT"), ("Scope", "SCOPE")];
            print!(
                "{}",
                format.render(&json, &titles, || {
                    let rows: Vec<Vec<String>> = vols.iter().map(|v| vec!["local".into(), v.name.clone()]).collect();
                    super::format::table(&["DRIVER", "VOLUME NAME"], &rows)
                })?
            );
            Ok(0)
        }
        Command::Inspect(a) => {
            let mut out = Vec::new();
            let mut failed = None;
            for name in &a.volumes {
                match volume::inspect(&store, name) {
                    Ok(v) => out.push(v),
                    Err(e) => failed = Some(e),
                }
            }
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            super::outcome(failed, 1)
        }
        Command::Rm(a) => super::each(&a.volumes, |name| volume::remove(&store, name)),
        Command::Prune(a) => {
            let gone = volume::prune(&store, a.all)?;
            if !gone.is_empty() {
                println!("Deleted Volumes:");
                gone.iter().for_each(|n| println!("{n}"));
            }
            Ok(0)
        }
    }
}
