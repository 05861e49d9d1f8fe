//! The only writer of state.json. A container's life is
//! created → running(pid) → exited(code, oom), with exited → restarting →
//! running while its monitor carries out a restart policy, and
//! running ⇄ paused (`pause`, `unpause`); running → orphaned when
//! the `mini` that owned it (its monitor, or a foreground `mini run`) died
//! without recording the exit: the container died with it (parent-death
//! signal), so [`settle`] records it as exited (137) or removes it.
//!
//! Each transition is one function here, and a state that cannot be
//! written is an error the caller reports: a container whose state.json
//! lies is worse than a failed command.

use std::time::{SystemTime, UNIX_EPOCH};

use mini_store::containers::{Container, Containers, State, Status};

use super::record::Record;
use crate::error::{Error, Result};
use crate::sys::mount;

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub use crate::sys::process::start_time;

/// Whether the `mini` that owns this state is still alive.
pub fn owner_alive(state: &State) -> bool {
    match (state.monitor_pid, state.monitor_start) {
        (Some(pid), Some(start)) => start_time(pid) == Some(start),
        (Some(pid), None) => start_time(pid).is_some(),
        _ => false,
    }
}

/// Whether the container runs: state.json says so and the process that
/// owns it is alive.
pub fn is_running(state: &State) -> bool {
    state.status == Status::Running && owner_alive(state)
}

/// Whether its monitor waits to start it again (restart policy).
pub fn is_restarting(state: &State) -> bool {
    state.status == Status::Exited && state.restarting && owner_alive(state)
}

/// The first state of a container that a run in progress owns (`run`
/// creating it): if this `mini` dies before it runs, [`settle`] removes it.
pub fn created_by_me() -> State {
    let me = std::process::id() as i32;
    State { monitor_pid: Some(me), monitor_start: start_time(me), ..State::created() }
}

/// created/exited → running: `pid` runs, owned by the calling process,
/// after `restart_count` restarts by its policy.
pub fn running(c: &Container, pid: i32, restart_count: u32) -> Result<State> {
    let mut state = created_by_me();
    state.status = Status::Running;
    (state.pid, state.started_at, state.restart_count) = (Some(pid), Some(now()), restart_count);
    write(c, &state)?;
    super::events::container(c, "start", &[]);
    Ok(state)
}

/// running → exited with `code`, and the calling monitor will start it
/// again (restart number `count`) after a back-off.
pub fn restarting(c: &Container, code: i32, count: u32) -> Result<State> {
    let mut state = c.state().unwrap_or_else(|_| created_by_me());
    state.status = Status::Exited;
    (state.exit_code, state.finished_at, state.pid) = (Some(code), Some(now()), None);
    (state.restarting, state.restart_count, state.paused) = (true, count, false);
    super::events::container(c, "die", &[("exitCode", &code.to_string())]);
    write(c, &state)?;
    Ok(state)
}

/// running → running with its processes frozen (`paused`) or thawed.
pub fn paused(c: &Container, paused: bool) -> Result<State> {
    let mut state =
        c.state().map_err(|e| Error::new(format!("read the state of container {}", c.short_id())).because(e))?;
    state.paused = paused;
    write(c, &state)?;
    super::events::container(c, if paused { "pause" } else { "unpause" }, &[]);
    Ok(state)
}

/// running → exited with `code`: the owner saw it end.
pub fn exited(c: &Container, code: i32, oom_killed: bool) -> Result<State> {
    let mut state = c.state().unwrap_or_else(|_| State::created());
    state.status = Status::Exited;
    (state.exit_code, state.finished_at, state.oom_killed) = (Some(code), Some(now()), oom_killed);
    (state.pid, state.monitor_pid, state.monitor_start) = (None, None, None);
    (state.restarting, state.paused) = (false, false);
    // Recorded before the state: whoever waits for the exit (`stop`,
    // `wait`) finds its events already there.
    if oom_killed {
        super::events::container(c, "oom", &[]);
    }
    super::events::container(c, "die", &[("exitCode", &code.to_string())]);
    write(c, &state)?;
    Ok(state)
}

fn write(c: &Container, state: &State) -> Result<()> {
    c.write_state(state).map_err(|e| Error::new(format!("record the state of container {}", c.short_id())).because(e))
}

/// What became of an orphan: marked exited, or removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    Kept(State),
    Removed,
}

