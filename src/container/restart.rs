//! Restart policies (`--restart no|on-failure[:N]|always|unless-stopped`)
//! and Docker's back-off, as moby's restart manager has them: the first
//! restart waits 100 ms, each next one twice as long (at most a minute),
//! and a run that lasted 10 s or more starts the count of waits afresh.
//! `stop`, `kill` and `rm -f` end a container on purpose (the `stopped`
//! mark in its dir): then no policy restarts it. The monitor asks
//! [`Backoff::next`] (pure) after each exit and carries out the answer.
//! After a reboot (or any death of the monitors) [`boot`] (`mini system
//! boot`, run from the init system) starts what Docker's daemon starts
//! when it comes up: `always` containers, and `unless-stopped` ones that
//! were not stopped on purpose.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What the monitor does when the container exits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "name")]
pub enum Policy {
    #[default]
    No,
    /// Restart after a non-zero exit, at most `max` times (0: no limit).
    OnFailure {
        max: u32,
    },
    Always,
    /// As `always`, except that [`boot`] leaves it alone once it was
    /// stopped on purpose.
    UnlessStopped,
}

impl Policy {
    /// `--restart` as Docker parses it.
    pub fn parse(text: &str) -> Result<Policy> {
        let bad = |why: &str| Error::new(format!("invalid --restart \"{text}\"")).because(why.to_string());
        let (name, count) = match text.split_once(':') {
            Some(("", _)) => return Err(bad("no policy given before ':'")),
            Some((n, c)) => (n, Some(c)),
            None => (text, None),
        };
        let max = count
            .map(|c| c.parse::<i64>().map_err(|_| bad("the maximum retry count must be an integer")))
            .transpose()?;
        let policy = match name {
            "no" | "" => Policy::No,
            "always" => Policy::Always,
            "unless-stopped" => Policy::UnlessStopped,
            "on-failure" => match max {
                Some(n) if n < 0 => return Err(bad("the maximum retry count cannot be negative")),
                n => return Ok(Policy::OnFailure { max: n.unwrap_or(0).min(u32::MAX as i64) as u32 }),
            },
            _ => return Err(bad("unknown policy; use one of no, always, on-failure[:N] or unless-stopped")),
        };
        if max.is_some() {
            return Err(bad("a maximum retry count can only be used with on-failure"));
        }
        Ok(policy)
    }

    pub fn is_none(&self) -> bool {
        *self == Policy::No
    }

    /// Docker's `HostConfig.RestartPolicy`.
    pub fn name(&self) -> &'static str {
        match self {
            Policy::No => "no",
            Policy::OnFailure { .. } => "on-failure",
            Policy::Always => "always",
            Policy::UnlessStopped => "unless-stopped",
        }
    }

    pub fn max_retries(&self) -> u32 {
        match self {
            Policy::OnFailure { max } => *max,
            _ => 0,
        }
    }
}

/// Whether [`boot`] starts a container of `policy` that was (`stopped`)
/// or was not ended on purpose.
pub fn starts_at_boot(policy: Policy, stopped: bool) -> bool {
    match policy {
        Policy::Always => true,
        Policy::UnlessStopped => !stopped,
        Policy::No | Policy::OnFailure { .. } => false,
    }
}

