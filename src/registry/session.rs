//! The distribution API's push side, spoken here rather than through
//! oci-client: with basic auth, oci-client asks `GET /v2/` again before
//! every request (it caches bearer tokens, not a basic header), a round
//! trip more for every blob checked and uploaded; and its uploads either hold
//! the blob in memory (monolithic) or send 4 MiB PATCHes that cannot
//! resume. Here every request carries the header `Uploader::authenticate`
//! settled on, and:
//! - `HEAD …/blobs/D` asks whether the repository has a blob;
//! - `POST …/blobs/uploads/?mount=D&from=R` mounts it from another one;
//! - a blob up to WHOLE_MAX goes up in one streamed `PUT …?digest=` on a
//!   new session, started over in a new session after a break;
//! - a larger one in `PATCH`es of CHUNK bytes with `Content-Range`, each
//!   streamed from the blob's file (never held in memory), then `PUT
//!   …?digest=` closes it. When a PATCH breaks off (a dropped connection),
//!   `GET` on the session's URL says how much the registry has (`Range:
//!   0-N`) and the upload goes on from byte N+1. A registry may instead
//!   declare such a session invalid — docker's distribution does, since
//!   its signed state names the offset before the broken PATCH — and then
//!   the blob starts over in a new session; either way a dropped
//!   connection costs at most that blob, never the push;
//! - `PUT …/manifests/TAG` puts the manifest's bytes as they are.

use std::future::Future;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream;
use reqwest::header::{
    HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE, WWW_AUTHENTICATE,
};
use reqwest::StatusCode;

use super::auth::{Credentials, TOKEN_USER};
use super::challenge;
use super::client::{backoff, retrying_while, Failure as Kind, MAX_ATTEMPTS};
use crate::error::{Error, Result};
use mini_store::digest::Digest;

/// Blobs up to this size go up whole, in one PUT: one request fewer than
/// a PATCH and its closing PUT (the registry checks the credentials of
/// every request; bcrypt for htpasswd ones), and a break costs at most
/// this much sent again.
pub const WHOLE_MAX: u64 = 32 << 20;
/// Bytes per PATCH of a larger blob: few requests (each streamed from
/// disk; bench/push.sh measured 0.60x skopeo with 16 MiB, 0.50x with
/// 64 MiB), and a resume never has more than this to ask about.
const CHUNK: u64 = 64 << 20;
/// Bytes per piece of a request's body read from the file.
const PIECE: usize = 1 << 20;

/// One registry repository to push to.
pub struct Target<'a> {
    pub http: &'a reqwest::Client,
    /// `http://host:port`.
    pub base: &'a str,
    pub repository: &'a str,
    /// The `Authorization` header, if the registry wants one.
    pub auth: Option<HeaderValue>,
}

/// What a request of the push protocol comes to.
pub type Outcome<T> = std::result::Result<T, Failure>;

/// A failed request: what failed, and how the caller should take it
/// (retry, ask for a login, name the unreachable registry).
#[derive(Debug)]
pub struct Failure {
    pub error: Error,
    pub(super) kind: Kind,
}

impl Failure {
    fn transient(&self) -> bool {
        self.kind == Kind::Transient
    }

    fn within(self, what: String) -> Failure {
        Failure { error: self.error.within(what), kind: self.kind }
    }
}

fn failed(what: &str, e: reqwest::Error) -> Failure {
    let kind = if e.is_connect() {
        Kind::Unreachable
    } else if e.is_timeout() || e.is_request() || e.is_body() || e.is_decode() {
        Kind::Transient
    } else {
        Kind::Fatal
    };
    Failure { error: Error::new(what.to_string()).caused_by(&e), kind }
}

fn refused(what: &str, status: StatusCode, body: &str) -> Failure {
    let kind = match status.as_u16() {
        401 | 403 => Kind::Denied,
        404 => Kind::NotFound,
        408 | 429 | 500..=599 => Kind::Transient,
        _ => Kind::Fatal,
    };
    let detail = body.trim().chars().take(200).collect::<String>();
    let because = if detail.is_empty() { format!("HTTP {status}") } else { format!("HTTP {status}: {detail}") };
    Failure { error: Error::new(what.to_string()).because(because), kind }
}

