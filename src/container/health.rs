//! Health checks, as Docker runs them: `--health-cmd` (or the image's
//! HEALTHCHECK) run inside the running container every `--health-interval`
//! through `mini exec`, each probe given `--health-timeout`; exit 0 is
//! healthy, anything else (or a timeout) a failure, and `--health-retries`
//! failures in a row make the container unhealthy, except that failures
//! within `--health-start-period` do not count while it is still starting.
//! The supervisor of the container (its monitor, or a foreground `run`)
//! carries the probes out with [`Prober`] inside its poll loop, and writes
//! the results to the container's `health.json` (Docker's `State.Health`:
//! `Status`, `FailingStreak`, the last five probes in `Log`), which `ps`
//! and `inspect` read.

use std::io::Read;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Args as ClapArgs;
use mini_store::containers::Container;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The health flags of `run` and `create`.
#[derive(Debug, Clone, Default, ClapArgs)]
pub struct HealthFlags {
    /// Command to run to check health (run with /bin/sh -c)
    #[arg(long = "health-cmd", value_name = "CMD")]
    pub cmd: Option<String>,
    /// Time between checks (ms, s, m, h; default 30s)
    #[arg(long = "health-interval", value_name = "DURATION")]
    pub interval: Option<String>,
    /// Longest a check may run (default 30s)
    #[arg(long = "health-timeout", value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Failures in a row that make the container unhealthy (default 3)
    #[arg(long = "health-retries", value_name = "N", allow_hyphen_values = true)]
    pub retries: Option<String>,
    /// Time to start during which failures do not count (default 0s)
    #[arg(long = "health-start-period", value_name = "DURATION")]
    pub start_period: Option<String>,
    /// Disable any health check, the image's included
    #[arg(long = "no-healthcheck")]
    pub none: bool,
}

/// A container's health check, decided at create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// What `exec` runs.
    pub argv: Vec<String>,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub start_period_ms: u64,
    pub retries: u32,
}

/// Docker's defaults.
const INTERVAL: Duration = Duration::from_secs(30);
const TIMEOUT: Duration = Duration::from_secs(30);
const RETRIES: u32 = 3;
/// Probes kept in `Log`, and the output kept per probe (bytes), as Docker.
const KEEP: usize = 5;
const OUTPUT: usize = 4096;

/// The check from the flags over the image's HEALTHCHECK (its config's
/// `Healthcheck`: `Test` as `["CMD", …]`, `["CMD-SHELL", cmd]` or
/// `["NONE"]`, durations in nanoseconds); None when there is none.
pub fn check_of(flags: &HealthFlags, image: Option<&serde_json::Value>) -> Result<Option<Check>> {
    let bad =
        |flag: &str, text: &str, why: &str| Error::new(format!("invalid {flag} \"{text}\"")).because(why.to_string());
    let duration = |flag: &str, text: &Option<String>, image_ns: Option<u64>, default: Duration| -> Result<Duration> {
        match text {
            Some(t) => {
                let d = super::logs::parse_duration(t)
                    .ok_or_else(|| bad(flag, t, "expected a duration such as 500ms, 30s or 1m"))?;
                let d = d.to_std().map_err(|_| bad(flag, t, "it must not be negative"))?;
                if d < Duration::from_millis(1) && !d.is_zero() || d.is_zero() && flag != "--health-start-period" {
                    return Err(bad(flag, t, "it must be at least 1ms"));
                }
                Ok(d)
            }
            None => Ok(image_ns.filter(|n| *n > 0).map_or(default, Duration::from_nanos)),
        }
    };
    let image = image.filter(|_| !flags.none);
    let test: Vec<String> = image
        .and_then(|h| h["Test"].as_array())
        .map(|t| t.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let argv = match (&flags.cmd, test.first().map(String::as_str)) {
        _ if flags.none => return Ok(None),
        (Some(cmd), _) if cmd.is_empty() => return Err(bad("--health-cmd", cmd, "no command given")),
        (Some(cmd), _) => shell(cmd),
        (None, Some("CMD")) if test.len() > 1 => test[1..].to_vec(),
        (None, Some("CMD-SHELL")) if test.len() > 1 => shell(&test[1..].join(" ")),
        (None, _) => return Ok(None), // none, or NONE
    };
    let ns = |key: &str| image.and_then(|h| h[key].as_u64());
    let retries = match &flags.retries {
        Some(t) => t.parse::<u32>().map_err(|_| bad("--health-retries", t, "expected a number, 0 or more"))?,
        None => ns("Retries").filter(|r| *r > 0).map_or(RETRIES, |r| r as u32),
    };
    let ms = |d: Duration| d.as_millis() as u64;
    Ok(Some(Check {
        argv,
        interval_ms: ms(duration("--health-interval", &flags.interval, ns("Interval"), INTERVAL)?),
        timeout_ms: ms(duration("--health-timeout", &flags.timeout, ns("Timeout"), TIMEOUT)?),
        start_period_ms: ms(duration("--health-start-period", &flags.start_period, ns("StartPeriod"), Duration::ZERO)?),
        retries: retries.max(1),
    }))
}

/// A probe's time, with nanoseconds as Docker writes them.
fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn shell(cmd: &str) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), cmd.into()]
}

