//! `mini ps [-a] [-q] [--no-trunc] [--format json|TEMPLATE] [-f KEY=VALUE]`:
//! CONTAINER ID, IMAGE, COMMAND, CREATED, STATUS, NAMES, newest first.

use chrono::{DateTime, TimeZone, Utc};
use clap::Args as ClapArgs;
use mini_store::containers::{State, Status};
use serde_json::json;

use crate::cli::format::{ago, table};
use crate::cli::template::Format;
use crate::config::Config;
use crate::container;
use crate::container::record::Record;
use crate::error::{Error, Result};

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Show all containers (default: running only)
    #[arg(short, long)]
    pub all: bool,
    /// Show only container ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate ids and commands
    #[arg(long)]
    pub no_trunc: bool,
    /// table, json (one object per line) or a Go template ("{{.ID}} {{.Names}}", "table {{.ID}}\t{{.Status}}")
    #[arg(long)]
    pub format: Option<String>,
    /// Filter: status=created|running|paused|restarting|exited, name=SUBSTRING, id=PREFIX (repeatable)
    #[arg(short, long = "filter", value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
}

/// One listed container, every field `ps` can show.
struct Row {
    created: u64,
    id: String,
    image: String,
    command: String,
    created_at: String,
    running_for: String,
    state: &'static str,
    status: String,
    ports: String,
    name: String,
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    let filters = args.filter.iter().map(|f| parse_filter(f)).collect::<Result<Vec<_>>>()?;
    let format = Format::parse(args.format.as_deref())?;
    let store = mini_store::Store::open(&config.root)?;
    let cs = container::containers(&store)?;
    cs.sweep_tmp();
    crate::network::attach::sweep(&store);
    let networks = crate::network::records::read(&config.root).unwrap_or_default();
    let now = Utc::now();
    let mut rows = Vec::new();
    for id in cs.ids().unwrap_or_default() {
        let c = cs.get(&id);
        let Some(state) = c.state().ok().and_then(|s| container::settle_or_warn(&cs, &c, s)) else { continue };
        let state_name = state_name(&state);
        // Docker: -a, or any status filter, lists stopped containers too.
        let any_status = filters.iter().any(|(k, _)| k == "status");
        if !args.all && !any_status && state.status != Status::Running && !state.restarting {
            continue;
        }
        let Ok(cfg) = c.config() else { continue };
        if !filters.iter().all(|(k, v)| match k.as_str() {
            "status" => state_name == v,
            "name" => cfg.name.contains(v.as_str()),
            _ => id.starts_with(v.as_str()),
        }) {
            continue;
        }
        let record = Record::of(&c, &cfg).map_err(|e| eprintln!("mini: warning: {e}")).ok();
        let record_health = record.as_ref().is_some_and(|r| r.container.health.is_some());
        let image = record.as_ref().map_or_else(|| cfg.image.clone(), |r| r.container.image_ref.clone());
        let argv: Vec<String> = record
            .map(|r| r.process.argv.iter().map(|a| a.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        rows.push(Row {
            created: cfg.created_unix,
            id: if args.no_trunc { id.clone() } else { id[..12].to_string() },
            image,
            command: command(&argv, !args.no_trunc),
            created_at: unix(Some(cfg.created_unix))
                .map(|t| t.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string())
                .unwrap_or_default(),
            running_for: ago(unix(Some(cfg.created_unix)), now),
            state: state_name,
            status: {
                let health = record_health && state.status == Status::Running && !state.paused;
                status(&state, now) + &if health { container::health::ps_suffix(&c) } else { String::new() }
            },
            ports: {
                let maps: Vec<_> = networks.endpoints_of(&id).flat_map(|e| e.ports.iter().cloned()).collect();
                crate::network::ports::format_ps(&maps)
            },
            name: cfg.name.clone(),
        });
    }
    // Newest first, as Docker lists them.
    rows.sort_by_key(|r| std::cmp::Reverse(r.created));
    let out = if args.quiet {
        rows.iter().map(|r| format!("{}\n", r.id)).collect()
    } else {
        let json: Vec<serde_json::Value> = rows.iter().map(as_json).collect();
        format.render(&json, &TITLES, || {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let cells = [&r.id, &r.image, &r.command, &r.running_for, &r.status, &r.ports, &r.name];
                    cells.into_iter().cloned().collect()
                })
                .collect();
            table(&["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"], &cells)
        })?
    };
    print!("{out}");
    Ok(0)
}

