//! Store-level tests: open/sweep, GC, and interoperability with skopeo and umoci.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use crate::gc;
use crate::images::{ImageRecord, Platform, ANNOTATION_INDEX_DIGEST};
use crate::testutil::Tar;
use crate::{Digest, Store, StoreError};

fn age(path: &Path, secs: u64) {
    let t = SystemTime::now() - Duration::from_secs(secs);
    let f = fs::File::open(path).unwrap();
    f.set_modified(t).unwrap();
}

#[test]
fn open_creates_a_valid_layout() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("a/b/root");
    let s = Store::open(&root).unwrap();
    for d in ["blobs/sha256", "ingest", "layers", "containers", "trash"] {
        assert!(root.join(d).is_dir(), "{d}");
    }
    let layout: serde_json::Value = serde_json::from_slice(&fs::read(root.join("oci-layout")).unwrap()).unwrap();
    assert_eq!(layout["imageLayoutVersion"], "1.0.0");
    let index: serde_json::Value = serde_json::from_slice(&fs::read(root.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["manifests"], serde_json::json!([]));
    assert_eq!(s.containers_dir(), root.join("containers"));
    // Reopening keeps records.
    s.images().put(record("x:1", &Digest::of_bytes(b"m"))).unwrap();
    let s2 = Store::open(&root).unwrap();
    assert_eq!(s2.images().list().unwrap().len(), 1);
}

#[test]
fn open_error_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    fs::write(&file, b"").unwrap();
    let err = Store::open(&file.join("root")).unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }));
    let msg = err.to_string();
    assert!(msg.starts_with("create store directory ") && msg.contains(file.to_str().unwrap()), "{msg}");
}

#[test]
fn open_sweeps_abandoned_temps_but_not_live_ones() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let s = Store::open(&root).unwrap();
    // Leftovers of a killed process: unlocked and old.
    let stale_ingest = root.join("ingest/deadbeef");
    fs::write(&stale_ingest, b"partial").unwrap();
    age(&stale_ingest, 3600);
    let stale_layer = root.join("layers/.tmp-dead");
    fs::create_dir_all(stale_layer.join("diff/usr/bin")).unwrap();
    fs::write(stale_layer.join("diff/usr/bin/x"), b"x").unwrap();
    age(&stale_layer, 3600);
    fs::create_dir_all(root.join("trash/old/tree")).unwrap();
    // In flight in this process: locked by their owners.
    let mut live = s.content().ingest(&Digest::of_bytes(b"live"), None).unwrap();
    std::io::Write::write_all(&mut live, b"li").unwrap();
    age(live.temp_path(), 3600);
    let tar = Tar::new().file("f", b"1").finish();
    let pending = s.layers().unpack(&Digest::of_bytes(&tar), &tar[..]).unwrap();
    // Fresh but unlocked: maybe an owner between create and flock; kept for now.
    let fresh = root.join("ingest/fresh");
    fs::write(&fresh, b"").unwrap();

    Store::open(&root).unwrap();
    assert!(!stale_ingest.exists());
    assert!(!stale_layer.exists());
    assert_eq!(fs::read_dir(root.join("trash")).unwrap().count(), 0);
    assert!(live.temp_path().exists());
    assert!(fresh.exists());
    std::io::Write::write_all(&mut live, b"ve").unwrap();
    live.commit().unwrap();
    pending.commit().unwrap();
    assert!(s.layers().contains(&Digest::of_bytes(&tar)));
}

/// Stores a one-layer image by hand; returns (manifest, config, layer blob, diff_id).
fn tiny_image(s: &Store, content: &[u8]) -> (Digest, Digest, Digest, Digest) {
    let tar = Tar::new().file("hello", content).finish();
    let layer = s.content().put(&tar).unwrap();
    let diff_id = layer.clone(); // uncompressed layer: blob digest == diff-id
    s.layers().unpack(&diff_id, &tar[..]).unwrap().commit().unwrap();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/hello"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
    });
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_d = s.content().put(&config_bytes).unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_d.to_string(), "size": config_bytes.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.to_string(), "size": tar.len()}],
    });
    let m = s.content().put(&serde_json::to_vec(&manifest).unwrap()).unwrap();
    (m, config_d, layer, diff_id)
}

fn record(name: &str, manifest: &Digest) -> ImageRecord {
    ImageRecord {
        name: name.into(),
        digest: manifest.clone(),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        size: 0,
        platform: Some(Platform { os: "linux".into(), architecture: "amd64".into(), variant: None }),
        annotations: BTreeMap::new(),
    }
}

fn put_record(s: &Store, name: &str, m: &Digest) {
    let mut r = record(name, m);
    r.size = s.content().size(m).unwrap().unwrap();
    s.images().put(r).unwrap();
}

