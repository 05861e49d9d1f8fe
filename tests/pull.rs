//! `mini pull` against the fixture registries (fixtures/up.sh) and a fake
//! registry that misbehaves on purpose. Every failing case checks the one
//! error line, the exit code, and that the store is exactly as before.

mod support;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use support::fake_registry::{gzip, layer_tar, FakeRegistry, Fault};
use support::{fixture_digest, Env, ALPINE_MIRROR, BASIC, PASSWORD, PLAIN, TOKEN, USER};

const VARIANTS: [&str; 6] = ["v2s2", "oci", "zstd", "index", "list", "single"];

fn inspect(env: &Env, image: &str) -> serde_json::Value {
    let o = env.run(&["inspect", image]);
    o.assert_ok();
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("inspect prints JSON");
    v[0].clone()
}

/// Mount the image's layers as one read-only overlay and hand its path to `check`.
fn with_merged_tree(env: &Env, image: &str, check: impl FnOnce(&Path)) {
    let info = inspect(env, image);
    let lowers: Vec<String> = info["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|d| {
            env.root()
                .join("layers")
                .join(d.as_str().unwrap().trim_start_matches("sha256:"))
                .join("diff")
                .display()
                .to_string()
        })
        .collect();
    let target = env.dir.path().join("merged");
    std::fs::create_dir_all(&target).unwrap();
    // A lower-only overlay needs two layers: pad a single one with an empty dir.
    let empty = env.dir.path().join("empty-lower");
    std::fs::create_dir_all(&empty).unwrap();
    let lowerdir = if lowers.len() == 1 { format!("{}:{}", lowers[0], empty.display()) } else { lowers.join(":") };
    let st = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &format!("ro,lowerdir={lowerdir}")])
        .arg(&target)
        .status()
        .unwrap();
    assert!(st.success(), "mount overlay (tests need root)");
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _guard = Unmount(&target);
    check(&target);
}

