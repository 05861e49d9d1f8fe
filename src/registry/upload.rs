//! The registry's upload side, for `mini push`: one HTTP client, the
//! Authorization header settled once for pushing to the repository, and
//! the requests of [`super::session`] with it: ask whether a blob is there
//! (HEAD), mount it from another repository of the same registry, upload
//! it (whole or in resumable chunks, streamed from the content store's
//! file), and put the manifest last, as raw bytes so its digest stays what
//! the store holds. Failures become one line here, with what to do.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mini_store::digest::Digest;

use super::auth::{CredentialStore, Credentials};
use super::client::{Failure, MAX_ATTEMPTS};
use super::session::{self, Target};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::image::reference::Reference;

pub struct Uploader {
    http: reqwest::Client,
    /// `http://host:port`.
    url: String,
    /// The registry as the user named it (for hints).
    registry: String,
    repository: String,
    /// The tag (or digest) the manifest goes under.
    tag: String,
    creds: Option<Credentials>,
    /// The Authorization header for push, once authenticated.
    header: std::sync::OnceLock<Option<reqwest::header::HeaderValue>>,
}

impl Uploader {
    pub fn new(config: &Config, reference: &Reference, creds: &CredentialStore) -> Result<Uploader> {
        let host = super::client::oci_reference(reference).resolve_registry().to_string();
        let insecure = config.is_insecure(&reference.registry);
        let builder = super::tls::client_builder(config, &[&host])?;
        // Plain HTTP needs no roots: loading the system's (300-odd files
        // parsed) was half of a push's own start-up.
        let builder = if insecure { builder.tls_certs_only([]) } else { builder };
        let http = builder
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(120))
            .user_agent(concat!("mini/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::new("make an HTTP client").because(e))?;
        Ok(Uploader {
            http,
            url: format!("{}://{host}", if insecure { "http" } else { "https" }),
            registry: reference.registry.clone(),
            repository: reference.repository.clone(),
            tag: reference.digest.clone().or_else(|| reference.tag.clone()).unwrap_or_else(|| "latest".into()),
            creds: creds.lookup(&reference.registry)?,
            header: Default::default(),
        })
    }

    /// Where the session's requests go, with the header authenticate chose.
    fn target(&self) -> Target<'_> {
        Target {
            http: &self.http,
            base: &self.url,
            repository: &self.repository,
            auth: self.header.get().cloned().flatten(),
        }
    }

    /// Settle on the header for pushing (an anonymous token that may
    /// only pull is refused at the first upload, with what to do).
    pub async fn authenticate(&self) -> Result<()> {
        let header = session::authorize(&self.target(), self.creds.as_ref()).await.map_err(|e| self.refused(e))?;
        let _ = self.header.set(header);
        Ok(())
    }

    /// Whether the registry has blob `digest` in this repository.
    pub async fn exists(&self, digest: &Digest) -> Result<bool> {
        session::exists(&self.target(), digest).await.map_err(|e| self.refused(e))
    }

    /// Mount `digest` from repository `from` of the same registry; false
    /// when the registry would not (it then has to be uploaded).
    pub async fn mount(&self, digest: &Digest, from: &str) -> bool {
        session::mount(&self.target(), digest, from).await
    }

    /// Upload blob `digest` of `size` bytes from `path`, telling `sent`
    /// how many bytes the registry has.
    pub async fn upload(
        &self,
        path: PathBuf,
        digest: &Digest,
        size: u64,
        sent: Arc<dyn Fn(u64) + Send + Sync>,
    ) -> Result<()> {
        session::upload(&self.target(), &path, digest, size, &sent).await.map_err(|e| self.refused(e))
    }

    /// Put the manifest, byte for byte, under the reference's tag.
    pub async fn manifest(&self, bytes: Vec<u8>, media_type: &str) -> Result<()> {
        session::manifest(&self.target(), &self.tag, Bytes::from(bytes), media_type).await.map_err(|e| self.refused(e))
    }

    /// A failed request of the push protocol as one line with what to do.
    fn refused(&self, f: session::Failure) -> Error {
        let at = format!("push to {} at {}", self.repository, self.url);
        match f.kind {
            Failure::Denied => Error::new(at)
                .because("authentication required: the registry refused to let this client push")
                .hint(format!("log in first: mini login {}", self.registry)),
            Failure::Unreachable => {
                let cause = f.error.to_string();
                let host = self.url.split_once("://").map_or(self.url.as_str(), |(_, h)| h);
                let err = Error::new(at).because(format!("registry unreachable: {cause}"));
                match super::tls::untrusted_hint(&cause, host) {
                    Some(h) => err.hint(h),
                    None => err,
                }
            }
            Failure::Transient => {
                Error::new(at).because(format!("{} (gave up after {MAX_ATTEMPTS} attempts)", f.error))
            }
            Failure::NotFound | Failure::Fatal => f.error.within(at),
        }
    }
}
