//! Registry credentials from Docker's config file (`$DOCKER_CONFIG/config.json`,
//! default `~/.docker/config.json`), read the way the docker CLI does: a
//! `credHelpers` entry for the registry, else the `credsStore`, runs
//! `docker-credential-<name> get` (the helper protocol, through the
//! docker_credential crate); otherwise an `auths` entry holding base64
//! `user:password` in `auth`, or `username` and `password` fields. A helper
//! that fails is an error, never a silent anonymous pull. The parser takes
//! bytes; [`super::login`] writes the file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine;
use serde::Deserialize;

use crate::config::DOCKER_HUB;
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// A Docker config file's credentials: its `auths`, and its whole text
/// when it names credential helpers.
#[derive(Debug, Default, Clone)]
pub struct CredentialStore {
    auths: BTreeMap<String, Credentials>,
    /// The file's bytes, kept when `credsStore` or `credHelpers` is set.
    with_helpers: Option<Vec<u8>>,
}

#[derive(Deserialize)]
struct DockerConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

/// The user name a helper answers with for an identity token, as Docker's.
pub const TOKEN_USER: &str = "<token>";

/// Docker's own key for a registry in config.json: Docker Hub's historical
/// URL, or the host as typed.
pub fn docker_key(registry: &str) -> String {
    match registry {
        DOCKER_HUB | "index.docker.io" | "registry-1.docker.io" => "https://index.docker.io/v1/".to_string(),
        r => r.to_string(),
    }
}

/// Where Docker's config file is: `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`.
pub fn config_path() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(d) => Some(PathBuf::from(d).join("config.json")),
        None => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json")),
    }
}

#[derive(Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