/// A response's status as a Failure unless it is `want`.
async fn expect(what: &str, r: reqwest::Response, want: StatusCode) -> Outcome<reqwest::Response> {
    if r.status() == want {
        return Ok(r);
    }
    let status = r.status();
    Err(refused(what, status, &r.text().await.unwrap_or_default()))
}

/// `request` again after a back-off while it fails transiently.
async fn retrying<T, F, Fut>(request: F) -> Outcome<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Outcome<T>>,
{
    retrying_while(Failure::transient, request).await
}

fn with_auth(t: &Target, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    match &t.auth {
        Some(h) => r.header(AUTHORIZATION, h.clone()),
        None => r,
    }
}

/// `Location` made absolute (registries may answer with a path).
fn location_of(t: &Target, r: &reqwest::Response) -> Option<String> {
    let l = r.headers().get(LOCATION)?.to_str().ok()?;
    Some(if l.starts_with("http://") || l.starts_with("https://") { l.to_string() } else { format!("{}{l}", t.base) })
}

/// The Authorization header every request of a push carries: none when
/// `GET /v2/` needs none; the credentials on a Basic challenge; on a
/// Bearer one, a token for `repository:R:pull,push` from the realm, asked
/// with the credentials if there are any (else anonymously: the registry
/// may then refuse the first upload); an identity token as it is.
pub async fn authorize(t: &Target<'_>, creds: Option<&Credentials>) -> Outcome<Option<HeaderValue>> {
    if let Some(c) = creds.filter(|c| c.username == TOKEN_USER) {
        return header_value(format!("Bearer {}", c.password)).map(Some);
    }
    let url = format!("{}/v2/", t.base);
    let what = format!("GET {url}");
    let r = retrying(|| async { t.http.get(&url).send().await.map_err(|e| failed(&what, e)) }).await?;
    if r.status().is_success() {
        return Ok(None);
    }
    if r.status() != StatusCode::UNAUTHORIZED {
        return Err(refused(&what, r.status(), ""));
    }
    let challenge = r.headers().get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let Some(bearer) = challenge::bearer(challenge) else {
        return creds.map(basic).transpose();
    };
    let scope = format!("repository:{}:pull,push", t.repository);
    let url = bearer.token_url(Some(&scope), creds.map(|c| c.username.as_str()));
    let what = format!("get a push token from {}", url.split('?').next().unwrap_or(&url));
    let mut request = t.http.get(&url);
    if let Some(c) = creds {
        request = request.basic_auth(&c.username, Some(&c.password));
    }
    let r = request.send().await.map_err(|e| failed(&what, e))?;
    let body = expect(&what, r, StatusCode::OK).await?.bytes().await.map_err(|e| failed(&what, e))?;
    let token = challenge::token_of(&body)
        .ok_or_else(|| Failure { error: Error::new(what).because("the answer holds no token"), kind: Kind::Fatal })?;
    header_value(format!("Bearer {token}")).map(Some)
}

fn basic(c: &Credentials) -> Outcome<HeaderValue> {
    use base64::Engine;
    header_value(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password))
    ))
}

fn header_value(text: String) -> Outcome<HeaderValue> {
    HeaderValue::from_str(&text).map_err(|_| Failure {
        error: Error::new("send the credentials").because("they hold characters an HTTP header cannot"),
        kind: Kind::Fatal,
    })
}

/// The session's URL for its next request, from an accepted answer.
fn session_url(t: &Target, what: &str, r: reqwest::Response) -> Outcome<String> {
    location_of(t, &r)
        .ok_or_else(|| Failure { error: Error::new(what).because("the registry sent no Location"), kind: Kind::Fatal })
}

/// Whether the repository has blob `digest`.
pub async fn exists(t: &Target<'_>, digest: &Digest) -> Outcome<bool> {
    let url = format!("{}/v2/{}/blobs/{digest}", t.base, t.repository);
    let what = format!("check blob {digest}");
    retrying(|| async {
        let r = with_auth(t, t.http.head(&url)).send().await.map_err(|e| failed(&what, e))?;
        match r.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            s => Err(refused(&what, s, "")),
        }
    })
    .await
}

