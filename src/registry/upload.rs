//! The registry's upload side, for `mini push`: authenticate for push,
//! ask whether a blob is there (HEAD), mount it from another repository
//! of the same registry, upload it (monolithic POST+PUT for small blobs,
//! chunked PATCHes with Content-Range for large ones, read from the
//! content store's file a chunk at a time, never whole), and put the
//! manifest last, as raw bytes so its digest stays what the store holds.
//! oci-client speaks the distribution API; this wraps it with mini's
//! retries and errors. A dropped upload starts again from its first byte
//! (oci-client does not resume a session), up to MAX_ATTEMPTS times.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{self, Stream};
use mini_store::digest::Digest;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation};

use super::auth::CredentialStore;
use super::client::{auth_for, backoff, classify, Failure, MAX_ATTEMPTS};
use crate::config::Config;
use crate::error::{chain, Error, Result};
use crate::image::reference::Reference;

/// Blobs up to this size go up in one request.
const MONOLITHIC_MAX: u64 = 4 << 20;
/// The size of one chunk read from disk and sent as one PATCH.
const CHUNK: usize = 4 << 20;

pub struct Uploader {
    /// Chunked uploads, and everything else.
    chunked: Client,
    /// Monolithic uploads of small blobs (a client holds that choice).
    monolithic: Client,
    image: oci_client::Reference,
    auth: RegistryAuth,
    /// `http://host:port`, for messages.
    url: String,
}

impl Uploader {
    pub fn new(config: &Config, reference: &Reference, creds: &CredentialStore) -> Result<Uploader> {
        let image = super::client::oci_reference(reference);
        let host = image.resolve_registry().to_string();
        let insecure = config.is_insecure(&reference.registry);
        let client = |monolithic: bool| {
            Client::new(ClientConfig {
                protocol: if insecure { ClientProtocol::Http } else { ClientProtocol::Https },
                connect_timeout: Some(Duration::from_secs(10)),
                read_timeout: Some(Duration::from_secs(120)),
                use_monolithic_push: monolithic,
                user_agent: concat!("mini/", env!("CARGO_PKG_VERSION")),
                ..Default::default()
            })
        };
        let url = format!("{}://{host}", if insecure { "http" } else { "https" });
        let auth = auth_for(creds, &reference.registry)?;
        Ok(Uploader { chunked: client(false), monolithic: client(true), image, auth, url })
    }

    /// Authenticate both clients for push: an anonymous token that cannot
    /// push is refused here, with what to do.
    pub async fn authenticate(&self) -> Result<()> {
        for client in [&self.chunked, &self.monolithic] {
            client.auth(&self.image, &self.auth, RegistryOperation::Push).await.map_err(|e| self.fail(e, "push to"))?;
        }
        Ok(())
    }

    /// Whether the registry has blob `digest` in this repository.
    pub async fn exists(&self, digest: &Digest) -> Result<bool> {
        let digest_text = digest.to_string();
        self.retrying(|| self.chunked.blob_exists(&self.image, &digest_text))
            .await
            .map_err(|e| self.fail(e, &format!("check blob {digest} in")))
    }

    /// Mount `digest` from repository `from` of the same registry; false
    /// when the registry would not (it then has to be uploaded).
    pub async fn mount(&self, digest: &Digest, from: &str) -> bool {
        let source = oci_client::Reference::with_tag(self.image.registry().to_string(), from.to_string(), "x".into());
        self.chunked.mount_blob(&self.image, &source, &digest.to_string()).await.is_ok()
    }

    /// Upload blob `digest` of `size` bytes from `path`, telling `sent`
    /// how many bytes went out; a failed attempt starts over.
    pub async fn upload(
        &self,
        path: PathBuf,
        digest: &Digest,
        size: u64,
        sent: Arc<dyn Fn(u64) + Send + Sync>,
    ) -> Result<()> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = if size <= MONOLITHIC_MAX {
                match std::fs::read(&path) {
                    Ok(bytes) => {
                        sent(bytes.len() as u64);
                        self.monolithic.push_blob(&self.image, bytes, &digest.to_string()).await.map(drop)
                    }
                    Err(e) => return Err(Error::new(format!("read {}", path.display())).because(e)),
                }
            } else {
                let chunks = file_chunks(path.clone(), sent.clone())?;
                self.chunked.push_blob_stream(&self.image, chunks, &digest.to_string(), Some(size)).await.map(drop)
            };
            match result {
                Ok(()) => return Ok(()),
                Err(e) if attempt < MAX_ATTEMPTS && retryable(&e) => {
                    sent(0); // the progress starts over with the upload
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => return Err(self.fail(e, &format!("upload blob {digest} to"))),
            }
        }
    }

    /// Put the manifest, byte for byte, under the reference's tag.
    pub async fn manifest(&self, bytes: Vec<u8>, media_type: &str) -> Result<()> {
        let content_type: reqwest::header::HeaderValue = media_type.parse().map_err(|_| {
            Error::new(format!("push manifest of media type {media_type}")).because("not a header value")
        })?;
        let body = Bytes::from(bytes);
        self.retrying(|| self.chunked.push_manifest_raw(&self.image, body.clone(), content_type.clone()))
            .await
            .map(drop)
            .map_err(|e| self.fail(e, "push the manifest to"))
    }

    async fn retrying<T, F, Fut>(&self, mut request: F) -> std::result::Result<T, OciDistributionError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, OciDistributionError>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match request().await {
                Err(e) if attempt < MAX_ATTEMPTS && retryable(&e) => tokio::time::sleep(backoff(attempt)).await,
                other => return other,
            }
        }
    }

    fn fail(&self, e: OciDistributionError, what: &str) -> Error {
        let err = Error::new(format!("{what} {} at {}", self.image.repository(), self.url));
        match classify(&e) {
            Failure::Denied => err
                .because("authentication required: the registry refused to let this client push")
                .hint(format!("log in first: mini login {}", self.image.registry())),
            Failure::Unreachable => err.because(format!("registry unreachable: {}", chain(&e))),
            Failure::Transient => err.because(format!("{} (gave up after {MAX_ATTEMPTS} attempts)", chain(&e))),
            Failure::NotFound | Failure::Fatal => err.because(chain(&e)),
        }
    }
}

fn retryable(e: &OciDistributionError) -> bool {
    matches!(classify(e), Failure::Transient | Failure::Unreachable)
}

/// The file at `path` as a stream of CHUNK-sized pieces, read one at a
/// time (memory stays one chunk however large the blob), each counted
/// into `sent`.
fn file_chunks(
    path: PathBuf,
    sent: Arc<dyn Fn(u64) + Send + Sync>,
) -> Result<impl Stream<Item = std::result::Result<Bytes, OciDistributionError>> + Send + 'static> {
    let file = std::fs::File::open(&path).map_err(|e| Error::new(format!("open {}", path.display())).because(e))?;
    sent(0);
    Ok(stream::unfold((file, 0u64), move |(mut file, total)| {
        let sent = sent.clone();
        async move {
            let mut buf = vec![0u8; CHUNK];
            let mut filled = 0;
            while filled < CHUNK {
                match file.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Some((Err(OciDistributionError::IoError(e)), (file, total))),
                }
            }
            if filled == 0 {
                return None;
            }
            buf.truncate(filled);
            let total = total + filled as u64;
            sent(total);
            Some((Ok(Bytes::from(buf)), (file, total)))
        }
    }))
}