/// `State.Health`, as Docker names its fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    #[serde(rename = "Status")]
    pub status: String,
    #[serde(rename = "FailingStreak")]
    pub failing_streak: u32,
    #[serde(rename = "Log")]
    pub log: Vec<Probe>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    #[serde(rename = "Start")]
    pub start: String,
    #[serde(rename = "End")]
    pub end: String,
    #[serde(rename = "ExitCode")]
    pub exit_code: i32,
    #[serde(rename = "Output")]
    pub output: String,
}

pub const STARTING: &str = "starting";
pub const HEALTHY: &str = "healthy";
pub const UNHEALTHY: &str = "unhealthy";

impl Health {
    fn starting() -> Health {
        Health { status: STARTING.into(), failing_streak: 0, log: Vec::new() }
    }

    /// Docker's rules for one probe's result; `in_start_period`: the
    /// container started less than the start period ago.
    fn record(&mut self, probe: Probe, retries: u32, in_start_period: bool) {
        if probe.exit_code == 0 {
            (self.status, self.failing_streak) = (HEALTHY.into(), 0);
        } else if !(in_start_period && self.status == STARTING) {
            self.failing_streak += 1;
            if self.failing_streak >= retries {
                self.status = UNHEALTHY.into();
            }
        }
        self.log.push(probe);
        if self.log.len() > KEEP {
            self.log.remove(0);
        }
    }
}

/// `ps`'s suffix to "Up …": ` (healthy)`, ` (unhealthy)`, ` (health: starting)`.
pub fn ps_suffix(c: &Container) -> String {
    match c.health::<Health>() {
        Ok(h) if h.status == STARTING => " (health: starting)".into(),
        Ok(h) => format!(" ({})", h.status),
        Err(_) => String::new(),
    }
}

/// A probe under way.
struct Running {
    child: Child,
    out: std::io::PipeReader,
    output: Vec<u8>,
    start: String,
    began: Instant,
}

impl Running {
    /// What the probe wrote so far, up to Docker's 4 KiB (non-blocking).
    fn drain(&mut self) {
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.out.read(&mut buf) {
            if n == 0 {
                break;
            }
            let room = OUTPUT.saturating_sub(self.output.len());
            self.output.extend_from_slice(&buf[..n.min(room)]);
        }
    }
}

/// The probes of one running container, driven by its supervisor's poll
/// loop: [`Prober::wait_ms`] bounds the poll, [`Prober::fd`] joins it, and
/// [`Prober::tick`] after every wake-up does what is due.
pub struct Prober {
    check: Check,
    health: Health,
    container: Container,
    started: Instant,
    next: Instant,
    running: Option<Running>,
}

