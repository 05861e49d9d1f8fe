//! A registry behind TLS with a certificate from a private CA (made by the
//! test with openssl), trusted through Docker's `certs.d` layout: refused
//! without the CA, pushed to and pulled from with it, a bad CA file named
//! in the error. The registry runs in the test's own network namespace,
//! and mini resolves its name through an /etc/hosts bound over the host's
//! in a private mount namespace (`unshare --mount`), so nothing of the
//! host changes.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use support::{isolate, wait_for, Mini, IMAGE};

const NAME: &str = "tls.registry.test";
const PORT: u16 = 5443;

/// The registry process, killed (by pid) when the test ends.
struct Registry(Child);

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let o =
        Command::new("openssl").current_dir(dir).args(args).output().expect("openssl is installed (.ci/install-deps)");
    assert!(o.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

/// A CA, and a server certificate for NAME signed by it; (ca.crt, dir).
fn certificates(dir: &Path) -> PathBuf {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=mini test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={NAME}"),
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(dir.join("san.ext"), format!("subjectAltName=DNS:{NAME}\n")).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.crt",
        ],
    );
    dir.join("ca.crt")
}

fn start_registry(m: &Mini, dir: &Path) -> Registry {
    let config = format!(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{PORT}\n  tls:\n    certificate: {}\n    key: {}\n",
        dir.join("data").display(),
        dir.join("server.crt").display(),
        dir.join("server.key").display()
    );
    std::fs::write(dir.join("registry.yml"), config).unwrap();
    let log = std::fs::File::create(dir.join("registry.log")).unwrap();
    let mut cmd = Command::new("docker-registry");
    cmd.arg("serve").arg(dir.join("registry.yml")).stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
    m.ns().enter(&mut cmd);
    let reg = Registry(cmd.spawn().expect("docker-registry is installed (.ci/install-deps)"));
    wait_for(Duration::from_secs(20), "the TLS registry to listen", || {
        let mut probe = Command::new("bash");
        probe.args(["-c", &format!("exec 3<>/dev/tcp/127.0.0.1/{PORT}")]);
        m.ns().enter(&mut probe);
        probe.status().ok().filter(|s| s.success())
    });
    reg
}

/// `mini ARGS` in the test's namespace, resolving NAME through `hosts`.
fn mini(m: &Mini, hosts: &Path, args: &[&str]) -> Output {
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "sh", "-c", "mount --bind \"$0\" /etc/hosts && exec \"$@\""])
        .arg(hosts)
        .arg(env!("CARGO_BIN_EXE_mini"))
        .args(args);
    isolate(&mut c, m.dir(), &m.root);
    m.ns().enter(&mut c);
    c.output().unwrap()
}

/// Exit 125 and one error line (after push's progress line), saying `cause`.
fn refused(o: &Output, start: &str, cause: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("mini: ")).collect();
    assert_eq!(errors.len(), 1, "one error line: {err}");
    assert!(errors[0].starts_with(start) && errors[0].contains(cause), "{err}");
}

#[test]
fn a_private_ca_in_certs_d_makes_a_tls_registry_trusted() {
    let Some(m) = Mini::new() else { return };
    let dir = m.dir().join("tls");
    std::fs::create_dir_all(&dir).unwrap();
    let ca = certificates(&dir);
    let _registry = start_registry(&m, &dir);
    let hosts = dir.join("hosts");
    std::fs::write(&hosts, format!("127.0.0.1\tlocalhost {NAME}\n")).unwrap();
    let certs = dir.join("certs.d");
    std::fs::write(
        m.dir().join("config.toml"),
        format!("{}certs-dir = \"{}\"\n", support::mini::CONFIG, certs.display()),
    )
    .unwrap();
    let target = format!("{NAME}:{PORT}/test/busybox:tls");
    let ok = |args: &[&str]| {
        let o = mini(&m, &hosts, args);
        assert!(o.status.success(), "mini {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    ok(&["tag", IMAGE, &target]);

    // Without the CA: the server's certificate is not trusted.
    let o = mini(&m, &hosts, &["push", &target]);
    refused(&o, &format!("mini: push {target}"), "invalid peer certificate");
    assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("certs.d/{NAME}:{PORT}/ca.crt")), "the fix is named");

    // A broken CA file is named.
    let host_dir = certs.join(format!("{NAME}:{PORT}"));
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("ca.crt"), "not a certificate").unwrap();
    let o = mini(&m, &hosts, &["push", &target]);
    refused(&o, "mini: read CA certificate", &host_dir.join("ca.crt").display().to_string());

    // With it: push, then pull back into an emptied store and run.
    std::fs::copy(&ca, host_dir.join("ca.crt")).unwrap();
    ok(&["push", &target]);
    ok(&["rmi", &target, IMAGE]);
    ok(&["pull", "-q", &target]);
    let o = mini(&m, &hosts, &["run", "--rm", &target, "echo", "pulled over tls"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "pulled over tls\n", "{}", String::from_utf8_lossy(&o.stderr));
}
