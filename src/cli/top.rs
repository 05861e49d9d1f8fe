//! `mini top CONTAINER`: the processes in the container (host pids).

use clap::Args as ClapArgs;

use crate::config::Config;
use crate::error::Result;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Container (name, id or id prefix)
    pub container: String,
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    let store = mini_store::Store::open(&config.root)?;
    let pids = crate::container::lifecycle::processes(&store, &args.container)?;
    let rows: Vec<Vec<String>> = pids.iter().filter_map(|&pid| row(pid)).collect();
    print!("{}", super::format::table(&["UID", "PID", "PPID", "CMD"], &rows));
    Ok(0)
}

/// UID, PID, PPID and command line from /proc (None if it just exited).
fn row(pid: i32) -> Option<Vec<String>> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .unwrap_or("?")
            .to_string()
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let mut cmd: String = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a))
        .collect::<Vec<_>>()
        .join(" ");
    if cmd.is_empty() {
        cmd = format!("[{}]", field("Name:"));
    }
    Some(vec![field("Uid:"), pid.to_string(), field("PPid:"), cmd])
}
