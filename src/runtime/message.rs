//! The typed messages between mini and the processes it starts, each
//! encoded and decoded here and nowhere else:
//!
//! - [`Go`], parent → child, one byte once the parent's part of the setup
//!   is done (cgroups made; under a user namespace the id maps written and
//!   the root sent): go on with the cgroups or without them (best effort,
//!   they could not be made). EOF instead means "abort".
//! - [`READY`], child → parent, one byte after [`Go`] when mini is to plug
//!   in the child's network: the namespace exists and the child is in
//!   its cgroups.
//! - [`NET_READY`], parent → child, one byte after [`Go`]: the network
//!   mini connects from outside is in place.
//! - [`MAPPED`] and [`CREATED`], the OCI runtime's extra steps (see
//!   `oci::launch`).
//! - [`Failed`], child → parent, one line when setup or exec failed;
//!   nothing at all when exec succeeded (the pipe closes on exec).
//! - [`Report`], monitor → the `mini` that spawned it, one line: the
//!   container runs with this pid, or why it could not start.

use crate::error::{Error, Kind};

/// Child → parent, one byte once it joined its cgroups after [`Go`], when
/// mini must plug a veth into the child's network namespace: it exists
/// now. (Sent after the join, not before: making the pair while the child
/// joins its cgroups slowed the join by as much as the pair took.)
pub const READY: u8 = b'r';

/// Parent → child, one byte after [`Go`] when mini connects the child's
/// network from outside: the veth pair (or the user-mode stack) is in
/// place. mini makes it while the child mounts its root; the child
/// configures its end only then, before its command runs.
pub const NET_READY: u8 = b'w';

/// Parent → child (OCI runtime, new user namespace): the id maps are
/// written; the child may become the namespace's root.
pub const MAPPED: u8 = b'm';

/// Child → parent (OCI runtime): everything is set up and the process
/// now waits at its exec for `start`.
pub const CREATED: u8 = b'c';

/// Parent → child: go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Go {
    WithCgroups,
    WithoutCgroups,
}

impl Go {
    pub fn encode(self) -> u8 {
        match self {
            Go::WithCgroups => b'g',
            Go::WithoutCgroups => b'n',
        }
    }

    /// None for anything else (EOF is read as no byte at all).
    pub fn decode(byte: u8) -> Option<Go> {
        match byte {
            b'g' => Some(Go::WithCgroups),
            b'n' => Some(Go::WithoutCgroups),
            _ => None,
        }
    }
}

/// Child → parent: why it did not exec, with the exit code's kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub kind: Kind,
    pub text: String,
}

impl Failed {
    pub fn of(e: &Error) -> Failed {
        Failed { kind: kind_of(e.exit_code()), text: e.to_string() }
    }

    /// `CODE TEXT\n`, the text on one line.
    pub fn encode(&self) -> Vec<u8> {
        format!("{} {}\n", self.kind.exit_code(), self.text.replace('\n', " ")).into_bytes()
    }

    /// None for an empty stream: the child exec'd.
    pub fn decode(bytes: &[u8]) -> Option<Failed> {
        if bytes.is_empty() {
            return None;
        }
        let text = String::from_utf8_lossy(bytes);
        let text = text.trim_end();
        let (code, rest) = text.split_once(' ').unwrap_or(("125", text));
        Some(Failed { kind: kind_of(code.parse().unwrap_or(125)), text: rest.to_string() })
    }

    pub fn into_error(self) -> Error {
        Error::new(self.text).kind(self.kind)
    }
}

fn kind_of(code: i32) -> Kind {
    match code {
        126 => Kind::CannotExecute,
        127 => Kind::CommandNotFound,
        _ => Kind::Engine,
    }
}

/// Monitor → spawner: the container's fate, one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    Running(i32),
    Failed(Failed),
}

impl Report {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Report::Running(pid) => format!("ok {pid}\n").into_bytes(),
            Report::Failed(f) => [b"err ".as_slice(), &f.encode()].concat(),
        }
    }

    /// None when the line is neither (the monitor died before it spoke).
    pub fn decode(line: &str) -> Option<Report> {
        let line = line.trim_end();
        if let Some(pid) = line.strip_prefix("ok ") {
            return pid.parse().ok().map(Report::Running);
        }
        line.strip_prefix("err ").and_then(|r| Failed::decode(r.as_bytes())).map(Report::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_round_trips_and_refuses_other_bytes() {
        for g in [Go::WithCgroups, Go::WithoutCgroups] {
            assert_eq!(Go::decode(g.encode()), Some(g));
        }
        assert_eq!(Go::decode(b'x'), None);
    }

    #[test]
    fn failures_round_trip_on_one_line() {
        let m = Failed { kind: Kind::CommandNotFound, text: "exec \"nope\": not found\nin $PATH".into() };
        let back = Failed::decode(&m.encode()).unwrap();
        assert_eq!(back, Failed { kind: Kind::CommandNotFound, text: "exec \"nope\": not found in $PATH".into() });
        assert_eq!(back.into_error().exit_code(), 127);
        assert_eq!(Failed::decode(b""), None);
        assert_eq!(Failed::decode(b"garbage").unwrap().into_error().exit_code(), 125);
        assert_eq!(Failed::of(&Error::new("x").kind(Kind::CannotExecute)).kind, Kind::CannotExecute);
    }

    #[test]
    fn reports_round_trip() {
        assert_eq!(
            Report::decode(std::str::from_utf8(&Report::Running(42).encode()).unwrap()),
            Some(Report::Running(42))
        );
        let f = Report::Failed(Failed { kind: Kind::CannotExecute, text: "exec /x: denied".into() });
        assert_eq!(Report::decode(std::str::from_utf8(&f.encode()).unwrap()), Some(f));
        assert_eq!(Report::decode(""), None);
        assert_eq!(Report::decode("ok nope"), None);
    }
}