/// The state of `c` as it really is: if the process that owned it died,
/// the container died with it, so it is marked exited (137), or removed
/// when it asked for --rm or was still being set up. Its rootfs is
/// unmounted and its cgroups removed. `ps` calls this per container so it
/// reads each state once.
pub fn settle(cs: &Containers, c: &Container, state: State) -> Result<Settled> {
    let orphaned = match state.status {
        Status::Running => !owner_alive(&state),
        Status::Created => state.monitor_pid.is_some() && !owner_alive(&state),
        Status::Exited => state.restarting && !owner_alive(&state),
    };
    if !orphaned {
        return Ok(Settled::Kept(state));
    }
    if state.status == Status::Exited {
        // Its monitor died while waiting to restart it: it stays exited.
        return exited(c, state.exit_code.unwrap_or(137), state.oom_killed).map(Settled::Kept);
    }
    if mount::is_mountpoint(&c.rootfs()) {
        let _ = mount::umount(&c.rootfs(), true);
    }
    // A record that cannot be read still gets its orphan marked exited:
    // its cgroups (unknown) stay, and the error says why.
    let record = Record::read(c);
    if let Ok(r) = &record {
        r.container.cgroups.remove();
    }
    let remove = state.status == Status::Created || record.as_ref().is_ok_and(|r| r.container.rm);
    if remove {
        super::events::destroying(c, || cs.remove(&c.id))
            .map_err(|e| Error::new(format!("remove container {}", c.short_id())).because(e))?;
        return Ok(Settled::Removed);
    }
    let state = exited(c, 137, false)?;
    record.map(|_| Settled::Kept(state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mini_store::containers::ContainerConfig;

    fn store_with(state: &State) -> (tempfile::TempDir, Containers, Container) {
        let tmp = tempfile::tempdir().unwrap();
        let cs = Containers::open(tmp.path().join("containers"), tmp.path().join("trash")).unwrap();
        let id = mini_store::containers::new_id();
        let cfg = ContainerConfig {
            id: id.clone(),
            name: "c".into(),
            image: "x".into(),
            image_id: "sha256:cc".into(),
            manifest: String::new(),
            layers: vec![],
            created: "2026-01-01T00:00:00Z".into(),
            created_unix: 0,
            spec: serde_json::Value::Null,
        };
        let c = cs.create(&cfg, state, &[]).unwrap();
        (tmp, cs, c)
    }

    /// A pid that is surely not running: past the kernel's maximum.
    const DEAD: i32 = 1 << 30;

    #[test]
    fn transitions_created_running_exited() {
        let (_tmp, _cs, c) = store_with(&State::created());
        let s = running(&c, 4242, 0).unwrap();
        assert_eq!((s.status, s.pid), (Status::Running, Some(4242)));
        assert_eq!(s.monitor_pid, Some(std::process::id() as i32));
        assert!(is_running(&c.state().unwrap()), "owned by this live test process");
        let s = exited(&c, 3, true).unwrap();
        assert_eq!((s.status, s.exit_code, s.oom_killed), (Status::Exited, Some(3), true));
        assert_eq!((s.pid, s.monitor_pid, s.monitor_start), (None, None, None));
        assert!(s.started_at.is_some() && s.finished_at.is_some());
        assert_eq!(c.state().unwrap(), s);
    }

    #[test]
    fn an_orphan_is_settled_and_its_unreadable_record_reported() {
        let orphan = State { status: Status::Running, pid: Some(DEAD), monitor_pid: Some(DEAD), ..State::created() };
        let (_tmp, cs, c) = store_with(&orphan);
        assert!(!is_running(&orphan));
        // The record is `null`: the orphan is still marked exited, and the error names the file.
        let e = settle(&cs, &c, orphan).unwrap_err().to_string();
        assert!(e.contains(c.short_id()) && e.contains("config.json"), "{e}");
        let s = c.state().unwrap();
        assert_eq!((s.status, s.exit_code, s.monitor_pid), (Status::Exited, Some(137), None));
    }

    #[test]
    fn a_dead_runs_half_made_container_is_removed_a_live_one_kept() {
        let half = State { monitor_pid: Some(DEAD), ..State::created() };
        let (_tmp, cs, c) = store_with(&half);
        assert_eq!(settle(&cs, &c, half).unwrap(), Settled::Removed);
        assert!(cs.ids().unwrap().is_empty());
        let (_tmp, cs, c) = store_with(&created_by_me());
        assert!(matches!(settle(&cs, &c, created_by_me()).unwrap(), Settled::Kept(_)));
    }
}