#[test]
fn gc_keeps_roots_and_removes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let (m1, c1, l1, d1) = tiny_image(&s, b"one");
    let (m2, c2, l2, d2) = tiny_image(&s, b"two");
    put_record(&s, "docker.io/library/one:latest", &m1);
    // An index blob named by annotation is kept too.
    let index_blob = s.content().put(b"{\"schemaVersion\":2,\"manifests\":[]}").unwrap();
    let mut r = s.images().get("docker.io/library/one:latest").unwrap().unwrap();
    r.annotations.insert(ANNOTATION_INDEX_DIGEST.into(), index_blob.to_string());
    s.images().put(r).unwrap();
    let stray = s.content().put(b"stray").unwrap();

    let _gc = s.lock_gc_exclusive().unwrap();
    let roots = gc::referenced_by_images(&s).unwrap();
    for d in [&m1, &c1, &l1, &index_blob] {
        assert!(roots.blobs.contains(d), "{d}");
    }
    assert!(roots.layers.contains(&d1));
    let report = gc::sweep(&s, &roots).unwrap();
    assert_eq!(report.blobs_removed, 4); // m2, c2, l2, stray
    assert_eq!(report.layers_removed, 1);
    assert!(report.bytes_freed > 0);
    for d in [&m1, &c1, &l1, &index_blob] {
        assert!(s.content().contains(d));
    }
    for d in [&m2, &c2, &l2, &stray] {
        assert!(!s.content().contains(d));
    }
    assert!(s.layers().contains(&d1) && !s.layers().contains(&d2));
    // Caller-added roots (containers) survive too.
    let (_m3, _c3, _l3, d3) = tiny_image(&s, b"three");
    let mut roots = gc::referenced_by_images(&s).unwrap();
    roots.layers.insert(d3.clone());
    gc::sweep(&s, &roots).unwrap();
    assert!(s.layers().contains(&d3));
    assert_eq!(fs::read_dir(s.root().join("trash")).unwrap().count(), 0);
}

#[test]
fn gc_keeps_foreign_index_entries() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let (m, c, l, d) = tiny_image(&s, b"foreign");
    let doc = serde_json::json!({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": m.to_string(), "size": 1}
    ]});
    fs::write(s.images().path(), serde_json::to_vec(&doc).unwrap()).unwrap();
    let roots = gc::referenced_by_images(&s).unwrap();
    assert_eq!(gc::sweep(&s, &roots).unwrap().blobs_removed, 0);
    for b in [&m, &c, &l] {
        assert!(s.content().contains(b));
    }
    assert!(s.layers().contains(&d));
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success())
}

/// skopeo's and umoci's OCI layout readers accept the store as mini writes it.
#[test]
fn skopeo_and_umoci_read_the_store() {
    if !crate::testutil::is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    let missing: Vec<_> = ["skopeo", "umoci"].into_iter().filter(|t| !have(t)).collect();
    if !missing.is_empty() {
        eprintln!("skipping: {} not installed (CI installs them)", missing.join(" and "));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let s = Store::open(&root).unwrap();
    let (m, c, _, _) = tiny_image(&s, b"hi");
    let names = [
        "docker.io/library/alpine:latest".to_string(),
        format!("127.0.0.1:5000/test/busybox@{}", Digest::of_bytes(b"idx")),
    ];
    for n in &names {
        put_record(&s, n, &m);
    }
    let out = Command::new("umoci").args(["ls", "--layout"]).arg(&root).output().unwrap();
    assert!(out.status.success(), "umoci ls: {}", String::from_utf8_lossy(&out.stderr));
    let listed = String::from_utf8_lossy(&out.stdout);
    for n in &names {
        assert!(listed.lines().any(|l| l == n), "umoci ls misses {n}: {listed}");
    }
    for n in &names {
        // skopeo splits `oci:PATH:REF` at the first colon after `oci:`.
        let arg = format!("oci:{}:{n}", root.display());
        let out = Command::new("skopeo").args(["inspect", &arg]).output().unwrap();
        assert!(out.status.success(), "skopeo inspect {arg}: {}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["Digest"], m.to_string());
        let raw = Command::new("skopeo").args(["inspect", "--config", "--raw", &arg]).output().unwrap();
        assert_eq!(Digest::of_bytes(&raw.stdout), c);
    }
}

const CHILD_ENV: &str = "MINI_STORE_TEST_CHILD_ROOT";

/// A reader that yields `data` and then blocks forever (after touching `ready`).
struct Stalls {
    data: std::io::Cursor<Vec<u8>>,
    ready: std::path::PathBuf,
}

impl std::io::Read for Stalls {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.data.read(buf)?;
        if n == 0 {
            fs::write(&self.ready, b"").unwrap();
            std::thread::sleep(Duration::from_secs(3600));
        }
        Ok(n)
    }
}

/// Body of the child process that `killed_process_leaves_a_sweepable_store`
/// kills mid-write; does nothing when run on its own.
#[test]
#[ignore]
fn child_writes_until_killed() {
    let Ok(root) = std::env::var(CHILD_ENV) else { return };
    let s = Store::open(Path::new(&root)).unwrap();
    let mut w = s.content().ingest(&Digest::of_bytes(b"never"), None).unwrap();
    std::io::Write::write_all(&mut w, &[7; 300_000]).unwrap();
    std::io::Write::flush(&mut w).unwrap();
    let mut t = Tar::new();
    t.dir("usr").file("usr/a", b"a").file("usr/b", &[1; 10_000]);
    let mut partial = t.finish();
    partial.truncate(partial.len() - 5120); // no end-of-archive yet
    let reader = Stalls { data: std::io::Cursor::new(partial), ready: Path::new(&root).join("ready") };
    let _ = s.layers().unpack(&Digest::of_bytes(b"x"), reader);
}

#[test]
fn killed_process_leaves_a_sweepable_store() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    Store::open(&root).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "tests::child_writes_until_killed", "--ignored", "--test-threads=1"])
        .env(CHILD_ENV, &root)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ready = root.join("ready");
    for _ in 0..2000 {
        if ready.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(ready.exists(), "child never got going");
    let temps = |d: &str| fs::read_dir(root.join(d)).unwrap().map(|e| e.unwrap().path()).collect::<Vec<_>>();
    let in_flight: Vec<_> = temps("ingest").into_iter().chain(temps("layers")).collect();
    assert_eq!(in_flight.len(), 2, "{in_flight:?}");
    for p in &in_flight {
        age(p, 3600);
    }
    // While the child lives its temps are locked: another open leaves them alone.
    Store::open(&root).unwrap();
    assert!(in_flight.iter().all(|p| p.exists()));
    child.kill().unwrap();
    child.wait().unwrap();
    let s = Store::open(&root).unwrap();
    assert!(in_flight.iter().all(|p| !p.exists()), "{in_flight:?}");
    assert!(s.content().list().unwrap().is_empty());
    assert!(s.layers().list().unwrap().is_empty());
    assert!(s.images().list().unwrap().is_empty());
    assert_eq!(temps("trash").len(), 0);
}

