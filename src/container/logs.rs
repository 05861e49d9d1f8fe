//! Container logs: `containers/<id>/log`, written by the container's
//! monitor, one JSON object per line as Docker's json-file driver writes
//! them: `{"log":"hello\n","stream":"stdout","time":"2026-…Z"}` (time in
//! RFC 3339 with nanoseconds, UTC). A line is logged when its newline
//! arrives; a partial line is logged as is (no "\n") when it reaches
//! [`MAX_LINE`] bytes or the stream ends. Bytes that are not UTF-8 are
//! replaced (U+FFFD), as Docker does. Readers parse complete lines only,
//! so a line being appended is never read half.
//!
//! Rotation (`--log-opt max-size=10m --log-opt max-file=3`, as Docker's
//! json-file): before a write, a log of max-size or more becomes `log.1`
//! (`log.1` → `log.2`, …, the oldest beyond max-file − 1 dropped; with
//! max-file 1 the log is emptied) and a new `log` starts. Readers go
//! through the rotated files oldest first, then `log`; a follower whose
//! file was rotated away reads it to its end, then the new one.
//! `--log-driver none` writes nothing, and `logs` says it cannot read.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

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

/// `--log-driver` and `--log-opt`, decided at create.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogConfig {
    /// `--log-driver none`: nothing is logged.
    #[serde(default)]
    pub none: bool,
    /// Rotate once the log has this many bytes.
    #[serde(default)]
    pub max_size: Option<u64>,
    /// How many files at most, the current one included (default 1).
    #[serde(default)]
    pub max_file: Option<u32>,
}

impl LogConfig {
    /// Docker's `--log-driver json-file|none` and json-file's `--log-opt
    /// max-size=SIZE`, `max-file=N`.
    pub fn parse(driver: Option<&str>, opts: &[String]) -> Result<LogConfig> {
        let mut cfg = LogConfig::default();
        match driver {
            None | Some("json-file") | Some("") => {}
            Some("none") => cfg.none = true,
            Some(d) => {
                return Err(Error::new(format!("invalid --log-driver \"{d}\"")).because("supported: json-file, none"))
            }
        }
        for o in opts {
            let bad = |why: &str| Error::new(format!("invalid --log-opt \"{o}\"")).because(why.to_string());
            if cfg.none {
                return Err(bad("the none log driver takes no options"));
            }
            match o.split_once('=') {
                Some(("max-size", v)) => match crate::runtime::cgroups::limits::parse_size(v) {
                    Some(n) if n > 0 => cfg.max_size = Some(n),
                    _ => return Err(bad("expected a size like 10m or 1g")),
                },
                Some(("max-file", v)) => match v.parse::<u32>() {
                    Ok(n) if n >= 1 => cfg.max_file = Some(n),
                    _ => return Err(bad("expected a count of at least 1")),
                },
                _ => return Err(bad("unknown log opt for the json-file driver (supported: max-size, max-file)")),
            }
        }
        if cfg.max_file.is_some_and(|n| n > 1) && cfg.max_size.is_none() {
            return Err(Error::new("invalid --log-opt max-file").because("max-file needs max-size"));
        }
        Ok(cfg)
    }
}

impl LogConfig {
    /// The flags over the config file's defaults: its options apply only
    /// to its own driver (as Docker's daemon.json `log-opts`), and a flag
    /// for the same option wins.
    pub fn of(config: &crate::config::Config, driver: Option<&str>, opts: &[String]) -> Result<LogConfig> {
        let same_driver = driver.is_none() || driver == config.log_driver.as_deref().or(Some("json-file"));
        let mut all: Vec<String> = if same_driver { config.log_opts.clone() } else { Vec::new() };
        all.extend(opts.iter().cloned());
        LogConfig::parse(driver.or(config.log_driver.as_deref()), &all)
    }
}

/// Rotated log number `n` beside `path` (`log.1`, `log.2`, …).
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{n}"));
    path.with_file_name(name)
}

/// Appends a container's output to its log.
pub struct Writer {
    file: File,
    partial: [Vec<u8>; 2],
    path: PathBuf,
    size: u64,
    max_size: Option<u64>,
    max_file: u32,
}

impl Writer {
    /// The log at `path`, never rotated.
    pub fn open(path: &Path) -> Result<Writer> {
        Writer::with(path, &LogConfig::default())
    }

