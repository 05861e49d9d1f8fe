//! `--userns=auto`: container root mapped to an unprivileged range of
//! 65536 host ids, taken from the `mini` entries of /etc/subuid and
//! /etc/subgid (parsed from bytes), else [`DEFAULT_BASE`].

use std::os::fd::{AsRawFd, OwnedFd};

use crate::error::{Error, Result};
use crate::runtime::overlay::{ContainerDirs, MountPlan};
use crate::sys::{mount, process as p};

pub const RANGE: u32 = 65536;
/// Far above any host user: uids 100000000-100065535.
pub const DEFAULT_BASE: u32 = 100_000_000;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdMap {
    pub uid_base: u32,
    pub gid_base: u32,
}

impl IdMap {
    /// From the contents of /etc/subuid and /etc/subgid (None: absent).
    pub fn from_subid(subuid: Option<&[u8]>, subgid: Option<&[u8]>) -> Result<IdMap> {
        Ok(IdMap {
            uid_base: subid_base(subuid, "/etc/subuid")?.unwrap_or(DEFAULT_BASE),
            gid_base: subid_base(subgid, "/etc/subgid")?.unwrap_or(DEFAULT_BASE),
        })
    }
}

/// The container's overlay, built by mini (host root) for the child `pid`
/// in its new user namespace: each layer is an idmapped mount through that
/// namespace, so files unpacked as host root appear owned by the
/// container's root (and uid 1000 as 1000); the upper dir belongs to the
/// mapped root, so the container's own writes land there with host ids
/// from its range (`mini export` shifts them back). Returned detached: the
/// child attaches it in its own mount namespace.
pub fn overlay_for(pid: i32, plan: &MountPlan) -> Result<OwnedFd> {
    let ns = p::open_ns(pid, "user")?;
    let lowers = plan.lowers.iter().map(|l| mount::idmapped_clone(l, &ns)).collect::<Result<Vec<_>>>()?;
    let mut idmapped = plan.clone();
    idmapped.lowers = lowers.iter().map(|fd| format!("/proc/self/fd/{}", fd.as_raw_fd()).into()).collect();
    idmapped.userxattr = false;
    mount::detached_overlay(&idmapped)
}

/// Hand the container's writable dirs to its mapped root.
pub fn prepare_dirs(dirs: &ContainerDirs, map: &IdMap) -> Result<()> {
    for d in [&dirs.upper, &dirs.work] {
        std::os::unix::fs::chown(d, Some(map.uid_base), Some(map.gid_base))
            .map_err(|e| Error::new(format!("chown {}", d.display())).because(e))?;
    }
    Ok(())
}

/// The first `mini:start:count` entry with count ≥ 65536.
fn subid_base(bytes: Option<&[u8]>, file: &str) -> Result<Option<u32>> {
    let Some(bytes) = bytes else { return Ok(None) };
    for line in String::from_utf8_lossy(bytes).lines() {
        let f: Vec<&str> = line.trim().split(':').collect();
        if f.len() != 3 || f[0] != "mini" {
            continue;
        }
        let (Ok(start), Ok(count)) = (f[1].parse::<u32>(), f[2].parse::<u32>()) else {
            return Err(Error::new(format!("read {file}")).because(format!("bad entry \"{line}\"")));
        };
        if count < RANGE || start == 0 || start.checked_add(RANGE).is_none() {
            return Err(Error::new(format!("read {file}"))
                .because(format!("entry \"{line}\" must give mini at least {RANGE} ids above 0")));
        }
        return Ok(Some(start));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subid_entries_for_mini_or_the_default() {
        let m = IdMap::from_subid(Some(b"alice:100000:65536\nmini:200000:65536\n"), None).unwrap();
        assert_eq!(m, IdMap { uid_base: 200000, gid_base: DEFAULT_BASE });
        assert!(IdMap::from_subid(Some(b"mini:300000:10\n"), None).is_err());
        assert!(IdMap::from_subid(Some(b"mini:x:65536\n"), None).is_err());
        assert_eq!(IdMap::from_subid(None, None).unwrap().uid_base, DEFAULT_BASE);
    }
}