fn parse_filter(text: &str) -> Result<(String, String)> {
    let bad = |why: &str| Error::new(format!("invalid filter \"{text}\"")).because(why.to_string());
    let (k, v) = text.split_once('=').ok_or_else(|| bad("expected KEY=VALUE"))?;
    match k {
        "status" if ["created", "running", "paused", "restarting", "exited"].contains(&v) => Ok((k.into(), v.into())),
        "status" => Err(bad("status is one of created, running, paused, restarting, exited")),
        "name" | "id" => Ok((k.into(), v.into())),
        _ => Err(bad("supported filters: status, name, id")),
    }
}

fn as_json(r: &Row) -> serde_json::Value {
    json!({
        "Command": r.command, "CreatedAt": r.created_at, "ID": r.id, "Image": r.image, "Names": r.name, "Ports": r.ports,
        "RunningFor": r.running_for, "State": r.state, "Status": r.status,
    })
}

/// Docker's column titles for `--format "table …"`.
const TITLES: [(&str, &str); 9] = [
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Names", "NAMES"),
];

fn unix(t: Option<u64>) -> Option<DateTime<Utc>> {
    t.and_then(|s| Utc.timestamp_opt(s as i64, 0).single())
}

/// Docker quotes the command and truncates it to 20 characters.
fn command(argv: &[String], truncate: bool) -> String {
    let full = argv.join(" ");
    let short: String = if truncate && full.chars().count() > 20 {
        full.chars().take(19).chain(std::iter::once('…')).collect()
    } else {
        full
    };
    format!("\"{short}\"")
}

fn state_name(state: &State) -> &'static str {
    match state.status {
        Status::Created => "created",
        Status::Running if state.paused => "paused",
        Status::Running => "running",
        Status::Exited if state.restarting => "restarting",
        Status::Exited => "exited",
    }
}

fn status(state: &State, now: DateTime<Utc>) -> String {
    let since = |t| ago(unix(t), now);
    match state.status {
        Status::Created => "Created".to_string(),
        Status::Running => {
            let paused = if state.paused { " (Paused)" } else { "" };
            format!("Up {}{paused}", since(state.started_at).trim_end_matches(" ago"))
        }
        Status::Exited if state.restarting => {
            format!("Restarting ({}) {}", state.exit_code.unwrap_or(-1), since(state.finished_at))
        }
        Status::Exited => format!("Exited ({}) {}", state.exit_code.unwrap_or(-1), since(state.finished_at)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_is_quoted_and_truncated() {
        assert_eq!(command(&["sh".into(), "-c".into(), "true".into()], true), "\"sh -c true\"");
        assert_eq!(command(&["/bin/echo".into(), "0123456789abcdef".into()], true), "\"/bin/echo 012345678…\"");
        assert_eq!(command(&["/bin/echo".into(), "0123456789abcdef".into()], false), "\"/bin/echo 0123456789abcdef\"");
    }

    #[test]
    fn status_reads_like_docker() {
        let now = Utc::now();
        let t = now.timestamp() as u64;
        let mut s = State::created();
        assert_eq!(status(&s, now), "Created");
        s.status = Status::Exited;
        s.exit_code = Some(3);
        s.finished_at = Some(t - 5);
        assert_eq!(status(&s, now), "Exited (3) 5 seconds ago");
        s.status = Status::Running;
        s.started_at = Some(t - 120);
        assert_eq!(status(&s, now), "Up 2 minutes");
        s.paused = true;
        assert_eq!((status(&s, now).as_str(), state_name(&s)), ("Up 2 minutes (Paused)", "paused"));
        s.status = Status::Exited;
        (s.paused, s.restarting) = (false, true);
        assert_eq!((status(&s, now).as_str(), state_name(&s)), ("Restarting (3) 5 seconds ago", "restarting"));
    }

    #[test]
    fn filters_and_templates() {
        assert_eq!(parse_filter("status=exited").unwrap(), ("status".into(), "exited".into()));
        assert!(parse_filter("status=sleeping").is_err());
        assert!(parse_filter("label=x").is_err());
        assert!(parse_filter("name").is_err());
        let r = Row {
            created: 0,
            id: "abc".into(),
            image: "busybox".into(),
            command: "\"sh\"".into(),
            created_at: String::new(),
            running_for: String::new(),
            state: "running",
            status: "Up 1 second".into(),
            ports: "0.0.0.0:8080->80/tcp".into(),
            name: "web".into(),
        };
        let show = |t: &str| Format::parse(Some(t)).unwrap().render(&[as_json(&r)], &TITLES, String::new).unwrap();
        assert_eq!(show("{{.ID}}\\t{{.Names}} {{.State}}"), "abc\tweb running\n");
        assert_eq!(show("{{.Ports}}"), "0.0.0.0:8080->80/tcp\n");
        assert_eq!(show("table {{.ID}}\\t{{.Status}}"), "CONTAINER ID   STATUS\nabc            Up 1 second\n");
        assert_eq!(as_json(&r)["Names"], "web");
    }
}