    /// The log at `path`, rotated as `cfg` says.
    pub fn with(path: &Path, cfg: &LogConfig) -> Result<Writer> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::new(format!("open log {}", path.display())).because(e))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let (max_size, max_file) = (cfg.max_size, cfg.max_file.unwrap_or(1).max(1));
        Ok(Writer { file, partial: [Vec::new(), Vec::new()], path: path.to_path_buf(), size, max_size, max_file })
    }

    /// Append `bytes`, rotating first when the log is full.
    fn append(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.max_size.is_some_and(|max| self.size >= max) {
            self.rotate();
        }
        // A full disk loses log lines, never the container.
        if self.file.write_all(bytes).is_ok() {
            self.size += bytes.len() as u64;
        }
    }

    fn rotate(&mut self) {
        if self.max_file > 1 {
            for n in (1..self.max_file - 1).rev() {
                let _ = std::fs::rename(rotated(&self.path, n), rotated(&self.path, n + 1));
            }
            let _ = std::fs::rename(&self.path, rotated(&self.path, 1));
        } else {
            let _ = std::fs::remove_file(&self.path);
        }
        let reopened = std::fs::OpenOptions::new().create(true).append(true).open(&self.path);
        if let Ok(f) = reopened {
            (self.file, self.size) = (f, 0);
        }
    }

    /// Log the complete lines in `bytes` (after what is pending from before).
    pub fn write(&mut self, stream: Stream, bytes: &[u8]) {
        let now = Utc::now();
        let mut pending = std::mem::take(&mut self.partial[stream as usize]);
        pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut start = 0;
        let line = |w: &mut Writer, out: &mut Vec<u8>, text: &[u8]| {
            let entry = encode(stream, text, now);
            // With rotation, a batch never runs past max-size: what is
            // gathered goes out first, and the next entry may rotate.
            if w.max_size.is_some_and(|max| w.size + (out.len() + entry.len()) as u64 > max) {
                w.append(out);
                out.clear();
            }
            out.extend(entry);
        };
        while let Some(nl) = pending[start..].iter().position(|&b| b == b'\n') {
            let end = start + nl + 1;
            line(self, &mut out, &pending[start..end]);
            start = end;
        }
        while pending.len() - start >= MAX_LINE {
            line(self, &mut out, &pending[start..start + MAX_LINE]);
            start += MAX_LINE;
        }
        pending.drain(..start);
        self.partial[stream as usize] = pending;
        self.append(&out);
    }

    /// Log what is left of unfinished lines (the streams ended).
    pub fn flush(&mut self) {
        let now = Utc::now();
        for stream in [Stream::Stdout, Stream::Stderr] {
            let pending = std::mem::take(&mut self.partial[stream as usize]);
            if !pending.is_empty() {
                self.append(&encode(stream, &pending, now));
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
pub fn parse_duration(text: &str) -> Option<chrono::Duration> {
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
    path: PathBuf,
    offset: u64,
}

impl Tail {
    /// The log read from byte `offset` (0: the whole log).
    pub fn open(path: &Path, offset: u64) -> Result<Tail> {
        let file = File::open(path).map_err(|e| Error::new(format!("read log {}", path.display())).because(e))?;
        Ok(Tail { file, path: path.to_path_buf(), offset })
    }

    /// The complete entries appended since the last call; when the log
    /// was rotated meanwhile, the rest of the old file, then the new one.
    pub fn read_new(&mut self) -> Vec<Entry> {
        let mut entries = self.read_file();
        let ino = |f: &File| f.metadata().map(|m| m.ino()).ok();
        let now = std::fs::metadata(&self.path).map(|m| m.ino()).ok();
        if now.is_some() && now != ino(&self.file) {
            if let Ok(f) = File::open(&self.path) {
                (self.file, self.offset) = (f, 0);
                entries.extend(self.read_file());
            }
        }
        entries
    }

    fn read_file(&mut self) -> Vec<Entry> {
        let mut buf = Vec::new();
        if self.file.seek(SeekFrom::Start(self.offset)).is_err() || self.file.read_to_end(&mut buf).is_err() {
            return Vec::new();
        }
        let (entries, used) = parse(&buf);
        self.offset += used as u64;
        entries
    }
}

/// Everything container `c` logged, rotated files oldest first, and a
/// [`Tail`] at the end of the current log to follow it (`key` names it in
/// errors).
pub fn read_all(c: &Container, key: &str) -> Result<(Vec<Entry>, Tail)> {
    let cfg = super::record::Record::read(c).map(|r| r.container.log).unwrap_or_default();
    if cfg.none {
        return Err(Error::new(format!("logs {key}"))
            .because("configured logging driver does not support reading")
            .hint("it was created with --log-driver none"));
    }
    let log = c.log();
    let mut entries = Vec::new();
    for n in (1..=cfg.max_file.unwrap_or(1)).rev() {
        if let Ok(bytes) = std::fs::read(rotated(&log, n)) {
            entries.extend(parse(&bytes).0);
        }
    }
    let mut tail = Tail::open(&log, 0).map_err(|_| {
        Error::new(format!("logs {key}"))
            .because("the container has no log")
            .hint("output is logged for containers run without --rm")
    })?;
    entries.extend(tail.read_new());
    Ok((entries, tail))
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
    fn rotation_keeps_max_file_files_and_readers_see_them_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("log");
        let cfg = LogConfig::parse(None, &["max-size=100".into(), "max-file=3".into()]).unwrap();
        assert_eq!((cfg.max_size, cfg.max_file, cfg.none), (Some(100), Some(3), false));
        let mut w = Writer::with(&path, &cfg).unwrap();
        let mut follow = None;
        let mut followed = Vec::new();
        for i in 0..20 {
            w.write(Stream::Stdout, format!("line {i:02}\n").as_bytes());
            follow = follow.or_else(|| Tail::open(&path, 0).ok());
            followed.extend(follow.as_mut().unwrap().read_new().into_iter().map(|e| e.log));
        }
        assert!(rotated(&path, 2).exists() && !rotated(&path, 3).exists(), "at most 3 files");
        for p in [path.clone(), rotated(&path, 1)] {
            let len = std::fs::metadata(&p).unwrap().len();
            assert!(len < 100 + 70, "{p:?}: {len} bytes");
        }
        let mut all = Vec::new();
        for p in [rotated(&path, 2), rotated(&path, 1), path.clone()] {
            all.extend(parse(&std::fs::read(&p).unwrap()).0.into_iter().map(|e| e.log));
        }
        assert_eq!(all.last().unwrap(), "line 19\n");
        let nums: Vec<u32> = all.iter().map(|l| l[5..7].parse().unwrap()).collect();
        assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "in order, none missing between: {nums:?}");
        assert_eq!(followed.len(), 20, "a follower sees every line across rotations: {followed:?}");
        // One file: emptied instead.
        let one = LogConfig::parse(Some("json-file"), &["max-size=100".into()]).unwrap();
        let p1 = tmp.path().join("one");
        let mut w = Writer::with(&p1, &one).unwrap();
        for i in 0..20 {
            w.write(Stream::Stdout, format!("line {i:02}\n").as_bytes());
        }
        assert!(!rotated(&p1, 1).exists() && std::fs::metadata(&p1).unwrap().len() < 170);
        for (driver, opts, why) in [
            (Some("syslog"), vec![], "supported: json-file, none"),
            (None, vec!["max-size=lots"], "expected a size"),
            (None, vec!["max-file=0"], "at least 1"),
            (None, vec!["compress=true"], "unknown log opt"),
            (None, vec!["max-file=3"], "needs max-size"),
            (Some("none"), vec!["max-size=1m"], "takes no options"),
        ] {
            let opts: Vec<String> = opts.into_iter().map(String::from).collect();
            let e = LogConfig::parse(driver, &opts).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
        assert!(LogConfig::parse(Some("none"), &[]).unwrap().none);
        // The config file's defaults, under the flags.
        let config = crate::config::Config::parse("log-opts = { max-size = \"1m\", max-file = \"2\" }").unwrap();
        let cfg = LogConfig::of(&config, None, &["max-file=5".into()]).unwrap();
        assert_eq!((cfg.max_size, cfg.max_file), (Some(1 << 20), Some(5)));
        assert!(LogConfig::of(&config, Some("none"), &[]).unwrap().none, "its options are json-file's");
        let e = crate::config::Config::parse("log-opts = { max-size = \"x\" }").unwrap_err().to_string();
        assert!(e.contains("log-driver/log-opts") && e.contains("max-size=x"), "{e}");
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
