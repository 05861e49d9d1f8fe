//! The events `mini events` shows, in Docker's shape (`Type`, `Action`,
//! `Actor` with its `Attributes`, `time`, `timeNano`; `status`, `id` and
//! `from` too for containers and images, as Docker still writes them).
//! Whoever does the thing appends one JSON line to the store's
//! `events.log` with one `write(2)` on an `O_APPEND` descriptor, so lines
//! of concurrent minis never interleave; past 4 MiB the log is renamed to
//! `events.log.1` (the one older file kept). Recording an event never
//! fails the operation: a write that fails is reported as a warning.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use mini_store::containers::Container;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Where the log is rotated.
const LIMIT: u64 = 4 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub from: Option<String>,
    #[serde(rename = "Type")]
    pub typ: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: String,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

impl Event {
    pub fn new(typ: &str, action: &str, id: &str, attributes: &[(&str, &str)], time_nano: i64) -> Event {
        let attributes: BTreeMap<String, String> =
            attributes.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let old_style = typ == "container" || typ == "image";
        Event {
            status: old_style.then(|| action.to_string()),
            id: old_style.then(|| id.to_string()),
            from: (typ == "container").then(|| attributes.get("image").cloned()).flatten(),
            typ: typ.into(),
            action: action.into(),
            actor: Actor { id: id.into(), attributes },
            scope: "local".into(),
            time: time_nano.div_euclid(1_000_000_000),
            time_nano,
        }
    }

    /// Docker's line: `TIME TYPE ACTION ID (k=v, …)`.
    pub fn line(&self) -> String {
        let when = chrono::DateTime::from_timestamp_nanos(self.time_nano);
        let attrs: Vec<String> = self.actor.attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut out =
            format!("{} {} {} {}", when.format("%Y-%m-%dT%H:%M:%S%.9fZ"), self.typ, self.action, self.actor.id);
        if !attrs.is_empty() {
            out.push_str(&format!(" ({})", attrs.join(", ")));
        }
        out
    }
}

pub fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
}

pub fn log_path(root: &Path) -> PathBuf {
    root.join(mini_store::EVENTS_LOG)
}

/// Record an event under store `root` (a warning if it cannot be written).
pub fn emit(root: &Path, typ: &str, action: &str, id: &str, attributes: &[(&str, &str)]) {
    let event = Event::new(typ, action, id, attributes, now_nanos());
    if let Err(e) = append(root, &event) {
        eprintln!("mini: warning: {e}");
    }
}

/// A container event, with its name and image (and `extra`) as attributes.
pub fn container(c: &Container, action: &str, extra: &[(&str, &str)]) {
    Named::of(c).emit(c, action, extra);
}

/// `destroy` of `c` once `remove` succeeded (its name and image are read
/// before, while its record still exists).
pub fn destroying<T, E>(
    c: &Container,
    remove: impl FnOnce() -> std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    let named = Named::of(c);
    let removed = remove();
    if removed.is_ok() {
        named.emit(c, "destroy", &[]);
    }
    removed
}

/// What a container event names it by.
struct Named {
    name: String,
    image: String,
}

impl Named {
    fn of(c: &Container) -> Named {
        let cfg = c.config().ok();
        let (name, image) = cfg.map_or((String::new(), String::new()), |cfg| (cfg.name, cfg.image));
        Named { name, image }
    }

    fn emit(&self, c: &Container, action: &str, extra: &[(&str, &str)]) {
        let mut attrs = vec![("image", self.image.as_str()), ("name", self.name.as_str())];
        attrs.extend_from_slice(extra);
        emit(c.store_root(), "container", action, &c.id, &attrs);
    }
}

fn append(root: &Path, event: &Event) -> Result<()> {
    let path = log_path(root);
    let what = || format!("record event {} {} in {}", event.typ, event.action, path.display());
    let mut line = serde_json::to_vec(event).map_err(|e| Error::new(what()).because(e))?;
    line.push(b'\n');
    let open = || std::fs::OpenOptions::new().append(true).create(true).mode(0o600).open(&path);
    let mut file = open().map_err(|e| Error::new(what()).because(e))?;
    if file.metadata().is_ok_and(|m| m.len() > LIMIT) {
        // Whoever renames first rotates; a writer that still holds the old
        // file lands its line there, which `read` also reads.
        let _ = std::fs::rename(&path, root.join(mini_store::EVENTS_LOG_OLD));
        file = open().map_err(|e| Error::new(what()).because(e))?;
    }
    file.write_all(&line).map_err(|e| Error::new(what()).because(e))
}

