//! mini's error type: what failed, on what, why, and what to do about it.
//!
//! Every error a user sees is one line built from an operation and its object
//! ("pull docker.io/library/alpine:latest"), the cause, and an optional hint.
//! `main` prints it once and exits with the code its `Kind` maps to, following
//! Docker: 125 for mini's own failures, 126 when the command cannot be
//! executed, 127 when it is not found.

use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which exit code an error maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// mini itself failed: bad flag, unknown image, setup failure (125).
    Engine,
    /// The container's command exists but cannot be executed (126).
    CannotExecute,
    /// The container's command was not found (127).
    CommandNotFound,
}

impl Kind {
    pub fn exit_code(self) -> i32 {
        match self {
            Kind::Engine => 125,
            Kind::CannotExecute => 126,
            Kind::CommandNotFound => 127,
        }
    }
}

#[derive(Debug)]
pub struct Error {
    kind: Kind,
    /// The operation and its object, e.g. "pull 127.0.0.1:5000/test/busybox:oci".
    what: String,
    /// Why it failed (the chain of causes, flattened to one line).
    cause: Option<String>,
    /// What the user can do about it.
    hint: Option<String>,
}

impl Error {
    /// An error for operation-and-object `what`, with no cause yet.
    pub fn new(what: impl Into<String>) -> Error {
        Error { kind: Kind::Engine, what: what.into(), cause: None, hint: None }
    }

    pub fn because(mut self, cause: impl fmt::Display) -> Error {
        self.cause = Some(one_line(&cause.to_string()));
        self
    }

    /// Attach the full source chain of a std error as the cause.
    pub fn caused_by(self, err: &(dyn std::error::Error + 'static)) -> Error {
        self.because(chain(err))
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Error {
        self.hint = Some(hint.into());
        self
    }

    pub fn kind(mut self, kind: Kind) -> Error {
        self.kind = kind;
        self
    }

    pub fn exit_code(&self) -> i32 {
        self.kind.exit_code()
    }

    /// Wrap this error as the cause of an outer operation, keeping kind and hint.
    pub fn within(self, what: impl Into<String>) -> Error {
        let inner = match &self.cause {
            Some(c) => format!("{}: {}", self.what, c),
            None => self.what.clone(),
        };
        Error { kind: self.kind, what: what.into(), cause: Some(inner), hint: self.hint }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.what)?;
        if let Some(cause) = &self.cause {
            write!(f, ": {cause}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// Render an error and its sources as "a: b: c", skipping sources whose text
/// the outer message already contains (many crates repeat their source).
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    one_line(&out)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `result.context(|| format!("read {path}"))` turns any std error into ours.
pub trait Context<T> {
    fn context<F, S>(self, what: F) -> Result<T>
    where
        F: FnOnce() -> S,
        S: Into<String>;
}

impl<T, E> Context<T> for std::result::Result<T, E>
where
    E: std::error::Error + 'static,
{
    fn context<F, S>(self, what: F) -> Result<T>
    where
        F: FnOnce() -> S,
        S: Into<String>,
    {
        self.map_err(|e| Error::new(what()).caused_by(&e))
    }
}

impl From<mini_store::error::StoreError> for Error {
    fn from(e: mini_store::error::StoreError) -> Error {
        Error::new(chain(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_line_with_cause_and_hint() {
        let e = Error::new("pull example.com/x:1")
            .because("connection refused\n  at line 2")
            .hint("is the registry running?");
        assert_eq!(e.to_string(), "pull example.com/x:1: connection refused at line 2 (is the registry running?)");
        assert_eq!(e.exit_code(), 125);
    }

    #[test]
    fn kinds_map_to_docker_exit_codes() {
        assert_eq!(Kind::Engine.exit_code(), 125);
        assert_eq!(Kind::CannotExecute.exit_code(), 126);
        assert_eq!(Kind::CommandNotFound.exit_code(), 127);
    }

    #[test]
    fn within_keeps_inner_text() {
        let e = Error::new("read config").because("EIO").within("run alpine");
        assert_eq!(e.to_string(), "run alpine: read config: EIO");
    }
}