impl Prober {
    /// For container `c` just started with `check`; its health is
    /// `starting` from now on.
    pub fn new(c: &Container, check: &Check) -> Prober {
        let p = Prober {
            check: check.clone(),
            health: Health::starting(),
            container: c.clone(),
            started: Instant::now(),
            next: Instant::now() + Duration::from_millis(check.interval_ms),
            running: None,
        };
        p.save();
        p
    }

    /// How long the supervisor may sleep before the next thing is due.
    pub fn wait_ms(&self) -> i32 {
        let due = match &self.running {
            Some(r) => r.began + Duration::from_millis(self.check.timeout_ms),
            None => self.next,
        };
        due.saturating_duration_since(Instant::now()).as_millis().min(i32::MAX as u128) as i32 + 1
    }

    /// The running probe's output, to poll.
    pub fn fd(&self) -> Option<RawFd> {
        self.running.as_ref().map(|r| r.out.as_raw_fd())
    }

    pub fn tick(&mut self) {
        if let Some(mut r) = self.running.take() {
            r.drain();
            let timed_out = r.began.elapsed() > Duration::from_millis(self.check.timeout_ms);
            let exit = match r.child.try_wait() {
                Ok(Some(status)) => {
                    r.drain(); // what it wrote just before exiting
                    Some(status.code().unwrap_or(-1))
                }
                _ if timed_out => {
                    // The probe's whole process group, the command inside
                    // the container included.
                    let _ = crate::sys::process::kill(-(r.child.id() as i32), libc::SIGKILL);
                    let _ = r.child.wait();
                    let secs = self.check.timeout_ms as f64 / 1000.0;
                    r.output = format!("Health check exceeded timeout ({secs}s)").into_bytes();
                    Some(-1)
                }
                _ => None,
            };
            match exit {
                Some(code) => self.finish(r, code),
                None => self.running = Some(r),
            }
        }
        if self.running.is_none() && Instant::now() >= self.next {
            self.next = Instant::now() + Duration::from_millis(self.check.interval_ms);
            match self.spawn() {
                Ok(r) => self.running = Some(r),
                Err(e) => {
                    let now = now();
                    let probe = Probe { start: now.clone(), end: now, exit_code: -1, output: e.to_string() };
                    self.record(probe);
                }
            }
        }
    }

    fn spawn(&self) -> Result<Running> {
        let (out, writer) = std::io::pipe().map_err(|e| Error::new("make the health check's pipe").because(e))?;
        let err = writer.try_clone().map_err(|e| Error::new("make the health check's pipe").because(e))?;
        let root = self.container.store_root().to_path_buf();
        let mut cmd = Command::new("/proc/self/exe");
        cmd.arg0("mini").arg("--root").arg(&root).arg("exec").arg(&self.container.id).args(&self.check.argv);
        cmd.stdin(Stdio::null()).stdout(writer).stderr(err).process_group(0);
        let start = now();
        let child = cmd.spawn().map_err(|e| Error::new("start the health check").because(e))?;
        drop(cmd); // our copies of the pipe's write end
        crate::sys::process::set_nonblocking(out.as_raw_fd())?;
        Ok(Running { child, out, output: Vec::new(), start, began: Instant::now() })
    }

    fn finish(&mut self, r: Running, exit_code: i32) {
        let output = String::from_utf8_lossy(&r.output).into_owned();
        self.record(Probe { start: r.start, end: now(), exit_code, output });
    }

    fn record(&mut self, probe: Probe) {
        let before = self.health.status.clone();
        let in_start = self.started.elapsed() < Duration::from_millis(self.check.start_period_ms);
        self.health.record(probe, self.check.retries, in_start);
        self.save();
        if self.health.status != before {
            let action = format!("health_status: {}", self.health.status);
            super::events::container(&self.container, &action, &[]);
        }
    }

