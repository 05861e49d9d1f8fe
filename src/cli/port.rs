//! `mini port CONTAINER [PORT[/PROTO]]`: the running container's published
//! ports, as `docker port` prints them.

use clap::Args as ClapArgs;

use crate::config::Config;
use crate::error::Result;
use crate::network::ports;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Container (name, id or id prefix)
    pub container: String,
    /// Only this container port (80, 80/tcp, 53/udp)
    pub port: Option<String>,
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    let store = mini_store::Store::open(&config.root)?;
    let maps = crate::container::published_ports(&store, &args.container)?;
    match &args.port {
        None => ports::format_port_lines(&maps).iter().for_each(|l| println!("{l}")),
        Some(q) => {
            let found = ports::filter_port(&maps, q).map_err(|e| e.within(format!("port {}", args.container)))?;
            ports::format_host_addrs(&found).iter().for_each(|l| println!("{l}"));
        }
    }
    Ok(0)
}
