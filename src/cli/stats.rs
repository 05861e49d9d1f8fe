//! `mini stats [--no-stream] [--format json|TEMPLATE] [CONTAINER...]`: CPU %, memory
//! usage / limit, memory %, PIDs of running containers, like `docker
//! stats`. CPU % needs two readings, so each round samples, waits, samples
//! again. Without `--no-stream` the table is redrawn every round until no
//! listed container is running.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args as ClapArgs;
use mini_store::containers::Status;
use serde_json::json;

use crate::cli::format::table;
use crate::cli::template::Format;
use crate::config::Config;
use crate::container;
use crate::container::record::Record;
use crate::error::{Error, Result};
use crate::runtime::cgroups::stats::{self, Sample};

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Print one reading and exit
    #[arg(long)]
    pub no_stream: bool,
    /// table (default), json (one object per line) or a Go template ("{{.Name}} {{.CPUPerc}}")
    #[arg(long)]
    pub format: Option<String>,
    /// Containers (default: all running)
    pub containers: Vec<String>,
}

/// A running container to watch.
struct Watched {
    id: String,
    name: String,
    pid: i32,
    cgroups: Vec<PathBuf>,
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    let format = Format::parse(args.format.as_deref())?;
    let store = mini_store::Store::open(&config.root)?;
    container::sweep_stale(&store);
    let host_mem = host_memory();
    let interval = Duration::from_millis(if args.no_stream { 500 } else { 1000 });
    let mut first = true;
    loop {
        // Named containers must run when stats starts; later, those that
        // ended just drop out, and stats ends with the last one.
        let watched = running(&store, &args.containers, first)?;
        first = false;
        if watched.is_empty() && !args.no_stream {
            return Ok(0);
        }
        let before: Vec<Sample> = watched.iter().map(|w| stats::sample(&w.cgroups)).collect();
        let start = Instant::now();
        std::thread::sleep(interval);
        let elapsed = start.elapsed().as_nanos() as u64;
        let rows: Vec<Row> = watched
            .iter()
            .zip(&before)
            .filter(|(w, _)| crate::sys::process::alive(w.pid))
            .map(|(w, b)| Row::of(w, b, &stats::sample(&w.cgroups), elapsed, host_mem))
            .collect();
        if rows.is_empty() && !args.no_stream {
            return Ok(0);
        }
        if !args.no_stream && !matches!(format, Format::Json) {
            print!("\x1b[2J\x1b[H"); // redraw in place, as docker stats does
        }
        print!("{}", render(&rows, &format)?);
        if args.no_stream {
            return Ok(0);
        }
    }
}

/// The containers to show: those named (each must be running), or all
/// running ones. A foreground `mini run` counts while its state says running
/// and its owner lives.
fn running(store: &mini_store::Store, keys: &[String], strict: bool) -> Result<Vec<Watched>> {
    let cs = container::containers(store)?;
    let candidates = if keys.is_empty() {
        cs.ids().unwrap_or_default().into_iter().map(|id| cs.get(&id)).collect()
    } else {
        let mut found = Vec::new();
        for k in keys {
            match cs.find(k) {
                Ok(c) => found.push(c),
                Err(_) if !strict => {} // removed meanwhile
                Err(e) => return Err(Error::new(format!("stats {k}")).because(e)),
            }
        }
        found
    };
    let mut out = Vec::new();
    for c in candidates {
        let (Ok(cfg), Ok(state)) = (c.config(), c.state()) else { continue };
        let live = state.status == Status::Running && container::state::owner_alive(&state);
        match (live, state.pid) {
            (true, Some(pid)) => {
                let cgroups = Record::of(&c, &cfg)?.container.cgroups.dirs();
                if cgroups.is_empty() {
                    let err = Error::new(format!("stats {}", cfg.name))
                        .because("it runs without cgroups of its own, so mini cannot measure it")
                        .hint("rootless containers get cgroups only on cgroup v2 with a delegated subtree");
                    if !keys.is_empty() {
                        return Err(err);
                    }
                    eprintln!("mini: {err}");
                    continue;
                }
                out.push(Watched { id: c.id.clone(), name: cfg.name, pid, cgroups });
            }
            _ if strict && !keys.is_empty() => {
                return Err(Error::new(format!("stats {}", cfg.name)).because("the container is not running"))
            }
            _ => {}
        }
    }
    Ok(out)
}

struct Row {
    id: String,
    name: String,
    cpu: f64,
    usage: u64,
    limit: u64,
    pids: u64,
}

impl Row {
    fn of(w: &Watched, before: &Sample, after: &Sample, elapsed_ns: u64, host_mem: u64) -> Row {
        Row {
            id: w.id[..12].to_string(),
            name: w.name.clone(),
            cpu: stats::cpu_percent(before, after, elapsed_ns),
            usage: after.mem_usage.unwrap_or(0),
            // Unlimited shows the host's memory, as Docker does.
            limit: after.mem_limit.unwrap_or(host_mem).min(host_mem.max(1)),
            pids: after.pids.unwrap_or(0),
        }
    }

    fn mem_percent(&self) -> f64 {
        if self.limit == 0 {
            0.0
        } else {
            self.usage as f64 / self.limit as f64 * 100.0
        }
    }
}

/// Docker's column titles for `--format "table …"`.
const TITLES: [(&str, &str); 7] = [
    ("ID", "CONTAINER ID"),
    ("Container", "CONTAINER"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("PIDs", "PIDS"),
];

fn render(rows: &[Row], format: &Format) -> Result<String> {
    let mem = |r: &Row| format!("{} / {}", stats::human(r.usage), stats::human(r.limit));
    let json: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            json!({
                "ID": r.id, "Container": r.id, "Name": r.name,
                "CPUPerc": format!("{:.2}%", r.cpu), "MemUsage": mem(r),
                "MemPerc": format!("{:.2}%", r.mem_percent()), "PIDs": r.pids.to_string(),
            })
        })
        .collect();
    format.render(&json, &TITLES, || {
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.id.clone(),
                    r.name.clone(),
                    format!("{:.2}%", r.cpu),
                    mem(r),
                    format!("{:.2}%", r.mem_percent()),
                    r.pids.to_string(),
                ]
            })
            .collect();
        table(&["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS"], &cells)
    })
}

/// MemTotal from /proc/meminfo, in bytes.
fn host_memory() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_render_as_docker_stats() {
        let r =
            Row { id: "0123456789ab".into(), name: "web".into(), cpu: 49.5, usage: 8 << 20, limit: 16 << 20, pids: 3 };
        let t = render(std::slice::from_ref(&r), &Format::Default).unwrap();
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("CONTAINER ID   NAME   CPU %"), "{t}");
        assert!(lines[1].contains("49.50%") && lines[1].contains("8MiB / 16MiB") && lines[1].contains("50.00%"), "{t}");
        let j: serde_json::Value = serde_json::from_str(render(&[r], &Format::Json).unwrap().trim()).unwrap();
        assert_eq!(
            (j["Name"].as_str(), j["PIDs"].as_str(), j["MemPerc"].as_str()),
            (Some("web"), Some("3"), Some("50.00%"))
        );
    }
}
