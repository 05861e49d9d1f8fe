//! `mini run` as a user drives it: argv, namespaces, pid 1, files,
//! volumes, read-only roots, exit codes. Needs root and the fixture
//! registry (fixtures/up.sh).

mod support;

use support::Mini;

#[test]
fn argv_reaches_the_command_byte_for_byte() {
    let Some(m) = Mini::new() else { return };
    let (code, out, err) = m.run_in(&[], &["printf", "[%s]\\n", "a b", "", "-x", "$HOME", "--rm", "é\t"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "[a b]\n[]\n[-x]\n[$HOME]\n[--rm]\n[é\t]\n");
}

#[test]
fn every_namespace_differs_from_the_hosts_and_the_command_is_pid_1() {
    let Some(m) = Mini::new() else { return };
    let kinds = ["uts", "pid", "mnt", "net", "ipc", "cgroup"];
    let script = kinds.iter().map(|k| format!("readlink /proc/self/ns/{k};")).collect::<String>() + "echo $$";
    let (code, out, err) = m.run_in(&[], &["sh", "-c", &script]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    for (k, inside) in kinds.iter().zip(&lines) {
        let host = std::fs::read_link(format!("/proc/self/ns/{k}")).unwrap();
        assert_ne!(host.to_string_lossy(), *inside, "{k} namespace is the host's");
    }
    assert_eq!(lines[kinds.len()], "1");
}

#[test]
fn the_container_sees_its_own_hostname_devices_and_loopback() {
    let Some(m) = Mini::new() else { return };
    let script = "hostname; cat /etc/hostname; grep -c box1 /etc/hosts; ls /dev | tr '\\n' ' '; echo; \
                  cat /sys/class/net/lo/flags; echo $HOSTNAME $HOME; ls -l /dev/ptmx | grep -c 'pts/ptmx'; \
                  awk '$5 == \"/proc/sys\"' /proc/self/mountinfo | grep -c ' ro,'; \
                  awk '$5 == \"/sys\"' /proc/self/mountinfo | grep -c ' ro,'; \
                  cat /proc/kcore /proc/timer_list 2>/dev/null | wc -c; ls /sys/firmware | wc -l";
    let (code, out, err) = m.run_in(&["-h", "box1"], &["sh", "-c", script]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "box1");
    assert_eq!(lines[1], "box1");
    assert_eq!(lines[2], "1");
    for dev in ["null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm", "mqueue", "fd", "stdin"] {
        assert!(lines[3].split(' ').any(|d| d == dev), "/dev lacks {dev}: {}", lines[3]);
    }
    let flags = u32::from_str_radix(lines[4].trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo is not up");
    assert_eq!(lines[5], "box1 /root");
    assert_eq!(lines[6], "1");
    assert_eq!(lines[7], "1", "/proc/sys is not read-only");
    assert_eq!(lines[8], "1", "/sys is not read-only");
    assert_eq!(lines[9].trim(), "0", "masked /proc files are readable");
    assert_eq!(lines[10].trim(), "0", "/sys/firmware is not masked");
}

#[test]
fn whiteouts_and_opaque_dirs_apply_at_run_time() {
    let Some(m) = Mini::new() else { return };
    let (code, out, err) =
        m.run_in(&[], &["sh", "-c", "ls /opt/replaced; test -e /etc/removed-later && echo present; true"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "new1\n");
}

#[test]
fn writes_stay_in_one_container() {
    let Some(m) = Mini::new() else { return };
    let out =
        m.run(&["run", "--name", "writer", support::IMAGE, "sh", "-c", "echo mine > /etc/passwd; echo x > /newfile"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (code, out, _) = m.run_in(&[], &["sh", "-c", "grep -c root /etc/passwd; test -e /newfile || echo absent"]);
    assert_eq!((code, out.as_str()), (0, "1\nabsent\n"));
    let out = m.run(&["rm", "writer"]);
    assert!(out.status.success());
    assert!(m.containers().is_empty());
}

#[test]
fn only_rm_containers_skip_syncing_their_upper_dir() {
    let Some(m) = Mini::new() else { return };
    let root_opts = "awk '$5 == \"/\" {print $NF}' /proc/self/mountinfo";
    let (code, out, err) = m.run_in(&[], &["sh", "-c", root_opts]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("upperdir=") && out.contains("volatile"), "--rm root is not volatile: {out}");
    let out = m.run(&["run", "--name", "kept", support::IMAGE, "sh", "-c", root_opts]);
    let opts = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success() && opts.contains("upperdir="), "{opts}");
    assert!(!opts.contains("volatile"), "a kept container's root must sync: {opts}");
    assert!(m.run(&["rm", "kept"]).status.success());
}

#[test]
fn seccomp_denies_new_namespaces_and_host_calls_but_not_fork() {
    let Some(m) = Mini::new() else { return };
    // A user namespace needs no capability: only the filter refuses it.
    let script = "grep -E '^(Seccomp|Seccomp_filters|NoNewPrivs):' /proc/self/status | tr -d '\\t'; \
                  unshare -U true 2>&1; unshare -n true 2>&1; sh -c 'echo forked'";
    let (code, out, err) = m.run_in(&[], &["sh", "-c", script]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    // no_new_privs is off by Docker's default; the filter is there anyway.
    assert_eq!(lines[..3], ["NoNewPrivs:0", "Seccomp:2", "Seccomp_filters:1"], "{out}");
    assert!(lines[3].contains("unshare(0x10000000): Operation not permitted"), "{out}");
    assert!(lines[4].contains("unshare(0x40000000): Operation not permitted"), "{out}");
    assert_eq!(lines[5], "forked");
}

#[test]
fn read_only_root_with_tmpfs_and_volumes() {
    let Some(m) = Mini::new() else { return };
    let vol = m.root.parent().unwrap().join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::write(vol.join("in"), "from host\n").unwrap();
    let file = m.root.parent().unwrap().join("single-file");
    std::fs::write(&file, "one file\n").unwrap();
    let v1 = format!("{}:/data", vol.display());
    let v2 = format!("{}:/ro:ro", vol.display());
    let v3 = format!("{}:/etc/one", file.display());
    let script = "cat /data/in; echo out > /data/out; touch /ro/x 2>/dev/null || echo ro-refused; \
                  touch /x 2>/dev/null || echo root-refused; touch /run/ok && echo tmpfs-ok; cat /etc/one";
    let (code, out, err) =
        m.run_in(&["--read-only", "--tmpfs", "/run", "-v", &v1, "-v", &v2, "-v", &v3], &["sh", "-c", script]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "from host\nro-refused\nroot-refused\ntmpfs-ok\none file\n");
    assert_eq!(std::fs::read_to_string(vol.join("out")).unwrap(), "out\n");
}

#[test]
fn volume_targets_never_escape_through_symlinks() {
    let Some(m) = Mini::new() else { return };
    let vol = m.root.parent().unwrap().join("vol2");
    std::fs::create_dir_all(&vol).unwrap();
    // First container makes /escape a symlink to the host-looking path /tmp/..;
    // the second mounts a volume at /escape/target: it must land inside.
    let out = m.run(&["run", "--name", "evil", support::IMAGE, "sh", "-c", "ln -s /../../../../tmp /escape"]);
    assert!(out.status.success());
    let marker = format!("mini-escape-{}", std::process::id());
    let v = format!("{}:/escape/{marker}", vol.display());
    let out = m.run(&["run", "--rm", "-v", &v, support::IMAGE, "true"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!std::path::Path::new("/tmp").join(&marker).exists(), "volume target escaped to the host");
}

#[test]
fn users_groups_env_and_workdir() {
    let Some(m) = Mini::new() else { return };
    let env_file = m.root.parent().unwrap().join("env");
    std::fs::write(&env_file, "# comment\nFROM_FILE=1\nOVER=file\n").unwrap();
    let env_path = env_file.display().to_string();
    let (code, out, err) = m.run_in(
        &["-u", "app", "-w", "/made/here", "-e", "OVER=flag", "--env-file", &env_path, "-e", "HOME"],
        &["sh", "-c", "id -u; id -g; pwd; echo $FROM_FILE $OVER; echo $HOME"],
    );
    assert_eq!(code, 0, "{err}");
    let home = std::env::var("HOME").unwrap_or_default();
    assert_eq!(out, format!("1000\n1000\n/made/here\n1 flag\n{home}\n"));
    let (code, out, _) = m.run_in(&["-u", "4242:99"], &["sh", "-c", "id -u; id -g; echo $HOME"]);
    assert_eq!((code, out.as_str()), (0, "4242\n99\n/\n"));
}

#[test]
fn exit_codes_are_dockers() {
    let Some(m) = Mini::new() else { return };
    let cases: [(&[&str], &[&str], i32); 8] = [
        (&[], &["true"], 0),
        (&[], &["false"], 1),
        (&[], &["sh", "-c", "exit 72"], 72),
        (&[], &["/etc/passwd"], 126),
        (&[], &["/etc"], 126),
        (&[], &["no-such-command"], 127),
        (&["--init"], &["sh", "-c", "kill -KILL $$"], 137),
        (&["--init"], &["sh", "-c", "kill -TERM $$"], 143),
    ];
    for (flags, argv, want) in cases {
        let (code, _, err) = m.run_in(flags, argv);
        assert_eq!(code, want, "{argv:?}: {err}");
        if (126..=127).contains(&want) {
            assert_eq!(err.lines().count(), 1, "one line: {err}");
        }
    }
    assert!(m.containers().is_empty());
}

#[test]
fn signals_reach_the_container_and_init_reaps_zombies() {
    let Some(m) = Mini::new() else { return };
    // An orphan whose parent exits is re-parented to pid 1, which must reap it.
    let script = "(sleep 0.2 &) ; sleep 1; cat /proc/1/comm; grep -l '^State:.*Z' /proc/[0-9]*/status | wc -l";
    let (code, out, err) = m.run_in(&["--init"], &["sh", "-c", script]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "mini");
    assert_eq!(lines[1].trim(), "0", "zombies left: {out}");

    let mut child = m.cmd(&["run", "--rm", "--init", support::IMAGE, "sleep", "30"]).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    assert!(m.containers().is_empty());
    assert!(m.host_mounts().is_empty());
}

#[test]
fn ps_lists_and_rm_removes() {
    let Some(m) = Mini::new() else { return };
    let out = m.run(&["run", "--name", "done1", support::IMAGE, "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    let out = m.run(&["create", "--name", "made1", support::IMAGE, "echo", "hi"]);
    assert!(out.status.success());
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(id.len(), 64);
    let ps = String::from_utf8_lossy(&m.run(&["ps", "-a"]).stdout).to_string();
    let lines: Vec<&str> = ps.lines().collect();
    assert!(lines[0].starts_with("CONTAINER ID   IMAGE"), "{ps}");
    assert!(lines[0].ends_with("NAMES"));
    assert!(ps.contains(&id[..12]) && ps.contains("Created") && ps.contains("made1"), "{ps}");
    assert!(ps.contains("Exited (3)") && ps.contains("done1") && ps.contains("\"sh -c exit 3\""), "{ps}");
    let ps = String::from_utf8_lossy(&m.run(&["ps"]).stdout).to_string();
    assert_eq!(ps.lines().count(), 1, "only running containers without -a: {ps}");
    let out = m.run(&["run", "--rm", "--name", "made1", support::IMAGE, "true"]);
    assert_eq!(out.status.code(), Some(125), "duplicate name");
    assert!(m.run(&["rm", "done1", &id[..8]]).status.success());
    assert!(m.containers().is_empty());
    assert_eq!(m.run(&["rm", "done1"]).status.code(), Some(125));
}

#[test]
fn the_container_gets_a_cgroup_beneath_minis_and_it_goes_away() {
    let Some(m) = Mini::new() else { return };
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let Some(mem) = own.lines().find_map(|l| l.split_once(":memory:").map(|(_, p)| p.to_string())) else {
        return; // no v1 memory hierarchy here
    };
    if mem == "/" {
        return; // mini never creates cgroups at a hierarchy root
    }
    let (code, out, err) = m.run_in(&[], &["sh", "-c", "grep :memory: /proc/self/cgroup | cut -d: -f3"]);
    assert_eq!((code, out.as_str()), (0, "/\n"), "the cgroup namespace starts at the container's cgroup: {err}");

    let mut child = m.cmd(&["run", "--rm", "--name", "cg", support::IMAGE, "sleep", "1"]).spawn().unwrap();
    let parent = std::path::Path::new("/sys/fs/cgroup/memory").join(mem.trim_start_matches('/')).join("mini");
    let mut seen = None;
    for _ in 0..100 {
        if let Some(id) = m.containers().first() {
            let state =
                std::fs::read_to_string(m.root.join("containers").join(id).join("state.json")).unwrap_or_default();
            let v: serde_json::Value = serde_json::from_str(&state).unwrap_or_default();
            if let Some(pid) = v["pid"].as_i64() {
                let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
                assert!(cg.contains(&format!("/mini/{id}\n")), "container not in its cgroup: {cg}");
                seen = Some(parent.join(id));
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(child.wait().unwrap().success());
    let dir = seen.unwrap_or_else(|| panic!("no container cgroup under {}", parent.display()));
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[test]
fn only_stdio_reaches_the_command_and_init_is_out_of_reach() {
    let Some(m) = Mini::new() else { return };
    // ls opens one more fd for the directory it lists.
    let (code, out, err) = m.run_in(&[], &["sh", "-c", "ls /proc/self/fd | tr '\\n' ' '"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "0 1 2 3 ");
    let (code, out, _) =
        m.run_in(&["--init"], &["sh", "-c", "cat /proc/1/exe > /dev/null 2>&1 && echo readable || echo refused"]);
    assert_eq!((code, out.as_str()), (0, "refused\n"));
}

#[test]
fn rm_refuses_a_running_container_unless_forced() {
    let Some(m) = Mini::new() else { return };
    let mut child = m.cmd(&["run", "--name", "busy", support::IMAGE, "sleep", "30"]).spawn().unwrap();
    let state = |m: &Mini| -> String {
        let Some(id) = m.containers().first().cloned() else { return String::new() };
        std::fs::read_to_string(m.root.join("containers").join(id).join("state.json")).unwrap_or_default()
    };
    for _ in 0..200 {
        if state(&m).contains("\"running\"") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = m.run(&["rm", "busy"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("running"));
    let ps = String::from_utf8_lossy(&m.run(&["ps"]).stdout).to_string();
    assert!(ps.contains("busy") && ps.contains("Up "), "{ps}");
    assert!(m.run(&["rm", "-f", "busy"]).status.success());
    assert_eq!(child.wait().unwrap().code(), Some(137));
    assert!(m.containers().is_empty());
}

#[test]
fn entrypoint_and_image_defaults() {
    let Some(m) = Mini::new() else { return };
    let (code, out, err) = m.run_in(&["--entrypoint", "/bin/echo"], &["from", "entrypoint"]);
    assert_eq!((code, out.as_str()), (0, "from entrypoint\n"), "{err}");
    // The fixture's Cmd is /bin/sh: with no command and stdin closed it exits 0.
    let (code, _, err) = m.run_in(&[], &[]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn rm_containers_without_a_network_keep_their_etc_files_off_the_disk() {
    let Some(m) = Mini::new() else { return };
    let mut child =
        m.cmd(&["run", "--rm", "--network", "none", "-h", "box2", support::IMAGE, "sleep", "30"]).spawn().unwrap();
    let running = || {
        let id = m.containers().first().cloned()?;
        let state = std::fs::read_to_string(m.root.join("containers").join(&id).join("state.json")).ok()?;
        state.contains("\"running\"").then_some(id)
    };
    let id = support::wait_for(std::time::Duration::from_secs(10), "the container to run", running);
    let names: Vec<String> = std::fs::read_dir(m.root.join("containers").join(&id))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    for f in ["hostname", "hosts", "resolv.conf"] {
        assert!(!names.iter().any(|n| n == f), "{f} in the container dir: {names:?}");
    }
    let script = "cat /etc/hostname; grep -c box2 /etc/hosts; ls -a /dev | grep -c mini-etc; \
                  echo changed >/etc/hostname && cat /etc/hostname";
    let out = m.run(&["exec", &id, "sh", "-c", script]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "box2\n1\n0\nchanged\n");
    assert!(m.run(&["rm", "-f", &id]).status.success());
    child.wait().unwrap();
    // Without --rm they are files in its directory, as always.
    let out = m.run(&["create", "--network", "none", support::IMAGE, "true"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(m.root.join("containers").join(&id).join("hosts").is_file());
    assert!(m.run(&["rm", &id]).status.success());
}
