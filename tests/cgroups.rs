//! cgroups on this host as a user meets them: limit files, OOM, fork
//! bombs, CPU quota, placement beneath the caller's own cgroup, cleanup,
//! bad flags. Needs root and the fixture registry (fixtures/up.sh).
//!
//! Every container's cgroups lie beneath this test process's own cgroups
//! (`<own>/mini/<id>` or a per-test `--cgroup-parent`), and the guards
//! below let a container finish and remove what it left even when an
//! assertion fails.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::{wait_for, Mini, IMAGE};

/// (mount point, this process's path in it) for each v1 hierarchy.
fn own_cgroups() -> Vec<(PathBuf, String)> {
    let cg = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut out = Vec::new();
    for line in mi.lines().filter(|l| l.contains(" - cgroup cgroup ")) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let opts = f.last().unwrap();
        for c in cg.lines() {
            let mut p = c.splitn(3, ':');
            let (_, ctls, path) = (p.next().unwrap(), p.next().unwrap(), p.next().unwrap());
            if !ctls.is_empty() && ctls.split(',').all(|x| opts.split(',').any(|o| o == x)) {
                out.push((PathBuf::from(f[4]), path.trim_start_matches('/').to_string()));
            }
        }
    }
    out
}

/// A container started in the background that waits for `release` before
/// it exits; dropping the guard releases it, waits, and removes any cgroup
/// dir it recorded, so a failed assertion leaves nothing behind.
struct Held<'a> {
    m: &'a Mini,
    child: Option<Child>,
    sync: PathBuf,
    cgroups: Vec<PathBuf>,
}

impl<'a> Held<'a> {
    fn start(m: &'a Mini, name: &str, flags: &[&str]) -> Held<'a> {
        let sync = m.root.parent().unwrap().join(format!("sync-{name}"));
        std::fs::create_dir_all(&sync).unwrap();
        let vol = format!("{}:/sync", sync.display());
        let mut args = vec!["run", "--name", name, "-v", &vol];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[IMAGE, "sh", "-c", "while [ ! -e /sync/go ]; do sleep 0.02; done"]);
        let child = m.cmd(&args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let mut held = Held { m, child: Some(child), sync, cgroups: Vec::new() };
        held.cgroups = held.wait_running(name);
        held
    }

    /// The container's cgroup dirs, once it runs (from its record).
    fn wait_running(&mut self, name: &str) -> Vec<PathBuf> {
        let (m, child) = (self.m, self.child.as_mut().unwrap());
        wait_for(Duration::from_secs(10), &format!("container {name} to start"), || {
            let out = m.cmd(&["ps", "-q"]).output().unwrap();
            if !out.stdout.is_empty() {
                for id in m.containers() {
                    let cfg = m.root.join("containers").join(&id).join("config.json");
                    let Ok(text) = std::fs::read_to_string(cfg) else { continue };
                    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                    if v["name"] == name {
                        return Some(m.cgroups_of(&id));
                    }
                }
            }
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                use std::io::Read;
                let _ = child.stderr.take().unwrap().read_to_string(&mut err);
                panic!("container {name} ended early ({status}): {err}");
            }
            None
        })
    }

    /// Let it exit; its exit status.
    fn release(&mut self) -> i32 {
        let _ = std::fs::write(self.sync.join("go"), "");
        self.child.take().map(|mut c| c.wait().unwrap().code().unwrap_or(-1)).unwrap_or(-1)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.release();
        for d in &self.cgroups {
            let _ = std::fs::remove_dir(d);
        }
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display())).trim().to_string()
}

/// The recorded dir of the hierarchy mounted at `.../<name>`.
fn dir_of<'a>(dirs: &'a [PathBuf], mount: &str) -> &'a Path {
    dirs.iter()
        .find(|d| d.starts_with(Path::new("/sys/fs/cgroup").join(mount)))
        .unwrap_or_else(|| panic!("no {mount} cgroup in {dirs:?}"))
}

