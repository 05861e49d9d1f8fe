//! The container process: clone into new namespaces, the parent/child
//! handshake, the child's setup up to exec, and the parent's wait.
//!
//! Handshake over two close-on-exec pipes. Parent → child: one byte, "go",
//! once id maps are written (and, later, the cgroup and network are ready);
//! EOF means "abort". Child → parent: nothing at all when exec succeeds (the
//! write end closes on exec), else one [`Message::Failed`] line that the
//! parent turns into mini's error and exit code.

use crate::error::{Error, Kind};
use crate::sys::process::Exit;

/// What the child can tell the parent before it execs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Failed { kind: Kind, text: String },
}

impl Message {
    pub fn encode(&self) -> Vec<u8> {
        let Message::Failed { kind, text } = self;
        format!("{} {}\n", kind.exit_code(), text.replace('\n', " ")).into_bytes()
    }

    /// None for an empty stream: the child exec'd.
    pub fn decode(bytes: &[u8]) -> Option<Message> {
        if bytes.is_empty() {
            return None;
        }
        let text = String::from_utf8_lossy(bytes);
        let text = text.trim_end();
        let (code, rest) = text.split_once(' ').unwrap_or(("125", text));
        let kind = match code {
            "126" => Kind::CannotExecute,
            "127" => Kind::CommandNotFound,
            _ => Kind::Engine,
        };
        Some(Message::Failed { kind, text: rest.to_string() })
    }

    pub fn into_error(self) -> Error {
        let Message::Failed { kind, text } = self;
        Error::new(text).kind(kind)
    }
}

/// The exit code `mini run` reports for how the container ended: its own
/// code, or 128+n when signal n killed it (as a shell reports it).
pub fn exit_code(exit: Exit) -> i32 {
    match exit {
        Exit::Code(c) => c,
        Exit::Signal(s) => 128 + s,
    }
}

/// Which error kind an execve failure is: not found (127) or cannot be
/// executed (126), as Docker maps them.
pub fn exec_failure_kind(errno: Option<i32>) -> Kind {
    match errno {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => Kind::CommandNotFound,
        _ => Kind::CannotExecute,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell() {
        assert_eq!(exit_code(Exit::Code(0)), 0);
        assert_eq!(exit_code(Exit::Code(72)), 72);
        assert_eq!(exit_code(Exit::Signal(9)), 137);
        assert_eq!(exit_code(Exit::Signal(15)), 143);
        assert_eq!(exec_failure_kind(Some(libc::ENOENT)).exit_code(), 127);
        assert_eq!(exec_failure_kind(Some(libc::EACCES)).exit_code(), 126);
        assert_eq!(exec_failure_kind(Some(libc::ENOEXEC)).exit_code(), 126);
    }

    #[test]
    fn messages_round_trip() {
        let m = Message::Failed { kind: Kind::CommandNotFound, text: "exec \"nope\": not found\nin $PATH".into() };
        let back = Message::decode(&m.encode()).unwrap();
        assert_eq!(back, Message::Failed { kind: Kind::CommandNotFound, text: "exec \"nope\": not found in $PATH".into() });
        assert_eq!(back.into_error().exit_code(), 127);
        assert_eq!(Message::decode(b""), None);
        assert_eq!(Message::decode(b"garbage").unwrap().into_error().exit_code(), 125);
    }
}
