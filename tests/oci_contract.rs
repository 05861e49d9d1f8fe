//! runc's contract: the same bundle run under runc and under mini-runc
//! gives the same `state` fields through create, start, kill and delete,
//! the same exit codes (also for refused verbs), and the same view from
//! inside the container for the spec's process, root and linux fields.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};
use support::oci::{cgroup_parent, cleanup_cgroups, mini_runc, need, Bundle};

/// The two runtimes, each with a state root of its own.
struct Runtimes {
    roots: tempfile::TempDir,
    /// The test's cgroup parent (beneath ours); each runtime's containers
    /// go in `<cg>/<runtime>`.
    cg: String,
}

impl Runtimes {
    fn new(test: &str) -> Option<Runtimes> {
        if !support::requires_root() {
            return None;
        }
        need("runc");
        support::require_fixtures();
        let roots = tempfile::Builder::new().prefix("oci-roots-").tempdir_in(support::scratch()).unwrap();
        Some(Runtimes { roots, cg: cgroup_parent(test) })
    }

    fn each(&self) -> [(&'static str, std::path::PathBuf); 2] {
        [("runc", "runc".into()), ("mini-runc", mini_runc())]
    }

    fn cmd(&self, name: &str, bin: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(bin);
        c.arg("--root").arg(self.roots.path().join(name)).args(args).stdin(std::process::Stdio::null());
        c
    }

    /// Exit code, stdout and stderr of one call. Output goes through files,
    /// not pipes: a created container's init inherits create's stdio and
    /// would keep a pipe open until it exits.
    fn call(&self, name: &str, bin: &Path, args: &[&str]) -> (i32, String, String) {
        let (out, err) = (tempfile::tempfile().unwrap(), tempfile::tempfile().unwrap());
        let status = self
            .cmd(name, bin, args)
            .stdout(out.try_clone().unwrap())
            .stderr(err.try_clone().unwrap())
            .status()
            .unwrap();
        let read = |mut f: std::fs::File| {
            use std::io::{Read, Seek};
            let mut s = String::new();
            f.seek(std::io::SeekFrom::Start(0)).unwrap();
            f.read_to_string(&mut s).unwrap();
            s
        };
        (status.code().unwrap_or(-1), read(out), read(err))
    }
}

impl Drop for Runtimes {
    /// Whatever a failed test left running goes, in both runtimes.
    fn drop(&mut self) {
        for (name, bin) in self.each() {
            let (_, ids, _) = self.call(name, &bin, &["list", "-q"]);
            for id in ids.lines().filter(|l| !l.is_empty()) {
                self.call(name, &bin, &["delete", "--force", id]);
            }
        }
        cleanup_cgroups(&self.cg);
    }
}

/// A runtime's state document with what may differ between two runtimes
/// (version string, pid, times, ids) reduced to its shape.
fn normalized(v: &Value) -> Value {
    let mut v = v.clone();
    let o = v.as_object_mut().unwrap();
    assert!(o["ociVersion"].as_str().is_some_and(|s| s.starts_with("1.0.")), "{v}");
    o.insert("ociVersion".into(), json!("1.0.x"));
    let pid = o.get("pid").and_then(Value::as_i64).unwrap_or(0);
    o.insert("pid".into(), json!(if pid > 0 { "live" } else { "none" }));
    let created = o["created"].as_str().unwrap_or("").to_string();
    assert!(chrono_like(&created), "created is RFC 3339: {created}");
    o.insert("created".into(), json!("<time>"));
    // runc leaves out empty annotations; the spec makes them optional.
    if o.get("annotations").is_none_or(|a| a.is_null() || a.as_object().is_some_and(|m| m.is_empty())) {
        o.remove("annotations");
    }
    v
}

fn chrono_like(t: &str) -> bool {
    t.len() >= 20 && t.as_bytes()[4] == b'-' && t.as_bytes()[10] == b'T' && t.ends_with('Z')
}

fn state(r: &Runtimes, name: &str, bin: &Path, id: &str) -> (i32, Value) {
    let (code, out, _) = r.call(name, bin, &["state", id]);
    (code, serde_json::from_str(&out).unwrap_or(Value::Null))
}

#[test]
fn lifecycle_gives_the_same_states_and_exit_codes_as_runc() {
    let Some(r) = Runtimes::new("contract-life") else { return };
    let cg = &r.cg;
    let mut seen: Vec<Vec<(String, i32, Value)>> = Vec::new();
    for (name, bin) in r.each() {
        let b = Bundle::new(&["sh", "-c", "sleep 60"], &format!("{cg}/{name}"));
        let bundle = b.path().to_str().unwrap();
        let mut steps = Vec::new();
        let mut step = |what: &str, args: &[&str]| {
            let (code, _, err) = r.call(name, &bin, args);
            let (_, st) = state(&r, name, &bin, "c1");
            let st = if st.is_null() { st } else { normalized(&st) };
            steps.push((what.to_string(), code, st));
            err
        };
        step("create", &["create", "--bundle", bundle, "c1"]);
        step("create again", &["create", "--bundle", bundle, "c1"]);
        step("start", &["start", "c1"]);
        step("start again", &["start", "c1"]);
        step("delete running", &["delete", "c1"]);
        step("pause", &["pause", "c1"]);
        step("resume", &["resume", "c1"]);
        step("kill", &["kill", "c1", "KILL"]);
        support::wait_for(std::time::Duration::from_secs(10), "the container to stop", || {
            (state(&r, name, &bin, "c1").1["status"] == "stopped").then_some(())
        });
        step("after kill", &["state", "c1"]);
        step("kill stopped", &["kill", "c1", "KILL"]);
        step("delete", &["delete", "c1"]);
        step("delete gone", &["delete", "c1"]);
        step("delete --force gone", &["delete", "--force", "c1"]);
        seen.push(steps);
    }
    for (runc, mini) in seen[0].iter().zip(&seen[1]) {
        let (what, runc_code, runc_state) = runc;
        // The bundle paths differ: compare the rest.
        let strip = |v: &Value| {
            let mut v = v.clone();
            if let Some(o) = v.as_object_mut() {
                o.remove("bundle");
                o.remove("rootfs");
            }
            v
        };
        assert_eq!(
            (runc_code == &0, strip(runc_state)),
            (mini.1 == 0, strip(&mini.2)),
            "step `{what}`: runc vs mini-runc"
        );
    }
}

/// What a container sees of its spec, printed by busybox sh.
const PROBE: &str = r#"
echo "id: $(id)"
echo "hostname: $(hostname)"
echo "cwd: $(pwd)"
echo "umask: $(umask)"
echo "env: $FOO $PATH"
echo "nofile: $(ulimit -n)"
echo "rootfs: $(touch /written 2>&1 >/dev/null && echo writable || echo read-only)"
echo "readonly path: $(touch /etc/ro-test 2>&1 >/dev/null && echo writable || echo read-only)"
echo "masked file: [$(cat /etc/masked-file)]"
echo "masked dir: [$(ls /opt)]"
echo "tmpfs: $(grep ' /scratch ' /proc/mounts | cut -d' ' -f3,4 | cut -d, -f1-3)"
echo "bind ro: $(touch /data/x 2>&1 >/dev/null && echo writable || echo read-only) $(cat /data/hello)"
echo "sysctl: $(cat /proc/sys/net/ipv4/ip_forward)"
echo "caps: $(grep CapEff /proc/self/status)"
echo "nnp: $(grep NoNewPrivs /proc/self/status)"
echo "oom: $(cat /proc/self/oom_score_adj)"
echo "pid: $$"
echo "devices: $(ls /dev | tr '\n' ' ')"
echo "ambient: $(grep CapAmb /proc/self/status)"
echo "inheritable: $(grep CapInh /proc/self/status)"
echo "shm source: $(grep ' /dev/shm ' /proc/mounts | cut -d' ' -f1)"
echo "seccomp: $(grep '^Seccomp:' /proc/self/status)"
echo "denied by the profile: $(mkdir /tmp/denied 2>&1)"
echo "errno of the profile: $(rmdir /tmp 2>&1)"
exit 42
"#;

#[test]
fn the_container_sees_the_same_spec_under_runc_and_mini_runc() {
    let Some(r) = Runtimes::new("contract-probe") else { return };
    let cg = &r.cg;
    let data = tempfile::Builder::new().prefix("oci-data-").tempdir_in(support::scratch()).unwrap();
    std::fs::write(data.path().join("hello"), "from the host").unwrap();
    let mut outputs = Vec::new();
    for (name, bin) in r.each() {
        let mut b = Bundle::new(&["sh", "-c", PROBE], &format!("{cg}/{name}"));
        std::fs::write(b.path().join("rootfs/etc/masked-file"), "secret").unwrap();
        std::fs::create_dir_all(b.path().join("rootfs/opt/inside")).unwrap();
        std::fs::create_dir_all(b.path().join("rootfs/scratch")).unwrap();
        std::fs::create_dir_all(b.path().join("rootfs/data")).unwrap();
        let c = &mut b.config;
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 20], "umask": 63});
        c["process"]["cwd"] = json!("/tmp");
        c["process"]["env"] = json!(["PATH=/bin:/usr/bin", "FOO=bar"]);
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}]);
        c["process"]["noNewPrivileges"] = json!(true);
        c["process"]["oomScoreAdj"] = json!(123);
        c["process"]["capabilities"] = json!({
            "bounding": ["CAP_CHOWN", "CAP_KILL"], "effective": ["CAP_CHOWN"],
            "permitted": ["CAP_CHOWN", "CAP_KILL"], "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"]
        });
        // A deny-list profile: mkdir fails with EPERM (the default errno),
        // rmdir with ENOTEMPTY's number given as errnoRet.
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 39},
                {"names": ["no_such_syscall"], "action": "SCMP_ACT_KILL"}
            ]
        });
        c["hostname"] = json!("contract");
        c["root"]["readonly"] = json!(true);
        c["linux"]["maskedPaths"] = json!(["/etc/masked-file", "/opt", "/no/such/path"]);
        c["linux"]["readonlyPaths"] = json!(["/etc"]);
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]}));
        mounts.push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "noexec", "size=1m"]}));
        mounts.push(json!({"destination": "/data", "type": "bind", "source": data.path(), "options": ["rbind", "ro"]}));
        b.save();
        let (code, out, err) = r.call(name, &bin, &["run", "--bundle", b.path().to_str().unwrap(), "p1"]);
        outputs.push((code, out, err));
    }
    let (runc, mini) = (&outputs[0], &outputs[1]);
    assert_eq!(runc.0, 42, "runc ran the probe: {}", runc.2);
    assert_eq!(mini.0, 42, "mini-runc ran the probe: {}", mini.2);
    // What runc shows is what the spec asks (so equal lines mean honoured).
    for want in [
        "ambient: CapAmb:\t0000000000000020", // CAP_KILL
        "shm source: shm",
        "seccomp: Seccomp:\t2",
        "denied by the profile: mkdir: can't create directory '/tmp/denied': Operation not permitted",
        "errno of the profile: rmdir: '/tmp': Directory not empty",
    ] {
        assert!(runc.1.lines().any(|l| l == want), "runc shows {want:?}:\n{}", runc.1);
    }
    for (a, b) in runc.1.lines().zip(mini.1.lines()) {
        assert_eq!(a, b, "runc (left) and mini-runc (right) differ");
    }
    assert_eq!(runc.1.lines().count(), mini.1.lines().count(), "runc:\n{}\nmini-runc:\n{}", runc.1, mini.1);
}