/// `mini system boot`: start every container that does not run and whose
/// policy says so (see [`starts_at_boot`]); the ids started. One that
/// cannot start is named on stderr and the others still start; the
/// error is the last failure.
pub fn boot(config: &crate::config::Config, store: &mini_store::Store) -> Result<Vec<String>> {
    super::sweep_stale(store);
    let cs = super::containers(store)?;
    let (mut started, mut failed) = (Vec::new(), None);
    for id in cs.ids().unwrap_or_default() {
        let c = cs.get(&id);
        let Ok(state) = c.state() else { continue };
        if super::state::is_running(&state) || super::state::is_restarting(&state) {
            continue;
        }
        let Ok(record) = super::record::Record::read(&c) else { continue };
        if !starts_at_boot(record.container.restart, c.is_stopped()) {
            continue;
        }
        match super::monitor::spawn(config, &id) {
            Ok(_) => started.push(id),
            Err(e) => {
                eprintln!("mini: {e}");
                failed = Some(e);
            }
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(started),
    }
}

const FIRST: Duration = Duration::from_millis(100);
const MAX: Duration = Duration::from_secs(60);
/// A run at least this long resets the back-off.
const RESET_AFTER: Duration = Duration::from_secs(10);

/// The back-off between restarts of one monitor's container.
#[derive(Debug, Default)]
pub struct Backoff {
    wait: Option<Duration>,
    /// Restarts made so far (Docker's `RestartCount`).
    pub count: u32,
}

impl Backoff {
    /// After an exit with `code` following a run of `ran`: how long to wait
    /// before starting again, or None to let the container stay exited.
    /// A restart it answers is counted.
    pub fn next(&mut self, policy: Policy, code: i32, stopped: bool, ran: Duration) -> Option<Duration> {
        let restart = !stopped
            && match policy {
                Policy::No => false,
                Policy::Always | Policy::UnlessStopped => true,
                Policy::OnFailure { max } => code != 0 && (max == 0 || self.count < max),
            };
        if !restart {
            return None;
        }
        let wait = match self.wait {
            Some(w) if ran < RESET_AFTER => (w * 2).min(MAX),
            _ => FIRST,
        };
        self.wait = Some(wait);
        self.count += 1;
        Some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_as_docker() {
        assert_eq!(Policy::parse("no").unwrap(), Policy::No);
        assert_eq!(Policy::parse("always").unwrap(), Policy::Always);
        assert_eq!(Policy::parse("unless-stopped").unwrap(), Policy::UnlessStopped);
        assert_eq!(Policy::parse("on-failure").unwrap(), Policy::OnFailure { max: 0 });
        assert_eq!(Policy::parse("on-failure:3").unwrap(), Policy::OnFailure { max: 3 });
        for (bad, why) in [
            ("bogus", "unknown policy"),
            (":3", "no policy"),
            ("on-failure:x", "must be an integer"),
            ("on-failure:-1", "cannot be negative"),
            ("always:2", "only be used with on-failure"),
        ] {
            let e = Policy::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("invalid --restart \"{bad}\": ")) && e.contains(why), "{e}");
        }
    }

    #[test]
    fn boot_starts_always_and_unless_stopped_unless_stopped() {
        assert!(starts_at_boot(Policy::Always, false) && starts_at_boot(Policy::Always, true));
        assert!(starts_at_boot(Policy::UnlessStopped, false) && !starts_at_boot(Policy::UnlessStopped, true));
        assert!(!starts_at_boot(Policy::No, false) && !starts_at_boot(Policy::OnFailure { max: 0 }, false));
    }

    #[test]
    fn backoff_doubles_from_100ms_and_resets_after_10s_up() {
        let mut b = Backoff::default();
        let short = Duration::from_millis(5);
        let waits: Vec<u128> = (0..4).map(|_| b.next(Policy::Always, 0, false, short).unwrap().as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800]);
        assert_eq!(b.next(Policy::Always, 0, false, Duration::from_secs(10)), Some(FIRST));
        for _ in 0..20 {
            b.next(Policy::Always, 1, false, short);
        }
        assert_eq!(b.next(Policy::Always, 1, false, short), Some(MAX));
        assert_eq!(b.count, 26);
    }

    #[test]
    fn on_failure_counts_and_a_stop_ends_every_policy() {
        let mut b = Backoff::default();
        let p = Policy::OnFailure { max: 2 };
        let ran = Duration::ZERO;
        assert_eq!(b.next(p, 0, false, ran), None, "success is not a failure");
        assert!(b.next(p, 3, false, ran).is_some());
        assert!(b.next(p, 3, false, ran).is_some());
        assert_eq!(b.next(p, 3, false, ran), None, "two retries at most");
        assert_eq!(b.count, 2);
        for p in [Policy::Always, Policy::UnlessStopped, Policy::OnFailure { max: 0 }] {
            assert_eq!(Backoff::default().next(p, 1, true, ran), None, "{p:?}");
        }
        assert_eq!(Backoff::default().next(Policy::No, 1, false, ran), None);
    }
}