fn assert_fixture_tree(root: &Path, layered: bool) {
    assert!(root.join("bin/busybox").is_file());
    assert!(root.join("bin/sh").exists(), "applet link bin/sh");
    assert!(std::fs::read_to_string(root.join("etc/passwd")).unwrap().contains("app:x:1000:1000"));
    let suid = std::fs::metadata(root.join("usr/local/bin/suid-test")).unwrap();
    assert_eq!(suid.permissions().mode() & 0o7777, 0o4755, "setuid bit kept");
    let (a, b) =
        (std::fs::metadata(root.join("opt/links/a")).unwrap(), std::fs::metadata(root.join("opt/links/b")).unwrap());
    assert_eq!(a.ino(), b.ino(), "hardlink kept");
    assert_eq!(std::fs::read_link(root.join("opt/links/sym")).unwrap(), Path::new("a"));
    assert!(std::fs::metadata(root.join("opt/fifo")).unwrap().file_type().is_fifo());
    assert_eq!(std::fs::metadata(root.join("home/app")).unwrap().uid(), 1000);
    assert!(root.join("opt/keep/file").is_file());
    if layered {
        assert!(!root.join("etc/removed-later").exists(), "whiteout hides the file");
        let mut replaced: Vec<String> = std::fs::read_dir(root.join("opt/replaced"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        replaced.sort();
        assert_eq!(replaced, ["new1"], "opaque dir hides the lower entries");
        assert!(root.join("etc/layer2-marker").is_file());
    }
}

#[test]
fn pulls_every_fixture_variant_with_its_digest_and_tree() {
    let env = Env::new();
    for tag in VARIANTS {
        let image = format!("{PLAIN}/test/busybox:{tag}");
        let o = env.run(&["pull", &image]);
        o.assert_ok();
        assert_eq!(o.stdout.trim(), image);
        assert!(o.stderr.contains("Pull complete") || o.stderr.contains("Already exists"), "{}", o.stderr);
        let info = inspect(&env, &image);
        let want = fixture_digest("5000", &format!("test/busybox:{tag}"));
        if tag == "index" || tag == "list" {
            assert_eq!(info["RepoDigests"][0].as_str().unwrap(), format!("{PLAIN}/test/busybox@{want}"));
            assert_eq!(info["Architecture"], "amd64");
        } else {
            assert_eq!(info["Digest"], want);
        }
        with_merged_tree(&env, &image, |root| {
            assert_fixture_tree(root, tag != "single");
            if tag == "index" || tag == "list" {
                assert_eq!(std::fs::read_to_string(root.join("etc/arch")).unwrap().trim(), "amd64");
            }
        });
    }
    let listing = env.images();
    for tag in VARIANTS {
        assert!(
            listing.lines().any(|l| l.starts_with(&format!("{PLAIN}/test/busybox")) && l.contains(tag)),
            "{listing}"
        );
    }
    assert!(listing.starts_with("REPOSITORY"), "{listing}");
}

#[test]
fn layers_are_unpacked_once_and_shared() {
    let env = Env::new();
    env.run(&["pull", "-q", &format!("{PLAIN}/test/busybox:oci")]).assert_ok();
    let layers_before = std::fs::read_dir(env.root().join("layers")).unwrap().count();
    let o = env.run(&["pull", &format!("{PLAIN}/test/busybox:v2s2")]);
    o.assert_ok();
    assert!(o.stderr.contains("Already exists") || o.stderr.contains("Pull complete"), "{}", o.stderr);
    // Same layers, gzip-identical: nothing new unpacked.
    assert_eq!(std::fs::read_dir(env.root().join("layers")).unwrap().count(), layers_before);
    let again = env.run(&["pull", &format!("{PLAIN}/test/busybox:oci")]);
    again.assert_ok();
    assert!(again.stderr.contains("Image is up to date"), "{}", again.stderr);
}

#[test]
fn platform_choice_from_index_and_missing_platform() {
    let env = Env::new();
    let image = format!("{PLAIN}/test/busybox:index");
    env.run(&["pull", "-q", "--platform", "linux/arm64/v8", &image]).assert_ok();
    assert_eq!(inspect(&env, &image)["Platform"]["architecture"], "arm64");
    with_merged_tree(&env, &image, |root| {
        assert_eq!(std::fs::read_to_string(root.join("etc/arch")).unwrap().trim(), "arm64");
    });
    let before = env.snapshot();
    let images_before = env.images();
    let o = env.run(&["pull", "--platform", "linux/s390x", &format!("{PLAIN}/test/busybox:list")]);
    o.assert_error(&["no image for platform linux/s390x", "linux/amd64", "linux/arm64/v8"]);
    assert_eq!(env.snapshot(), before);
    assert_eq!(env.images(), images_before);
}

#[test]
fn basic_auth_from_docker_config() {
    let env = Env::new();
    let image = format!("{BASIC}/test/busybox:oci");
    let o = env.run(&["pull", &image]);
    o.assert_error(&["access denied", BASIC]);
    assert!(env.images().lines().count() <= 1);
    env.login(BASIC, USER, "wrong");
    env.run(&["pull", &image]).assert_error(&["access denied"]);
    env.login(BASIC, USER, PASSWORD);
    env.run(&["pull", "-q", &image]).assert_ok();
    assert!(env.images().contains("test/busybox"));
}

#[test]
fn bearer_tokens_anonymous_and_with_credentials() {
    let env = Env::new();
    env.run(&["pull", "-q", &format!("{TOKEN}/test/busybox:oci")]).assert_ok();
    let private = format!("{TOKEN}/private/busybox:latest");
    let before = env.snapshot();
    env.run(&["pull", &private]).assert_error(&["access denied", "private/busybox"]);
    assert_eq!(env.snapshot(), before);
    env.login(TOKEN, USER, PASSWORD);
    env.run(&["pull", "-q", &private]).assert_ok();
}

#[test]
fn docker_hub_names_through_a_mirror() {
    let env = Env::new();
    let mirror = format!("http://{PLAIN}");
    let o = env.run(&["pull", "--registry-mirror", &mirror, "alpine"]);
    o.assert_ok();
    assert_eq!(o.stdout.trim(), "docker.io/library/alpine:latest");
    assert!(env.images().lines().any(|l| l.starts_with("alpine ") && l.contains("latest")));
    // The environment variable and the config file work the same; a dead
    // mirror is skipped for the next one.
    let o = Outcome(
        env.mini(&["pull", "-q", "alpine:latest"])
            .env("MINI_REGISTRY_MIRROR", format!("http://127.0.0.1:1,{mirror}"))
            .output()
            .unwrap(),
    );
    assert_eq!(o.0.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.0.stderr));
    let config = env.dir.path().join("config.toml");
    std::fs::write(&config, format!("registry-mirrors = [\"{mirror}\"]\n")).unwrap();
    let o = Outcome(env.mini(&["pull", "-q", "library/alpine"]).env("MINI_CONFIG", &config).output().unwrap());
    assert_eq!(o.0.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.0.stderr));
}

