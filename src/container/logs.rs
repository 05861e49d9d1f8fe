//! Container logs: `containers/<id>/log`, written by the container's
//! monitor, one JSON object per line as Docker's json-file driver writes
//! them: `{"log":"hello\n","stream":"stdout","time":"2026-…Z"}` (time in
//! RFC 3339 with nanoseconds, UTC). A line is logged when its newline
//! arrives; a partial line is logged as is (no "\n") when it reaches
//! [`MAX_LINE`] bytes or the stream ends. Bytes that are not UTF-8 are
//! replaced (U+FFFD), as Docker does. Readers parse complete lines only,
//! so a line being appended is never read half.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use mini_store::containers::Container;

use crate::error::{Error, Result};

/// Docker's json-file driver splits lines at 16 KiB.
pub const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// Appends a container's output to its log.
pub struct Writer {
    file: File,
    partial: [Vec<u8>; 2],
}

impl Writer {
    pub fn open(path: &Path) -> Result<Writer> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::new(format!("open log {}", path.display())).because(e))?;
        Ok(Writer { file, partial: [Vec::new(), Vec::new()] })
    }

    /// Log the complete lines in `bytes` (after what is pending from before).
    pub fn write(&mut self, stream: Stream, bytes: &[u8]) {
        let now = Utc::now();
        let pending = &mut self.partial[stream as usize];
        pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut start = 0;
        while let Some(nl) = pending[start..].iter().position(|&b| b == b'\n') {
            let end = start + nl + 1;
            out.extend(encode(stream, &pending[start..end], now));
            start = end;
        }
        while pending.len() - start >= MAX_LINE {
            out.extend(encode(stream, &pending[start..start + MAX_LINE], now));
            start += MAX_LINE;
        }
        pending.drain(..start);
        // A full disk loses log lines, never the container.
        let _ = self.file.write_all(&out);
    }

    /// Log what is left of unfinished lines (the streams ended).
    pub fn flush(&mut self) {
        let now = Utc::now();
        for stream in [Stream::Stdout, Stream::Stderr] {
            let pending = std::mem::take(&mut self.partial[stream as usize]);
            if !pending.is_empty() {
                let _ = self.file.write_all(&encode(stream, &pending, now));
            }
        }
    }
}

fn encode(stream: Stream, line: &[u8], now: DateTime<Utc>) -> Vec<u8> {
    let e = Entry {
        log: String::from_utf8_lossy(line).into_owned(),
        stream: stream.name().to_string(),
        time: now.to_rfc3339_opts(SecondsFormat::Nanos, true),
    };
    let mut v = serde_json::to_vec(&e).unwrap_or_default();
    v.push(b'\n');
    v
}

/// The complete entries in `bytes` and how many bytes they span (a
/// trailing partial line is left for the next read). Damaged lines are
/// skipped.
pub fn parse(bytes: &[u8]) -> (Vec<Entry>, usize) {
    let end = bytes.iter().rposition(|&b| b == b'\n').map(|i| i + 1).unwrap_or(0);
    let entries = bytes[..end]
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect();
    (entries, end)
}

/// What `mini logs` shows.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub tail: Option<usize>,
    pub since: Option<DateTime<Utc>>,
    pub timestamps: bool,
}

/// Parse `--since`: an RFC 3339 time, Unix seconds, or a duration before
/// now ("10s", "5m", "1h30m"), as Docker accepts.
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let bad = || {
        Error::new(format!("invalid --since \"{text}\""))
            .because("expected a time (RFC 3339 or Unix seconds) or a duration like 10m")
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(secs) = text.parse::<f64>() {
        let nanos = (secs * 1e9) as i64;
        return Ok(DateTime::from_timestamp_nanos(nanos));
    }
    let d = parse_duration(text).ok_or_else(bad)?;
    Ok(now - d)
}

/// Go's duration syntax, units h, m, s, ms.
fn parse_duration(text: &str) -> Option<chrono::Duration> {
    let mut total = 0f64;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return None,
        };
        total += n * scale;
        rest = &rest[unit_len..];
    }
    Some(chrono::Duration::milliseconds((total * 1000.0) as i64))
}

/// Parse `--tail`: "all" or a count.
pub fn parse_tail(text: &str) -> Result<Option<usize>> {
    if text == "all" {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| Error::new(format!("invalid --tail \"{text}\"")).because("expected a number or \"all\""))
}

/// Entries `filter` selects, in order.
pub fn select<'a>(entries: &'a [Entry], filter: &Filter) -> Vec<&'a Entry> {
    let since_ok = |e: &Entry| match filter.since {
        Some(s) => DateTime::parse_from_rfc3339(&e.time).map(|t| t.with_timezone(&Utc) > s).unwrap_or(true),
        None => true,
    };
    let picked: Vec<&Entry> = entries.iter().filter(|e| since_ok(e)).collect();
    match filter.tail {
        Some(n) if n < picked.len() => picked[picked.len() - n..].to_vec(),
        _ => picked,
    }
}

