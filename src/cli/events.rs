//! `mini events [--since T] [--until T] [-f KEY=VALUE] [--format json|TEMPLATE]`:
//! the recorded events from `--since`, then new ones as they happen, until
//! `--until` (without it, until interrupted), as `docker events` shows them.

use clap::Args as ClapArgs;

use crate::cli::template::Format;
use crate::config::Config;
use crate::container::events::{self, Event};
use crate::error::{Error, Result};

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Show events from this time (Unix seconds, RFC 3339, or a duration ago: 10m, 1h30m)
    #[arg(long)]
    pub since: Option<String>,
    /// Stop at this time (same forms); without it, follow new events
    #[arg(long)]
    pub until: Option<String>,
    /// Filter: type=container|image|network|volume, event=ACTION, container=NAME|ID, image=, network=, volume= (repeatable; the same key ORs, different keys AND)
    #[arg(short, long = "filter", value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// json (one object per line) or a Go template ("{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
    #[arg(long)]
    pub format: Option<String>,
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    let now = events::now_nanos();
    let time = |flag: &str, text: &Option<String>| -> Result<Option<i64>> {
        text.as_deref()
            .map(|t| {
                events::parse_time(t, now).ok_or_else(|| {
                    Error::new(format!("invalid {flag} \"{t}\""))
                        .because("expected Unix seconds, an RFC 3339 time or a duration such as 10m")
                })
            })
            .transpose()
    };
    let (since, until) = (time("--since", &args.since)?, time("--until", &args.until)?);
    let filters = args.filter.iter().map(|f| parse_filter(f)).collect::<Result<Vec<_>>>()?;
    let format = Format::parse(args.format.as_deref())?;
    // Without --since, only what happens from now on, as Docker.
    let (past, offset) = events::read(&config.root, since.unwrap_or(now), until);
    let show = |e: &Event| -> Result<()> {
        if matches(e, &filters) {
            let text = match &format {
                Format::Default => format!("{}\n", e.line()),
                f => f.render(&[serde_json::to_value(e).unwrap_or_default()], &[], String::new)?,
            };
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) ends the stream.
            if out.write_all(text.as_bytes()).and_then(|()| out.flush()).is_err() {
                return Err(Error::new("write events").because("standard output is closed"));
            }
        }
        Ok(())
    };
    if past.iter().any(|e| show(e).is_err()) {
        return Ok(0);
    }
    if until.is_some_and(|u| u <= now) {
        return Ok(0);
    }
    crate::sys::process::ignore_sigpipe();
    events::follow(&config.root, offset, until, |e| show(e).is_ok());
    Ok(0)
}

fn parse_filter(text: &str) -> Result<(String, String)> {
    let bad = |why: &str| Error::new(format!("invalid filter \"{text}\"")).because(why.to_string());
    let (k, v) = text.split_once('=').ok_or_else(|| bad("expected KEY=VALUE"))?;
    match k {
        "type" if ["container", "image", "network", "volume"].contains(&v) => Ok((k.into(), v.into())),
        "type" => Err(bad("type is one of container, image, network, volume")),
        "event" | "container" | "image" | "network" | "volume" => Ok((k.into(), v.into())),
        _ => Err(bad("supported filters: type, event, container, image, network, volume")),
    }
}

/// Docker's rule: filters with the same key match if any does; all keys must.
fn matches(e: &Event, filters: &[(String, String)]) -> bool {
    let one = |(k, v): &(String, String)| {
        let attr = |name: &str| e.actor.attributes.get(name).map(String::as_str);
        match k.as_str() {
            "type" => e.typ == *v,
            "event" => e.action == *v,
            "image" => attr("image") == Some(v) || (e.typ == "image" && (e.actor.id == *v || attr("name") == Some(v))),
            kind => e.typ == kind && (e.actor.id.starts_with(v.as_str()) || attr("name") == Some(v)),
        }
    };
    let mut keys: Vec<&String> = filters.iter().map(|(k, _)| k).collect();
    keys.dedup();
    keys.iter().all(|key| filters.iter().filter(|(k, _)| k == *key).any(one))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_as_docker_combines_them() {
        let start = Event::new("container", "start", "abc123", &[("name", "web"), ("image", "busybox")], 1);
        let vol = Event::new("volume", "create", "data", &[], 1);
        let f = |list: &[&str]| list.iter().map(|t| parse_filter(t).unwrap()).collect::<Vec<_>>();
        assert!(matches(&start, &f(&["type=container", "event=start"])));
        assert!(matches(&start, &f(&["event=die", "event=start"])), "same key: any");
        assert!(!matches(&start, &f(&["type=container", "event=die"])), "different keys: all");
        assert!(matches(&start, &f(&["container=web"])) && matches(&start, &f(&["container=abc"])));
        assert!(matches(&start, &f(&["image=busybox"])) && !matches(&vol, &f(&["image=busybox"])));
        assert!(matches(&vol, &f(&["volume=data"])) && !matches(&vol, &f(&["container=data"])));
        assert!(parse_filter("type=pod").is_err() && parse_filter("label=x").is_err() && parse_filter("x").is_err());
    }
}