/// What is wrong, how to make it so, and the field the error must name.
type BadCase = (&'static str, fn(&mut Value), &'static str);

#[test]
fn invalid_bundles_are_refused_by_both_with_one_line_naming_the_field() {
    let Some(r) = Runtimes::new("contract-bad") else { return };
    let cg = &r.cg;
    let cases: [BadCase; 4] = [
        ("no process args", |c| c["process"]["args"] = json!([]), "process.args"),
        ("a bad namespace type", |c| c["linux"]["namespaces"] = json!([{"type": "bogus"}]), "namespaces"),
        (
            "an unknown rlimit",
            |c| c["process"]["rlimits"] = json!([{"type": "RLIMIT_BOGUS", "hard": 1, "soft": 1}]),
            "rlimits",
        ),
        ("a missing root", |c| c["root"]["path"] = json!("no-such-rootfs"), "root.path"),
    ];
    for (what, edit, field) in cases {
        for (name, bin) in r.each() {
            let mut b = Bundle::new(&["true"], &format!("{cg}/{name}"));
            edit(&mut b.config);
            b.save();
            let (code, _, err) = r.call(name, &bin, &["create", "--bundle", b.path().to_str().unwrap(), "bad"]);
            assert_ne!(code, 0, "{name} accepted a bundle with {what}");
            let (_, list, _) = r.call(name, &bin, &["list", "-q"]);
            assert_eq!(list.trim(), "", "{name} left a container after refusing {what}");
            if name == "mini-runc" {
                assert_eq!(code, 1, "runc's exit code");
                let lines: Vec<&str> = err.lines().collect();
                assert_eq!(lines.len(), 1, "one line: {err}");
                assert!(lines[0].starts_with("mini-runc: ") && lines[0].contains(field), "names {field}: {err}");
            }
        }
    }
}

