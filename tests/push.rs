//! `mini tag`, `push`, `login`, `logout` against the fixture registries
//! (plain :5000, token :5002 with mini:minipass; see fixtures/). Pushed
//! repositories are named after the test and its pid, so runs never meet.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use support::{Env, Outcome, PASSWORD, PLAIN, TOKEN, USER};

const SOURCE: &str = "127.0.0.1:5000/test/busybox:v2s2";

fn repo(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

/// The manifest digest `skopeo inspect --raw` gets for `image`.
fn remote_digest(image: &str, creds: Option<&str>) -> String {
    let mut c = Command::new("skopeo");
    c.args(["inspect", "--raw", "--tls-verify=false"]);
    if let Some(creds) = creds {
        c.args(["--creds", creds]);
    }
    let out = c.arg(format!("docker://{image}")).output().expect("run skopeo");
    assert!(out.status.success(), "skopeo inspect {image}: {}", String::from_utf8_lossy(&out.stderr));
    support::fake_registry::sha256(&out.stdout)
}

fn local_digest(env: &Env, image: &str) -> String {
    let o = env.run(&["inspect", image]);
    o.assert_ok();
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    v[0]["Digest"].as_str().expect("a Digest field").to_string()
}

#[test]
fn a_pushed_image_keeps_its_digest_and_pulls_back_into_an_empty_store() {
    let env = Env::new();
    env.run(&["pull", "-q", SOURCE]).assert_ok();
    let target = format!("{PLAIN}/test/{}:1", repo("roundtrip"));
    env.run(&["tag", SOURCE, &target]).assert_ok();
    let o = env.run(&["push", &target]);
    o.assert_ok();
    assert!(
        o.stderr.contains("Mounted from test/busybox") || o.stderr.contains("Layer already exists"),
        "{}",
        o.stderr
    );
    let want = support::fixture_digest("5000", "test/busybox:v2s2");
    assert_eq!(remote_digest(&target, None), want, "a v2s2 image goes up byte for byte");
    assert!(o.stderr.contains(&format!("1: digest: {want} size: ")), "{}", o.stderr);
    let fresh = Env::new();
    fresh.run(&["pull", "-q", &target]).assert_ok();
    let run = fresh.run(&["run", "--rm", "--network", "none", &target, "cat", "/etc/hostname"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // --format oci: the same blobs under OCI media types.
    let oci = format!("{PLAIN}/test/{}:1", repo("as-oci"));
    env.run(&["tag", SOURCE, &oci]).assert_ok();
    env.run(&["push", "-q", "--format", "oci", &oci]).assert_ok();
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", &format!("docker://{oci}")])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(v["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(v["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");
}

/// A one-layer image with a 72 MiB file: two PATCHes (64 MiB and 8).
const BIG: u32 = 72 << 20;

fn big_image(env: &Env, name: &str) {
    let data: Vec<u8> = (0..BIG).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    support::image::build_image(&env.root(), name, |b| {
        support::image::tar_dir(b, "data");
        support::image::tar_file(b, "data/blob", 0o644, &data);
    });
}

#[test]
fn a_large_layer_goes_up_in_chunks_and_a_cut_upload_goes_on() {
    let env = Env::new();
    // Cut in the middle of the first chunk.
    let proxy = support::proxy::CuttingProxy::start(PLAIN, 20 << 20);
    let name = format!("127.0.0.1:{}/test/{}:1", proxy.port, repo("cut"));
    big_image(&env, &name);
    let o = env.run(&["push", &name]);
    o.assert_ok();
    assert_eq!(proxy.cuts.load(std::sync::atomic::Ordering::SeqCst), 1, "the proxy cut one upload");
    // distribution declares a session broken mid-PATCH invalid (its
    // signed state names the offset before it), so the blob went again,
    // once: the cut part plus the whole layer, no more.
    let forwarded = proxy.forwarded.load(std::sync::atomic::Ordering::SeqCst);
    assert!(forwarded < u64::from(BIG) + (22 << 20), "{forwarded} bytes went through for a {BIG}-byte layer");
    assert!(o.stderr.contains(": Pushed"), "{}", o.stderr);
    // What went up is what the store holds.
    let via_plain = name.replace(&format!("127.0.0.1:{}", proxy.port), PLAIN);
    assert_eq!(remote_digest(&via_plain, None), local_digest(&env, &name));
}

#[test]
fn push_needs_a_login_on_the_token_registry_and_login_checks_the_password() {
    let env = Env::new();
    env.run(&["pull", "-q", SOURCE]).assert_ok();
    let target = format!("{TOKEN}/mini/{}:1", repo("private"));
    env.run(&["tag", SOURCE, &target]).assert_ok();
    let before = env.snapshot();
    env.run(&["push", "-q", &target]).assert_error(&["push", "authentication required", "mini login 127.0.0.1:5002"]);
    assert_eq!(env.snapshot(), before, "a refused push changes nothing in the store");
    let config = env.docker_config().join("config.json");
    env.run(&["login", "-u", USER, "-p", "wrong", TOKEN]).assert_error(&["incorrect username or password"]);
    assert!(!config.exists(), "a failed login writes nothing");
    let o = Outcome::of(
        env.mini(&["login", "-u", USER, "--password-stdin", TOKEN])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(format!("{PASSWORD}\n").as_bytes())?;
                c.wait_with_output()
            })
            .unwrap(),
    );
    o.assert_ok();
    assert_eq!(o.stdout, "Login Succeeded\n");
    assert_eq!(std::fs::metadata(&config).unwrap().permissions().mode() & 0o777, 0o600);
    env.run(&["push", "-q", &target]).assert_ok();
    assert_eq!(
        remote_digest(&target, Some(&format!("{USER}:{PASSWORD}"))),
        support::fixture_digest("5000", "test/busybox:v2s2")
    );
    let o = env.run(&["logout", TOKEN]);
    o.assert_ok();
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    assert!(v["auths"].get(TOKEN).is_none(), "{v}");
}

/// A `docker-credential-NAME` helper script in `dir`, answering `get`
/// with `answer` (or failing with `fail` on stderr).
fn helper(dir: &Path, name: &str, answer: Option<&str>) {
    let script = match answer {
        Some(a) => format!("#!/bin/sh\n[ \"$1\" = get ] && cat >/dev/null && echo '{a}' && exit 0\nexit 1\n"),
        None => "#!/bin/sh\ncat >/dev/null\necho 'no such credentials in the vault' >&2\nexit 3\n".to_string(),
    };
    let path = dir.join(format!("docker-credential-{name}"));
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn credential_helpers_are_asked_for_pulls_and_pushes() {
    let env = Env::new();
    let bin = env.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    helper(&bin, "minitest", Some(&format!(r#"{{"ServerURL":"{TOKEN}","Username":"{USER}","Secret":"{PASSWORD}"}}"#)));
    helper(&bin, "broken", None);
    std::fs::create_dir_all(env.docker_config()).unwrap();
    let config = env.docker_config().join("config.json");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    std::fs::write(&config, format!(r#"{{"credHelpers": {{"{TOKEN}": "minitest"}}}}"#)).unwrap();
    let private = format!("{TOKEN}/private/busybox:latest");
    let o = Outcome::of(env.mini(&["pull", "-q", &private]).env("PATH", &path).output().unwrap());
    o.assert_ok();
    let target = format!("{TOKEN}/mini/{}:1", repo("helper"));
    Outcome::of(env.mini(&["tag", &private, &target]).output().unwrap()).assert_ok();
    Outcome::of(env.mini(&["push", "-q", &target]).env("PATH", &path).output().unwrap()).assert_ok();
    // A helper that fails is an error naming it, not an anonymous pull.
    std::fs::write(&config, r#"{"credsStore": "broken"}"#).unwrap();
    let o = Outcome::of(env.mini(&["pull", "-q", &private]).env("PATH", &path).output().unwrap());
    o.assert_error(&["docker-credential-broken", "no such credentials in the vault"]);
}

#[test]
fn bad_tags_and_pushes_are_one_line_errors_that_change_nothing() {
    let env = Env::new();
    env.run(&["pull", "-q", SOURCE]).assert_ok();
    env.run(&["tag", SOURCE, "127.0.0.1:1/unreachable:1"]).assert_ok();
    let before = env.snapshot();
    env.run(&["tag", "nosuch:1", "x:1"]).assert_error(&["no such image"]);
    env.run(&["tag", SOURCE, "UPPER/case"]).assert_error(&["invalid reference format"]);
    env.run(&["push", "127.0.0.1:5000/test/never-pulled:1"]).assert_error(&["no such image"]);
    env.run(&["push", "--format", "docker", SOURCE]).assert_error(&["--format"]);
    env.run(&["push", "-q", "127.0.0.1:1/unreachable:1"]).assert_error(&["127.0.0.1:1", "unreachable"]);
    assert_eq!(env.snapshot(), before);
}

#[test]
fn pull_run_change_commit_tag_push_remove_pull_run_sees_the_change() {
    let env = Env::new();
    env.run(&["pull", "-q", SOURCE]).assert_ok();
    let o = env.run(&[
        "run",
        "--name",
        "story",
        "--network",
        "none",
        SOURCE,
        "sh",
        "-c",
        "echo changed by hand > /etc/motd && rm /etc/hostname.default 2>/dev/null; true",
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let target = format!("{PLAIN}/test/{}:1", repo("story"));
    let o = env.run(&["commit", "story", "committed:1"]);
    o.assert_ok();
    env.run(&["tag", "committed:1", &target]).assert_ok();
    env.run(&["push", "-q", &target]).assert_ok();
    // Remove everything: the container, every name, the blobs.
    env.run(&["rm", "story"]).assert_ok();
    for name in [SOURCE, "committed:1", target.as_str()] {
        env.run(&["rmi", name]).assert_ok();
    }
    env.run(&["image", "prune"]).assert_ok();
    let o = env.run(&["images", "-q"]);
    assert_eq!(o.stdout.trim(), "", "images left: {}", o.stdout);
    env.run(&["pull", "-q", &target]).assert_ok();
    let o = env.run(&["run", "--rm", "--network", "none", &target, "cat", "/etc/motd"]);
    assert_eq!((o.code, o.stdout.as_str()), (0, "changed by hand\n"), "{}", o.stderr);
}
