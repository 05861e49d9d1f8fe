//! The store's error type. Every message names the operation and the object it
//! was applied to, e.g. `write blob ingest file /var/lib/mini/ingest/abc: No space
//! left on device`, so the one line the CLI prints is enough to act on.
//! `Io` includes its cause in its own message *and* exposes it as `source()`;
//! chain printers should skip a cause whose text is already present.

use std::io;
use std::path::{Path, PathBuf};

use crate::digest::Digest;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} {}: {source}", path.display())]
    Io { op: String, path: PathBuf, source: io::Error },

    #[error("digest mismatch for {what} {expected}: got {actual}")]
    DigestMismatch { what: String, expected: Digest, actual: Digest },

    #[error("size mismatch for {what}: expected {expected} bytes, got {actual}")]
    SizeMismatch { what: String, expected: u64, actual: u64 },

    #[error("unsafe path in layer {layer}: entry `{entry}` {reason}")]
    UnsafeEntry { layer: String, entry: String, reason: String },

    #[error("corrupt {what}: {reason}")]
    Corrupt { what: String, reason: String },

    #[error("{what} not found")]
    NotFound { what: String },

    #[error("invalid digest `{input}`: {reason}")]
    InvalidDigest { input: String, reason: String },

    #[error("parse {}: {source}", path.display())]
    Json { path: PathBuf, source: serde_json::Error },

    #[error("the name \"{0}\" is already in use by container {1}")]
    NameInUse(String, String),

    #[error("store {} holds layers in overlay's {form}.* form, which {} cannot use; \
             give each its own store (rootless mini defaults to ~/.local/share/mini, or pass --root)",
             root.display(), if *form == "user" { "root" } else { "a rootless mini" })]
    WrongForm { root: PathBuf, form: &'static str },

    #[error("store {}: its filesystem takes no user.* xattrs ({reason}), which rootless overlay needs; \
             put the store on ext4, xfs, btrfs or tmpfs (--root or XDG_DATA_HOME)", root.display())]
    NoUserXattrs { root: PathBuf, reason: String },

    #[error("no such container: {0}")]
    NoSuchContainer(String),

    #[error("\"{0}\" matches more than one container: {list}", list = .1.join(", "))]
    AmbiguousContainer(String, Vec<String>),
}

pub type Result<T> = std::result::Result<T, StoreError>;

impl StoreError {
    /// Builds an [`StoreError::Io`] from an operation, the object's path and the cause.
    pub fn io(op: impl Into<String>, path: impl AsRef<Path>, source: io::Error) -> StoreError {
        StoreError::Io { op: op.into(), path: path.as_ref().to_path_buf(), source }
    }

    /// The underlying OS error, if this is an I/O error.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            StoreError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Attaches "operation + path" to `io::Result`s: `file.sync_all().op("fsync", &path)?`.
pub(crate) trait IoContext<T> {
    fn op(self, op: &str, path: impl AsRef<Path>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn op(self, op: &str, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| StoreError::io(op, path, e))
    }
}

impl<T> IoContext<T> for std::result::Result<T, rustix::io::Errno> {
    fn op(self, op: &str, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| StoreError::io(op, path, e.into()))
    }
}
