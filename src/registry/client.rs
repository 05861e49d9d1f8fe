//! One image's registry, reached through its mirrors first: manifests and
//! blobs over the OCI distribution API (oci-client does the HTTP, auth
//! challenges and token cache). What it hands back is verified: manifests
//! and configs hash to the digest they were asked by, and a blob download
//! ([`RegistryClient::download_blob`]) delivers exactly the declared size or
//! fails. Transient failures — refused or reset connections, bodies that
//! break off, 5xx and 429 answers — are retried with backoff, up to
//! [`MAX_ATTEMPTS`] attempts; blob downloads resume with `Range` where they
//! stopped (and drop the head of a registry that ignores `Range`).

use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use oci_client::client::{BlobResponse, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::Client;

use mini_store::digest::Digest;

use crate::config::Config;
use crate::error::{chain, Error, Result};
use crate::image::manifest::ACCEPTED;
use crate::image::reference::Reference;
use crate::registry::auth::CredentialStore;

/// Attempts per request before giving up on a transient failure.
pub(super) const MAX_ATTEMPTS: u32 = 5;
/// Configs are small; refuse to buffer more than this.
const MAX_SMALL_BLOB: u64 = 8 << 20;
/// A manifest or index larger than this is refused (Docker's limit).
const MAX_MANIFEST: usize = 4 << 20;

/// A manifest whose bytes verified against the digest it was asked by (or,
/// asked by tag, with the digest of the bytes as they came).
#[derive(Debug, Clone)]
pub struct Document {
    pub bytes: Bytes,
    pub digest: Digest,
}

/// Where a blob download goes, written in order; after a break the
/// download resumes at [`BlobSink::written`].
#[allow(async_fn_in_trait)] // used generically, never as a trait object
pub trait BlobSink {
    /// Bytes taken so far.
    fn written(&self) -> u64;
    async fn write(&mut self, chunk: Bytes) -> Result<()>;
    /// True once the caller wants the download stopped (checked per chunk).
    fn cancelled(&self) -> bool;
    /// Progress: "Downloading", "Retrying in 400ms", "Download complete".
    fn event(&self, what: &str);
}

/// How a download ended when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Downloaded {
    Complete,
    Cancelled,
}

/// How one response body ended.
enum BodyEnd {
    /// The stream ended cleanly (possibly short of the whole blob).
    Ended,
    /// The stream broke off.
    Cut(std::io::Error),
    Cancelled,
}

/// Where requests go: a mirror or the registry itself.
struct Endpoint {
    image: oci_client::Reference,
    /// Base URL shown to users, e.g. `http://127.0.0.1:5000`.
    url: String,
    auth: RegistryAuth,
}

pub struct RegistryClient {
    client: Client,
    endpoints: Vec<Endpoint>,
    /// The endpoint that served the first manifest; blobs come from it too.
    active: usize,
}

/// A blob response body; `skip` bytes must be dropped when the registry
/// ignored our `Range` and started from byte 0.
struct BlobBody {
    stream: BoxStream<'static, std::io::Result<Bytes>>,
    skip: u64,
}

/// How a failed request should be handled and reported.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Failure {
    NotFound,
    Denied,
    Unreachable,
    Transient,
    Fatal,
}

impl RegistryClient {
    pub fn new(config: &Config, reference: &Reference, creds: &CredentialStore) -> Result<RegistryClient> {
        let mut plain_http = Vec::new();
        let mut endpoints = Vec::new();
        for url in config.mirrors_for(&reference.registry) {
            let (scheme, host) = split_base_url(url)?;
            if scheme == "http" {
                plain_http.push(host.clone());
            }
            let mut image = oci_reference(reference);
            image.set_mirror_registry(host.clone());
            endpoints.push(Endpoint {
                image,
                url: url.trim_end_matches('/').to_string(),
                auth: auth_for(creds, &host)?,
            });
        }
        let image = oci_reference(reference);
        let host = image.resolve_registry().to_string();
        let scheme = if config.is_insecure(&reference.registry) {
            plain_http.push(host.clone());
            "http"
        } else {
            "https"
        };
        endpoints.push(Endpoint {
            url: format!("{scheme}://{host}"),
            auth: auth_for(creds, &reference.registry)?,
            image,
        });
        let hosts: Vec<String> = endpoints.iter().map(|e| e.image.resolve_registry().to_string()).collect();
        let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
        let client = Client::new(ClientConfig {
            extra_root_certificates: super::tls::oci_roots(config, &hosts)?,
            protocol: ClientProtocol::HttpsExcept(plain_http),
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(60)),
            user_agent: concat!("mini/", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        });
        Ok(RegistryClient { client, endpoints, active: 0 })
    }

