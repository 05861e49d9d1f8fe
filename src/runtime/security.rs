//! The container's security defaults, as Docker's: its default capability
//! set (everything else dropped from every set, the bounding set included;
//! `--cap-add`/`--cap-drop` change it as Docker's rules do), the sets set
//! as a spec gives them, and `no_new_privs`. The default seccomp profile
//! (Docker's allow-list) is the engine's: `container::seccomp`. Masked and
//! read-only /proc paths are mount operations: see `rootfs`.

use caps::{CapSet, Capability};

use crate::sys::process::Insn;

use crate::error::{Error, Result};

/// Docker's default capabilities.
pub const DEFAULT_CAPS: [Capability; 14] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FSETID,
    Capability::CAP_FOWNER,
    Capability::CAP_MKNOD,
    Capability::CAP_NET_RAW,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_KILL,
    Capability::CAP_AUDIT_WRITE,
];

/// The capability set for `--cap-add`/`--cap-drop`, as moby's
/// TweakCapabilities decides it: `--cap-add ALL` is every capability but
/// the dropped ones; `--cap-drop ALL` keeps only the added ones; otherwise
/// Docker's default set minus the dropped, plus the added. Names are
/// case-insensitive, with or without `CAP_`; an unknown one is an error.
pub fn capabilities(add: &[String], drop: &[String]) -> Result<Vec<Capability>> {
    let parse = |flag: &str, list: &[String]| -> Result<(bool, Vec<Capability>)> {
        let mut all = false;
        let mut caps = Vec::new();
        for name in list {
            let upper = name.to_ascii_uppercase();
            if upper == "ALL" {
                all = true;
                continue;
            }
            let full = if upper.starts_with("CAP_") { upper } else { format!("CAP_{upper}") };
            let cap: Capability = full.parse().map_err(|_| {
                Error::new(format!("invalid {flag} \"{name}\"")).because(format!("unknown capability: \"{full}\""))
            })?;
            caps.push(cap);
        }
        Ok((all, caps))
    };
    let (add_all, adds) = parse("--cap-add", add)?;
    let (drop_all, drops) = parse("--cap-drop", drop)?;
    let mut caps: Vec<Capability> = if add_all {
        caps::runtime::thread_all_supported().into_iter().filter(|c| !drops.contains(c)).collect()
    } else if drop_all {
        adds
    } else {
        let mut v: Vec<Capability> = DEFAULT_CAPS.into_iter().filter(|c| !drops.contains(c)).collect();
        v.extend(adds);
        v
    };
    caps.sort_by_key(|c| c.index());
    caps.dedup();
    Ok(caps)
}

/// The capabilities of a process description: `names` as recorded at
/// create, Docker's default set when the record has none.
pub fn capabilities_of(names: Option<&[String]>) -> Result<Vec<Capability>> {
    match names {
        None => Ok(DEFAULT_CAPS.to_vec()),
        Some(names) => names
            .iter()
            .map(|n| {
                n.parse().map_err(|_| {
                    Error::new("read the container's capabilities").because(format!("unknown capability {n}"))
                })
            })
            .collect(),
    }
}

/// Drop every capability outside `keep` from the bounding set and clear
/// the ambient set. Needs CAP_SETPCAP: call before changing user.
pub fn limit_bounding_set(keep: &[Capability]) -> Result<()> {
    let keep: caps::CapsHashSet = keep.iter().copied().collect();
    let supported = caps::runtime::thread_all_supported();
    for cap in supported.difference(&keep) {
        caps::drop(None, CapSet::Bounding, *cap)
            .map_err(|e| Error::new(format!("drop {cap} from the bounding set")).because(e))?;
    }
    caps::clear(None, CapSet::Ambient).map_err(|e| Error::new("clear ambient capabilities").because(e))
}

/// Each capability set as an OCI `process.capabilities` names it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapSets {
    pub bounding: Vec<Capability>,
    pub effective: Vec<Capability>,
    pub permitted: Vec<Capability>,
    pub inheritable: Vec<Capability>,
    pub ambient: Vec<Capability>,
}

/// After the user switch (made with keep-caps, so a non-root user still
/// holds them): the sets exactly as given, ambient last (the kernel only
/// raises an ambient capability that is permitted and inheritable), as
/// runc sets them.
pub fn set_cap_sets(sets: &CapSets) -> Result<()> {
    let set = |which: CapSet, caps: &[Capability]| {
        let want: caps::CapsHashSet = caps.iter().copied().collect();
        caps::set(None, which, &want).map_err(|e| Error::new(format!("set {which:?} capabilities")).because(e))
    };
    // Each capset must leave effective within permitted: shrink effective
    // first (root still holds every capability as permitted), then
    // permitted, then inheritable (which may exceed neither).
    set(CapSet::Effective, &sets.effective)?;
    set(CapSet::Permitted, &sets.permitted)?;
    set(CapSet::Inheritable, &sets.inheritable)?;
    for cap in &sets.ambient {
        caps::raise(None, CapSet::Ambient, *cap)
            .map_err(|e| Error::new(format!("raise ambient capability {cap}")).because(e))?;
    }
    Ok(())
}

/// After the user switch: root keeps `keep`; others keep nothing (the
/// kernel already cleared their permitted set on setuid).
pub fn set_process_caps(uid: u32, keep: &[Capability]) -> Result<()> {
    let want: caps::CapsHashSet = if uid == 0 { keep.iter().copied().collect() } else { Default::default() };
    for set in [CapSet::Effective, CapSet::Permitted, CapSet::Inheritable] {
        caps::set(None, set, &want).map_err(|e| Error::new(format!("set {set:?} capabilities")).because(e))?;
    }
    Ok(())
}

/// Load `program` with SECCOMP_FILTER_FLAG_* `flags`.
pub fn apply_seccomp(program: &[Insn], flags: u32) -> Result<()> {
    crate::sys::process::load_seccomp(program, flags).map_err(|e| Error::new("install the seccomp filter").because(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_flags_follow_dockers_rules() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let caps = capabilities(&s(&["sys_admin"]), &s(&["CAP_CHOWN", "net_raw"])).unwrap();
        assert!(caps.contains(&Capability::CAP_SYS_ADMIN) && !caps.contains(&Capability::CAP_CHOWN));
        assert_eq!(caps.len(), 13);
        assert_eq!(capabilities(&s(&["KILL"]), &s(&["all"])).unwrap(), vec![Capability::CAP_KILL]);
        let all = capabilities(&s(&["ALL"]), &s(&["SYS_ADMIN"])).unwrap();
        assert_eq!(all.len(), caps::runtime::thread_all_supported().len() - 1);
        assert_eq!(capabilities(&[], &[]).unwrap().len(), 14);
        let e = capabilities(&s(&["BOGUS"]), &[]).unwrap_err().to_string();
        assert!(e.contains("invalid --cap-add \"BOGUS\"") && e.contains("unknown capability: \"CAP_BOGUS\""), "{e}");
    }

    #[test]
    fn default_caps_are_dockers_fourteen() {
        assert_eq!(DEFAULT_CAPS.len(), 14);
        assert!(!DEFAULT_CAPS.contains(&Capability::CAP_SYS_ADMIN));
        assert!(!DEFAULT_CAPS.contains(&Capability::CAP_NET_ADMIN));
    }
}