#[test]
fn limit_files_hold_the_values_and_the_cgroups_sit_beneath_ours_and_go_away() {
    let Some(m) = Mini::new() else { return };
    let flags = [
        "--memory",
        "64m",
        "--memory-reservation",
        "32m",
        "--cpus",
        "0.5",
        "--cpu-shares",
        "512",
        "--pids-limit",
        "100",
        "--cpuset-cpus",
        "0",
    ];
    let mut held = Held::start(&m, "limits", &flags);
    let dirs = held.cgroups.clone();
    let own = own_cgroups();
    for d in &dirs {
        assert!(d.is_dir(), "{} missing", d.display());
        let (mount, path) = own.iter().find(|(mount, _)| d.starts_with(mount)).expect("a known hierarchy");
        let expected_parent = mount.join(path).join("mini");
        assert_eq!(d.parent().unwrap(), expected_parent, "not beneath this test's own cgroup");
        // The container's first process joined it.
        assert!(!read(&d.join("tasks")).is_empty(), "{} has no tasks", d.display());
    }
    let mem = dir_of(&dirs, "memory");
    assert_eq!(read(&mem.join("memory.limit_in_bytes")), (64u64 << 20).to_string());
    assert_eq!(read(&mem.join("memory.soft_limit_in_bytes")), (32u64 << 20).to_string());
    if mem.join("memory.memsw.limit_in_bytes").exists() {
        assert_eq!(read(&mem.join("memory.memsw.limit_in_bytes")), (128u64 << 20).to_string());
    }
    let cpu = dir_of(&dirs, "cpu");
    assert_eq!(read(&cpu.join("cpu.cfs_quota_us")), "50000");
    assert_eq!(read(&cpu.join("cpu.cfs_period_us")), "100000");
    assert_eq!(read(&cpu.join("cpu.shares")), "512");
    assert_eq!(read(&dir_of(&dirs, "cpuset").join("cpuset.cpus")), "0");
    assert_eq!(read(&dir_of(&dirs, "pids").join("pids.max")), "100");
    let devices = read(&dir_of(&dirs, "devices").join("devices.list"));
    assert!(devices.contains("c 1:3 rwm") && !devices.contains("a *:* rwm"), "{devices}");

    // stats sees it, with its limit.
    let out = m.cmd(&["stats", "--no-stream", "--format", "json", "limits"]).output().unwrap();
    let line = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert!(v["MemUsage"].as_str().unwrap().ends_with("/ 64MiB"), "{v}");

    assert_eq!(held.release(), 0);
    for d in &dirs {
        assert!(!d.exists(), "{} left after exit", d.display());
    }
    let out = m.run(&["rm", "limits"]);
    assert!(out.status.success());
}

#[test]
fn the_container_sees_its_own_cgroups_read_only() {
    let Some(m) = Mini::new() else { return };
    let script = "cat /proc/self/cgroup | grep -c ':/$'; cat /sys/fs/cgroup/pids/pids.max; \
                  mkdir /sys/fs/cgroup/pids/x 2>/dev/null || echo refused; cat /dev/null && echo null-ok";
    let (code, out, err) = m.run_in(&["--pids-limit", "50"], &["sh", "-c", script]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].parse::<u32>().unwrap() >= 5, "cgroup namespace not rooted at the container: {out}");
    assert_eq!(&lines[1..], ["50", "refused", "null-ok"]);
}

