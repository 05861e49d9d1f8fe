//! A tiny registry on 127.0.0.1 that answers the distribution API's pull
//! requests from memory and can misbehave on purpose: tampered or truncated
//! blobs, 503s, a connection cut mid-blob, slow bodies. Real registries
//! verify what they store, so hostile answers need a server of our own.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Flip one byte in the middle of the body (length unchanged).
    Tamper,
    /// Every response sends only half of what it announces, then closes.
    Truncate,
    /// Answer 503 this many times, then behave.
    FailTimes(u32),
    /// The first response stops after this many bytes; later ones honour Range.
    CutOnceAt(usize),
    /// The first this many responses send only half of what they announce.
    TruncateTimes(u32),
    /// The first response stops after this many bytes; the first answer to
    /// a Range request is short but well-formed (it announces only half of
    /// what is left, and sends that); later ones honour Range.
    CutThenShortRange(usize),
    /// Send the body 4 KiB every 50 ms.
    Slow,
}

struct Blob {
    data: Vec<u8>,
    fault: Fault,
    served: u32,
}

#[derive(Default)]
struct State {
    manifests: HashMap<String, (Vec<u8>, String)>,
    blobs: HashMap<String, Blob>,
    /// Faults on manifests ("repo:reference"), and how often each was served.
    manifest_faults: HashMap<String, (Fault, u32)>,
    requests: Vec<String>,
}

pub struct FakeRegistry {
    pub addr: String,
    state: Arc<Mutex<State>>,
}

/// What `add_image` stored.
pub struct FakeImage {
    pub manifest_digest: String,
    pub config_digest: String,
    pub layer_digests: Vec<String>,
}

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// An uncompressed tar holding `files` (path, contents), mode 0644.
pub fn layer_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append_data(&mut h, path, *data).unwrap();
    }
    b.into_inner().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

impl FakeRegistry {
    pub fn start() -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let state = Arc::clone(&shared);
                std::thread::spawn(move || {
                    let _ = serve(conn, &state);
                });
            }
        });
        FakeRegistry { addr, state }
    }

    /// Store an image whose layers are `(blob, uncompressed tar)` pairs.
    pub fn add_image(&self, repo: &str, tag: &str, layers: &[(Vec<u8>, Vec<u8>)]) -> FakeImage {
        let diff_ids: Vec<String> = layers.iter().map(|(_, tar)| sha256(tar)).collect();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids}
        }))
        .unwrap();
        let config_digest = self.add_blob(config.clone());
        let layer_descs: Vec<serde_json::Value> = layers
            .iter()
            .map(|(blob, _)| {
                serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha256(blob), "size": blob.len()})
            })
            .collect();
        let layer_digests = layers.iter().map(|(blob, _)| self.add_blob(blob.clone())).collect();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": layer_descs
        }))
        .unwrap();
        let manifest_digest = sha256(&manifest);
        self.put_manifest(repo, tag, manifest.clone(), "application/vnd.oci.image.manifest.v1+json");
        self.put_manifest(repo, &manifest_digest, manifest, "application/vnd.oci.image.manifest.v1+json");
        FakeImage { manifest_digest, config_digest, layer_digests }
    }

    pub fn add_blob(&self, data: Vec<u8>) -> String {
        let digest = sha256(&data);
        self.state.lock().unwrap().blobs.insert(digest.clone(), Blob { data, fault: Fault::None, served: 0 });
        digest
    }

    pub fn put_manifest(&self, repo: &str, reference: &str, bytes: Vec<u8>, content_type: &str) {
        self.state.lock().unwrap().manifests.insert(format!("{repo}:{reference}"), (bytes, content_type.to_string()));
    }

    /// A fault on the manifest `repo:reference` (CutOnceAt, TruncateTimes).
    pub fn set_manifest_fault(&self, repo: &str, reference: &str, fault: Fault) {
        self.state.lock().unwrap().manifest_faults.insert(format!("{repo}:{reference}"), (fault, 0));
    }

    pub fn set_fault(&self, digest: &str, fault: Fault) {
        let mut s = self.state.lock().unwrap();
        let blob = s.blobs.get_mut(digest).expect("no such blob");
        blob.fault = fault;
        blob.served = 0;
    }

    /// Request lines seen so far, with any Range header appended.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }
}

