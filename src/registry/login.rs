//! `mini login` / `mini logout`: credentials checked against the registry
//! the way `docker login` checks them (GET /v2/ with basic auth; on a
//! Bearer challenge, a token for no scope from the realm with the same
//! credentials), then stored as Docker stores them: through the registry's
//! credential helper or the `credsStore` when config.json names one
//! (`docker-credential-<name> store|erase`, the helper protocol), else as
//! base64 `auth` in `auths`. config.json is rewritten whole, atomically,
//! mode 0600, keeping every key mini does not know.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::{json, Map, Value};

use super::auth::{config_path, docker_key, Credentials};
use crate::config::{Config, DOCKER_HUB};
use crate::error::{Error, Result};

/// Check `creds` against `registry` (a host, `docker.io` for Docker Hub).
pub fn check(config: &Config, registry: &str, creds: &Credentials) -> Result<()> {
    crate::sys::process::ignore_sigpipe();
    let what = || format!("log in to {registry}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::new(what()).because(e))?;
    runtime.block_on(check_async(config, registry, creds)).map_err(|e| e.within(what()))
}

async fn check_async(config: &Config, registry: &str, creds: &Credentials) -> Result<()> {
    let host = if registry == DOCKER_HUB { "registry-1.docker.io" } else { registry };
    let scheme = if config.is_insecure(host) { "http" } else { "https" };
    let client = super::tls::client_builder(config, &[host])?
        .timeout(std::time::Duration::from_secs(30))
        .user_agent(concat!("mini/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::new("make an HTTP client").because(e))?;
    let url = format!("{scheme}://{host}/v2/");
    let send = |url: String| client.get(url).basic_auth(&creds.username, Some(&creds.password)).send();
    let answer = send(url.clone()).await.map_err(|e| unreachable(&url, &e))?;
    match answer.status().as_u16() {
        200..=299 => Ok(()),
        401 => {
            let challenge = answer.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or("");
            match super::challenge::bearer(challenge) {
                // A Basic challenge to a request that carried credentials.
                None => Err(denied()),
                Some(bearer) => {
                    let token_url = bearer.token_url(None, Some(&creds.username));
                    let token = send(token_url.clone()).await.map_err(|e| unreachable(&token_url, &e))?;
                    match token.status().as_u16() {
                        200..=299 => Ok(()),
                        401 | 403 => Err(denied()),
                        code => {
                            Err(Error::new(format!("get a token from {token_url}")).because(format!("HTTP {code}")))
                        }
                    }
                }
            }
        }
        code => Err(Error::new(format!("GET {url}")).because(format!("HTTP {code}"))),
    }
}

fn denied() -> Error {
    Error::new("unauthorized").because("incorrect username or password")
}

fn unreachable(url: &str, e: &reqwest::Error) -> Error {
    Error::new(format!("GET {url}")).caused_by(e).hint("check the registry's address")
}

/// Store `creds` for `registry`; returns the file written.
pub fn save(registry: &str, creds: &Credentials) -> Result<PathBuf> {
    let path = config_path().ok_or_else(|| Error::new("find ~/.docker/config.json").because("HOME is not set"))?;
    let mut doc = read_doc(&path)?;
    let key = docker_key(registry);
    let entry = match helper_for(&doc, &key) {
        Some(helper) => {
            let input = json!({"ServerURL": key, "Username": creds.username, "Secret": creds.password}).to_string();
            run_helper(&helper, "store", &input)?;
            // As Docker: the server is listed, its secret is the helper's.
            json!({})
        }
        None => {
            let auth =
                base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", creds.username, creds.password));
            json!({ "auth": auth })
        }
    };
    object_at(&mut doc, "auths").insert(key, entry);
    write_doc(&path, &doc)?;
    Ok(path)
}

/// Forget the credentials for `registry`; false when there were none.
pub fn remove(registry: &str) -> Result<bool> {
    let Some(path) = config_path() else { return Ok(false) };
    let mut doc = read_doc(&path)?;
    let key = docker_key(registry);
    if let Some(helper) = helper_for(&doc, &key) {
        // A helper that has nothing for the server says so; not an error.
        let _ = run_helper(&helper, "erase", &key);
    }
    let removed = object_at(&mut doc, "auths").remove(&key).is_some();
    if removed {
        write_doc(&path, &doc)?;
    }
    Ok(removed)
}

/// The helper for server `key`: its `credHelpers` entry, else `credsStore`.
fn helper_for(doc: &Value, key: &str) -> Option<String> {
    let named = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    doc.get("credHelpers").and_then(|h| h.get(key)).and_then(named).or_else(|| doc.get("credsStore").and_then(named))
}

fn run_helper(helper: &str, verb: &str, input: &str) -> Result<()> {
    let program = format!("docker-credential-{helper}");
    let fail = |why: String| Error::new(format!("{program} {verb}")).because(why);
    match crate::sys::process::run_with_input(&program, &[verb], input.as_bytes()) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(said)) => Err(fail(said)),
        Err(e) => Err(fail(format!("{e} (is it on PATH?)"))),
    }
}

/// The config file as JSON; `{}` when it does not exist.
fn read_doc(path: &Path) -> Result<Value> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| Error::new(format!("read {}", path.display())).because(e).hint("fix or remove the file")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(json!({})),
        Err(e) => Err(Error::new(format!("read {}", path.display())).because(e)),
    }
}

/// `doc[key]` as an object, made when missing.
fn object_at<'a>(doc: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !doc.is_object() {
        *doc = json!({});
    }
    let map = doc.as_object_mut().expect("an object");
    let v = map.entry(key.to_string()).or_insert_with(|| json!({}));
    if !v.is_object() {
        *v = json!({});
    }
    v.as_object_mut().expect("an object")
}

/// Write `doc` to `path` by rename from a 0600 temp file beside it.
fn write_doc(path: &Path, doc: &Value) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let fail = |e: std::io::Error| Error::new(format!("write {}", path.display())).because(e);
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(fail)?;
    let tmp = dir.join(format!(".config.json.{}", std::process::id()));
    let text = serde_json::to_vec_pretty(doc).map_err(|e| Error::new("encode config.json").because(e))?;
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&text).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_come_from_cred_helpers_then_the_store() {
        let doc = json!({"credsStore": "pass", "credHelpers": {"a.example": "ecr"}});
        assert_eq!(helper_for(&doc, "a.example").as_deref(), Some("ecr"));
        assert_eq!(helper_for(&doc, "b.example").as_deref(), Some("pass"));
        assert_eq!(helper_for(&json!({"credsStore": ""}), "b.example"), None);
    }
}
