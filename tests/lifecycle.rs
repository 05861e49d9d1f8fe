//! Detached containers and the verbs around them, as a user drives them:
//! run -d, ps, logs, stop, kill, wait, start, restart, rm, inspect,
//! container prune. Needs root and the fixture registry (fixtures/up.sh).

mod support;

use std::time::{Duration, Instant};

use support::life::{assert_refused, Life, IMAGE};

#[test]
fn run_detached_logs_both_streams_and_ps_shows_it_up() {
    let Some(l) = Life::new() else { return };
    let t = Instant::now();
    let id = l.detach(&["--name", "web"], &["sh", "-c", "echo out1; echo err1 >&2; echo out2; sleep 30"]);
    assert!(t.elapsed() < Duration::from_secs(5), "run -d did not return at once");
    l.until("two log lines", || l.mini(&["logs", "web"]).1.lines().count() == 2);
    let (code, out, err) = l.mini(&["logs", "web"]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "out1\nout2\n", "err1\n"));
    // The json-file format, one object per line.
    let log = std::fs::read_to_string(l.m.root.join("containers").join(&id).join("log")).unwrap();
    let first: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(first["stream"], "stdout");
    assert_eq!(first["log"], "out1\n");
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
    let (_, ps, _) = l.mini(&["ps"]);
    let row = ps.lines().nth(1).expect("a row");
    assert!(row.starts_with(&id[..12]) && row.contains(" Up ") && row.ends_with("web"), "{ps}");
    assert!(row.contains(IMAGE), "{ps}");
    let (_, q, _) = l.mini(&["ps", "-q", "--no-trunc"]);
    assert_eq!(q.trim(), id);
    // The two pipes are read in turn, so which stream's line is last varies.
    let (_, out, err) = l.mini(&["logs", "--tail", "1", "-t", "web"]);
    let tail = out + &err;
    assert!(tail.lines().count() == 1 && tail.contains("Z "), "{tail:?}");
    let (_, none, _) = l.mini(&["logs", "--since", "2099-01-01T00:00:00Z", "web"]);
    assert_eq!(none, "");
    let (code, _, _) = l.mini(&["rm", "-f", "web"]);
    assert_eq!(code, 0);
    assert!(l.m.containers().is_empty());
}

#[test]
fn stop_of_a_term_trapping_process_is_fast_and_keeps_its_code() {
    let Some(l) = Life::new() else { return };
    let id = l.detach(&[], &["sh", "-c", "trap 'echo bye; exit 3' TERM; echo ready; while true; do sleep 0.1; done"]);
    l.until("ready", || l.mini(&["logs", &id]).1.contains("ready"));
    let t = Instant::now();
    let (code, out, err) = l.mini(&["stop", &id[..10]]);
    assert_eq!((code, out.trim()), (0, &id[..10]), "{err}");
    assert!(t.elapsed() < Duration::from_secs(3), "stop took {:?}", t.elapsed());
    assert_eq!(l.mini(&["wait", &id]).1, "3\n");
    assert!(l.mini(&["logs", &id]).1.ends_with("bye\n"));
    let (_, ps, _) = l.mini(&["ps", "-a"]);
    assert!(ps.contains("Exited (3) "), "{ps}");
    let (_, ps, _) = l.mini(&["ps"]);
    assert_eq!(ps.lines().count(), 1, "{ps}");
    let v: serde_json::Value = serde_json::from_str(&l.mini(&["inspect", &id]).1).unwrap();
    let s = &v[0]["State"];
    assert_eq!(
        (s["Status"].as_str(), s["Running"].as_bool(), s["ExitCode"].as_i64()),
        (Some("exited"), Some(false), Some(3))
    );
    assert_eq!(s["OOMKilled"], false);
    assert!(s["FinishedAt"].as_str().unwrap().starts_with("20"));
    assert_eq!(v[0]["Id"], id.as_str());
}

