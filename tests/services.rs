//! Long-running services, as Docker runs them: restart policies carried
//! out by the monitor (back-off, count, `stop`/`kill` end them), and
//! `pause`/`unpause` through the cgroup freezer.

mod support;

use std::time::Duration;

use support::life::{assert_refused, Life, IMAGE};
use support::wait_for;

fn inspect(l: &Life, id: &str) -> serde_json::Value {
    let (code, out, err) = l.mini(&["inspect", id]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v[0].clone()
}

fn log_lines(l: &Life, id: &str) -> Vec<String> {
    let (_, out, _) = l.mini(&["logs", id]);
    out.lines().map(str::to_string).collect()
}

/// The container's exit recorded and no monitor left waiting to restart.
fn settled(l: &Life, id: &str) -> bool {
    let s = l.state(id);
    s["status"] == "exited" && s["restarting"].is_null() && s["monitor_pid"].is_null()
}

#[test]
fn on_failure_restarts_up_to_n_times_with_a_growing_backoff() {
    let Some(l) = Life::new() else { return };
    let start = std::time::Instant::now();
    let id = l.detach(&["--restart", "on-failure:2"], &["sh", "-c", "cut -d' ' -f1 /proc/uptime; exit 3"]);
    l.until("three runs", || settled(&l, &id));
    let v = inspect(&l, &id);
    assert_eq!(v["RestartCount"], 2, "{v}");
    assert_eq!(v["State"]["ExitCode"], 3);
    assert_eq!(v["HostConfig"]["RestartPolicy"], serde_json::json!({"Name": "on-failure", "MaximumRetryCount": 2}));
    // Uptime in seconds (10 ms steps) at the start of each run.
    let runs: Vec<f64> = log_lines(&l, &id).iter().map(|t| t.parse().unwrap()).collect();
    assert_eq!(runs.len(), 3, "{runs:?}");
    // Docker's back-off: 100 ms, then 200 ms.
    let gaps: Vec<f64> = runs.windows(2).map(|w| (w[1] - w[0]) * 1000.0).collect();
    assert!(gaps[0] >= 90.0 && gaps[1] >= 190.0 && gaps[1] > gaps[0], "{gaps:?} ms");
    assert!(start.elapsed() < Duration::from_secs(5));
    // A success is not restarted by on-failure.
    let ok = l.detach(&["--restart", "on-failure"], &["true"]);
    l.until("exit", || settled(&l, &ok));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!((inspect(&l, &ok)["RestartCount"].clone(), l.status(&ok)), (0.into(), "exited".to_string()));
}

#[test]
fn always_restarts_a_dead_process_until_stop_or_kill_ends_it() {
    let Some(l) = Life::new() else { return };
    let id = l.detach(&["--restart", "always"], &["sleep", "1000"]);
    // The process dying by itself (here: killed from the host by pid) is
    // restarted; a new pid runs.
    let first = l.state(&id)["pid"].as_i64().unwrap();
    // SAFETY: kill by pid a process this test started.
    unsafe { libc::kill(first as i32, libc::SIGKILL) };
    let second = wait_for(Duration::from_secs(10), "a restart", || {
        let s = l.state(&id);
        s["pid"].as_i64().filter(|p| *p != first && s["status"] == "running")
    });
    assert_eq!(inspect(&l, &id)["RestartCount"], 1);
    let (code, ps, _) = l.mini(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(code == 0 && ps.contains(" Up "), "{ps}");
    // `mini kill` ends it on purpose: no restart.
    let (code, _, err) = l.mini(&["kill", &id]);
    assert_eq!(code, 0, "{err}");
    l.until("the kill recorded", || settled(&l, &id));
    std::thread::sleep(Duration::from_millis(500));
    assert!(settled(&l, &id), "restarted after kill: {}", l.state(&id));
    assert_eq!(l.state(&id)["exit_code"], 137);
    // `start` runs it again under the policy, with the count reset;
    // `stop` ends it for good.
    let (code, _, err) = l.mini(&["start", &id]);
    assert_eq!(code, 0, "{err}");
    assert_ne!(l.state(&id)["pid"].as_i64(), Some(second));
    assert_eq!(inspect(&l, &id)["RestartCount"], 0);
    let (code, _, err) = l.mini(&["stop", "-t", "0", &id]);
    assert_eq!(code, 0, "{err}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(settled(&l, &id), "restarted after stop: {}", l.state(&id));
    assert!(l.cgroups().iter().all(|d| !d.exists()), "cgroups left: {:?}", l.cgroups());
}

#[test]
fn a_crash_looping_container_shows_restarting_and_stop_ends_the_wait() {
    let Some(l) = Life::new() else { return };
    let id = l.detach(&["--name", "looper", "--restart", "unless-stopped"], &["sh", "-c", "exit 1"]);
    // 100, 200, 400, 800, 1600 ms: the waits grow long enough to see.
    let ps = wait_for(Duration::from_secs(15), "Restarting in ps", || {
        let (_, out, _) = l.mini(&["ps", "--format", "{{.Names}} {{.State}} {{.Status}}"]);
        out.lines().find(|r| r.starts_with("looper restarting Restarting (1) ")).map(str::to_string)
    });
    assert!(ps.ends_with("ago"), "{ps}");
    let v = inspect(&l, "looper");
    assert_eq!((v["State"]["Status"].as_str(), v["State"]["Restarting"].as_bool()), (Some("restarting"), Some(true)));
    // rm refuses it as Docker does; stop ends the waiting monitor at once.
    assert_refused(l.mini(&["rm", "looper"]), "container is restarting");
    let monitor = l.state(&id)["monitor_pid"].as_i64().unwrap();
    let t = std::time::Instant::now();
    let (code, _, err) = l.mini(&["stop", "looper"]);
    assert_eq!(code, 0, "{err}");
    assert!(t.elapsed() < Duration::from_secs(3), "stop took {:?}", t.elapsed());
    assert!(settled(&l, &id), "{}", l.state(&id));
    let gone = || {
        let stat = std::fs::read_to_string(format!("/proc/{monitor}/stat")).unwrap_or_default();
        (stat.is_empty() || stat.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z'))).then_some(())
    };
    assert!(support::poll_until(Duration::from_secs(2), gone).is_some(), "the monitor outlived stop");
    let (code, out, _) = l.mini(&["ps", "-q"]);
    assert_eq!((code, out.as_str()), (0, ""));
}

#[test]
fn bad_restart_policies_are_refused_and_leave_nothing() {
    let Some(l) = Life::new() else { return };
    for (flags, needle) in [
        (vec!["--restart", "bogus"], "invalid --restart \"bogus\": unknown policy"),
        (vec!["--restart", "on-failure:x"], "maximum retry count must be an integer"),
        (vec!["--restart", "always:3"], "only be used with on-failure"),
        (vec!["--rm", "--restart", "always"], "Conflicting options: --restart and --rm"),
    ] {
        for verb in [&["run", "-d"][..], &["create"][..]] {
            let mut args: Vec<&str> = verb.to_vec();
            args.extend(&flags);
            args.extend([IMAGE, "true"]);
            assert_refused(l.mini(&args), needle);
        }
    }
    assert!(l.m.containers().is_empty());
    // `--restart no` is the default, and `--rm` goes with it.
    let (code, _, err) = l.mini(&["run", "--rm", "--restart", "no", IMAGE, "true"]);
    assert_eq!(code, 0, "{err}");
    assert!(l.m.containers().is_empty());
}

#[test]
fn pause_freezes_the_container_until_unpause_and_stop_still_ends_it() {
    let Some(l) = Life::new() else { return };
    let id = l.detach(&["--name", "ticker"], &["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i; sleep 0.02; done"]);
    l.until("output", || !log_lines(&l, &id).is_empty());
    let (code, out, err) = l.mini(&["pause", "ticker"]);
    assert_eq!((code, out.as_str()), (0, "ticker\n"), "{err}");
    // The cgroup's freezer says frozen (v1 freezer.state here, v2 cgroup.freeze elsewhere).
    let frozen = l.m.cgroups_of(&id).iter().any(|d| {
        std::fs::read_to_string(d.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
            || std::fs::read_to_string(d.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
    });
    assert!(frozen, "no frozen cgroup among {:?}", l.m.cgroups_of(&id));
    std::thread::sleep(Duration::from_millis(100));
    let before = log_lines(&l, &id).len();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(log_lines(&l, &id).len(), before, "output while paused");
    let (_, ps, _) = l.mini(&["ps", "-f", "status=paused", "--format", "{{.Names}} {{.State}} {{.Status}}"]);
    assert!(ps.starts_with("ticker paused Up ") && ps.trim_end().ends_with("(Paused)"), "{ps}");
    let v = inspect(&l, "ticker");
    assert_eq!((v["State"]["Status"].as_str(), v["State"]["Paused"].as_bool()), (Some("paused"), Some(true)));
    // Docker's refusals while paused, and for what is not paused.
    assert_refused(l.mini(&["pause", "ticker"]), "pause ticker: container is already paused");
    assert_refused(l.mini(&["exec", "ticker", "true"]), "container is paused");
    let (code, _, err) = l.mini(&["unpause", "ticker"]);
    assert_eq!(code, 0, "{err}");
    l.until("output again", || log_lines(&l, &id).len() > before + 2);
    assert_refused(l.mini(&["unpause", "ticker"]), "unpause ticker: container is not paused");
    let (code, out, _) = l.mini(&["exec", "ticker", "echo", "in"]);
    assert_eq!((code, out.as_str()), (0, "in\n"));
    // A paused container still stops (thawed after the signal, as Docker).
    assert_eq!(l.mini(&["pause", "ticker"]).0, 0);
    let t = std::time::Instant::now();
    let (code, _, err) = l.mini(&["stop", "-t", "1", "ticker"]);
    assert_eq!(code, 0, "{err}");
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!((l.status(&id), l.state(&id)["paused"].is_null()), ("exited".to_string(), true));
    assert!(l.cgroups().iter().all(|d| !d.exists()), "cgroups left: {:?}", l.cgroups());
    assert_refused(l.mini(&["pause", "ticker"]), "pause ticker: container is not running");
    assert_refused(l.mini(&["pause", "nosuch"]), "no such container");
    // rm -f of a paused container removes it and its cgroups.
    let id = l.detach(&["--name", "frozen"], &["sleep", "1000"]);
    let cgroups = l.m.cgroups_of(&id);
    assert_eq!(l.mini(&["pause", "frozen"]).0, 0);
    let (code, _, err) = l.mini(&["rm", "-f", "frozen"]);
    assert_eq!(code, 0, "{err}");
    assert!(!l.m.containers().contains(&id));
    assert!(cgroups.iter().all(|d| !d.exists()), "cgroups left: {cgroups:?}");
}

#[test]
fn logs_rotate_at_max_size_keep_max_file_files_and_read_across_them() {
    let Some(l) = Life::new() else { return };
    let script = "i=0; while [ $i -lt 300 ]; do echo line $i; i=$((i+1)); done";
    let id = l.detach(&["--log-opt", "max-size=2k", "--log-opt", "max-file=3"], &["sh", "-c", script]);
    l.until("exit", || settled(&l, &id));
    let dir = l.m.root.join("containers").join(&id);
    for f in ["log", "log.1", "log.2"] {
        let len = std::fs::metadata(dir.join(f)).map(|m| m.len()).unwrap_or(0);
        assert!(len > 0 && len < 2048 + 512, "{f}: {len} bytes");
    }
    assert!(!dir.join("log.3").exists(), "at most max-file files");
    let lines = log_lines(&l, &id);
    let nums: Vec<u32> = lines.iter().map(|x| x.strip_prefix("line ").unwrap().parse().unwrap()).collect();
    assert_eq!(nums.last(), Some(&299));
    assert!(nums.len() < 300 && nums.windows(2).all(|w| w[1] == w[0] + 1), "{nums:?}");
    let v = inspect(&l, &id);
    assert_eq!(v["HostConfig"]["LogConfig"]["Config"]["max-file"], "3");

    // --log-driver none: nothing written, and logs says why.
    let quiet = l.detach(&["--log-driver", "none"], &["echo", "unseen"]);
    l.until("exit", || settled(&l, &quiet));
    assert!(!l.m.root.join("containers").join(&quiet).join("log").exists());
    assert_refused(l.mini(&["logs", &quiet]), "configured logging driver does not support reading");
    let before = l.m.containers().len();
    for (flags, needle) in [
        (vec!["--log-driver", "syslog"], "invalid --log-driver \"syslog\""),
        (vec!["--log-opt", "max-size=lots"], "invalid --log-opt \"max-size=lots\""),
        (vec!["--log-opt", "max-file=2"], "max-file needs max-size"),
        (vec!["--log-opt", "labels=x"], "unknown log opt"),
    ] {
        let mut args = vec!["run", "-d"];
        args.extend(&flags);
        args.extend([IMAGE, "true"]);
        assert_refused(l.mini(&args), needle);
    }
    assert_eq!(l.m.containers().len(), before);
}

#[test]
fn a_foreground_run_logs_its_output_but_not_its_stdin() {
    let Some(l) = Life::new() else { return };
    let (code, out, err) = l.mini(&["run", "--name", "fg", IMAGE, "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!((code, out.as_str(), err.as_str()), (3, "out\n", "err\n"));
    let (code, out, err) = l.mini(&["logs", "fg"]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "out\n", "err\n"));
    // Piped stdin reaches the command and is not logged; its output is.
    let mut child =
        l.m.cmd(&["run", "-i", "--name", "fgi", IMAGE, "sh", "-c", "read x; echo got ${#x}"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"secret\n").unwrap();
    let (code, out) = support::life::finish(child, 20);
    assert_eq!((code, out.as_str()), (Some(0), "got 6\n"));
    let (_, logged, _) = l.mini(&["logs", "fgi"]);
    assert_eq!(logged, "got 6\n");
    let id = inspect(&l, "fgi")["Id"].as_str().unwrap().to_string();
    let raw = std::fs::read_to_string(l.m.root.join("containers").join(id).join("log")).unwrap();
    assert!(raw.contains("got 6") && !raw.contains("secret"), "{raw}");
    // --rm keeps no log (it goes with the container).
    let (code, out, _) = l.mini(&["run", "--rm", IMAGE, "echo", "gone"]);
    assert_eq!((code, out.as_str()), (0, "gone\n"));
    // -t: what the terminal showed, as stdout lines ending in \r\n (as Docker's).
    let pty = support::pty::Pty::open(24, 80);
    let mut cmd = l.m.cmd(&["run", "-t", "--name", "fgt", IMAGE, "sh", "-c", "echo on-tty"]);
    pty.attach(&mut cmd);
    let status = cmd.spawn().unwrap().wait().unwrap();
    drop(cmd);
    assert_eq!(status.code(), Some(0));
    assert!(pty.output().contains("on-tty"));
    let id = inspect(&l, "fgt")["Id"].as_str().unwrap().to_string();
    let raw = std::fs::read_to_string(l.m.root.join("containers").join(id).join("log")).unwrap();
    assert!(raw.contains(r#""log":"on-tty\r\n","stream":"stdout""#), "{raw}");
}

#[test]
fn system_boot_starts_always_and_unless_stopped_containers_that_were_not_stopped() {
    let Some(l) = Life::new() else { return };
    let always = l.detach(&["--name", "always", "--restart", "always"], &["sleep", "1000"]);
    let stopped = l.detach(&["--name", "stopped", "--restart", "unless-stopped"], &["sleep", "1000"]);
    let crashed = l.detach(&["--name", "crashed", "--restart", "unless-stopped"], &["sleep", "1000"]);
    let plain = l.detach(&["--name", "plain"], &["sleep", "1000"]);
    for name in ["always", "stopped"] {
        assert_eq!(l.mini(&["stop", "-t", "0", name]).0, 0);
    }
    // The machine goes down: every monitor and container dies at once.
    for id in [&crashed, &plain] {
        let s = l.state(id);
        for key in ["pid", "monitor_pid"] {
            // SAFETY: kill by pid of processes this test started.
            unsafe { libc::kill(s[key].as_i64().unwrap() as i32, libc::SIGKILL) };
        }
    }
    l.until("the monitors gone", || l.mini(&["ps", "-q"]).1.is_empty());
    let (code, out, err) = l.mini(&["system", "boot"]);
    assert_eq!(code, 0, "{err}");
    let mut started: Vec<&str> = out.lines().collect();
    started.sort();
    let mut want = vec![always.as_str(), crashed.as_str()];
    want.sort();
    assert_eq!(started, want, "always (even after a stop, as Docker) and the unless-stopped that was not stopped");
    assert_eq!((l.status(&always), l.status(&crashed)), ("running".to_string(), "running".to_string()));
    assert_eq!((l.status(&stopped), l.status(&plain)), ("exited".to_string(), "exited".to_string()));
    // Nothing more to start.
    assert_eq!(l.mini(&["system", "boot"]).1, "");
}

#[test]
fn log_defaults_come_from_the_config_file_under_the_flags() {
    let Some(l) = Life::new() else { return };
    let config = l.m.dir().join("config.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("log-opts = { max-size = \"1k\", max-file = \"2\" }\n");
    std::fs::write(&config, &text).unwrap();
    let script = "i=0; while [ $i -lt 100 ]; do echo line $i; i=$((i+1)); done";
    let id = l.detach(&[], &["sh", "-c", script]);
    l.until("exit", || settled(&l, &id));
    let dir = l.m.root.join("containers").join(&id);
    assert!(dir.join("log.1").exists() && !dir.join("log.2").exists(), "max-file 2 from the config file");
    let flagged = l.detach(&["--log-opt", "max-file=3"], &["sh", "-c", script]);
    l.until("exit", || settled(&l, &flagged));
    assert!(l.m.root.join("containers").join(&flagged).join("log.2").exists(), "the flag wins");
    std::fs::write(&config, text.replace("\"1k\"", "\"lots\"")).unwrap();
    assert_refused(l.mini(&["ps"]), "log-driver/log-opts");
}

#[test]
fn health_checks_go_starting_unhealthy_healthy_and_time_out() {
    let Some(l) = Life::new() else { return };
    let id = l.detach(
        &["--health-cmd", "echo probing; test -e /tmp/ok", "--health-interval", "200ms", "--health-retries", "2"],
        &["sleep", "100"],
    );
    let ps = || l.mini(&["ps", "--format", "{{.Status}}"]).1;
    assert!(ps().contains("(health: starting)"), "{}", ps());
    l.until("unhealthy after two failures", || ps().contains("(unhealthy)"));
    let h = inspect(&l, &id)["State"]["Health"].clone();
    assert_eq!(h["Status"], "unhealthy");
    assert!(h["FailingStreak"].as_u64().unwrap() >= 2, "{h}");
    let last = &h["Log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["ExitCode"].as_i64(), last["Output"].as_str()), (Some(1), Some("probing\n")), "{h}");
    let (code, _, err) = l.mini(&["exec", &id, "touch", "/tmp/ok"]);
    assert_eq!(code, 0, "{err}");
    l.until("healthy once the probe passes", || ps().contains("(healthy)"));
    assert_eq!(inspect(&l, &id)["State"]["Health"]["FailingStreak"], 0);
    let (_, events, _) = l.mini(&[
        "events",
        "--since",
        "1h",
        "--until",
        "0s",
        "--filter",
        &format!("container={id}"),
        "--format",
        "{{.Action}}",
    ]);
    assert!(events.contains("health_status: unhealthy\n") && events.contains("health_status: healthy\n"), "{events}");
    let (code, _, _) = l.mini(&["rm", "-f", &id]);
    assert_eq!(code, 0);

    // A probe over its timeout is killed and counts as a failure.
    let slow = l.detach(
        &[
            "--health-cmd",
            "sleep 30",
            "--health-timeout",
            "300ms",
            "--health-interval",
            "100ms",
            "--health-retries",
            "1",
        ],
        &["sleep", "100"],
    );
    l.until("unhealthy by timeout", || inspect(&l, &slow)["State"]["Health"]["Status"] == "unhealthy");
    let log = inspect(&l, &slow)["State"]["Health"]["Log"][0].clone();
    assert_eq!(log["ExitCode"], -1);
    assert_eq!(log["Output"], "Health check exceeded timeout (0.3s)");
    let (_, procs, _) = l.mini(&["top", &slow]);
    assert!(procs.lines().filter(|p| p.contains("sleep 30")).count() <= 1, "timed-out probes are killed: {procs}");

    // --no-healthcheck: none; bad flags: one line, nothing made.
    let quiet = l.detach(&["--no-healthcheck"], &["sleep", "100"]);
    assert!(inspect(&l, &quiet)["State"]["Health"].is_null());
    let (code, _, err) = l.mini(&["rm", "-f", &slow, &quiet]);
    assert_eq!(code, 0, "{err}");
    for (flags, needle) in [
        (vec!["--health-cmd", "true", "--health-interval", "soon"], "invalid --health-interval \"soon\""),
        (vec!["--health-cmd", "true", "--health-retries", "x"], "invalid --health-retries \"x\""),
        (vec!["--health-cmd", "true", "--health-timeout", "0s"], "at least 1ms"),
    ] {
        let mut args = vec!["run", "-d"];
        args.extend(&flags);
        args.extend([IMAGE, "true"]);
        assert_refused(l.mini(&args), needle);
    }
    assert!(l.m.containers().is_empty());
}