#[test]
fn a_memory_hog_is_oom_killed_and_recorded() {
    let Some(m) = Mini::new() else { return };
    let out =
        m.run(&["run", "--name", "hog", "--memory", "16m", IMAGE, "sh", "-c", "x=a; while true; do x=$x$x; done"]);
    assert_eq!(out.status.code(), Some(137), "{}", String::from_utf8_lossy(&out.stderr));
    let id = m.containers().pop().unwrap();
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.root.join("containers").join(&id).join("state.json")).unwrap())
            .unwrap();
    assert_eq!(state["oom_killed"], true, "{state}");
    assert_eq!(state["exit_code"], 137);
    let ps = String::from_utf8_lossy(&m.run(&["ps", "-a"]).stdout).to_string();
    assert!(ps.contains("Exited (137)"), "{ps}");
    // A container that merely exits 137 is not OOMKilled.
    let out = m.run(&["run", "--name", "selfkill", "--memory", "16m", "--init", IMAGE, "sh", "-c", "kill -9 $$"]);
    assert_eq!(out.status.code(), Some(137));
    let id2 = m.containers().into_iter().find(|c| *c != id).unwrap();
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.root.join("containers").join(&id2).join("state.json")).unwrap())
            .unwrap();
    assert_eq!(state["oom_killed"], false, "{state}");
    // The host is fine.
    assert!(std::process::Command::new("true").status().unwrap().success());
}

#[test]
fn a_fork_loop_hits_the_pids_limit_and_the_host_is_fine() {
    let Some(m) = Mini::new() else { return };
    // busybox sh gives up on the first failed fork: exit 2, "can't fork".
    let script = "i=0; while [ $i -lt 40 ]; do sleep 5 & echo $i; i=$((i+1)); done";
    let (code, out, err) = m.run_in(&["--pids-limit", "16"], &["sh", "-c", script]);
    assert_ne!(code, 0, "40 forks under --pids-limit 16: {out}");
    assert!(err.contains("can't fork"), "no fork failure: {err}");
    assert_eq!(out.lines().count(), 15, "sh plus 15 sleeps fit in 16 pids: {out}");
    assert!(std::process::Command::new("true").status().unwrap().success());
}

#[test]
fn cpus_half_caps_a_busy_loop_at_about_half_a_cpu() {
    let Some(m) = Mini::new() else { return };
    // CPU time from cpuacct over wall time from /proc/uptime, both inside.
    let script = "read a _ < /proc/uptime; timeout 2 sh -c 'while :; do :; done'; read b _ < /proc/uptime; \
                  echo $a $b $(cat /sys/fs/cgroup/cpuacct/cpuacct.usage)";
    let (code, out, err) = m.run_in(&["--cpus", "0.5"], &["sh", "-c", script]);
    assert_eq!(code, 0, "{err}");
    let f: Vec<f64> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
    let ratio = f[2] / 1e9 / (f[1] - f[0]);
    assert!((0.3..0.65).contains(&ratio), "a busy loop used {ratio:.2} CPUs under --cpus 0.5");
}

