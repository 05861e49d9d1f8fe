//! `mini ps [-a] [-q]`: CONTAINER ID, IMAGE, COMMAND, CREATED, STATUS, NAMES.

use chrono::{DateTime, TimeZone, Utc};
use clap::Args as ClapArgs;
use mini_store::containers::{State, Status};

use crate::cli::format::{ago, table};
use crate::config::Config;
use crate::container;
use crate::error::Result;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Show all containers (default: running only)
    #[arg(short, long)]
    pub all: bool,
    /// Show only container ids
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    let store = mini_store::Store::open(&config.root)?;
    container::sweep_stale(&store);
    let cs = container::containers(&store)?;
    let now = Utc::now();
    let mut rows = Vec::new();
    let mut listed = Vec::new();
    for id in cs.ids().unwrap_or_default() {
        let c = cs.get(&id);
        let (Ok(cfg), Ok(state)) = (c.config(), c.state()) else { continue };
        if !args.all && state.status != Status::Running {
            continue;
        }
        listed.push((cfg.created_unix, id.clone()));
        let spec = container::spec_of(&c);
        rows.push((
            cfg.created_unix,
            vec![
                id[..12].to_string(),
                cfg.image.clone(),
                command(&spec.argv),
                ago(unix(Some(cfg.created_unix)), now),
                status(&state, now),
                cfg.name.clone(),
            ],
        ));
    }
    // Newest first, as Docker lists them.
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    if args.quiet {
        for (_, r) in &rows {
            println!("{}", r[0]);
        }
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = rows.into_iter().map(|(_, r)| r).collect();
    print!("{}", table(&["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"], &rows));
    Ok(0)
}

fn unix(t: Option<u64>) -> Option<DateTime<Utc>> {
    t.and_then(|s| Utc.timestamp_opt(s as i64, 0).single())
}

/// Docker quotes the command and truncates it to 20 characters.
fn command(argv: &[String]) -> String {
    let full = argv.join(" ");
    let short: String = if full.chars().count() > 20 {
        full.chars().take(19).chain(std::iter::once('…')).collect()
    } else {
        full
    };
    format!("\"{short}\"")
}

fn status(state: &State, now: DateTime<Utc>) -> String {
    let since = |t| ago(unix(t), now);
    match state.status {
        Status::Created => "Created".to_string(),
        Status::Running => format!("Up {}", since(state.started_at).trim_end_matches(" ago")),
        Status::Exited => format!("Exited ({}) {}", state.exit_code.unwrap_or(-1), since(state.finished_at)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_is_quoted_and_truncated() {
        assert_eq!(command(&["sh".into(), "-c".into(), "true".into()]), "\"sh -c true\"");
        assert_eq!(command(&["/bin/echo".into(), "0123456789abcdef".into()]), "\"/bin/echo 012345678…\"");
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
    }
}
