//! State on disk is the truth: a killed monitor, a simulated reboot, and
//! 20 detached runs at once then `rm -f` of all, with nothing leaked.

mod support;

use support::life::{Life, IMAGE};

fn kill(pid: i64) {
    // SAFETY: kill by pid of a process this test started.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
}

#[test]
fn a_killed_monitor_takes_its_container_and_ps_says_exited() {
    let Some(l) = Life::new() else { return };
    let id = l.detach(&["--name", "orphan"], &["sleep", "60"]);
    let s = l.state(&id);
    let (pid, monitor) = (s["pid"].as_i64().unwrap(), s["monitor_pid"].as_i64().unwrap());
    kill(monitor);
    l.until("the container to die with its monitor", || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |st| st.contains(") Z "))
    });
    let (_, ps, _) = l.mini(&["ps"]);
    assert_eq!(ps.lines().count(), 1, "still listed as running: {ps}");
    let (_, ps, _) = l.mini(&["ps", "-a"]);
    assert!(ps.contains("Exited (137)"), "{ps}");
    assert_eq!(l.mini(&["rm", "orphan"]).0, 0);
    assert!(l.m.containers().is_empty());
}

#[test]
fn after_a_simulated_reboot_ps_shows_exited_and_start_works() {
    let Some(l) = Life::new() else { return };
    let id = l.detach(&["--name", "survivor"], &["sh", "-c", "echo run >> /runs; sleep 60"]);
    l.until("first run", || l.m.root.join("containers").join(&id).join("upper/runs").exists());
    let s = l.state(&id);
    kill(s["pid"].as_i64().unwrap());
    kill(s["monitor_pid"].as_i64().unwrap());
    for m in l.m.host_mounts() {
        let c = std::ffi::CString::new(m).unwrap();
        // SAFETY: valid C string; a mount under this test's store.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
    l.until("monitor gone", || l.mini(&["ps", "-q"]).1.is_empty());
    let (_, ps, _) = l.mini(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]);
    assert_eq!(ps, "survivor exited\n");
    assert_eq!(l.mini(&["start", "survivor"]).0, 0);
    assert_eq!(l.status(&id), "running");
    l.until("second run", || {
        std::fs::read_to_string(l.m.root.join("containers").join(&id).join("upper/runs")).unwrap_or_default()
            == "run\nrun\n"
    });
    assert_eq!(l.mini(&["rm", "-f", "survivor"]).0, 0);
}

#[test]
fn twenty_detached_runs_at_once_then_rm_f_of_all_leave_nothing() {
    let Some(l) = Life::new() else { return };
    let root = l.m.root.clone();
    let runs: Vec<_> = (0..20)
        .map(|i| {
            let name = format!("c{i:02}");
            l.m.cmd(&["run", "-d", "--name", &name, IMAGE, "sleep", "60"])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let ids: Vec<String> = runs
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        })
        .collect();
    assert_eq!(l.m.containers().len(), 20);
    let (_, ps, _) = l.mini(&["ps", "-q"]);
    assert_eq!(ps.lines().count(), 20, "{ps}");
    for id in &ids {
        assert_eq!(l.status(id), "running", "{id}: {}", l.state(id));
    }
    let cgroups = l.cgroups();
    let rms: Vec<_> = ids.iter().map(|id| l.m.cmd(&["rm", "-f", id]).spawn().unwrap()).collect();
    for mut r in rms {
        assert!(r.wait().unwrap().success());
    }
    assert!(l.m.containers().is_empty(), "left: {:?}", l.m.containers());
    assert!(support::mini::mounts_under(&root).is_empty());
    for d in cgroups {
        assert!(!d.exists(), "cgroup {} leaked", d.display());
    }
    let names = std::fs::read_dir(root.join("containers/.names")).unwrap().count();
    assert_eq!(names, 0, "names leaked");
}

#[test]
fn concurrent_starts_run_the_container_once() {
    let Some(l) = Life::new() else { return };
    let (code, id, _) = l.mini(&["create", "--name", "once", IMAGE, "sleep", "60"]);
    assert_eq!(code, 0);
    let id = id.trim().to_string();
    let starts: Vec<_> = (0..4)
        .map(|_| {
            l.m.cmd(&["start", "once"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let ok = starts.into_iter().map(|c| c.wait_with_output().unwrap()).filter(|o| o.status.success()).count();
    assert_eq!(ok, 1, "one start wins, the others are refused");
    // The container's own pid namespace holds one `sleep 60`.
    let pid = l.state(&id)["pid"].as_i64().unwrap();
    let ns = std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
    let sleeping = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| std::fs::read_to_string(e.path().join("cmdline")).is_ok_and(|c| c == "sleep\u{0}60\u{0}"))
        .filter(|e| std::fs::read_link(e.path().join("ns/pid")).is_ok_and(|n| n == ns))
        .count();
    assert_eq!(sleeping, 1);
    // restart right after the exit is recorded: the old monitor may still hold its lock.
    for _ in 0..3 {
        assert_eq!(l.mini(&["restart", "-t", "0", "once"]).0, 0);
        assert_eq!(l.status(&id), "running");
    }
}
