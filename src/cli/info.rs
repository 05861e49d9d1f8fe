//! `mini info [--format]` (also `mini system info`): the store's counts and
//! what this host gives containers, in Docker's shape; `mini system df
//! [--format]`: what the store's images, containers and volumes take.

use clap::Args as ClapArgs;
use serde_json::json;

use crate::cli::format::{human_size, table};
use crate::cli::template::Format;
use crate::config::Config;
use crate::container::usage::{self, Kind};
use crate::error::Result;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// A Go template over the fields ("{{.CgroupVersion}}", "{{json .}}"), or json
    #[arg(short, long)]
    pub format: Option<String>,
}

pub fn info(args: Args, config: &Config) -> Result<i32> {
    let format = Format::parse(args.format.as_deref())?;
    let store = mini_store::Store::open(&config.root)?;
    let u = usage::measure(&store)?;
    let host = host_facts();
    let mirrors: Vec<&String> = config.mirrors.values().flatten().collect();
    let v = json!({
        "Containers": u.containers.total, "ContainersRunning": u.running, "ContainersPaused": u.paused,
        "ContainersStopped": u.stopped, "Images": u.images.total, "Volumes": u.volumes.total,
        "ServerVersion": env!("CARGO_PKG_VERSION"), "Driver": "overlay", "DockerRootDir": config.root,
        "CgroupDriver": "cgroupfs", "CgroupVersion": host.cgroup_version, "KernelVersion": host.kernel,
        "OperatingSystem": host.os, "OSType": std::env::consts::OS, "Architecture": std::env::consts::ARCH,
        "NCPU": host.cpus, "MemTotal": host.memory, "Rootless": crate::rootless::current().is_some(),
        "SecurityOptions": ["name=seccomp,profile=builtin", "name=cgroupns"],
        "Runtimes": {"mini": {"path": "built in"}, "mini-runc": {"path": "mini-runc (a link to mini)"}},
        "DefaultRuntime": "mini", "RegistryMirrors": mirrors, "InsecureRegistries": config.insecure_registries,
        "DefaultNetwork": config.default_network, "BridgeName": config.bridge_name,
        "BridgeSubnet": config.bridge_subnet.to_string(),
    });
    let out = format.render(std::slice::from_ref(&v), &[], || {
        let mut s = String::new();
        let mut line = |k: &str, val: String| s.push_str(&format!("{k}: {val}\n"));
        line("Containers", u.containers.total.to_string());
        line(" Running", u.running.to_string());
        line(" Paused", u.paused.to_string());
        line(" Stopped", u.stopped.to_string());
        line("Images", u.images.total.to_string());
        line("Volumes", u.volumes.total.to_string());
        line("Server Version", env!("CARGO_PKG_VERSION").into());
        line("Storage Driver", "overlay (layers unpacked once, shared by every image)".into());
        line("Root Dir", config.root.display().to_string());
        line("Cgroup Driver", "cgroupfs".into());
        line("Cgroup Version", host.cgroup_version.into());
        line("Runtimes", "mini (built in), mini-runc (runc's command line)".into());
        line("Security Options", "seccomp (Docker's default profile), cgroupns".into());
        line("Rootless", crate::rootless::current().is_some().to_string());
        line(
            "Default Network",
            format!("{} ({} {})", config.default_network, config.bridge_name, config.bridge_subnet),
        );
        line("Kernel Version", host.kernel.clone());
        line("Operating System", host.os.clone());
        line("Architecture", std::env::consts::ARCH.into());
        line("CPUs", host.cpus.to_string());
        line("Total Memory", human_size(host.memory));
        if !mirrors.is_empty() {
            line("Registry Mirrors", mirrors.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", "));
        }
        if !config.insecure_registries.is_empty() {
            line("Insecure Registries", config.insecure_registries.join(", "));
        }
        s
    })?;
    print!("{out}");
    Ok(0)
}

pub fn df(args: Args, config: &Config) -> Result<i32> {
    let format = Format::parse(args.format.as_deref())?;
    let store = mini_store::Store::open(&config.root)?;
    let u = usage::measure(&store)?;
    let kinds = [("Images", &u.images), ("Containers", &u.containers), ("Local Volumes", &u.volumes)];
    let rows: Vec<serde_json::Value> = kinds.iter().map(|(name, k)| row(name, k)).collect();
    let titles = [
        ("Type", "TYPE"),
        ("TotalCount", "TOTAL"),
        ("Active", "ACTIVE"),
        ("Size", "SIZE"),
        ("Reclaimable", "RECLAIMABLE"),
    ];
    let out = format.render(&rows, &titles, || {
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                titles.iter().map(|(k, _)| r[k].as_str().map_or_else(|| r[k].to_string(), str::to_string)).collect()
            })
            .collect();
        table(&titles.map(|(_, t)| t), &cells)
    })?;
    print!("{out}");
    Ok(0)
}

/// One line of `system df`, as Docker shows it: RECLAIMABLE with its
/// share of SIZE.
fn row(name: &str, k: &Kind) -> serde_json::Value {
    let percent = (k.reclaimable * 100).checked_div(k.size).unwrap_or(0);
    json!({
        "Type": name, "TotalCount": k.total.to_string(), "Active": k.active.to_string(),
        "Size": human_size(k.size), "Reclaimable": format!("{} ({percent}%)", human_size(k.reclaimable)),
    })
}

pub struct HostFacts {
    /// As `info` shows it ("1", "2", "1 and 2 (hybrid)").
    pub cgroup_version: &'static str,
    /// As `version` shows it ("v1", "v2", "v1 and v2 (hybrid)").
    pub cgroups: &'static str,
    pub kernel: String,
    os: String,
    cpus: usize,
    memory: u64,
}

pub fn host_facts() -> HostFacts {
    use crate::runtime::cgroups::{detect::Version, Host};
    let layout = Host::current().layout;
    let has = |v: Version| layout.hierarchies.iter().any(|h| h.version == v && !h.controllers.is_empty());
    let (cgroup_version, cgroups) = match (has(Version::V1), has(Version::V2)) {
        (true, true) => ("1 and 2 (hybrid)", "v1 and v2 (hybrid)"),
        (true, false) => ("1", "v1"),
        (false, true) => ("2", "v2"),
        (false, false) => ("none usable", "none usable"),
    };
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
    let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let os = os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| std::env::consts::OS.to_string());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    HostFacts { cgroup_version, cgroups, kernel, os, cpus, memory }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn df_rows_show_the_reclaimable_share() {
        let k = Kind { total: 3, active: 1, size: 4_000_000, reclaimable: 1_000_000 };
        let r = row("Images", &k);
        assert_eq!(r["Reclaimable"], "1MB (25%)");
        assert_eq!(
            (r["TotalCount"].as_str(), r["Active"].as_str(), r["Size"].as_str()),
            (Some("3"), Some("1"), Some("4MB"))
        );
        assert_eq!(row("Local Volumes", &Kind::default())["Reclaimable"], "0B (0%)");
    }
}
