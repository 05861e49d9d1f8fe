//! `mini network create|ls|inspect|rm|prune`.

use clap::{Args as ClapArgs, Subcommand};
use mini_store::Store;

use crate::config::Config;
use crate::error::Result;
use crate::network::manage;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a network (a bridge of its own; containers on it resolve each other by name)
    Create(CreateArgs),
    /// List networks
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show networks' details as JSON
    Inspect(NamesArgs),
    /// Remove networks
    #[command(alias = "remove")]
    Rm(NamesArgs),
    /// Remove every network no container is on
    Prune(PruneArgs),
    /// Connect a running container to a network (until it stops)
    Connect(ConnectArgs),
    /// Disconnect a container from a network
    Disconnect(DisconnectArgs),
}

#[derive(Debug, ClapArgs)]
pub struct ConnectArgs {
    /// A fixed IPv4 address on the network
    #[arg(long, value_name = "IP")]
    pub ip: Option<String>,
    /// Another name for the container on the network
    #[arg(long, value_name = "NAME")]
    pub alias: Vec<String>,
    pub network: String,
    pub container: String,
}

#[derive(Debug, ClapArgs)]
pub struct DisconnectArgs {
    /// Accepted for Docker compatibility
    #[arg(short, long)]
    pub force: bool,
    pub network: String,
    pub container: String,
}

#[derive(Debug, ClapArgs)]
pub struct CreateArgs {
    /// Subnet in CIDR form (default: a free 10.89.N.0/24)
    #[arg(long, value_name = "CIDR")]
    pub subnet: Option<String>,
    /// Gateway address (default: the subnet's first)
    #[arg(long, value_name = "IP")]
    pub gateway: Option<String>,
    /// Driver: only bridge
    #[arg(short, long, default_value = "bridge")]
    pub driver: String,
    pub name: String,
}

#[derive(Debug, ClapArgs)]
pub struct LsArgs {
    /// Only ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Full ids
    #[arg(long)]
    pub no_trunc: bool,
    /// table, json or a Go template ("{{.Name}} {{.ID}}")
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, ClapArgs)]
pub struct NamesArgs {
    #[arg(required = true)]
    pub networks: Vec<String>,
}

#[derive(Debug, ClapArgs)]
pub struct PruneArgs {
    /// Accepted for Docker compatibility: mini never asks
    #[arg(short, long)]
    pub force: bool,
}

pub fn run(cmd: Command, config: &Config) -> Result<i32> {
    let store = Store::open(&config.root)?;
    match cmd {
        Command::Create(a) => {
            if a.driver != "bridge" {
                return Err(crate::error::Error::new(format!("create network {}", a.name))
                    .because(format!("driver \"{}\" is not supported; only bridge is", a.driver)));
            }
            let id = manage::create(config, &store, &a.name, a.subnet.as_deref(), a.gateway.as_deref())?;
            println!("{id}");
            Ok(0)
        }
        Command::Ls(a) => {
            let format = super::template::Format::parse(a.format.as_deref())?;
            let nets = manage::list(config, &store)?;
            if a.quiet {
                nets.iter().for_each(|n| println!("{}", if a.no_trunc { &n.id } else { &n.id[..12] }));
                return Ok(0);
            }
            let id =
                |n: &crate::network::records::Network| if a.no_trunc { n.id.clone() } else { n.id[..12].to_string() };
            let json: Vec<serde_json::Value> = nets
                .iter()
                .map(|n| {
                    serde_json::json!({"ID": id(n), "Name": n.name, "Driver": "bridge", "Scope": "local",
                        "CreatedAt": n.created, "IPv6": false, "Internal": false, "Labels": ""})
                })
                .collect();
            let titles = [("ID", "NETWORK ID"), ("Name", "NAME"), ("Driver", "DRIVER"), ("Scope", "SCOPE")];
            print!(
                "{}",
                format.render(&json, &titles, || {
                    let rows: Vec<Vec<String>> =
                        nets.iter().map(|n| vec![id(n), n.name.clone(), "bridge".into(), "local".into()]).collect();
                    super::format::table(&["NETWORK ID", "NAME", "DRIVER", "SCOPE"], &rows)
                })?
            );
            Ok(0)
        }
        Command::Inspect(a) => {
            let mut out = Vec::new();
            let mut failed = None;
            for key in &a.networks {
                match manage::inspect(&store, key) {
                    Ok(v) => out.push(v),
                    Err(e) => failed = Some(e),
                }
            }
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            super::outcome(failed, 1)
        }
        Command::Rm(a) => super::each(&a.networks, |key| manage::remove(&store, key).map(drop)),
        Command::Connect(a) => {
            let flags = (a.ip.as_deref(), a.alias.as_slice());
            crate::container::network::connect(config, &store, &a.network, &a.container, flags).map(|()| 0)
        }
        Command::Disconnect(a) => crate::container::network::disconnect(&store, &a.network, &a.container).map(|()| 0),
        Command::Prune(_) => {
            let gone = manage::prune(&store, false)?;
            if !gone.is_empty() {
                println!("Deleted Networks:");
                gone.iter().for_each(|n| println!("{n}"));
            }
            Ok(0)
        }
    }
}