fn serve(conn: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").split('?').next().unwrap_or("/").to_string();
    let mut range: Option<usize> = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
            range = v.trim().trim_end_matches('-').split('-').next().and_then(|n| n.parse().ok());
        }
    }
    state.lock().unwrap().requests.push(match range {
        Some(r) => format!("GET {path} Range:{r}"),
        None => format!("GET {path}"),
    });
    let mut out = conn;
    if path == "/v2/" || path == "/v2" {
        return respond(&mut out, "200 OK", "application/json", &[], b"{}");
    }
    let rest = path.trim_start_matches("/v2/");
    if let Some((repo, reference)) = rest.split_once("/manifests/") {
        let key = format!("{repo}:{reference}");
        let (found, fault) = {
            let mut s = state.lock().unwrap();
            let fault = s.manifest_faults.get_mut(&key).map(|f| {
                f.1 += 1;
                *f
            });
            (s.manifests.get(&key).cloned(), fault)
        };
        return match found {
            Some((bytes, ct)) => {
                let digest = sha256(&bytes);
                let headers = [("Docker-Content-Digest", digest.as_str())];
                match fault {
                    Some((Fault::CutOnceAt(n), 1)) => respond_cut(&mut out, "200 OK", &ct, &headers, &bytes, n),
                    Some((Fault::TruncateTimes(t), served)) if served <= t => {
                        respond_cut(&mut out, "200 OK", &ct, &headers, &bytes, bytes.len() / 2)
                    }
                    _ => respond(&mut out, "200 OK", &ct, &headers, &bytes),
                }
            }
            None => respond(
                &mut out,
                "404 Not Found",
                "application/json",
                &[],
                br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
            ),
        };
    }
    if let Some((_, digest)) = rest.split_once("/blobs/") {
        return serve_blob(&mut out, state, digest, range);
    }
    respond(&mut out, "404 Not Found", "text/plain", &[], b"not found")
}

fn serve_blob(out: &mut TcpStream, state: &Mutex<State>, digest: &str, range: Option<usize>) -> std::io::Result<()> {
    let (data, fault, served) = {
        let mut s = state.lock().unwrap();
        let Some(blob) = s.blobs.get_mut(digest) else {
            return respond(
                out,
                "404 Not Found",
                "application/json",
                &[],
                br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}"#,
            );
        };
        blob.served += 1;
        (blob.data.clone(), blob.fault, blob.served)
    };
    let mut body = data;
    if fault == Fault::Tamper {
        let mid = body.len() / 2;
        body[mid] ^= 0xff;
    }
    if let Fault::FailTimes(n) = fault {
        if served <= n {
            return respond(out, "503 Service Unavailable", "text/plain", &[], b"try later");
        }
    }
    let (status, start) = match range {
        Some(r) if r < body.len() => ("206 Partial Content", r),
        _ => ("200 OK", 0),
    };
    let part = match fault {
        Fault::CutThenShortRange(_) if served == 2 && start > 0 => &body[start..start + (body.len() - start) / 2],
        _ => &body[start..],
    };
    let header = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nDocker-Content-Digest: {digest}\r\nConnection: close\r\n\r\n",
        part.len()
    );
    out.write_all(header.as_bytes())?;
    match fault {
        Fault::Truncate => out.write_all(&part[..part.len() / 2]),
        Fault::CutOnceAt(n) | Fault::CutThenShortRange(n) if served == 1 => out.write_all(&part[..n.min(part.len())]),
        Fault::TruncateTimes(n) if served <= n => out.write_all(&part[..part.len() / 2]),
        Fault::Slow => {
            for chunk in part.chunks(4096) {
                out.write_all(chunk)?;
                out.flush()?;
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(())
        }
        _ => out.write_all(part),
    }?;
    out.flush()?;
    // Make sure a cut connection really ends here.
    let _ = out.shutdown(std::net::Shutdown::Both);
    let _ = out.read(&mut [0u8; 1]);
    Ok(())
}

fn respond(
    out: &mut TcpStream,
    status: &str,
    content_type: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(body)?;
    out.flush()
}

/// Announce all of `body`, send its first `n` bytes, and drop the connection.
fn respond_cut(
    out: &mut TcpStream,
    status: &str,
    content_type: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    n: usize,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(&body[..n.min(body.len())])?;
    out.flush()?;
    let _ = out.shutdown(std::net::Shutdown::Both);
    Ok(())
}
