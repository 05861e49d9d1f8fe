//! TLS towards registries. Per-registry CA certificates in Docker's
//! `certs.d` layout: every `*.crt` in `<certs-dir>/<host[:port]>/` (the
//! config's `certs-dir`, default `/etc/mini/certs.d`, or
//! `$XDG_CONFIG_HOME/mini/certs.d` rootless) is trusted, besides the
//! system's roots, for the connections of that registry (and of its
//! mirrors, from their own directories). The rustls crypto provider is
//! ring, installed once before the first client is built (see
//! docs/pulling.md for why not aws-lc).

use std::path::Path;

use crate::config::Config;
use crate::error::{Error, Result};

/// Make sure a crypto provider is installed (a second call is a no-op).
pub fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The PEM certificates trusted for `hosts` (host[:port] each).
pub fn extra_roots(config: &Config, hosts: &[&str]) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for host in hosts {
        out.extend(roots_in(&config.certs_dir.join(host))?);
    }
    Ok(out)
}

/// The `*.crt` files of `dir`, each checked to hold PEM certificates; a
/// missing directory holds none.
fn roots_in(dir: &Path) -> Result<Vec<Vec<u8>>> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(Vec::new()) };
    let mut files: Vec<_> =
        entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "crt")).collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let what = || format!("read CA certificate {}", path.display());
            let pem = std::fs::read(&path).map_err(|e| Error::new(what()).because(e))?;
            match reqwest::Certificate::from_pem_bundle(&pem) {
                Ok(certs) if !certs.is_empty() => Ok(pem),
                Ok(_) => Err(Error::new(what()).because("no PEM certificate in it")),
                Err(e) => Err(Error::new(what()).because(e)),
            }
        })
        .collect()
}

/// What to do about an unreachable registry whose failure `cause` says
/// its certificate was not trusted; None for any other failure.
pub fn untrusted_hint(cause: &str, host: &str) -> Option<String> {
    let untrusted = ["invalid peer certificate", "UnknownIssuer", "certificate verify failed"];
    untrusted.iter().any(|u| cause.contains(u)).then(|| {
        format!("trust the registry's CA: save it as certs.d/{host}/ca.crt in mini's config directory (/etc/mini/certs.d by default; certs-dir in config.toml)")
    })
}

/// A reqwest client builder that trusts `hosts`' extra roots.
pub fn client_builder(config: &Config, hosts: &[&str]) -> Result<reqwest::ClientBuilder> {
    init();
    let mut certs = Vec::new();
    for pem in extra_roots(config, hosts)? {
        certs.extend(
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| Error::new("read CA certificates").because(e))?,
        );
    }
    Ok(reqwest::Client::builder().tls_certs_merge(certs))
}

/// The same roots for oci-client's configuration.
pub fn oci_roots(config: &Config, hosts: &[&str]) -> Result<Vec<oci_client::client::Certificate>> {
    init();
    Ok(extra_roots(config, hosts)?
        .into_iter()
        .map(|data| oci_client::client::Certificate { encoding: oci_client::client::CertificateEncoding::Pem, data })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certs_d_is_read_per_host_and_bad_files_say_which() {
        let d = tempfile::tempdir().unwrap();
        let config = Config { certs_dir: d.path().to_path_buf(), ..Config::default() };
        assert!(extra_roots(&config, &["reg.lan:5000"]).unwrap().is_empty(), "no directory: no extra roots");
        let host = d.path().join("reg.lan:5000");
        std::fs::create_dir(&host).unwrap();
        std::fs::write(host.join("README"), "not a certificate, not a .crt").unwrap();
        assert!(extra_roots(&config, &["reg.lan:5000"]).unwrap().is_empty());
        std::fs::write(host.join("ca.crt"), "garbage").unwrap();
        let e = extra_roots(&config, &["reg.lan:5000"]).unwrap_err().to_string();
        assert!(e.starts_with(&format!("read CA certificate {}", host.join("ca.crt").display())), "{e}");
    }
}