/// A pull's objects become visible together after one sync; objects the
/// store already has are success; a blob that does not verify makes
/// nothing visible.
#[test]
fn publish_makes_blobs_and_layers_visible_together() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("root")).unwrap();
    let mut t = Tar::new();
    t.dir("etc").file("etc/motd", b"hi");
    let tar = t.finish();
    let diff_id = Digest::of_bytes(&tar);
    let layer = s.layers().unpack(&diff_id, &tar[..]).unwrap();
    let config = s.content().stage(b"{}", &Digest::of_bytes(b"{}")).unwrap().unwrap();
    let mut blob = s.content().ingest(&Digest::of_bytes(&[5; 9_000_000]), Some(9_000_000)).unwrap();
    std::io::Write::write_all(&mut blob, &[5; 9_000_000]).unwrap();
    s.publish(vec![config, blob], vec![layer]).unwrap();
    assert!(s.layers().contains(&diff_id));
    assert_eq!(fs::read(s.layers().diff_path(&diff_id).join("etc/motd")).unwrap(), b"hi");
    assert_eq!(s.content().read(&Digest::of_bytes(b"{}")).unwrap(), b"{}");
    assert_eq!(s.content().size(&Digest::of_bytes(&[5; 9_000_000])).unwrap(), Some(9_000_000));
    assert!(s.content().stage(b"{}", &Digest::of_bytes(b"{}")).unwrap().is_none(), "already stored");

    // The same layer again (another pull finished first): ours is discarded.
    let again = s.layers().unpack(&diff_id, &tar[..]).unwrap();
    s.publish(Vec::new(), vec![again]).unwrap();

    // One bad blob: nothing of this batch becomes visible.
    let other = Digest::of_bytes(b"other");
    let good = s.content().stage(b"good", &Digest::of_bytes(b"good")).unwrap().unwrap();
    let mut bad = s.content().ingest(&other, None).unwrap();
    std::io::Write::write_all(&mut bad, b"not other").unwrap();
    let mut t2 = Tar::new();
    t2.file("x", b"x");
    let tar2 = t2.finish();
    let layer2 = s.layers().unpack(&Digest::of_bytes(&tar2), &tar2[..]).unwrap();
    assert!(s.publish(vec![good, bad], vec![layer2]).is_err());
    assert!(!s.content().contains(&other) && !s.content().contains(&Digest::of_bytes(b"good")));
    assert!(!s.layers().contains(&Digest::of_bytes(&tar2)));
    let temps = |d: &str| fs::read_dir(s.root().join(d)).unwrap().count();
    assert_eq!((temps("ingest"), temps("trash")), (0, 0));
    assert_eq!(s.layers().list().unwrap(), vec![diff_id]);
}
