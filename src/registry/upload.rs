//! The registry's upload side, for `mini push`: authenticate for push,
//! ask whether a blob is there (HEAD), mount it from another repository
//! of the same registry, upload it (monolithic POST+PUT for small blobs
//! through oci-client; chunked PATCHes with Content-Range for large ones,
//! streamed from the content store's file and resumed after a break, in
//! [`super::session`]), and put the manifest last, as raw bytes so its
//! digest stays what the store holds. A small upload that fails starts
//! again, up to MAX_ATTEMPTS times.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mini_store::digest::Digest;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation};

use reqwest::header::HeaderValue;

use super::auth::CredentialStore;
use super::client::{auth_for, classify, retrying, Failure, MAX_ATTEMPTS};
use super::session::Target;
use crate::config::Config;
use crate::error::{chain, Error, Result};
use crate::image::reference::Reference;

/// Blobs up to this size go up in one request (read into memory).
const MONOLITHIC_MAX: u64 = 4 << 20;

pub struct Uploader {
    client: Client,
    /// For the chunked uploads mini speaks itself.
    http: reqwest::Client,
    image: oci_client::Reference,
    auth: RegistryAuth,
    /// The Authorization header for push, once authenticated.
    header: std::sync::OnceLock<Option<HeaderValue>>,
    /// `http://host:port`.
    url: String,
}

impl Uploader {
    pub fn new(config: &Config, reference: &Reference, creds: &CredentialStore) -> Result<Uploader> {
        let image = super::client::oci_reference(reference);
        let host = image.resolve_registry().to_string();
        let insecure = config.is_insecure(&reference.registry);
        let client = Client::new(ClientConfig {
            protocol: if insecure { ClientProtocol::Http } else { ClientProtocol::Https },
            extra_root_certificates: super::tls::oci_roots(config, &[&host])?,
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(120)),
            use_monolithic_push: true,
            user_agent: concat!("mini/", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        });
        let http = super::tls::client_builder(config, &[&host])?
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(120))
            .user_agent(concat!("mini/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::new("make an HTTP client").because(e))?;
        let url = format!("{}://{host}", if insecure { "http" } else { "https" });
        let auth = auth_for(creds, &reference.registry)?;
        Ok(Uploader { client, http, image, auth, header: Default::default(), url })
    }

    /// Authenticate for push (an anonymous token that cannot push is
    /// refused at the first upload, with what to do), keeping the header
    /// the chunked uploads send.
    pub async fn authenticate(&self) -> Result<()> {
        let token = self
            .client
            .auth(&self.image, &self.auth, RegistryOperation::Push)
            .await
            .map_err(|e| self.fail(e, "push to"))?;
        let header = match (token, &self.auth) {
            (Some(t), _) => HeaderValue::from_str(&format!("Bearer {t}")).ok(),
            (None, RegistryAuth::Basic(u, p)) => {
                use base64::Engine;
                let basic = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                HeaderValue::from_str(&format!("Basic {basic}")).ok()
            }
            (None, _) => None,
        };
        let _ = self.header.set(header);
        Ok(())
    }

    /// Whether the registry has blob `digest` in this repository.
    pub async fn exists(&self, digest: &Digest) -> Result<bool> {
        let digest_text = digest.to_string();
        retrying(|| self.client.blob_exists(&self.image, &digest_text))
            .await
            .map_err(|e| self.fail(e, &format!("check blob {digest} in")))
    }

    /// Mount `digest` from repository `from` of the same registry; false
    /// when the registry would not (it then has to be uploaded).
    pub async fn mount(&self, digest: &Digest, from: &str) -> bool {
        let source = oci_client::Reference::with_tag(self.image.registry().to_string(), from.to_string(), "x".into());
        self.client.mount_blob(&self.image, &source, &digest.to_string()).await.is_ok()
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
        if size > MONOLITHIC_MAX {
            let target = Target {
                http: &self.http,
                base: &self.url,
                repository: self.image.repository(),
                auth: self.header.get().cloned().flatten(),
            };
            return super::session::upload(&target, &path, digest, size, &sent).await;
        }
        let bytes = std::fs::read(&path).map_err(|e| Error::new(format!("read {}", path.display())).because(e))?;
        let body = Bytes::from(bytes);
        let digest_text = digest.to_string();
        retrying(|| self.client.push_blob(&self.image, body.clone(), &digest_text))
            .await
            .map(|_| sent(size))
            .map_err(|e| self.fail(e, &format!("upload blob {digest} to")))
    }

    /// Put the manifest, byte for byte, under the reference's tag.
    pub async fn manifest(&self, bytes: Vec<u8>, media_type: &str) -> Result<()> {
        let content_type: reqwest::header::HeaderValue = media_type.parse().map_err(|_| {
            Error::new(format!("push manifest of media type {media_type}")).because("not a header value")
        })?;
        let body = Bytes::from(bytes);
        retrying(|| self.client.push_manifest_raw(&self.image, body.clone(), content_type.clone()))
            .await
            .map(drop)
            .map_err(|e| self.fail(e, "push the manifest to"))
    }

    fn fail(&self, e: OciDistributionError, what: &str) -> Error {
        let err = Error::new(format!("{what} {} at {}", self.image.repository(), self.url));
        match classify(&e) {
            Failure::Denied => err
                .because("authentication required: the registry refused to let this client push")
                .hint(format!("log in first: mini login {}", self.image.registry())),
            Failure::Unreachable => {
                let cause = chain(&e);
                let hint = super::tls::untrusted_hint(&cause, self.image.resolve_registry());
                let err = err.because(format!("registry unreachable: {cause}"));
                match hint {
                    Some(h) => err.hint(h),
                    None => err,
                }
            }
            Failure::Transient => err.because(format!("{} (gave up after {MAX_ATTEMPTS} attempts)", chain(&e))),
            Failure::NotFound | Failure::Fatal => err.because(chain(&e)),
        }
    }
}