    /// Base URL of the endpoint in use.
    pub fn url(&self) -> &str {
        &self.endpoints[self.active].url
    }

    /// The manifest the reference names, trying each mirror, then the
    /// registry; `expected` is the reference's digest, if it has one.
    pub async fn manifest(&mut self, expected: Option<&str>) -> Result<Document> {
        let mut last = None;
        for i in 0..self.endpoints.len() {
            self.active = i;
            let ep = &self.endpoints[i];
            match retrying(|| self.client.pull_manifest_raw(&ep.image, &ep.auth, ACCEPTED)).await {
                Ok((bytes, _)) => return verify_manifest(bytes, expected, self.url()),
                Err(e) => last = Some(self.describe(e, "fetch manifest")),
            }
        }
        Err(last.unwrap_or_else(|| Error::new("fetch manifest").because("no registry endpoint")))
    }

    /// The manifest `digest` (an index's entry) from the active endpoint.
    pub async fn manifest_by_digest(&self, digest: &Digest) -> Result<Document> {
        let ep = &self.endpoints[self.active];
        let image = ep.image.clone_with_digest(digest.to_string());
        let (bytes, _) = retrying(|| self.client.pull_manifest_raw(&image, &ep.auth, ACCEPTED))
            .await
            .map_err(|e| self.describe(e, &format!("fetch manifest {digest}")))?;
        verify_manifest(bytes, Some(&digest.to_string()), self.url())
    }

    /// Open a blob at `offset` (0 for the whole blob).
    async fn open_blob(&self, digest: &str, offset: u64) -> Result<BlobBody> {
        let ep = &self.endpoints[self.active];
        let opened = retrying(|| async {
            if offset == 0 {
                let s = self.client.pull_blob_stream(&ep.image, digest).await?;
                return Ok(BlobBody { stream: s.stream, skip: 0 });
            }
            Ok(match self.client.pull_blob_stream_partial(&ep.image, digest, offset, None).await? {
                BlobResponse::Partial(s) => BlobBody { stream: s.stream, skip: 0 },
                BlobResponse::Full(s) => BlobBody { stream: s.stream, skip: offset },
            })
        })
        .await;
        opened.map_err(|e| self.describe(e, &format!("fetch blob {digest}")))
    }

    /// A small blob (a config) whole, verified against its digest.
    pub async fn small_blob(&self, digest: &Digest, size: u64) -> Result<Bytes> {
        if size > MAX_SMALL_BLOB {
            return Err(Error::new(format!("fetch blob {digest}"))
                .because(format!("descriptor claims {size} bytes, more than a config may hold")));
        }
        let mut sink = Collect { data: Vec::with_capacity(size as usize) };
        self.download_blob(digest, size, &mut sink).await?;
        let actual = Digest::of_bytes(&sink.data);
        if actual != *digest {
            return Err(Error::new(format!("verify blob {digest} from {}", self.url()))
                .because(format!("digest mismatch: the registry sent content with digest {actual}")));
        }
        Ok(Bytes::from(sink.data))
    }

    /// Download blob `digest` of `size` bytes into `sink`, from where the
    /// sink stands: a body that breaks off or ends short is resumed with
    /// `Range`, after a back-off, up to [`MAX_ATTEMPTS`] attempts in all.
    /// The blob's digest is the sink's to check: it has the bytes.
    pub async fn download_blob(&self, digest: &Digest, size: u64, sink: &mut impl BlobSink) -> Result<Downloaded> {
        let text = digest.to_string();
        let mut attempt = 1;
        loop {
            let body = self.open_blob(&text, sink.written()).await?;
            let why = match self.copy(body, digest, size, sink).await? {
                BodyEnd::Cancelled => return Ok(Downloaded::Cancelled),
                // A body that breaks off after its full length failed the
                // client's digest check; the sink's own check says so.
                _ if sink.written() >= size => return Ok(Downloaded::Complete),
                BodyEnd::Ended => format!("the answer ended at byte {} of {size}", sink.written()),
                BodyEnd::Cut(e) => e.to_string(),
            };
            if attempt >= MAX_ATTEMPTS {
                return Err(Error::new(format!("download blob {digest} from {}", self.url()))
                    .because(format!("{why} (after {MAX_ATTEMPTS} attempts, {} of {size} bytes)", sink.written())));
            }
            sink.event(&format!("Retrying in {:?}", backoff(attempt)));
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
        }
    }

