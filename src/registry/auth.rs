//! Registry credentials from Docker's config file (`$DOCKER_CONFIG/config.json`,
//! default `~/.docker/config.json`), read the way the docker CLI does: an
//! `auths` entry per registry holding base64 `user:password` in `auth`, or
//! `username` and `password` fields. The parser takes bytes.

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

/// The `auths` section of a Docker config file.
#[derive(Debug, Default, Clone)]
pub struct CredentialStore {
    auths: BTreeMap<String, Credentials>,
}

#[derive(Deserialize)]
struct DockerConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
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
        let dir = match std::env::var_os("DOCKER_CONFIG") {
            Some(d) => PathBuf::from(d),
            None => match std::env::var_os("HOME") {
                Some(home) => PathBuf::from(home).join(".docker"),
                None => return Ok(CredentialStore::default()),
            },
        };
        let path = dir.join("config.json");
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
        Ok(CredentialStore { auths })
    }

    /// Credentials for a registry host (`docker.io` finds Docker Hub's
    /// historical key `https://index.docker.io/v1/`).
    pub fn lookup(&self, registry: &str) -> Option<&Credentials> {
        let key = if registry == DOCKER_HUB || registry == "index.docker.io" { DOCKER_HUB } else { registry };
        self.auths.get(key)
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
            }}, "credsStore": "desktop"}}"#
        );
        let store = CredentialStore::parse(text.as_bytes()).unwrap();
        let hub = store.lookup("docker.io").unwrap();
        assert_eq!((hub.username.as_str(), hub.password.as_str()), ("mini", "s3:cret"));
        assert_eq!(store.lookup("127.0.0.1:5001").unwrap().username, "u");
        assert!(store.lookup("reg.lan:5000").is_some());
        assert!(store.lookup("empty.example").is_none());
        assert!(store.lookup("other").is_none());
    }

    #[test]
    fn bad_auth_is_a_clear_error() {
        let e = CredentialStore::parse(br#"{"auths":{"x":{"auth":"!!!"}}}"#).unwrap_err();
        assert!(e.to_string().contains("read credentials for x"), "{e}");
        assert!(CredentialStore::parse(b"{").is_err());
    }
}
