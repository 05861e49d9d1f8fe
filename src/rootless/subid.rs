//! The caller's subordinate id ranges (`/etc/subuid`, `/etc/subgid`, as
//! shadow's `newuidmap` reads them) and the id maps mini's user namespace
//! gets from them: container id 0 is the caller, 1.. the first range.
//! Pure: the files' bytes come in, maps come out.

use crate::error::{Error, Result};

/// One `name:start:count` line that belongs to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: u32,
    pub count: u32,
}

/// The caller's ranges in one subid file; entries name the user or its
/// numeric id, as shadow accepts both. Malformed lines are skipped, as
/// `newuidmap` skips them.
pub fn ranges(bytes: &[u8], user: &str, id: u32) -> Vec<Range> {
    let id = id.to_string();
    String::from_utf8_lossy(bytes)
        .lines()
        .filter_map(|line| {
            let mut f = line.trim().split(':');
            let (owner, start, count) = (f.next()?, f.next()?, f.next()?);
            if f.next().is_some() || (owner != user && owner != id) {
                return None;
            }
            let range = Range { start: start.parse().ok()?, count: count.parse().ok()? };
            (range.count > 0 && range.start.checked_add(range.count).is_some()).then_some(range)
        })
        .collect()
}

/// How one id kind (uids or gids) maps into mini's user namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Map {
    /// The caller's own id: container id 0.
    pub own: u32,
    /// Its subordinate range: container ids 1..=count. None: only the
    /// caller's id is mapped (the fallback of a bare `unshare --user`).
    pub range: Option<Range>,
}

impl Map {
    /// The map from the caller's ranges: the first one, as Podman takes.
    pub fn new(own: u32, ranges: &[Range]) -> Map {
        Map { own, range: ranges.first().copied() }
    }

    /// The arguments `newuidmap PID …` / `newgidmap PID …` take after the pid.
    pub fn helper_args(&self) -> Vec<String> {
        let mut args = vec!["0".to_string(), self.own.to_string(), "1".to_string()];
        if let Some(r) = self.range {
            args.extend(["1".to_string(), r.start.to_string(), r.count.to_string()]);
        }
        args
    }

    /// The single line a process may write for itself, without a helper.
    pub fn own_line(&self) -> String {
        format!("0 {} 1\n", self.own)
    }
}

/// The one-line note printed when the namespace is made without ranges.
pub fn fallback_note(user: &str) -> String {
    format!(
        "mini: note: /etc/subuid and /etc/subgid give {user} no range, so only your own ids map into containers: \
         files owned by other ids show as nobody and chown to them fails; add one with \
         `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}` (as root), then `mini system migrate`"
    )
}

/// Refuse ranges the helper cannot apply: a range needs `newuidmap`.
pub fn need_helper(map: &Map, helper: &str, found: bool) -> Result<()> {
    if map.range.is_some() && !found {
        return Err(Error::new("set up rootless mini's user namespace")
            .because(format!("{helper} is not installed, and your subordinate id range needs it"))
            .hint("install the uidmap package (apt-get install uidmap)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_by_name_or_id_and_bad_lines_skipped() {
        let file = b"alice:100000:65536\nbob:x:1\n1001:300000:1000\nalice:5:0\n# c\nalice:7:8:9\n";
        assert_eq!(ranges(file, "alice", 1000), [Range { start: 100000, count: 65536 }]);
        assert_eq!(ranges(file, "carol", 1001), [Range { start: 300000, count: 1000 }]);
        assert!(ranges(file, "dave", 1002).is_empty());
        assert!(ranges(b"alice:4294967295:2\n", "alice", 1).is_empty());
    }

    #[test]
    fn maps_put_the_caller_at_zero() {
        let m = Map::new(1001, &[Range { start: 100000, count: 65536 }, Range { start: 9, count: 9 }]);
        assert_eq!(m.helper_args(), ["0", "1001", "1", "1", "100000", "65536"]);
        let alone = Map::new(1001, &[]);
        assert_eq!(alone.helper_args(), ["0", "1001", "1"]);
        assert_eq!(alone.own_line(), "0 1001 1\n");
    }

    #[test]
    fn a_range_without_the_helper_is_refused() {
        let m = Map::new(1001, &[Range { start: 100000, count: 65536 }]);
        let e = need_helper(&m, "newuidmap", false).unwrap_err().to_string();
        assert!(e.contains("newuidmap is not installed") && e.contains("uidmap package"), "{e}");
        assert!(need_helper(&m, "newuidmap", true).is_ok());
        assert!(need_helper(&Map::new(1, &[]), "newuidmap", false).is_ok());
    }
}