/// Mount blob `digest` from repository `from` of the same registry; false
/// when the registry would not (it then has to be uploaded; the session
/// it may have opened instead is left to expire, as docker push does).
pub async fn mount(t: &Target<'_>, digest: &Digest, from: &str) -> bool {
    let url = format!("{}/v2/{}/blobs/uploads/?mount={digest}&from={from}", t.base, t.repository);
    let sent = with_auth(t, t.http.post(&url)).header(CONTENT_LENGTH, 0).send().await;
    matches!(sent, Ok(r) if r.status() == StatusCode::CREATED)
}

/// Put the manifest's bytes under `tag` (or digest) with `media_type`.
pub async fn manifest(t: &Target<'_>, tag: &str, bytes: Bytes, media_type: &str) -> Outcome<()> {
    let url = format!("{}/v2/{}/manifests/{tag}", t.base, t.repository);
    let what = "put the manifest";
    retrying(|| async {
        let r = with_auth(t, t.http.put(&url))
            .header(CONTENT_TYPE, media_type)
            .header(CONTENT_LENGTH, bytes.len())
            .body(bytes.clone())
            .send()
            .await
            .map_err(|e| failed(what, e))?;
        expect(what, r, StatusCode::CREATED).await.map(drop)
    })
    .await
}

/// Upload the `size` bytes at `path` as blob `digest`, whole or in
/// resumable chunks by its size; `sent` is told how many bytes the
/// registry has.
pub async fn upload(
    t: &Target<'_>,
    path: &Path,
    digest: &Digest,
    size: u64,
    sent: &Arc<dyn Fn(u64) + Send + Sync>,
) -> Outcome<()> {
    let what = || format!("upload blob {digest}");
    if size <= WHOLE_MAX {
        // A new session, then one PUT with every byte; a new session for
        // each attempt after a break.
        let whole = retrying(|| async {
            let location = open(t).await?;
            let body = file_range(path, 0, size, sent.clone()).map_err(|error| Failure { error, kind: Kind::Fatal })?;
            finish(t, &location, digest, body, size).await
        });
        return whole.await.map_err(|e| e.within(what()));
    }
    let mut location = open(t).await.map_err(|e| e.within(what()))?;
    let mut offset = 0u64;
    let mut attempt = 1;
    while offset < size {
        let len = CHUNK.min(size - offset);
        match patch(t, &location, path, offset, len, sent).await {
            Ok(next) => {
                location = next;
                offset += len;
            }
            Err(e) if attempt < MAX_ATTEMPTS && e.transient() => {
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
                (location, offset) = match received(t, &location).await {
                    Ok(at) => at,
                    Err(_) => (open(t).await.map_err(|e| e.within(what()))?, 0),
                };
                sent(offset);
            }
            Err(e) => return Err(e.within(what())),
        }
    }
    finish(t, &location, digest, reqwest::Body::from(Bytes::new()), 0).await.map_err(|e| e.within(what()))
}

async fn open(t: &Target<'_>) -> Outcome<String> {
    let url = format!("{}/v2/{}/blobs/uploads/", t.base, t.repository);
    let what = "open an upload";
    let r = with_auth(t, t.http.post(&url)).header(CONTENT_LENGTH, 0).send().await.map_err(|e| failed(what, e))?;
    session_url(t, what, expect(what, r, StatusCode::ACCEPTED).await?)
}

/// PATCH bytes `offset..offset+len` of the file; the session's next URL.
async fn patch(
    t: &Target<'_>,
    location: &str,
    path: &Path,
    offset: u64,
    len: u64,
    sent: &Arc<dyn Fn(u64) + Send + Sync>,
) -> Outcome<String> {
    let what = format!("send bytes {offset}-{}", offset + len - 1);
    let body = file_range(path, offset, len, sent.clone()).map_err(|error| Failure { error, kind: Kind::Fatal })?;
    let r = with_auth(t, t.http.patch(location))
        .header(CONTENT_TYPE, "application/octet-stream")
        .header(CONTENT_RANGE, format!("{offset}-{}", offset + len - 1))
        .header(CONTENT_LENGTH, len)
        .body(body)
        .send()
        .await
        .map_err(|e| failed(&what, e))?;
    session_url(t, &what, expect(&what, r, StatusCode::ACCEPTED).await?)
}

