//! `mini update`: new resource limits (and restart policy) for a
//! container, as `docker update` changes them: validated as `run` validates
//! them, written into the running container's cgroups at once, and kept in
//! its record so every later start (and its monitor's restarts) uses them.

use mini_store::Store;

use super::record::Record;
use super::restart::Policy;
use crate::error::{Error, Result};
use crate::runtime::cgroups::{self, limits::Flags, Limits};

/// What `update` changes; a None keeps the container's value.
#[derive(Debug, Default)]
pub struct Changes {
    pub resources: Flags,
    pub restart: Option<String>,
}

pub fn update(store: &Store, key: &str, changes: &Changes) -> Result<()> {
    let what = || format!("update {key}");
    let c = super::find(store, "update", key)?;
    let mut cfg = c.config().map_err(|e| Error::new(what()).because(e))?;
    let mut record = Record::of(&c, &cfg)?;
    let merged = merge(&record.container.resources, &changes.resources);
    let limits = Limits::from_flags(&merged, &cgroups::online_cpus())?;
    if let Some(text) = &changes.restart {
        let policy = Policy::parse(text)?;
        if record.container.rm && policy != Policy::No {
            return Err(
                Error::new(what()).because("a --rm container cannot get a restart policy (it is removed when it ends)")
            );
        }
        record.container.restart = policy;
    }
    if crate::rootless::current().is_some() && record.container.cgroups.plan.dirs.is_empty() && !limits.is_empty() {
        return Err(Error::new(what())
            .because("the container has no cgroup of its own (rootless mini here has none delegated)")
            .hint("limits need cgroup v2 with a subtree delegated to your user"));
    }
    let state = c.state().map_err(|e| Error::new(what()).because(e))?;
    let running = super::state::is_running(&state);
    record.container.cgroups.set_limits(&limits, running).map_err(|e| e.within(what()))?;
    record.container.resources = merged;
    cfg.spec = record.to_value()?;
    c.write_config(&cfg).map_err(|e| Error::new(what()).because(e))?;
    super::events::container(&c, "update", &[]);
    Ok(())
}

/// The container's flags with those given replacing theirs.
fn merge(old: &Flags, new: &Flags) -> Flags {
    let pick = |n: &Option<String>, o: &Option<String>| n.clone().or_else(|| o.clone());
    Flags {
        memory: pick(&new.memory, &old.memory),
        memory_swap: pick(&new.memory_swap, &old.memory_swap),
        memory_reservation: pick(&new.memory_reservation, &old.memory_reservation),
        cpus: pick(&new.cpus, &old.cpus),
        cpu_shares: pick(&new.cpu_shares, &old.cpu_shares),
        cpu_weight: pick(&new.cpu_weight, &old.cpu_weight),
        cpuset_cpus: pick(&new.cpuset_cpus, &old.cpuset_cpus),
        pids_limit: pick(&new.pids_limit, &old.pids_limit),
        cgroup_parent: old.cgroup_parent.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_flags_replace_the_recorded_ones_and_the_parent_stays() {
        let old = Flags {
            memory: Some("64m".into()),
            pids_limit: Some("10".into()),
            cgroup_parent: Some("p".into()),
            ..Default::default()
        };
        let new = Flags { memory: Some("128m".into()), cpus: Some("0.5".into()), ..Default::default() };
        let m = merge(&old, &new);
        assert_eq!(
            (m.memory.as_deref(), m.pids_limit.as_deref(), m.cpus.as_deref(), m.cgroup_parent.as_deref()),
            (Some("128m"), Some("10"), Some("0.5"), Some("p"))
        );
    }
}