#[test]
fn bad_resource_flags_fail_with_one_line_and_leave_no_cgroup() {
    let Some(m) = Mini::new() else { return };
    let parent = format!("mini-test-bad-{}", std::process::id());
    let cpus = std::thread::available_parallelism().unwrap().get();
    let over = (cpus + 1).to_string();
    let cases: [(&[&str], &str); 10] = [
        (&["--memory", "abc"], "invalid --memory \"abc\""),
        (&["--memory", "-1"], "invalid --memory \"-1\""),
        (&["--memory", "1m"], "Minimum memory limit allowed is 6MB"),
        (&["--memory-swap", "1g"], "invalid --memory-swap \"1g\""),
        (&["--cpus", "0"], "invalid --cpus \"0\""),
        (&["--cpus", &over], "invalid --cpus"),
        (&["--cpuset-cpus", "0-99"], "invalid --cpuset-cpus \"0-99\""),
        (&["--pids-limit", "lots"], "invalid --pids-limit \"lots\""),
        (&["--cpu-weight", "0"], "invalid --cpu-weight \"0\""),
        (&["--cgroup-parent", "a/../../.."], "invalid --cgroup-parent"),
    ];
    for (flags, want) in cases {
        let mut args = vec!["run", "--rm"];
        if flags[0] != "--cgroup-parent" {
            args.extend_from_slice(&["--cgroup-parent", &parent]);
        }
        args.extend_from_slice(flags);
        args.extend_from_slice(&[IMAGE, "true"]);
        let out = m.run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{flags:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{flags:?}: {err}");
        assert!(err.contains(want), "{flags:?}: {err}");
    }
    // A parent mini cannot create (a cgroup file, not a directory).
    let out = m.run(&["run", "--rm", "--cgroup-parent", "cgroup.procs", IMAGE, "true"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.starts_with("mini: invalid --cgroup-parent \"cgroup.procs\": create cgroup "), "{err}");
    assert_eq!(err.lines().count(), 1);
    // The config file's cgroup-parent is held to the same standard.
    let config = m.root.parent().unwrap().join("config.toml");
    std::fs::write(&config, format!("{}cgroup-parent = \"cgroup.procs\"\n", support::mini::CONFIG)).unwrap();
    let out = m.run(&["--config", config.to_str().unwrap(), "run", "--rm", IMAGE, "true"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.starts_with("mini: invalid cgroup-parent \"cgroup.procs\" (config file): create cgroup "), "{err}");
    for (mount, own) in own_cgroups() {
        assert!(!mount.join(&own).join(&parent).exists(), "cgroup left in {}", mount.display());
    }
    assert!(m.containers().is_empty());
}

#[test]
fn a_cgroup_parent_relative_to_ours_is_used_and_removed() {
    let Some(m) = Mini::new() else { return };
    let parent = format!("mini-test-parent-{}/inner", std::process::id());
    let mut held = Held::start(&m, "parented", &["--cgroup-parent", &parent]);
    let own = own_cgroups();
    for d in &held.cgroups {
        let (mount, path) = own.iter().find(|(mount, _)| d.starts_with(mount)).unwrap();
        assert_eq!(d.parent().unwrap(), mount.join(path).join(&parent));
    }
    assert_eq!(held.release(), 0);
    for (mount, path) in own {
        let top = mount.join(path).join(format!("mini-test-parent-{}", std::process::id()));
        assert!(!top.exists(), "{} left behind", top.display());
    }
}

#[test]
fn a_crashed_minis_cgroups_are_swept_by_the_next_command() {
    let Some(m) = Mini::new() else { return };
    let held = Held::start(&m, "crashed", &[]);
    let dirs = held.cgroups.clone();
    // Kill mini itself (the container dies with it: parent-death signal).
    let mut held = held;
    let mut child = held.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let busy = |d: &PathBuf| std::fs::read_to_string(d.join("tasks")).map(|t| !t.is_empty()).unwrap_or(false);
    wait_for(Duration::from_secs(5), "the container to die with mini", || (!dirs.iter().any(busy)).then_some(()));
    assert!(dirs.iter().all(|d| d.exists()));
    let out = m.run(&["ps", "-a"]);
    assert!(out.status.success());
    for d in &dirs {
        assert!(!d.exists(), "{} not swept", d.display());
    }
}

#[test]
fn streaming_stats_redraw_until_the_containers_exit() {
    let Some(m) = Mini::new() else { return };
    let mut held = Held::start(&m, "streamed", &["--memory", "32m"]);
    let stats = m.cmd(&["stats", "streamed"]).stdout(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(held.release(), 0);
    let start = Instant::now();
    let out = stats.wait_with_output().unwrap();
    assert!(start.elapsed() < Duration::from_secs(5), "stats kept streaming after the container exited");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("\x1b[2J") && text.contains("streamed") && text.contains("/ 32MiB"), "{text}");
}

#[test]
fn a_read_only_cgroupfs_means_no_cgroups_without_limits_and_an_error_with_them() {
    let Some(m) = Mini::new() else { return };
    // As inside another container: the cgroupfs mounted read-only (in a
    // private mount namespace, so the host's mounts stay as they are).
    let mini = env!("CARGO_BIN_EXE_mini");
    let script = format!(
        "for h in /sys/fs/cgroup/*/; do mount -o remount,ro,bind $h || exit 99; done; \
         {mini} run --rm --network none {IMAGE} sh -c 'echo ran; ls /sys/fs/cgroup | wc -l'; echo rc=$?; \
         {mini} run --rm --network none --memory 64m {IMAGE} true; echo rc=$?"
    );
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env("MINI_ROOT", &m.root)
        .env_remove("MINI_CONFIG")
        .stdin(Stdio::null());
    m.ns().enter(&mut cmd);
    let out = cmd.output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout, "ran\n0\nrc=0\nrc=125\n", "{stderr}");
    assert!(stderr.starts_with("mini: create cgroup ") && stderr.contains("Read-only file system"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(m.containers().is_empty());
}

#[test]
fn update_changes_a_running_containers_limits_and_its_record() {
    let Some(m) = Mini::new() else { return };
    let held = Held::start(&m, "upd", &["--memory", "64m", "--pids-limit", "100"]);
    let mem = dir_of(&held.cgroups, "memory").to_path_buf();
    let pids = dir_of(&held.cgroups, "pids").to_path_buf();
    let update = |args: &[&str]| {
        let mut all = vec!["update"];
        all.extend_from_slice(args);
        let o = m.cmd(&all).output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, out, err) =
        update(&["--memory", "128m", "--memory-swap", "256m", "--pids-limit", "50", "--cpus", "0.5", "upd"]);
    assert_eq!((code, out.as_str()), (0, "upd\n"), "{err}");
    assert_eq!(read(&mem.join("memory.limit_in_bytes")), (128u64 << 20).to_string());
    assert_eq!(read(&pids.join("pids.max")), "50");
    let cpu = dir_of(&held.cgroups, "cpu");
    assert_eq!(read(&cpu.join("cpu.cfs_quota_us")), "50000");
    // Kept for the next start, with what was not changed.
    let inspect = m.cmd(&["inspect", "-f", "{{json .HostConfig}}", "upd"]).output().unwrap();
    let host: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!((host["Memory"].as_u64(), host["PidsLimit"].as_i64()), (Some(128 << 20), Some(50)), "{host}");

    // Bad input changes nothing.
    for (args, start) in [
        (&["--memory", "1k", "upd"][..], "mini: invalid --memory \"1k\""),
        (&["--restart", "bogus", "upd"][..], "mini: invalid --restart \"bogus\""),
        (&["upd"][..], "mini: update: nothing to change"),
        (&["--cgroup-parent", "elsewhere", "upd"][..], "mini: invalid --cgroup-parent \"elsewhere\""),
        (&["--memory", "96m", "nosuch"][..], "mini: update nosuch: no such container"),
    ] {
        let (code, _, err) = update(args);
        assert_eq!(code, 125, "{args:?}: {err}");
        assert!(err.starts_with(start) && err.trim_end().lines().count() == 1, "{args:?}: {err}");
    }
    assert_eq!(read(&mem.join("memory.limit_in_bytes")), (128u64 << 20).to_string());
    let (code, _, err) = update(&["--restart", "on-failure:3", "upd"]);
    assert_eq!(code, 0, "{err}");
    let policy = m.cmd(&["inspect", "-f", "{{json .HostConfig.RestartPolicy}}", "upd"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&policy.stdout).contains("on-failure"),
        "{}",
        String::from_utf8_lossy(&policy.stdout)
    );
    drop(held);

    let o = m.cmd(&["run", "-d", "--rm", "--name", "updrm", IMAGE, "sleep", "30"]).output().unwrap();
    assert!(o.status.success());
    let (code, _, err) = update(&["--restart", "always", "updrm"]);
    let _ = m.cmd(&["rm", "-f", "updrm"]).output();
    assert_eq!(code, 125);
    assert!(err.contains("a --rm container cannot get a restart policy"), "{err}");
}