    /// Copy one response body into the sink.
    async fn copy(&self, mut body: BlobBody, digest: &Digest, size: u64, sink: &mut impl BlobSink) -> Result<BodyEnd> {
        sink.event("Downloading");
        while let Some(chunk) = body.stream.next().await {
            if sink.cancelled() {
                return Ok(BodyEnd::Cancelled);
            }
            let mut chunk = match chunk {
                Ok(c) => c,
                Err(e) => return Ok(BodyEnd::Cut(e)),
            };
            if body.skip > 0 {
                // The registry ignored Range: drop what we already have.
                let n = body.skip.min(chunk.len() as u64) as usize;
                body.skip -= n as u64;
                chunk = chunk.slice(n..);
            }
            if sink.written() + chunk.len() as u64 > size {
                return Err(Error::new(format!("download blob {digest} from {}", self.url()))
                    .because(format!("registry sent more than the {size} bytes the manifest declares")));
            }
            sink.write(chunk).await?;
        }
        if sink.written() >= size {
            sink.event("Download complete");
        }
        Ok(BodyEnd::Ended)
    }

    /// One line for a failed request: what, where, why, what to do.
    fn describe(&self, e: OciDistributionError, what: &str) -> Error {
        let ep = &self.endpoints[self.active];
        let target = format!("{} {} from {}", what, ep.image.repository(), ep.url);
        let err = Error::new(target);
        match classify(&e) {
            Failure::NotFound => err.because("not found (manifest unknown)").hint("check the repository name and tag"),
            Failure::Denied => err
                .because(format!("access denied: {}", short_reason(&e)))
                .hint("check the credentials in ~/.docker/config.json (or $DOCKER_CONFIG)"),
            Failure::Unreachable => {
                let cause = chain(&e);
                let hint = super::tls::untrusted_hint(&cause, ep.image.resolve_registry())
                    .unwrap_or_else(|| "check the address, or configure a mirror with --registry-mirror".into());
                err.because(format!("registry unreachable: {cause}")).hint(hint)
            }
            Failure::Transient => err.because(format!("{} (gave up after {MAX_ATTEMPTS} attempts)", chain(&e))),
            Failure::Fatal => err.because(chain(&e)),
        }
    }
}

pub(super) fn classify(e: &OciDistributionError) -> Failure {
    use OciDistributionError as E;
    match e {
        E::ImageManifestNotFoundError(_) => Failure::NotFound,
        E::UnauthorizedError { .. } | E::AuthenticationFailure(_) => Failure::Denied,
        E::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            if codes.iter().any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied)) {
                Failure::Denied
            } else if codes.iter().any(|c| matches!(c, OciErrorCode::Toomanyrequests)) {
                Failure::Transient
            } else if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::NotFound
                        | OciErrorCode::BlobUnknown
                )
            }) {
                Failure::NotFound
            } else {
                Failure::Fatal
            }
        }
        E::ServerError { code, .. } => match code {
            401 | 403 => Failure::Denied,
            404 => Failure::NotFound,
            408 | 429 | 500..=599 => Failure::Transient,
            _ => Failure::Fatal,
        },
        E::RequestError(r) if r.is_connect() => Failure::Unreachable,
        // A body that breaks off (a reset connection) reads as a decode error.
        E::RequestError(r) if r.is_timeout() || r.is_body() || r.is_decode() || r.is_request() => Failure::Transient,
        E::IoError(_) => Failure::Transient,
        _ => Failure::Fatal,
    }
}

fn short_reason(e: &OciDistributionError) -> String {
    match e {
        OciDistributionError::UnauthorizedError { .. } => "401 Unauthorized".to_string(),
        other => chain(other),
    }
}

/// Check a manifest fetched from `url`: its size, and its digest when the
/// reference named one.
fn verify_manifest(bytes: Bytes, expected: Option<&str>, url: &str) -> Result<Document> {
    let digest = Digest::of_bytes(&bytes);
    let what = || format!("verify manifest {} from {url}", expected.unwrap_or("by tag"));
    if bytes.len() > MAX_MANIFEST {
        return Err(Error::new(what()).because(format!("{} bytes, more than a manifest may hold", bytes.len())));
    }
    match expected {
        Some(want) if want != digest.to_string() => {
            Err(Error::new(what()).because(format!("digest mismatch: the registry sent content with digest {digest}")))
        }
        _ => Ok(Document { bytes, digest }),
    }
}

/// A small blob gathered in memory.
struct Collect {
    data: Vec<u8>,
}

impl BlobSink for Collect {
    fn written(&self) -> u64 {
        self.data.len() as u64
    }

    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        self.data.extend_from_slice(&chunk);
        Ok(())
    }

    fn cancelled(&self) -> bool {
        false
    }

    fn event(&self, _: &str) {}
}

