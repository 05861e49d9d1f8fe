//! One image's registry, reached through its mirrors first: manifests and
//! blobs over the OCI distribution API (oci-client does the HTTP, auth
//! challenges and token cache). Transient failures are retried with backoff;
//! blob streams resume with `Range` where the registry allows it.

use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use oci_client::client::{BlobResponse, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::Client;

use crate::config::Config;
use crate::error::{chain, Error, Result};
use crate::image::manifest::ACCEPTED;
use crate::image::reference::Reference;
use crate::registry::auth::CredentialStore;

/// Attempts per request before giving up on a transient failure.
pub const MAX_ATTEMPTS: u32 = 5;
/// Manifests and configs are small; refuse to buffer more than this.
const MAX_SMALL_BLOB: u64 = 8 << 20;

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
pub struct BlobBody {
    pub stream: BoxStream<'static, std::io::Result<Bytes>>,
    pub skip: u64,
}

/// How a failed request should be handled and reported.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
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
            endpoints.push(Endpoint { image, url: url.trim_end_matches('/').to_string(), auth: auth_for(creds, &host) });
        }
        let image = oci_reference(reference);
        let host = image.resolve_registry().to_string();
        let scheme = if config.is_insecure(&reference.registry) {
            plain_http.push(host.clone());
            "http"
        } else {
            "https"
        };
        endpoints.push(Endpoint { url: format!("{scheme}://{host}"), auth: auth_for(creds, &reference.registry), image });
        let client = Client::new(ClientConfig {
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

    /// Fetch the manifest the reference names, trying each mirror, then the
    /// registry. Returns the bytes and the digest the registry claims (the
    /// caller verifies it).
    pub async fn first_manifest(&mut self) -> Result<(Bytes, String)> {
        let mut last = None;
        for i in 0..self.endpoints.len() {
            self.active = i;
            let ep = &self.endpoints[i];
            match self.retrying(|| self.client.pull_manifest_raw(&ep.image, &ep.auth, ACCEPTED)).await {
                Ok(found) => return Ok(found),
                Err(e) => last = Some(self.describe(e, "fetch manifest")),
            }
        }
        Err(last.unwrap_or_else(|| Error::new("fetch manifest").because("no registry endpoint")))
    }

    /// Fetch a manifest by digest from the active endpoint.
    pub async fn manifest_by_digest(&self, digest: &str) -> Result<(Bytes, String)> {
        let ep = &self.endpoints[self.active];
        let image = ep.image.clone_with_digest(digest.to_string());
        self.retrying(|| self.client.pull_manifest_raw(&image, &ep.auth, ACCEPTED))
            .await
            .map_err(|e| self.describe(e, &format!("fetch manifest {digest}")))
    }

    /// Open a blob at `offset` (0 for the whole blob).
    pub async fn open_blob(&self, digest: &str, offset: u64) -> Result<BlobBody> {
        let ep = &self.endpoints[self.active];
        let opened = self
            .retrying(|| async {
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

    /// Fetch a small blob (a config) whole.
    pub async fn small_blob(&self, digest: &str, size: u64) -> Result<Vec<u8>> {
        if size > MAX_SMALL_BLOB {
            return Err(Error::new(format!("fetch blob {digest}"))
                .because(format!("descriptor claims {size} bytes, more than a config may hold")));
        }
        for attempt in 1..=MAX_ATTEMPTS {
            let mut body = self.open_blob(digest, 0).await?;
            let mut data = Vec::with_capacity(size as usize);
            let mut failed = None;
            while let Some(chunk) = body.stream.next().await {
                match chunk {
                    Ok(bytes) if data.len() as u64 + bytes.len() as u64 > size => {
                        return Err(Error::new(format!("fetch blob {digest}"))
                            .because(format!("registry sent more than the {size} bytes the manifest declares")))
                    }
                    Ok(bytes) => data.extend_from_slice(&bytes),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            match failed {
                None => return Ok(data),
                // A full-length body that fails at its end failed its digest check.
                Some(_) if data.len() as u64 == size => return Ok(data),
                Some(e) if attempt == MAX_ATTEMPTS => {
                    return Err(Error::new(format!("fetch blob {digest} from {}", self.url())).because(e))
                }
                Some(_) => tokio::time::sleep(backoff(attempt)).await,
            }
        }
        unreachable!("the loop returns on its last attempt")
    }

    async fn retrying<T, F, Fut>(&self, mut request: F) -> std::result::Result<T, OciDistributionError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, OciDistributionError>>,
    {
        let mut attempt = 1;
        loop {
            match request().await {
                Err(e) if classify(&e) == Failure::Transient && attempt < MAX_ATTEMPTS => {
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// One line for a failed request: what, where, why, what to do.
    fn describe(&self, e: OciDistributionError, what: &str) -> Error {
        let ep = &self.endpoints[self.active];
        let target = format!("{} {} from {}", what, ep.image.repository(), ep.url);
        let err = Error::new(target);
        match classify(&e) {
            Failure::NotFound => err
                .because("not found (manifest unknown)")
                .hint("check the repository name and tag"),
            Failure::Denied => err
                .because(format!("access denied: {}", short_reason(&e)))
                .hint("check the credentials in ~/.docker/config.json (or $DOCKER_CONFIG)"),
            Failure::Unreachable => err
                .because(format!("registry unreachable: {}", chain(&e)))
                .hint("check the address, or configure a mirror with --registry-mirror"),
            Failure::Transient => err.because(format!("{} (gave up after {MAX_ATTEMPTS} attempts)", chain(&e))),
            Failure::Fatal => err.because(chain(&e)),
        }
    }
}

fn classify(e: &OciDistributionError) -> Failure {
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
                matches!(c, OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown | OciErrorCode::NotFound | OciErrorCode::BlobUnknown)
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
        E::RequestError(r) if r.is_timeout() || r.is_body() || r.is_request() => Failure::Transient,
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

/// 200 ms, 400 ms, 800 ms, ... capped at 5 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((100u64 << attempt.min(6)).min(5000))
}

fn auth_for(creds: &CredentialStore, host: &str) -> RegistryAuth {
    match creds.lookup(host) {
        Some(c) => RegistryAuth::Basic(c.username.clone(), c.password.clone()),
        None => RegistryAuth::Anonymous,
    }
}

fn oci_reference(r: &Reference) -> oci_client::Reference {
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
