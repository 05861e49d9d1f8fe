//! Bad input: one clear line, exit 125, and nothing left behind (no mount
//! in the host's table, no container directory). Also: a `mini` killed
//! with SIGKILL takes its container along and the next `mini` sweeps it.

mod support;

use support::{Mini, IMAGE};

fn assert_refused(m: &Mini, args: &[&str], needle: &str) {
    let out = m.run(args);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(125), "{args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: one line expected: {err}");
    assert!(err.contains(needle), "{args:?}: {err:?} lacks {needle:?}");
    assert!(out.stdout.is_empty(), "{args:?}: printed {:?}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(m.containers(), Vec::<String>::new(), "{args:?} left a container dir");
    assert_eq!(m.host_mounts(), Vec::<String>::new(), "{args:?} left mounts");
}

#[test]
fn each_bad_flag_is_refused_with_one_line() {
    let Some(m) = Mini::new() else { return };
    let file = m.root.parent().unwrap().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let missing = format!("{}/missing:/x", m.root.display());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["-e", ""], "invalid -e \"\""),
        (vec!["-e", "=x"], "invalid -e \"=x\""),
        (vec!["-v", "rel/path:/x"], "invalid -v \"rel/path:/x\""),
        (vec!["-v", &missing], "does not exist"),
        (vec!["-v", "/tmp:/"], "cannot mount over the container's root"),
        (vec!["-v", "/tmp:/proc/x"], "under /proc"),
        (vec!["-u", "ghost"], "find user \"ghost\""),
        (vec!["-u", "4294967296"], "out of range"),
        (vec!["-u", "app:nosuchgroup"], "find group \"nosuchgroup\""),
        (vec!["-w", "relative"], "invalid -w \"relative\""),
        (vec!["-w", "/etc/passwd"], "not a directory"),
        (vec!["--name", "a/b"], "invalid --name \"a/b\""),
        (vec!["--network", ""], "invalid --network"),
        (vec!["--network", "container:"], "invalid --network"),
        (vec!["--userns", "weird"], "invalid --userns"),
        (vec!["--pull", "sometimes"], "invalid --pull"),
        (vec!["--tmpfs", "relative"], "invalid --tmpfs"),
    ];
    for (flags, needle) in cases {
        let mut args = vec!["run", "--rm"];
        args.extend(flags);
        args.extend([IMAGE, "true"]);
        assert_refused(&m, &args, needle);
    }
    let _ = file;
}

#[test]
fn duplicate_names_and_unknown_images_are_refused() {
    let Some(m) = Mini::new() else { return };
    let out = m.run(&["create", "--name", "taken", IMAGE]);
    assert!(out.status.success());
    let out = m.run(&["run", "--rm", "--name", "taken", IMAGE, "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already in use"));
    assert_eq!(m.containers().len(), 1);
    assert!(m.run(&["rm", "taken"]).status.success());
    assert_refused(&m, &["run", "--rm", "--pull=never", "127.0.0.1:5000/test/absent:1", "true"], "no such image");
    // Only the loopback fixture registry is ever asked.
    assert_refused(&m, &["run", "--rm", "127.0.0.1:5000/test/absent:1", "true"], "absent");
}

#[test]
fn an_image_whose_config_is_gone_or_corrupt_is_refused() {
    let Some(m) = Mini::new() else { return };
    let out = m.run(&["inspect", IMAGE]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let id = v.get("Id").or_else(|| v.get(0).and_then(|x| x.get("Id"))).and_then(|x| x.as_str()).map(str::to_string);
    let Some(id) = id else { panic!("inspect gave no Id: {}", String::from_utf8_lossy(&out.stdout)) };
    let blob = m.root.join("blobs/sha256").join(id.trim_start_matches("sha256:"));
    std::fs::write(&blob, b"{not json").unwrap();
    assert_refused(&m, &["run", "--rm", "--pull=never", IMAGE, "true"], "");
    std::fs::remove_file(&blob).unwrap();
    assert_refused(&m, &["run", "--rm", "--pull=never", IMAGE, "true"], "");
}

#[test]
fn a_rootfs_whose_proc_or_dev_is_a_symlink_is_refused() {
    let Some(m) = Mini::new() else { return };
    for (name, link) in [("127.0.0.1:5000/evil/proc:1", "proc"), ("127.0.0.1:5000/evil/dev:1", "dev")] {
        support::image::build_image(&m.root, name, |b| {
            support::image::tar_dir(b, "etc");
            support::image::tar_dir(b, "bin");
            support::image::tar_symlink(b, link, "/etc");
        });
        assert_refused(&m, &["run", "--rm", "--pull=never", name, "true"], "is a symlink");
    }
}

#[test]
fn a_killed_mini_takes_its_container_along_and_is_swept() {
    let Some(m) = Mini::new() else { return };
    let mut child = m.cmd(&["run", "--rm", IMAGE, "sleep", "60"]).spawn().unwrap();
    // Wait for state.json to say running.
    let mut pid = None;
    for _ in 0..200 {
        if let Some(id) = m.containers().first() {
            let state =
                std::fs::read_to_string(m.root.join("containers").join(id).join("state.json")).unwrap_or_default();
            let v: serde_json::Value = serde_json::from_str(&state).unwrap_or_default();
            if v["status"] == "running" {
                pid = v["pid"].as_i64();
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let pid = pid.expect("container never ran") as i32;
    child.kill().unwrap();
    child.wait().unwrap();
    // The container's pid 1 gets SIGKILL when mini dies.
    let mut gone = false;
    for _ in 0..100 {
        // SAFETY: signal 0 only probes.
        if unsafe { libc::kill(pid, 0) } != 0 {
            gone = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(gone, "container process {pid} outlived mini");
    assert_eq!(m.containers().len(), 1, "the dir stays until the next mini");
    let out = m.run(&["ps", "-a"]);
    assert!(out.status.success());
    assert_eq!(m.containers(), Vec::<String>::new(), "next mini swept the --rm container");
    assert_eq!(m.host_mounts(), Vec::<String>::new());
}