struct Outcome(std::process::Output);

#[test]
fn store_is_a_layout_that_skopeo_and_umoci_read() {
    let env = Env::new();
    let image = format!("{PLAIN}/test/busybox:index");
    env.run(&["pull", "-q", &image]).assert_ok();
    let root = env.root().display().to_string();
    let ls = Command::new("umoci").args(["ls", "--layout", &root]).output().expect("umoci (installed by .ci/run)");
    assert!(ls.status.success(), "{}", String::from_utf8_lossy(&ls.stderr));
    assert!(String::from_utf8_lossy(&ls.stdout).contains(&image));
    let out = Command::new("skopeo").args(["inspect", &format!("oci:{root}:{image}")]).output().expect("skopeo");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(v["Layers"].as_array().unwrap().len(), 3);
}

#[test]
fn concurrent_pulls_of_one_image_both_succeed() {
    let env = Env::new();
    let image = format!("{PLAIN}/test/busybox:zstd");
    let a = env.mini(&["pull", "-q", &image]).spawn().unwrap();
    let b = env.mini(&["pull", "-q", &image]).spawn().unwrap();
    for child in [a, b] {
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(env.images().lines().count(), 2);
    with_merged_tree(&env, &image, |root| assert_fixture_tree(root, true));
}

#[test]
fn minirootfs_from_the_alpine_mirror() {
    let env = Env::new();
    let o = env.run(&["pull", "--minirootfs", "--alpine-mirror", ALPINE_MIRROR, "alpine:3.20"]);
    o.assert_ok();
    assert_eq!(o.stdout.trim(), "docker.io/library/alpine:3.20");
    let info = inspect(&env, "alpine:3.20");
    assert_eq!(info["Config"]["Cmd"], serde_json::json!(["/bin/sh"]));
    assert_eq!(info["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    with_merged_tree(&env, "alpine:3.20", |root| assert!(root.join("bin/busybox").is_file()));
    // latest-stable is `alpine:latest`, taken from MINI_ALPINE_MIRROR.
    let o =
        env.mini(&["pull", "-q", "--minirootfs", "alpine"]).env("MINI_ALPINE_MIRROR", ALPINE_MIRROR).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(env.images().lines().any(|l| l.starts_with("alpine ") && l.contains("latest")));
}

#[test]
fn rmi_and_prune_remove_what_nothing_uses() {
    let env = Env::new();
    let (oci, single) = (format!("{PLAIN}/test/busybox:oci"), format!("{PLAIN}/test/busybox:single"));
    env.run(&["pull", "-q", &oci]).assert_ok();
    env.run(&["pull", "-q", &single]).assert_ok();
    let layers = || {
        std::fs::read_dir(env.root().join("layers"))
            .unwrap()
            .filter(|e| !e.as_ref().unwrap().file_name().to_string_lossy().starts_with('.'))
            .count()
    };
    assert_eq!(layers(), 3);
    let o = env.run(&["rmi", &single]);
    o.assert_ok();
    assert!(o.stdout.contains(&format!("Untagged: {single}")), "{}", o.stdout);
    assert_eq!(layers(), 2, "the single-layer image's layer is gone, the shared ones stay");
    assert!(!env.images().contains("single"));
    env.run(&["rmi", "no-such-image:1"]).code.eq(&1).then_some(()).expect("rmi of a missing image fails");
    env.run(&["rmi", "-f", "no-such-image:1"]).assert_ok();
    env.run(&["rmi", &oci]).assert_ok();
    let o = env.run(&["system", "prune", "-f"]);
    o.assert_ok();
    assert_eq!(layers(), 0);
    assert_eq!(std::fs::read_dir(env.root().join("blobs/sha256")).unwrap().count(), 0);
}

#[test]
fn images_quiet_and_json() {
    let env = Env::new();
    env.run(&["pull", "-q", &format!("{PLAIN}/test/busybox:oci")]).assert_ok();
    env.run(&["pull", "-q", &format!("{PLAIN}/test/busybox:v2s2")]).assert_ok();
    let q = env.run(&["images", "-q"]);
    assert_eq!(q.stdout.lines().count(), 1, "one ID for two names of one image: {}", q.stdout);
    let j = env.run(&["images", "--format", "json"]);
    let rows: Vec<serde_json::Value> = j.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["Repository"], format!("{PLAIN}/test/busybox"));
    assert_eq!(rows[0]["ID"].as_str().unwrap().len(), 12);
}

// ---------------------------------------------------------------- bad input

/// Pull one good image first, so "as before" means something.
fn env_with_one_image() -> Env {
    let env = Env::new();
    env.run(&["pull", "-q", &format!("{PLAIN}/test/busybox:single")]).assert_ok();
    env
}

fn assert_untouched(env: &Env, images_before: &str, before: &std::collections::BTreeSet<String>) {
    assert_eq!(env.images(), images_before, "mini images changed");
    assert_eq!(&env.snapshot(), before, "the store changed");
}

#[test]
fn malformed_references() {
    let env = env_with_one_image();
    let (images, before) = (env.images(), env.snapshot());
    for bad in ["Alpine", "alpine:", "a//b", "alpine@sha256:123", "-x", "host:port/x"] {
        env.run(&["pull", "--", bad]).assert_error(&["invalid reference format", bad]);
    }
    assert_untouched(&env, &images, &before);
}

#[test]
fn missing_tag_and_unreachable_registry() {
    let env = env_with_one_image();
    let (images, before) = (env.images(), env.snapshot());
    env.run(&["pull", &format!("{PLAIN}/test/busybox:nope")]).assert_error(&["not found", "test/busybox"]);
    env.run(&["pull", &format!("{PLAIN}/no/such-repo")]).assert_error(&["not found"]);
    env.run(&["pull", "127.0.0.1:1/x:1"]).assert_error(&["registry unreachable", "http://127.0.0.1:1"]);
    assert_untouched(&env, &images, &before);
}

#[test]
fn minirootfs_checksum_mismatch() {
    let env = env_with_one_image();
    let (images, before) = (env.images(), env.snapshot());
    let o = env.run(&["pull", "--minirootfs", "--alpine-mirror", ALPINE_MIRROR, "alpine:3.19"]);
    o.assert_error(&["digest mismatch", "alpine-minirootfs"]);
    assert_untouched(&env, &images, &before);
    env.run(&["pull", "--minirootfs", "--alpine-mirror", "http://127.0.0.1:1", "alpine"])
        .assert_error(&["http://127.0.0.1:1"]);
    assert_untouched(&env, &images, &before);
}

#[test]
fn store_root_that_cannot_be_written() {
    let env = Env::new();
    let file = env.dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let o = env
        .mini(&["pull", &format!("{PLAIN}/test/busybox:oci")])
        .env("MINI_ROOT", file.join("store"))
        .output()
        .unwrap();
    let o = support::Outcome::of(o);
    o.assert_error(&[&file.join("store").display().to_string()]);
}

fn fake_image(fake: &FakeRegistry, tag: &str) -> support::fake_registry::FakeImage {
    let small = layer_tar(&[("etc/one", b"1")]);
    let big: Vec<u8> = (0..400_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let big_tar = layer_tar(&[("data/big", &big)]);
    fake.add_image("t/img", tag, &[(gzip(&small), small), (gzip(&big_tar), big_tar)])
}

#[test]
fn tampered_layer_config_and_manifest_fail_cleanly() {
    let env = env_with_one_image();
    let (images, before) = (env.images(), env.snapshot());
    let fake = FakeRegistry::start();
    let img = fake_image(&fake, "v1");
    let image = format!("{}/t/img:v1", fake.addr);

    fake.set_fault(&img.layer_digests[1], Fault::Tamper);
    env.run(&["pull", &image]).assert_error(&["digest mismatch", &img.layer_digests[1]]);
    assert_untouched(&env, &images, &before);

    fake.set_fault(&img.layer_digests[1], Fault::None);
    fake.set_fault(&img.config_digest, Fault::Tamper);
    env.run(&["pull", &image]).assert_error(&["digest mismatch", &img.config_digest]);
    assert_untouched(&env, &images, &before);

    // A manifest asked for by digest must hash to that digest.
    fake.set_fault(&img.config_digest, Fault::None);
    let other = fake_image(&fake, "v2");
    fake.put_manifest("t/img", &img.manifest_digest, serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": other.config_digest, "size": 1}, "layers": []})).unwrap(), "application/vnd.oci.image.manifest.v1+json");
    env.run(&["pull", &format!("{}/t/img@{}", fake.addr, img.manifest_digest)])
        .assert_error(&["digest", &img.manifest_digest]);
    assert_untouched(&env, &images, &before);
}

#[test]
fn truncated_and_corrupt_layers_fail_cleanly() {
    let env = env_with_one_image();
    let (images, before) = (env.images(), env.snapshot());
    let fake = FakeRegistry::start();
    let img = fake_image(&fake, "v1");
    let image = format!("{}/t/img:v1", fake.addr);
    fake.set_fault(&img.layer_digests[1], Fault::Truncate);
    env.run(&["pull", &image]).assert_error(&[&img.layer_digests[1], "attempts"]);
    assert_untouched(&env, &images, &before);

    // Honest registry, broken gzip: the blob verifies, the unpack does not.
    let tar = layer_tar(&[("x", b"x")]);
    let mut bad = gzip(&tar);
    let n = bad.len();
    bad[n - 12] ^= 0x55;
    fake.add_image("t/gz", "v1", &[(bad, tar)]);
    env.run(&["pull", &format!("{}/t/gz:v1", fake.addr)]).assert_error(&["unpack layer"]);
    assert_untouched(&env, &images, &before);
}

#[test]
fn transient_failures_are_retried_and_resumed_with_range() {
    let env = Env::new();
    let fake = FakeRegistry::start();
    let img = fake_image(&fake, "v1");
    fake.set_fault(&img.layer_digests[0], Fault::FailTimes(2));
    fake.set_fault(&img.layer_digests[1], Fault::CutOnceAt(100_000));
    env.run(&["pull", "-q", &format!("{}/t/img:v1", fake.addr)]).assert_ok();
    let requests = fake.requests();
    let blob0 = requests.iter().filter(|r| r.contains(&img.layer_digests[0])).count();
    assert_eq!(blob0, 3, "two 503s then success: {requests:?}");
    assert!(
        requests.iter().any(|r| r.contains(&img.layer_digests[1]) && r.ends_with("Range:100000")),
        "resumed with Range: {requests:?}"
    );
    let info = inspect(&env, &format!("{}/t/img:v1", fake.addr));
    assert_eq!(info["Digest"], img.manifest_digest);
}

#[test]
fn a_connection_reset_inside_a_manifest_is_retried() {
    let env = Env::new();
    let fake = FakeRegistry::start();
    let img = fake_image(&fake, "v1");
    fake.set_manifest_fault("t/img", "v1", Fault::CutOnceAt(40));
    env.run(&["pull", "-q", &format!("{}/t/img:v1", fake.addr)]).assert_ok();
    let asked = fake.requests().iter().filter(|r| r.ends_with("/manifests/v1")).count();
    assert_eq!(asked, 2, "one cut answer, then a whole one: {:?}", fake.requests());
    assert_eq!(inspect(&env, &format!("{}/t/img:v1", fake.addr))["Digest"], img.manifest_digest);
}

#[test]
fn a_blob_cut_short_again_after_resuming_is_resumed_again() {
    let env = Env::new();
    let fake = FakeRegistry::start();
    let img = fake_image(&fake, "v1");
    // The first answer and the resumed one both break off half way.
    fake.set_fault(&img.layer_digests[1], Fault::TruncateTimes(2));
    env.run(&["pull", "-q", &format!("{}/t/img:v1", fake.addr)]).assert_ok();
    let ranges: Vec<String> =
        fake.requests().into_iter().filter(|r| r.contains(&img.layer_digests[1]) && r.contains("Range:")).collect();
    assert_eq!(ranges.len(), 2, "resumed twice: {ranges:?}");
    assert_eq!(inspect(&env, &format!("{}/t/img:v1", fake.addr))["Digest"], img.manifest_digest);

    // A resumed answer that is short but ends cleanly is not the whole blob either.
    let env = Env::new();
    fake.set_fault(&img.layer_digests[1], Fault::CutThenShortRange(100_000));
    env.run(&["pull", "-q", &format!("{}/t/img:v1", fake.addr)]).assert_ok();
    assert_eq!(inspect(&env, &format!("{}/t/img:v1", fake.addr))["Digest"], img.manifest_digest);
}

#[test]
fn a_pull_killed_mid_layer_leaves_a_store_the_next_pull_completes() {
    let env = env_with_one_image();
    let (images, before) = (env.images(), env.snapshot());
    let fake = FakeRegistry::start();
    let img = fake_image(&fake, "v1");
    fake.set_fault(&img.layer_digests[1], Fault::Slow);
    let image = format!("{}/t/img:v1", fake.addr);
    let mut child = env.mini(&["pull", "-q", &image]).spawn().unwrap();
    // Wait until the slow layer is flowing into ingest/, then SIGKILL.
    let ingest = env.root().join("ingest");
    let big = |e: std::fs::DirEntry| e.metadata().map(|m| m.len() > 50_000).unwrap_or(false);
    let flowing = || std::fs::read_dir(&ingest).map(|d| d.flatten().any(big)).unwrap_or(false);
    support::wait_for(std::time::Duration::from_secs(20), "the pull to start streaming", || flowing().then_some(()));
    child.kill().unwrap();
    child.wait().unwrap();
    // Nothing visible: same images, no new blobs or layers (temp files only).
    assert_eq!(env.images(), images);
    let after: std::collections::BTreeSet<String> =
        env.snapshot().into_iter().filter(|p| !p.starts_with("ingest") && !p.starts_with("layers/.tmp-")).collect();
    let before_visible: std::collections::BTreeSet<String> =
        before.iter().filter(|p| !p.starts_with("ingest")).cloned().collect();
    assert_eq!(after, before_visible);
    fake.set_fault(&img.layer_digests[1], Fault::None);
    env.run(&["pull", "-q", &image]).assert_ok();
    assert!(env.images().contains("t/img"));
    // The dead pull's temp files are unlocked; once they are a few seconds
    // old (a live writer locks within milliseconds) any mini sweeps them.
    let temps: Vec<String> =
        env.snapshot().into_iter().filter(|p| p.starts_with("ingest/") || p.starts_with("layers/.tmp-")).collect();
    for t in &temps {
        let st = Command::new("touch").args(["-h", "-d", "1 minute ago"]).arg(env.root().join(t)).status().unwrap();
        assert!(st.success());
    }
    env.images();
    let leftovers: Vec<String> =
        env.snapshot().into_iter().filter(|p| p.starts_with("ingest/") || p.starts_with("layers/.tmp-")).collect();
    assert!(leftovers.is_empty(), "stale temp files swept: {leftovers:?}");
}

#[test]
fn every_variant_through_basic_auth_and_bearer_tokens() {
    let env = Env::new();
    env.login(BASIC, USER, PASSWORD);
    for (registry, port) in [(BASIC, "5001"), (TOKEN, "5002")] {
        for tag in VARIANTS {
            let image = format!("{registry}/test/busybox:{tag}");
            env.run(&["pull", "-q", &image]).assert_ok();
            let info = inspect(&env, &image);
            let want = fixture_digest(port, &format!("test/busybox:{tag}"));
            let got = if tag == "index" || tag == "list" {
                info["RepoDigests"][0].as_str().unwrap().rsplit('@').next().unwrap().to_string()
            } else {
                info["Digest"].as_str().unwrap().to_string()
            };
            assert_eq!(got, want, "{image}");
        }
    }
}

#[test]
fn every_variant_through_a_per_registry_mirror() {
    let env = Env::new();
    // The upstream name does not resolve: only the mirror can serve it.
    std::fs::write(
        env.dir.path().join("config.toml"),
        format!("[registry.\"registry.invalid:5000\"]\nmirrors = [\"http://{PLAIN}\"]\n"),
    )
    .unwrap();
    for tag in VARIANTS {
        let image = format!("registry.invalid:5000/test/busybox:{tag}");
        let o = env.run(&["pull", "-q", &image]);
        o.assert_ok();
        assert_eq!(o.stdout.trim(), image);
    }
    with_merged_tree(&env, "registry.invalid:5000/test/busybox:list", |root| assert_fixture_tree(root, true));
}

#[test]
fn rmi_keeps_an_image_a_container_uses_unless_forced() {
    let env = Env::new();
    let image = format!("{PLAIN}/test/busybox:oci");
    env.run(&["pull", "-q", &image]).assert_ok();
    let created = env.run(&["create", &image, "true"]);
    created.assert_ok();
    let id = created.stdout.trim().to_string();
    let before = env.snapshot();
    let o = env.run(&["rmi", &image]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains(&format!("container {} is using its referenced image", &id[..12])), "{}", o.stderr);
    assert_eq!(env.snapshot(), before);
    // A second name can go; the last one only with -f, and the container's layers stay.
    env.run(&["pull", "-q", &format!("{PLAIN}/test/busybox:v2s2")]).assert_ok();
    env.run(&["rmi", &format!("{PLAIN}/test/busybox:v2s2")]).assert_ok();
    env.run(&["rmi", "-f", &image]).assert_ok();
    assert!(!env.images().contains("busybox"));
    let layers = std::fs::read_dir(env.root().join("layers"))
        .unwrap()
        .filter(|e| !e.as_ref().unwrap().file_name().to_string_lossy().starts_with('.'))
        .count();
    assert_eq!(layers, 2, "the container still needs its layers");
    env.run(&["rm", &id]).assert_ok();
    env.run(&["image", "prune"]).assert_ok();
    assert_eq!(
        std::fs::read_dir(env.root().join("layers"))
            .unwrap()
            .filter(|e| !e.as_ref().unwrap().file_name().to_string_lossy().starts_with('.'))
            .count(),
        0
    );
}

#[test]
fn an_index_without_the_host_platform() {
    let env = env_with_one_image();
    let (images, before) = (env.images(), env.snapshot());
    let fake = FakeRegistry::start();
    let img = fake_image(&fake, "arm-only-child");
    let index = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": img.manifest_digest, "size": 1,
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": img.manifest_digest, "size": 1,
             "platform": {"os": "windows", "architecture": "amd64"}}
        ]
    });
    fake.put_manifest("t/img", "multi", serde_json::to_vec(&index).unwrap(), "application/vnd.oci.image.index.v1+json");
    let o = env.run(&["pull", &format!("{}/t/img:multi", fake.addr)]);
    o.assert_error(&["no image for platform linux/amd64", "linux/arm64/v8, windows/amd64", "--platform"]);
    assert_untouched(&env, &images, &before);
}