#[test]
fn stop_of_a_process_ignoring_term_kills_it_after_the_timeout() {
    let Some(l) = Life::new() else { return };
    // pid 1 without a handler ignores SIGTERM, as in Docker.
    let id = l.detach(&["--name", "stubborn"], &["sh", "-c", "while true; do sleep 0.1; done"]);
    let t = Instant::now();
    let (code, _, err) = l.mini(&["stop", "-t", "1", "stubborn"]);
    assert_eq!(code, 0, "{err}");
    let took = t.elapsed();
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(5), "stop took {took:?}");
    assert_eq!(l.mini(&["wait", "stubborn"]).1, "137\n");
    assert_eq!(l.state(&id)["exit_code"], 137);
    assert_refused(l.mini(&["stop", "stubborn"]), "container is not running");
}

#[test]
fn logs_follow_until_the_container_exits() {
    let Some(l) = Life::new() else { return };
    let id = l.detach(&[], &["sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.4; done; echo bad >&2; exit 4"]);
    let t = Instant::now();
    let (code, out, err) = l.mini(&["logs", "-f", &id]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "line1\nline2\nline3\n", "bad\n"));
    assert!(t.elapsed() >= Duration::from_millis(600), "returned before the container exited");
    assert_eq!(l.status(&id), "exited");
    assert_eq!(l.state(&id)["exit_code"], 4);
}

#[test]
fn kill_sends_signals_by_name_or_number_and_refuses_bad_ones() {
    let Some(l) = Life::new() else { return };
    let id = l.detach(
        &["--name", "kk"],
        &["sh", "-c", "trap 'echo usr1' USR1; trap 'exit 9' HUP; echo up; while true; do sleep 0.1; done"],
    );
    l.until("up", || l.mini(&["logs", "kk"]).1.contains("up"));
    assert_refused(l.mini(&["kill", "-s", "NOPE", "kk"]), "invalid signal \"NOPE\"");
    assert_eq!(l.status(&id), "running");
    assert_eq!(l.mini(&["kill", "-s", "SIGUSR1", "kk"]).0, 0);
    l.until("usr1 trapped", || l.mini(&["logs", "kk"]).1.contains("usr1"));
    assert_eq!(l.mini(&["kill", "-s", "1", "kk"]).0, 0);
    assert_eq!(l.mini(&["wait", "kk"]).1, "9\n");
    assert_refused(l.mini(&["kill", "kk"]), "kill kk: container is not running");
}

#[test]
fn start_reuses_the_upper_dir_and_attaches_with_a() {
    let Some(l) = Life::new() else { return };
    let script = "test -e /count && cat /count; echo x >> /count; wc -l < /count; exit 5";
    let (code, id, err) = l.mini(&["create", "--name", "again", IMAGE, "sh", "-c", script]);
    assert_eq!(code, 0, "{err}");
    let id = id.trim().to_string();
    assert_eq!(l.status(&id), "created");
    assert_refused(l.mini(&["logs", "again"]), "no log");
    let (code, out, _) = l.mini(&["start", "again"]);
    assert_eq!((code, out.as_str()), (0, "again\n"));
    assert_eq!(l.mini(&["wait", "again"]).1, "5\n");
    let (code, out, _) = l.mini(&["start", "-a", "again"]);
    assert_eq!((code, out.trim_start().starts_with('x')), (5, true), "{out}");
    assert!(out.ends_with("2\n"), "{out:?}");
    // restart runs it a third time on the same upper dir.
    let id2 = l.detach(&["--name", "long"], &["sleep", "30"]);
    assert_refused(l.mini(&["start", "long"]), "already running");
    let pid1 = l.state(&id2)["pid"].as_i64();
    assert_eq!(l.mini(&["restart", "-t", "0", "long"]).0, 0);
    assert_eq!(l.status(&id2), "running");
    assert_ne!(l.state(&id2)["pid"].as_i64(), pid1);
}

#[test]
fn restart_keeps_a_rm_container_which_stop_then_removes() {
    let Some(l) = Life::new() else { return };
    let id = l.detach(&["--rm", "--name", "eph"], &["sleep", "30"]);
    let pid1 = l.state(&id)["pid"].as_i64();
    let (code, out, err) = l.mini(&["restart", "-t", "0", "eph"]);
    assert_eq!((code, out.as_str()), (0, "eph\n"), "{err}");
    assert_eq!(l.status(&id), "running");
    assert_ne!(l.state(&id)["pid"].as_i64(), pid1);
    assert!(!l.m.root.join("containers").join(&id).join("restarting").exists());
    assert_eq!(l.mini(&["stop", "-t", "0", "eph"]).0, 0);
    l.until("the --rm container is removed", || l.m.containers().is_empty());
}