impl CredentialStore {
    /// Load from `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`; a
    /// missing file means no credentials.
    pub fn load() -> Result<CredentialStore> {
        let Some(path) = config_path() else { return Ok(CredentialStore::default()) };
        match std::fs::read(&path) {
            Ok(bytes) => {
                CredentialStore::parse(&bytes).map_err(|e| e.within(format!("read credentials {}", path.display())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CredentialStore::default()),
            Err(e) => Err(Error::new(format!("read credentials {}", path.display())).because(e)),
        }
    }

    pub fn parse(bytes: &[u8]) -> Result<CredentialStore> {
        let file: DockerConfigFile =
            serde_json::from_slice(bytes).map_err(|e| Error::new("parse docker config").because(e))?;
        let mut auths = BTreeMap::new();
        for (key, entry) in file.auths {
            let creds = match (entry.auth, entry.username, entry.password) {
                (Some(auth), _, _) if !auth.is_empty() => decode_auth(&key, &auth)?,
                (_, Some(username), Some(password)) => Credentials { username, password },
                _ => continue,
            };
            auths.insert(normalize_key(&key), creds);
        }
        let helpers = file.creds_store.is_some_and(|s| !s.is_empty()) || !file.cred_helpers.is_empty();
        Ok(CredentialStore { auths, with_helpers: helpers.then(|| bytes.to_vec()) })
    }

    /// Credentials for a registry host: its credential helper's (or the
    /// store's) when the file names one, else its `auths` entry
    /// (`docker.io` finds Docker Hub's historical key
    /// `https://index.docker.io/v1/`).
    pub fn lookup(&self, registry: &str) -> Result<Option<Credentials>> {
        if let Some(bytes) = &self.with_helpers {
            let key = docker_key(registry);
            use docker_credential::{CredentialRetrievalError as E, DockerCredential as D};
            // A helper that exits without reading its stdin must not end
            // mini with SIGPIPE: it fails, and says why.
            crate::sys::process::ignore_sigpipe();
            let answer = docker_credential::get_credential_from_reader(bytes.as_slice(), &key);
            crate::sys::process::default_sigpipe();
            match answer {
                Ok(D::UsernamePassword(username, password)) => return Ok(Some(Credentials { username, password })),
                Ok(D::IdentityToken(token)) => {
                    return Ok(Some(Credentials { username: TOKEN_USER.to_string(), password: token }))
                }
                Err(E::NoCredentialConfigured) => {}
                Err(e) => {
                    return Err(Error::new(format!("get the credentials for {registry}"))
                        .because(helper_failure(&e))
                        .hint("check the credential helper named by credsStore/credHelpers in ~/.docker/config.json"))
                }
            }
        }
        let key = if registry == DOCKER_HUB || registry == "index.docker.io" { DOCKER_HUB } else { registry };
        Ok(self.auths.get(key).cloned())
    }
}

/// A helper's failure in one line: its own stderr when it said something.
fn helper_failure(e: &docker_credential::CredentialRetrievalError) -> String {
    use docker_credential::CredentialRetrievalError as E;
    match e {
        E::HelperFailure { helper, stdout, stderr } => {
            let said = if stderr.trim().is_empty() { stdout.trim() } else { stderr.trim() };
            format!("{helper} failed: {said}")
        }
        E::HelperCommunicationError => "the credential helper could not be run (is it on PATH?)".to_string(),
        other => other.to_string(),
    }
}

fn decode_auth(key: &str, auth: &str) -> Result<Credentials> {
    let bad = || Error::new(format!("read credentials for {key}")).because("`auth` is not base64 of user:password");
    let bytes = base64::engine::general_purpose::STANDARD.decode(auth.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (username, password) = text.split_once(':').ok_or_else(bad)?;
    Ok(Credentials { username: username.to_string(), password: password.to_string() })
}

/// `https://index.docker.io/v1/` → `docker.io`; `http://host:5000/v2/` → `host:5000`.
fn normalize_key(key: &str) -> String {
    let host = key.trim_start_matches("https://").trim_start_matches("http://");
    let host = host.split('/').next().unwrap_or(host);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => DOCKER_HUB.to_string(),
        h => h.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_auth_and_user_password_entries() {
        let b64 = base64::engine::general_purpose::STANDARD.encode("mini:s3:cret");
        let text = format!(
            r#"{{"auths": {{
                "https://index.docker.io/v1/": {{"auth": "{b64}"}},
                "127.0.0.1:5001": {{"username": "u", "password": "p"}},
                "http://reg.lan:5000/v2/": {{"auth": "{b64}"}},
                "empty.example": {{}}
            }}}}"#
        );
        let store = CredentialStore::parse(text.as_bytes()).unwrap();
        let hub = store.lookup("docker.io").unwrap().unwrap();
        assert_eq!((hub.username.as_str(), hub.password.as_str()), ("mini", "s3:cret"));
        assert_eq!(store.lookup("127.0.0.1:5001").unwrap().unwrap().username, "u");
        assert!(store.lookup("reg.lan:5000").unwrap().is_some());
        assert!(store.lookup("empty.example").unwrap().is_none());
        assert!(store.lookup("other").unwrap().is_none());
    }

    #[test]
    fn a_missing_helper_is_an_error_not_an_anonymous_pull() {
        let text = br#"{"auths": {"127.0.0.1:5002": {}}, "credHelpers": {"127.0.0.1:5002": "mini-test-absent"}}"#;
        let store = CredentialStore::parse(text).unwrap();
        let e = store.lookup("127.0.0.1:5002").unwrap_err().to_string();
        assert!(e.contains("get the credentials for 127.0.0.1:5002") && e.contains("helper"), "{e}");
        // Registries the helper does not cover still read `auths`.
        assert!(store.lookup("elsewhere").unwrap().is_none());
    }

    #[test]
    fn bad_auth_is_a_clear_error() {
        let e = CredentialStore::parse(br#"{"auths":{"x":{"auth":"!!!"}}}"#).unwrap_err();
        assert!(e.to_string().contains("read credentials for x"), "{e}");
        assert!(CredentialStore::parse(b"{").is_err());
    }
}
