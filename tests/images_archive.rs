//! `mini save`, `load` and `import`: archives that skopeo reads as both a
//! Docker and an OCI archive, that load into a fresh store as the same
//! image and run; bad archives and bad tarballs fail with one line and
//! leave no record (and, after `image prune`, the store as it was).

mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use support::{Mini, Outcome, IMAGE};

fn ok(out: std::process::Output) -> String {
    let o = Outcome::of(out);
    o.assert_ok();
    o.stdout
}

fn skopeo(args: &[&str]) {
    let out = Command::new("skopeo").args(args).output().expect("run skopeo");
    assert!(out.status.success(), "skopeo {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn saved(m: &Mini, name: &str, flags: &[&str]) -> PathBuf {
    let file = m.dir().join(name);
    let mut args = vec!["save", "-o", file.to_str().unwrap()];
    args.extend_from_slice(flags);
    args.push(IMAGE);
    ok(m.run(&args));
    file
}

/// A store without the fixture image, its blobs and layers.
fn emptied() -> Option<Mini> {
    let m = Mini::new()?;
    ok(m.run(&["rmi", IMAGE]));
    ok(m.run(&["image", "prune"]));
    assert_eq!(m.image_ids(), "");
    Some(m)
}

fn entry_names(file: &Path) -> Vec<String> {
    let mut a = tar::Archive::new(std::fs::File::open(file).unwrap());
    a.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect()
}

#[test]
fn saved_archives_are_docker_and_oci_archives_and_load_as_the_same_image() {
    let Some(m) = Mini::new() else { return };
    let file = saved(&m, "both.tar", &[]);
    let at = |kind: &str| format!("{kind}:{}", file.display());
    skopeo(&["inspect", &at("docker-archive")]);
    skopeo(&["inspect", &at("oci-archive")]);
    let names = entry_names(&file);
    for n in ["manifest.json", "repositories", "index.json", "oci-layout"] {
        assert!(names.iter().any(|e| e == n), "{n} missing from {names:?}");
    }
    let blobs: Vec<_> = names.iter().filter(|n| n.starts_with("blobs/sha256/") && n.len() > 13).collect();
    assert_eq!(blobs.len(), 4, "manifest, config and two layers, each once: {names:?}");
    skopeo(&["copy", "--dest-tls-verify=false", &at("docker-archive"), "docker://127.0.0.1:5000/test/saved:1"]);

    podman_loads(&m, &file);

    let oci = saved(&m, "oci.tar", &["--format", "oci-archive"]);
    skopeo(&["inspect", &format!("oci-archive:{}", oci.display())]);
    assert!(!entry_names(&oci).iter().any(|n| n == "manifest.json" || n == "repositories"));

    let fresh = emptied().unwrap();
    let out = ok(fresh.run(&["load", "-i", file.to_str().unwrap()]));
    assert_eq!(out, format!("Loaded image: {IMAGE}\n"));
    assert_eq!(fresh.image_ids(), m.image_ids(), "the same image ID after a load");
    let (code, _, err) = fresh.run_in(&[], &["true"]);
    assert_eq!(code, 0, "{err}");

    // gzip from stdin, into another fresh store.
    let other = emptied().unwrap();
    let gz = std::fs::read(&oci).unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&gz).unwrap();
    let mut child = other.cmd(&["load"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(&enc.finish().unwrap()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(ok(out), format!("Loaded image: {IMAGE}\n"));
    assert_eq!(other.image_ids(), m.image_ids());
}

/// `podman load` (with storage of the test's own) reads the archive as the
/// same image. podman is one of CI's packages: without it this fails.
fn podman_loads(m: &Mini, file: &Path) {
    assert!(
        Command::new("podman").arg("--version").output().is_ok(),
        "podman is not installed (.ci/install-deps installs it)"
    );
    let podman = |args: &[&str]| {
        let (root, run) = (m.dir().join("podman"), m.dir().join("prun"));
        let mut c = Command::new("podman");
        c.args(["--root", root.to_str().unwrap(), "--runroot", run.to_str().unwrap(), "--storage-driver", "vfs"]);
        ok(c.args(args).output().unwrap())
    };
    assert!(podman(&["load", "-i", file.to_str().unwrap()]).contains(&format!("Loaded image: {IMAGE}")));
    let id = m.image_ids();
    assert!(podman(&["images", "-q", "--no-trunc"]).contains(id.trim()), "podman sees another image id");
}

/// The archive `file` with its entries rewritten by `edit` (None drops one).
fn rewritten(file: &Path, out: &Path, mut edit: impl FnMut(&str, Vec<u8>) -> Option<Vec<u8>>) {
    let mut a = tar::Archive::new(std::fs::File::open(file).unwrap());
    let mut b = tar::Builder::new(std::fs::File::create(out).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().display().to_string();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        let mut h = e.header().clone();
        if let Some(data) = edit(&path, data) {
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append(&h, &data[..]).unwrap();
        }
    }
    b.finish().unwrap();
}

#[test]
fn bad_archives_fail_with_one_line_and_record_nothing() {
    let Some(src) = Mini::new() else { return };
    let file = saved(&src, "good.tar", &[]);
    let m = emptied().unwrap();
    let before = m.snapshot();
    let big_layer = |p: &str, d: &[u8]| p.starts_with("blobs/sha256/") && d.len() > 100_000;

    let truncated = m.dir().join("truncated.tar");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let corrupt = m.dir().join("corrupt.tar");
    rewritten(&file, &corrupt, |p, mut d| {
        if big_layer(p, &d) {
            d[5000] ^= 0xff;
        }
        Some(d)
    });
    let missing = m.dir().join("missing.tar");
    rewritten(&file, &missing, |p, d| if big_layer(p, &d) { None } else { Some(d) });
    let not_tar = m.dir().join("not.tar");
    std::fs::write(&not_tar, "this is not an archive\n").unwrap();

    for (file, needles) in [
        (&truncated, &["load", "truncated"][..]),
        (&corrupt, &["load", "digest mismatch"][..]),
        (&missing, &["load", "does not hold it"][..]),
        (&not_tar, &["load", "read the archive"][..]),
    ] {
        let o = Outcome::of(m.run(&["load", "-i", file.to_str().unwrap()]));
        o.assert_error(needles);
        assert_eq!(m.image_ids(), "", "no record after {}", file.display());
        assert!(std::fs::read_dir(m.root.join("ingest")).unwrap().next().is_none(), "ingest files left behind");
        // Whatever verified content went in is unreferenced, and prune takes it.
        ok(m.run(&["image", "prune"]));
        assert_eq!(m.snapshot(), before, "store changed by a failed load of {}", file.display());
    }
}

#[test]
fn import_of_an_export_runs_and_a_non_tar_leaves_nothing() {
    let Some(m) = Mini::new() else { return };
    ok(m.run(&["run", "--name", "src", IMAGE, "sh", "-c", "echo mark > /marked"]));
    let rootfs = m.dir().join("rootfs.tar");
    ok(m.run(&["export", "src", "-o", rootfs.to_str().unwrap()]));
    let out = ok(m.run(&[
        "import",
        "--change",
        r#"CMD ["/bin/sh","-c","echo imported; cat /marked"]"#,
        "-m",
        "from a test",
        rootfs.to_str().unwrap(),
        "imported:1",
    ]));
    let id = out.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{out}");
    let out = ok(m.run(&["run", "--rm", "imported:1"]));
    assert_eq!(out, "imported\nmark\n");

    // Untagged: listed as <none>, runnable by id.
    let out = ok(m.run(&["import", rootfs.to_str().unwrap()]));
    let untagged = out.trim().to_string();
    let listing = ok(m.run(&["images"]));
    assert!(listing.lines().any(|l| l.starts_with("<none>") && l.contains(&untagged[7..19])), "{listing}");
    ok(m.run(&["run", "--rm", &untagged, "true"]));

    let before = m.snapshot();
    let bad = m.dir().join("bad.txt");
    std::fs::write(&bad, "not a tar at all\n").unwrap();
    Outcome::of(m.run(&["import", bad.to_str().unwrap(), "bad:1"])).assert_error(&["import", "bad.txt"]);
    Outcome::of(m.run(&["import", "-c", "RUN make", rootfs.to_str().unwrap()]))
        .assert_error(&["RUN", "unsupported instruction"]);
    assert_eq!(m.snapshot(), before, "a failed import changed the store");
}

#[test]
fn save_refuses_a_terminal_and_an_unknown_image_leaves_no_file() {
    use std::os::fd::{FromRawFd, OwnedFd};
    let Some(m) = Mini::new() else { return };
    let (mut mfd, mut sfd) = (0, 0);
    // SAFETY: openpty into locals; the fds become ours.
    let (_master, slave) = unsafe {
        assert_eq!(libc::openpty(&mut mfd, &mut sfd, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()), 0);
        (OwnedFd::from_raw_fd(mfd), OwnedFd::from_raw_fd(sfd))
    };
    let out = m.cmd(&["save", IMAGE]).stdout(Stdio::from(slave)).stderr(Stdio::piped()).output().unwrap();
    Outcome::of(out).assert_error(&["cowardly refusing to save to a terminal"]);

    let file = m.dir().join("out.tar");
    let o = Outcome::of(m.run(&["save", "-o", file.to_str().unwrap(), IMAGE, "127.0.0.1:5000/test/nosuch:1"]));
    o.assert_error(&["no such image"]);
    let left: Vec<_> = std::fs::read_dir(m.dir()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(!left.iter().any(|n| n.to_string_lossy().contains("out.tar")), "{left:?}");
}

#[test]
fn a_v2s2_image_goes_out_and_back_byte_identical() {
    if !support::requires_root() {
        return;
    }
    let image = "127.0.0.1:5000/test/busybox:v2s2";
    let digest = support::fixture_digest("5000", "test/busybox:v2s2");
    let (src, dst) = (support::Env::new(), support::Env::new());
    src.run(&["pull", "-q", image]).assert_ok();
    let file = src.dir.path().join("v2s2.tar");
    src.run(&["save", "-o", file.to_str().unwrap(), image]).assert_ok();
    assert!(entry_names(&file).contains(&format!("blobs/sha256/{}", &digest[7..])), "the manifest goes out as is");
    skopeo(&["inspect", &format!("docker-archive:{}", file.display())]);
    skopeo(&["inspect", &format!("oci-archive:{}", file.display())]);
    let o = dst.run(&["load", "-i", file.to_str().unwrap()]);
    o.assert_ok();
    let inspect: serde_json::Value = serde_json::from_str(&dst.run(&["image", "inspect", image]).stdout).unwrap();
    assert_eq!(inspect[0]["Digest"], digest);
    assert_eq!(inspect[0]["MediaType"], "application/vnd.docker.distribution.manifest.v2+json");
}

#[test]
fn an_archive_in_dockers_older_layout_loads_through_manifest_json() {
    if !support::requires_root() {
        return;
    }
    let (src, dst) = (support::Env::new(), support::Env::new());
    src.run(&["pull", "-q", IMAGE]).assert_ok();
    let oci = src.dir.path().join("oci.tar");
    src.run(&["save", "--format", "oci-archive", "-o", oci.to_str().unwrap(), IMAGE]).assert_ok();
    let old = src.dir.path().join("old.tar");
    let dest = format!("docker-archive:{}:127.0.0.1:5000/test/old:1", old.display());
    skopeo(&["copy", &format!("oci-archive:{}", oci.display()), &dest]);
    assert!(!entry_names(&old).iter().any(|n| n == "index.json"), "skopeo writes Docker's layout alone");
    let o = dst.run(&["load", "-i", old.to_str().unwrap()]);
    o.assert_ok();
    assert_eq!(o.stdout, "Loaded image: 127.0.0.1:5000/test/old:1\n");
    let ids = |e: &support::Env| e.run(&["images", "-q"]).stdout;
    assert_eq!(ids(&dst), ids(&src), "the same image ID");
}