    fn save(&self) {
        if let Err(e) = self.container.write_health(&self.health) {
            eprintln!("mini: warning: record the health of container {}: {e}", self.container.short_id());
        }
    }
}

impl Drop for Prober {
    /// A probe still running when the container ends goes with it.
    fn drop(&mut self) {
        if let Some(mut r) = self.running.take() {
            let _ = crate::sys::process::kill(-(r.child.id() as i32), libc::SIGKILL);
            let _ = r.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flags(f: impl FnOnce(&mut HealthFlags)) -> HealthFlags {
        let mut x = HealthFlags::default();
        f(&mut x);
        x
    }

    #[test]
    fn flags_override_the_images_healthcheck() {
        let image = json!({"Test": ["CMD", "/bin/check", "-q"], "Interval": 5_000_000_000u64, "Retries": 2});
        let c = check_of(&HealthFlags::default(), Some(&image)).unwrap().unwrap();
        assert_eq!(c.argv, ["/bin/check", "-q"]);
        assert_eq!((c.interval_ms, c.timeout_ms, c.start_period_ms, c.retries), (5000, 30_000, 0, 2));
        let c = check_of(
            &flags(|f| {
                f.cmd = Some("wget -q localhost".into());
                f.interval = Some("500ms".into());
                f.retries = Some("5".into());
            }),
            Some(&image),
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.argv, ["/bin/sh", "-c", "wget -q localhost"]);
        assert_eq!((c.interval_ms, c.retries), (500, 5));
        let shell = json!({"Test": ["CMD-SHELL", "test -e /ok"]});
        assert_eq!(
            check_of(&HealthFlags::default(), Some(&shell)).unwrap().unwrap().argv,
            ["/bin/sh", "-c", "test -e /ok"]
        );
        assert_eq!(check_of(&HealthFlags::default(), Some(&json!({"Test": ["NONE"]}))).unwrap(), None);
        assert_eq!(check_of(&flags(|f| f.none = true), Some(&image)).unwrap(), None);
        assert_eq!(check_of(&HealthFlags::default(), None).unwrap(), None);
    }

    #[test]
    fn bad_flags_say_which() {
        let e = |f: HealthFlags| check_of(&f, None).unwrap_err().to_string();
        let cmd = |f: &mut HealthFlags| f.cmd = Some("true".into());
        assert!(e(flags(|f| {
            cmd(f);
            f.interval = Some("soon".into());
        }))
        .starts_with("invalid --health-interval \"soon\""));
        assert!(e(flags(|f| {
            cmd(f);
            f.timeout = Some("0s".into());
        }))
        .contains("at least 1ms"));
        assert!(e(flags(|f| {
            cmd(f);
            f.retries = Some("-1".into());
        }))
        .starts_with("invalid --health-retries \"-1\""));
        assert!(e(flags(|f| f.cmd = Some(String::new()))).starts_with("invalid --health-cmd"));
    }

    #[test]
    fn results_follow_dockers_rules() {
        let probe = |code| Probe { start: String::new(), end: String::new(), exit_code: code, output: String::new() };
        let mut h = Health::starting();
        h.record(probe(1), 2, true);
        assert_eq!((h.status.as_str(), h.failing_streak), (STARTING, 0), "the start period forgives");
        h.record(probe(1), 2, false);
        assert_eq!((h.status.as_str(), h.failing_streak), (STARTING, 1));
        h.record(probe(1), 2, false);
        assert_eq!((h.status.as_str(), h.failing_streak), (UNHEALTHY, 2));
        h.record(probe(0), 2, false);
        assert_eq!((h.status.as_str(), h.failing_streak), (HEALTHY, 0));
        for _ in 0..6 {
            h.record(probe(0), 2, false);
        }
        assert_eq!(h.log.len(), KEEP);
        // After healthy, the start period no longer forgives.
        h.record(probe(1), 2, true);
        assert_eq!(h.failing_streak, 1);
    }
}