/// Docker's default profile (an allow-list of ~370 calls with argument
/// filters, as containerd and Podman pass it) under both runtimes: what
/// it allows works, what it denies fails the same way, in `run` and `exec`.
#[test]
fn dockers_default_seccomp_profile_allows_and_denies_the_same_calls_as_under_runc() {
    let Some(r) = Runtimes::new("contract-seccomp") else { return };
    let profile: Value =
        serde_json::from_str(include_str!("../src/runtime/seccomp/testdata/docker-default-seccomp.json")).unwrap();
    let probe = r#"
echo "seccomp: $(grep '^Seccomp:' /proc/self/status)"
echo "allowed: $(mkdir /dev/shm/d && rmdir /dev/shm/d && echo ok)"
echo "unshare: $(unshare -m true 2>&1; echo rc=$?)"
echo "mount: $(mount -t tmpfs none /mnt 2>&1; echo rc=$?)"
echo "personality: $(linux32 true 2>&1; echo rc=$?)"
exit 3
"#;
    let mut outputs = Vec::new();
    for (name, bin) in r.each() {
        let mut b = Bundle::new(&["sh", "-c", probe], &format!("{}/{name}", r.cg));
        std::fs::create_dir_all(b.path().join("rootfs/mnt")).unwrap();
        b.config["linux"]["seccomp"] = profile.clone();
        b.save();
        let run = r.call(name, &bin, &["run", "--bundle", b.path().to_str().unwrap(), "s1"]);
        assert_eq!(run.0, 3, "{name} ran the probe: {}", run.2);
        // exec'd processes get the container's profile too.
        b.config["process"]["args"] = json!(["sleep", "60"]);
        b.save();
        let bundle = b.path().to_str().unwrap();
        let (code, _, err) = r.call(name, &bin, &["run", "--detach", "--bundle", bundle, "s2"]);
        assert_eq!(code, 0, "{name} run --detach: {err}");
        let exec = r.call(name, &bin, &["exec", "s2", "sh", "-c", probe]);
        r.call(name, &bin, &["delete", "--force", "s2"]);
        outputs.push((run, exec));
    }
    let ((runc_run, runc_exec), (mini_run, mini_exec)) = (&outputs[0], &outputs[1]);
    assert!(runc_run.1.contains("seccomp: Seccomp:\t2"), "runc loaded a filter: {}", runc_run.1);
    assert!(runc_run.1.contains("allowed: ok"), "{}", runc_run.1);
    assert!(runc_run.1.contains("unshare: ") && !runc_run.1.contains("unshare: rc=0"), "{}", runc_run.1);
    assert_eq!(runc_run.1, mini_run.1, "run: runc (left) and mini-runc (right) differ");
    assert_eq!(runc_exec.0, mini_exec.0, "exec exit codes: {} / {}", runc_exec.2, mini_exec.2);
    assert_eq!(runc_exec.1, mini_exec.1, "exec: runc (left) and mini-runc (right) differ");
}