/// `request` again after a back-off while it fails transiently, up to
/// MAX_ATTEMPTS in all, for oci-client's requests.
pub(super) async fn retrying<T, F, Fut>(request: F) -> std::result::Result<T, OciDistributionError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, OciDistributionError>>,
{
    retrying_while(|e| classify(e) == Failure::Transient, request).await
}

/// `request` again after a back-off while `transient` says its error may
/// pass, up to MAX_ATTEMPTS in all: the one retry loop of pulls and pushes.
pub(super) async fn retrying_while<T, E, F, Fut>(
    transient: impl Fn(&E) -> bool,
    mut request: F,
) -> std::result::Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, E>>,
{
    let mut attempt = 1;
    loop {
        match request().await {
            Err(e) if transient(&e) && attempt < MAX_ATTEMPTS => {
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// 200 ms, 400 ms, 800 ms, ... capped at 5 s.
pub(super) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((100u64 << attempt.min(6)).min(5000))
}

pub(super) fn auth_for(creds: &CredentialStore, host: &str) -> Result<RegistryAuth> {
    Ok(match creds.lookup(host)? {
        Some(c) if c.username == super::auth::TOKEN_USER => RegistryAuth::Bearer(c.password),
        Some(c) => RegistryAuth::Basic(c.username, c.password),
        None => RegistryAuth::Anonymous,
    })
}

pub(super) fn oci_reference(r: &Reference) -> oci_client::Reference {
    match (&r.tag, &r.digest) {
        (_, Some(d)) => oci_client::Reference::with_digest(r.registry.clone(), r.repository.clone(), d.clone()),
        (Some(t), None) => oci_client::Reference::with_tag(r.registry.clone(), r.repository.clone(), t.clone()),
        (None, None) => oci_client::Reference::with_tag(r.registry.clone(), r.repository.clone(), "latest".into()),
    }
}

/// `http://127.0.0.1:5000/` → ("http", "127.0.0.1:5000"). Mirrors are
/// registries in their own right, so a path prefix is not supported.
fn split_base_url(url: &str) -> Result<(String, String)> {
    let bad = |why: &str| Error::new(format!("registry mirror `{url}`")).because(why.to_string());
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("not a URL"))?;
    if scheme != "http" && scheme != "https" {
        return Err(bad("scheme must be http or https"));
    }
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains('/') {
        return Err(bad("a mirror is a registry's base URL, without a path"));
    }
    Ok((scheme.to_string(), rest.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(split_base_url("http://127.0.0.1:5000/").unwrap(), ("http".into(), "127.0.0.1:5000".into()));
        assert_eq!(split_base_url("https://m.example").unwrap(), ("https".into(), "m.example".into()));
        assert!(split_base_url("ftp://x").is_err());
        assert!(split_base_url("http://x/v2/prefix").is_err());
        assert!(split_base_url("x:5000").is_err());
    }

    #[test]
    fn manifests_verify_against_the_digest_asked_for() {
        let d = Digest::of_bytes(b"{}");
        let ok = verify_manifest(Bytes::from_static(b"{}"), Some(&d.to_string()), "http://r").unwrap();
        assert_eq!(ok.digest, d);
        assert_eq!(
            verify_manifest(Bytes::from_static(b"{ }"), None, "http://r").unwrap().digest,
            Digest::of_bytes(b"{ }")
        );
        let e = verify_manifest(Bytes::from_static(b"{ }"), Some(&d.to_string()), "http://r").unwrap_err().to_string();
        assert!(e.contains("digest mismatch") && e.contains(&d.to_string()) && e.contains("http://r"), "{e}");
        let big = Bytes::from(vec![b' '; MAX_MANIFEST + 1]);
        assert!(verify_manifest(big, None, "http://r")
            .unwrap_err()
            .to_string()
            .contains("more than a manifest may hold"));
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(2), Duration::from_millis(400));
        assert_eq!(backoff(10), Duration::from_millis(5000));
    }

    #[test]
    fn classifies_http_failures() {
        let server = |code| OciDistributionError::ServerError { code, url: "u".into(), message: String::new() };
        assert_eq!(classify(&server(503)), Failure::Transient);
        assert_eq!(classify(&server(404)), Failure::NotFound);
        assert_eq!(classify(&server(403)), Failure::Denied);
        assert_eq!(classify(&server(400)), Failure::Fatal);
        assert_eq!(classify(&OciDistributionError::UnauthorizedError { url: "u".into() }), Failure::Denied);
    }
}