/// How much of the session the registry holds: (its URL, bytes held).
async fn received(t: &Target<'_>, location: &str) -> Outcome<(String, u64)> {
    let what = "ask for the upload's status";
    let r = with_auth(t, t.http.get(location)).send().await.map_err(|e| failed(what, e))?;
    let r = expect(what, r, StatusCode::NO_CONTENT).await?;
    let range = r.headers().get(RANGE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let held = parse_range_end(range).map_or(0, |end| end + 1);
    Ok((location_of(t, &r).unwrap_or_else(|| location.to_string()), held))
}

/// `0-N` (or `bytes=0-N`) → N; an empty upload says `0-0` for none,
/// which is read as N = 0 held bytes minus one, so None.
fn parse_range_end(range: &str) -> Option<u64> {
    let r = range.trim().trim_start_matches("bytes=");
    let (start, end) = r.split_once('-')?;
    let (start, end): (u64, u64) = (start.parse().ok()?, end.parse().ok()?);
    (end > start || (start == 0 && end > 0)).then_some(end)
}

/// Close the session with its last `len` bytes (none after PATCHes) and
/// the digest the registry must find.
async fn finish(t: &Target<'_>, location: &str, digest: &Digest, body: reqwest::Body, len: u64) -> Outcome<()> {
    let sep = if location.contains('?') { '&' } else { '?' };
    let url = format!("{location}{sep}digest={digest}");
    let what = "close the upload";
    let r = with_auth(t, t.http.put(&url))
        .header(CONTENT_TYPE, "application/octet-stream")
        .header(CONTENT_LENGTH, len)
        .body(body)
        .send()
        .await
        .map_err(|e| failed(what, e))?;
    expect(what, r, StatusCode::CREATED).await.map(drop)
}

/// `len` bytes of the file from `offset`, as a body streamed a PIECE at a
/// time; `sent` hears the file position after each piece.
fn file_range(path: &Path, offset: u64, len: u64, sent: Arc<dyn Fn(u64) + Send + Sync>) -> Result<reqwest::Body> {
    let fail = |e: std::io::Error| Error::new(format!("read {}", path.display())).because(e);
    let mut file = std::fs::File::open(path).map_err(fail)?;
    file.seek(SeekFrom::Start(offset)).map_err(fail)?;
    let pieces = stream::unfold((file, 0u64), move |(mut file, done)| {
        let sent = sent.clone();
        async move {
            if done >= len {
                return None;
            }
            let mut buf = vec![0u8; PIECE.min((len - done) as usize)];
            match file.read_exact(&mut buf) {
                Ok(()) => {
                    let done = done + buf.len() as u64;
                    sent(offset + done);
                    Some((Ok::<Bytes, std::io::Error>(Bytes::from(buf)), (file, done)))
                }
                Err(e) => Some((Err(e), (file, len))),
            }
        }
    });
    Ok(reqwest::Body::wrap_stream(pieces))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_whether_to_retry_or_log_in() {
        let kind = |code: u16| refused("x", StatusCode::from_u16(code).unwrap(), "").kind;
        assert_eq!((kind(401), kind(403)), (Kind::Denied, Kind::Denied));
        assert_eq!(kind(404), Kind::NotFound);
        assert_eq!((kind(408), kind(429), kind(503)), (Kind::Transient, Kind::Transient, Kind::Transient));
        assert_eq!((kind(400), kind(416)), (Kind::Fatal, Kind::Fatal));
        let e = refused("put the manifest", StatusCode::BAD_REQUEST, &format!("  {}\n", "x".repeat(300))).error;
        assert_eq!(e.to_string(), format!("put the manifest: HTTP 400 Bad Request: {}", "x".repeat(200)));
    }

    #[test]
    fn ranges_say_how_much_the_registry_holds() {
        assert_eq!(parse_range_end("0-1048575"), Some(1048575));
        assert_eq!(parse_range_end("bytes=0-99"), Some(99));
        assert_eq!(parse_range_end("0-0"), None, "an empty session");
        assert_eq!(parse_range_end(""), None);
        assert_eq!(parse_range_end("junk"), None);
    }
}