/// Every recorded event from `since` to `until` (nanoseconds), oldest
/// first, with the log's length when read (where `follow` goes on).
pub fn read(root: &Path, since: i64, until: Option<i64>) -> (Vec<Event>, u64) {
    let mut out = Vec::new();
    let mut end = 0;
    for name in [mini_store::EVENTS_LOG_OLD, mini_store::EVENTS_LOG] {
        let Ok(file) = std::fs::File::open(root.join(name)) else { continue };
        end = file.metadata().map_or(0, |m| m.len());
        out.extend(parse(std::io::BufReader::new(file)).filter(|e| in_range(e, since, until)));
    }
    out.sort_by_key(|e| e.time_nano);
    (out, end)
}

fn in_range(e: &Event, since: i64, until: Option<i64>) -> bool {
    e.time_nano >= since && until.is_none_or(|u| e.time_nano <= u)
}

/// The complete lines of a log (a torn last line of a crashed writer, or
/// a line of a future format, is skipped).
fn parse(r: impl BufRead) -> impl Iterator<Item = Event> {
    r.lines().map_while(|l| l.ok()).filter_map(|l| serde_json::from_str(&l).ok())
}

/// New events as they are recorded, from byte `offset` of the log on,
/// until `until` passes or `f` returns false; polls every 100 ms and
/// starts over on a rotated log.
pub fn follow(root: &Path, mut offset: u64, until: Option<i64>, mut f: impl FnMut(&Event) -> bool) {
    use std::io::{Read, Seek, SeekFrom};
    let path = log_path(root);
    let mut pending = Vec::new();
    loop {
        if until.is_some_and(|u| now_nanos() > u) {
            return;
        }
        if let Ok(mut file) = std::fs::File::open(&path) {
            let len = file.metadata().map_or(0, |m| m.len());
            if len < offset {
                (offset, pending) = (0, Vec::new());
            }
            if len > offset && file.seek(SeekFrom::Start(offset)).is_ok() {
                let mut chunk = Vec::new();
                if let Ok(n) = file.read_to_end(&mut chunk) {
                    offset += n as u64;
                    pending.extend_from_slice(&chunk);
                    while let Some(at) = pending.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = pending.drain(..=at).collect();
                        let Ok(e) = serde_json::from_slice::<Event>(&line) else { continue };
                        if until.is_none_or(|u| e.time_nano <= u) && !f(&e) {
                            return;
                        }
                    }
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// `--since`/`--until` as Docker takes them (as `logs --since`): a Unix
/// time, an RFC 3339 time, or a duration before `now`; nanoseconds.
pub fn parse_time(text: &str, now: i64) -> Option<i64> {
    let now = chrono::DateTime::from_timestamp_nanos(now);
    super::logs::parse_since(text, now).ok().and_then(|t| t.timestamp_nanos_opt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_read_in_time_order_across_the_rotation() {
        let d = tempfile::tempdir().unwrap();
        let a = Event::new("container", "start", "abc", &[("name", "web"), ("image", "busybox")], 2_000);
        let b = Event::new("volume", "create", "data", &[], 1_000);
        append(d.path(), &a).unwrap();
        std::fs::rename(log_path(d.path()), d.path().join(mini_store::EVENTS_LOG_OLD)).unwrap();
        append(d.path(), &b).unwrap();
        // A torn line of a crashed writer is skipped.
        std::fs::OpenOptions::new().append(true).open(log_path(d.path())).unwrap().write_all(b"{\"Type\":").unwrap();
        let (all, _) = read(d.path(), 0, None);
        assert_eq!(all, vec![b.clone(), a.clone()]);
        assert_eq!(read(d.path(), 1_500, None).0, vec![a.clone()]);
        assert_eq!(read(d.path(), 0, Some(1_500)).0, vec![b.clone()]);
        assert_eq!(
            (a.status.as_deref(), a.from.as_deref(), b.status.as_deref()),
            (Some("start"), Some("busybox"), None)
        );
        assert_eq!(a.line(), "1970-01-01T00:00:00.000002000Z container start abc (image=busybox, name=web)");
    }

    #[test]
    fn times_as_docker_takes_them() {
        let now = 10_000 * 1_000_000_000;
        assert_eq!(parse_time("1700000000", now), Some(1_700_000_000_000_000_000));
        assert_eq!(parse_time("1700000000.5", now), Some(1_700_000_000_500_000_000));
        assert_eq!(parse_time("2026-12-07T10:00:00Z", now), Some(1_796_637_600_000_000_000));
        assert_eq!(parse_time("10m", now), Some(now - 600_000_000_000));
        assert_eq!(parse_time("1h30m", now), Some(now - 5_400_000_000_000));
        assert_eq!(parse_time("250ms", now), Some(now - 250_000_000));
        assert_eq!(parse_time("0s", now), Some(now));
        for bad in ["", "soon", "m", "5d", "10m5"] {
            assert_eq!(parse_time(bad, now), None, "{bad}");
        }
    }
}
