//! `-u user|uid[:group|gid]` → uid, gid, supplementary groups and home,
//! resolved against the image's own /etc/passwd and /etc/group (as bytes,
//! read inside the container after its root is mounted).

use crate::error::{Error, Result};

/// Docker (runc) accepts ids up to 2^31-1.
pub const MAX_ID: u64 = 2_147_483_647;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Id {
    Name(String),
    Num(u32),
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserSpec {
    pub user: Id,
    pub group: Option<Id>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: String,
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Id::Name(n) => f.write_str(n),
            Id::Num(n) => write!(f, "{n}"),
        }
    }
}

/// As `-u` takes it: `user[:group]`.
impl std::fmt::Display for UserSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.group {
            Some(g) => write!(f, "{}:{g}", self.user),
            None => write!(f, "{}", self.user),
        }
    }
}

impl UserSpec {
    pub fn root() -> UserSpec {
        UserSpec { user: Id::Num(0), group: None }
    }

    /// Parse the text of `-u` (or the image's User).
    pub fn parse(text: &str) -> Result<UserSpec> {
        let bad = |why: &str| Error::new(format!("invalid -u \"{text}\"")).because(why.to_string());
        if text.is_empty() {
            return Ok(UserSpec::root());
        }
        let (u, g) = match text.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (text, None),
        };
        let id = |s: &str| -> Result<Id> {
            if s.is_empty() {
                return Err(bad("empty user or group"));
            }
            if s.bytes().all(|b| b.is_ascii_digit()) {
                match s.parse::<u64>() {
                    Ok(n) if n <= MAX_ID => Ok(Id::Num(n as u32)),
                    _ => Err(bad(&format!("id {s} is out of range 0-{MAX_ID}"))),
                }
            } else if s.contains(|c: char| c == ':' || c == '\n' || c.is_whitespace()) {
                Err(bad("names cannot contain ':' or whitespace"))
            } else {
                Ok(Id::Name(s.to_string()))
            }
        };
        Ok(UserSpec { user: id(u)?, group: g.map(id).transpose()? })
    }

    /// Resolve through passwd and group file contents (None: file absent).
    pub fn resolve(&self, passwd: Option<&[u8]>, group: Option<&[u8]>) -> Result<User> {
        let entries = passwd.map(parse_passwd).unwrap_or_default();
        let groups = group.map(parse_group).unwrap_or_default();
        let mut user = User { uid: 0, gid: 0, groups: vec![], home: "/".into() };
        let mut name = None;
        match &self.user {
            Id::Name(n) => {
                let e = entries.iter().find(|e| &e.name == n).ok_or_else(|| {
                    Error::new(format!("find user \"{n}\"")).because("no matching entry in the image's /etc/passwd")
                })?;
                (user.uid, user.gid, user.home) = (e.uid, e.gid, e.home.clone());
                name = Some(e.name.clone());
            }
            Id::Num(uid) => {
                user.uid = *uid;
                if let Some(e) = entries.iter().find(|e| e.uid == *uid) {
                    (user.gid, user.home) = (e.gid, e.home.clone());
                    name = Some(e.name.clone());
                }
            }
        }
        match &self.group {
            Some(Id::Num(g)) => user.gid = *g,
            Some(Id::Name(n)) => {
                let g = groups.iter().find(|g| &g.name == n).ok_or_else(|| {
                    Error::new(format!("find group \"{n}\"")).because("no matching entry in the image's /etc/group")
                })?;
                user.gid = g.gid;
            }
            None => {}
        }
        if let Some(name) = name {
            for g in groups.iter().filter(|g| g.members.contains(&name)) {
                if !user.groups.contains(&g.gid) {
                    user.groups.push(g.gid);
                }
            }
        }
        Ok(user)
    }
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn lines(bytes: &[u8]) -> impl Iterator<Item = Vec<&str>> {
    bytes
        .split(|b| *b == b'\n')
        .filter_map(|l| std::str::from_utf8(l).ok())
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect())
}

fn parse_passwd(bytes: &[u8]) -> Vec<PasswdEntry> {
    lines(bytes)
        .filter(|f| f.len() >= 4)
        .filter_map(|f| {
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f.get(5).filter(|h| !h.is_empty()).unwrap_or(&"/").to_string(),
            })
        })
        .collect()
}

fn parse_group(bytes: &[u8]) -> Vec<GroupEntry> {
    lines(bytes)
        .filter(|f| f.len() >= 3)
        .filter_map(|f| {
            Some(GroupEntry {
                name: f[0].to_string(),
                gid: f[2].parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| m.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect())
                    .unwrap_or_default(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/sh\n# comment\napp:x:1000:1000:App:/home/app:/bin/sh\n\
        broken line\nnohome:x:1001:1001::\n";
    const GROUP: &[u8] = b"root:x:0:\nwheel:x:10:root,app\napp:x:1000:\naudio:x:29:app\nstaff:x:50:\n";

    fn r(spec: &str) -> Result<User> {
        UserSpec::parse(spec)?.resolve(Some(PASSWD), Some(GROUP))
    }

    #[test]
    fn names_and_ids_resolve_with_supplementary_groups() {
        assert_eq!(r("").unwrap(), User { uid: 0, gid: 0, groups: vec![10], home: "/root".into() });
        assert_eq!(r("app").unwrap(), User { uid: 1000, gid: 1000, groups: vec![10, 29], home: "/home/app".into() });
        assert_eq!(r("1000:50").unwrap().gid, 50);
        assert_eq!(
            r("app:staff").unwrap(),
            User { uid: 1000, gid: 50, groups: vec![10, 29], home: "/home/app".into() }
        );
        assert_eq!(r("4242").unwrap(), User { uid: 4242, gid: 0, groups: vec![], home: "/".into() });
        assert_eq!(r("nohome").unwrap().home, "/");
    }

    #[test]
    fn missing_files_leave_numeric_ids_working() {
        let u = UserSpec::parse("7:8").unwrap().resolve(None, None).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (7, 8, "/"));
        assert!(UserSpec::parse("app").unwrap().resolve(None, None).is_err());
    }

    #[test]
    fn bad_users_are_named() {
        let e = r("ghost").unwrap_err().to_string();
        assert!(e.contains("find user \"ghost\""), "{e}");
        let e = r("app:nogroup").unwrap_err().to_string();
        assert!(e.contains("find group \"nogroup\""), "{e}");
        let e = UserSpec::parse("99999999999").unwrap_err().to_string();
        assert!(e.starts_with("invalid -u \"99999999999\"") && e.contains("out of range"), "{e}");
        assert!(UserSpec::parse("2147483648").is_err());
        assert!(UserSpec::parse("2147483647").is_ok());
        assert!(UserSpec::parse("app:").is_err());
        assert!(UserSpec::parse(":1").is_err());
    }
}