#[test]
fn rm_refuses_a_running_container_without_force() {
    let Some(l) = Life::new() else { return };
    let id = l.detach(&["--name", "busy"], &["sleep", "30"]);
    let (code, _, err) = l.mini(&["rm", "busy"]);
    assert_eq!(code, 125);
    assert_eq!(
        err.trim_end(),
        "mini: cannot remove container busy: container is running: stop the container before removing or force remove"
    );
    assert_eq!(l.status(&id), "running");
    let cgroups = l.cgroups();
    assert_eq!(l.mini(&["rm", "-f", "busy"]).0, 0);
    assert!(l.m.containers().is_empty());
    for d in cgroups {
        assert!(!d.exists(), "cgroup {} left", d.display());
    }
}

#[test]
fn detached_rm_removes_the_container_when_it_exits() {
    let Some(l) = Life::new() else { return };
    let id = l.detach(&["--rm"], &["sh", "-c", "sleep 0.3"]);
    l.until("removal", || !l.m.root.join("containers").join(&id).exists());
    assert!(l.m.containers().is_empty());
}

#[test]
fn names_ids_and_prefixes_resolve_and_ambiguity_lists_candidates() {
    let Some(l) = Life::new() else { return };
    // 17 ids: two share a first hex digit (pigeonhole).
    let mut ids = Vec::new();
    for _ in 0..17 {
        let (code, out, err) = l.mini(&["create", IMAGE, "true"]);
        assert_eq!(code, 0, "{err}");
        ids.push(out.trim().to_string());
    }
    let dup = ids.iter().find(|a| ids.iter().filter(|b| b[..1] == a[..1]).count() > 1).unwrap();
    let (code, _, err) = l.mini(&["inspect", &dup[..1]]);
    assert_eq!(code, 125);
    assert!(err.contains("matches more than one container") && err.contains(&dup[..12]), "{err}");
    let (code, out, _) = l.mini(&["inspect", &dup[..12]]);
    assert_eq!(code, 0);
    assert!(out.contains(dup.as_str()));
    assert_refused(l.mini(&["stop", "ghost"]), "stop ghost: no such container");
    assert_refused(l.mini(&["start", "ghost"]), "no such container");
    assert_refused(l.mini(&["wait", "ghost"]), "no such container");
    assert_refused(l.mini(&["logs", "ghost"]), "no such container");
    let (code, out, _) = l.mini(&["container", "prune", "-f"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().filter(|x| x.len() == 64).count(), 17);
    assert!(l.m.containers().is_empty());
}

#[test]
fn ps_filters_and_formats() {
    let Some(l) = Life::new() else { return };
    let up = l.detach(&["--name", "upper"], &["sleep", "30"]);
    let (_, done, _) = l.mini(&["run", "--name", "done", IMAGE, "sh", "-c", "exit 2"]);
    let _ = done;
    let (_, out, _) = l.mini(&["ps", "-a", "-f", "status=exited", "--format", "{{.Names}} {{.State}}"]);
    assert_eq!(out, "done exited\n");
    let (_, out, _) = l.mini(&["ps", "-f", "name=upp", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!((v["ID"].as_str(), v["State"].as_str()), (Some(&up[..12]), Some("running")));
    assert!(v["Status"].as_str().unwrap().starts_with("Up "));
    assert_refused(l.mini(&["ps", "-f", "status=sleepy"]), "invalid filter");
    let (_, out, _) = l.mini(&["top", "upper"]);
    assert!(out.starts_with("UID") && out.contains("sleep 30"), "{out}");
}

#[test]
fn detached_tty_output_is_logged_and_stdin_stays_open_with_i() {
    let Some(l) = Life::new() else { return };
    let id = l.detach(&["-t", "--init", "--name", "tty"], &["sh", "-c", "tty; echo hi; sleep 0.5; exit 4"]);
    assert_eq!(l.mini(&["wait", "tty"]).1, "4\n");
    let (_, out, _) = l.mini(&["logs", &id]);
    assert_eq!(out, "/dev/pts/0\r\nhi\r\n");
    // -i: the container's stdin is a pipe the monitor keeps open.
    let id = l.detach(&["-i"], &["sh", "-c", "read x; echo got $x"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(l.status(&id), "running", "stdin reached its end");
}

#[test]
fn attach_follows_new_output_and_exits_with_the_code() {
    let Some(l) = Life::new() else { return };
    let id = l.detach(&["--name", "att"], &["sh", "-c", "echo early; sleep 0.8; echo late; echo oops >&2; exit 2"]);
    l.until("early", || l.mini(&["logs", &id]).1.contains("early"));
    let (code, out, err) = l.mini(&["attach", "att"]);
    assert_eq!((code, out.as_str(), err.as_str()), (2, "late\n", "oops\n"));
    assert_refused(l.mini(&["attach", "att"]), "container is not running");
    // Several containers: each error printed, exit 1, the others done.
    let (code, out, err) = l.mini(&["rm", "att", "ghost"]);
    assert_eq!((code, out.as_str()), (1, "att\n"));
    assert!(err.contains("ghost"), "{err}");
}

#[test]
fn attach_and_start_i_forward_stdin_to_an_interactive_container() {
    use std::io::Write;
    let Some(l) = Life::new() else { return };
    l.detach(&["-i", "--name", "talk"], &["sh", "-c", "read x; echo got $x; read y; echo got2 $y; exit 3"]);
    let mut child =
        l.m.cmd(&["attach", "talk"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"hi\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    stdin.write_all(b"there\n").unwrap();
    assert_eq!(support::life::finish(child, 20), (Some(3), "got hi\ngot2 there\n".to_string()));
    let (code, _, _) =
        l.mini(&["create", "-i", "--name", "later", IMAGE, "sh", "-c", "read x; echo started $x; exit 5"]);
    assert_eq!(code, 0);
    let mut child =
        l.m.cmd(&["start", "-a", "-i", "later"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    child.stdin.take().unwrap().write_all(b"yo\n").unwrap();
    assert_eq!(support::life::finish(child, 20), (Some(5), "started yo\n".to_string()));
}

#[test]
fn run_d_reports_a_command_that_cannot_start_with_its_code() {
    let Some(l) = Life::new() else { return };
    let (code, out, err) = l.mini(&["run", "-d", "--name", "bad", IMAGE, "nope"]);
    assert_eq!((code, out.as_str()), (127, ""), "{err}");
    assert_eq!(err, "mini: exec \"nope\": executable file not found in $PATH\n");
    let (_, ps, _) = l.mini(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with("bad Exited (127)"), "{ps}");
    let (code, _, _) = l.mini(&["run", "-d", "--rm", IMAGE, "/etc/passwd"]);
    assert_eq!(code, 126);
    assert_eq!(l.m.containers().len(), 1, "--rm left a container");
}

#[test]
fn wait_gets_the_code_of_a_detached_rm_container() {
    let Some(l) = Life::new() else { return };
    let id = l.detach(&["--rm"], &["sh", "-c", "sleep 0.5; exit 7"]);
    let (code, out, err) = l.mini(&["wait", &id]);
    assert_eq!((code, out.as_str()), (0, "7\n"), "{err}");
    l.until("removal", || l.m.containers().is_empty());
}

#[test]
fn a_detached_container_keeps_its_limits_across_starts_and_records_oom() {
    let Some(l) = Life::new() else { return };
    let id = l.detach(
        &["-m", "16m", "--name", "hungry"],
        &["sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes; sleep 0.2; tail /dev/zero"],
    );
    assert_eq!(l.mini(&["wait", "hungry"]).1, "137\n");
    assert_eq!(l.state(&id)["oom_killed"], true);
    let v: serde_json::Value = serde_json::from_str(&l.mini(&["inspect", "hungry"]).1).unwrap();
    assert_eq!(v[0]["State"]["OOMKilled"], true);
    assert_eq!(l.mini(&["start", "hungry"]).0, 0);
    assert_eq!(l.mini(&["wait", "hungry"]).1, "137\n");
    assert_eq!(l.mini(&["logs", "hungry"]).1, "16777216\n16777216\n");
    assert_eq!(l.state(&id)["oom_killed"], true);
}