/// Write entries to stdout or stderr as their stream says.
pub fn print(entries: &[&Entry], timestamps: bool) {
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    for e in entries {
        let w: &mut dyn Write = if e.stream == "stderr" { &mut err } else { &mut out };
        let _ = if timestamps { write!(w, "{} {}", e.time, e.log) } else { write!(w, "{}", e.log) };
    }
    let _ = out.flush();
}

/// A log read from where the last read stopped (for `logs -f`).
pub struct Tail {
    file: File,
    offset: u64,
}

impl Tail {
    /// The log read from byte `offset` (0: the whole log).
    pub fn open(path: &Path, offset: u64) -> Result<Tail> {
        let file = File::open(path).map_err(|e| Error::new(format!("read log {}", path.display())).because(e))?;
        Ok(Tail { file, offset })
    }

    /// The complete entries appended since the last call.
    pub fn read_new(&mut self) -> Vec<Entry> {
        let mut buf = Vec::new();
        if self.file.seek(SeekFrom::Start(self.offset)).is_err() || self.file.read_to_end(&mut buf).is_err() {
            return Vec::new();
        }
        let (entries, used) = parse(&buf);
        self.offset += used as u64;
        entries
    }
}

/// The log's current length: where a follower that wants only new
/// output starts.
pub fn end_of(c: &Container) -> u64 {
    std::fs::metadata(c.log()).map(|m| m.len()).unwrap_or(0)
}

/// Print new entries as they are appended until the container no longer
/// runs (then what it wrote last). The monitor creates the log when the
/// container starts, so a follower may arrive before it exists. Between
/// reads `idle` runs (it waits: a sleep, or `attach` forwarding input).
pub fn follow(c: &Container, mut tail: Option<Tail>, filter: &Filter, idle: &mut dyn FnMut()) {
    let since_only = Filter { tail: None, ..filter.clone() };
    loop {
        let running = c.state().is_ok_and(|s| super::state::is_running(&s));
        if tail.is_none() {
            tail = Tail::open(&c.log(), 0).ok();
        }
        if let Some(t) = tail.as_mut() {
            let entries = t.read_new();
            print(&select(&entries, &since_only), filter.timestamps);
        }
        if !running {
            return;
        }
        idle();
    }
}

/// How long a follower waits between reads of the log.
pub const FOLLOW_INTERVAL: std::time::Duration = std::time::Duration::from_millis(50);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_logged_whole_with_their_stream() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("log");
        let mut w = Writer::open(&path).unwrap();
        w.write(Stream::Stdout, b"hel");
        w.write(Stream::Stderr, b"oops\n");
        w.write(Stream::Stdout, b"lo\nworld\npart");
        w.flush();
        let (entries, used) = parse(&std::fs::read(&path).unwrap());
        assert_eq!(used as u64, std::fs::metadata(&path).unwrap().len());
        let got: Vec<(&str, &str)> = entries.iter().map(|e| (e.stream.as_str(), e.log.as_str())).collect();
        assert_eq!(got, vec![("stderr", "oops\n"), ("stdout", "hello\n"), ("stdout", "world\n"), ("stdout", "part")]);
        assert!(entries[0].time.ends_with('Z') && entries[0].time.len() == 30, "{}", entries[0].time);
    }

    #[test]
    fn long_lines_split_and_partial_lines_wait() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("log");
        let mut w = Writer::open(&path).unwrap();
        w.write(Stream::Stdout, &vec![b'x'; MAX_LINE + 10]);
        let (entries, _) = parse(&std::fs::read(&path).unwrap());
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].log.len(), MAX_LINE);
        let (none, used) = parse(b"{\"log\":\"a\"");
        assert!(none.is_empty() && used == 0);
    }

    #[test]
    fn since_and_tail_select() {
        let now = DateTime::parse_from_rfc3339("2026-01-10T12:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(parse_since("90s", now).unwrap().to_rfc3339(), "2026-01-10T11:58:30+00:00");
        assert_eq!(parse_since("1h30m", now).unwrap().to_rfc3339(), "2026-01-10T10:30:00+00:00");
        assert_eq!(parse_since("2026-01-10T11:00:00Z", now).unwrap().to_rfc3339(), "2026-01-10T11:00:00+00:00");
        assert_eq!(parse_since("0", now).unwrap().timestamp(), 0);
        assert!(parse_since("soon", now).is_err());
        assert_eq!(parse_tail("all").unwrap(), None);
        assert!(parse_tail("x").is_err());
        let e = |t: &str, l: &str| Entry { log: l.into(), stream: "stdout".into(), time: t.into() };
        let entries =
            vec![e("2026-01-10T11:00:00Z", "a"), e("2026-01-10T11:30:00Z", "b"), e("2026-01-10T11:45:00Z", "c")];
        let f = Filter { tail: Some(2), since: None, timestamps: false };
        assert_eq!(select(&entries, &f).iter().map(|e| e.log.as_str()).collect::<String>(), "bc");
        let f = Filter { tail: None, since: Some(parse_since("20m", now).unwrap()), timestamps: false };
        assert_eq!(select(&entries, &f).iter().map(|e| e.log.as_str()).collect::<String>(), "c");
    }
}
