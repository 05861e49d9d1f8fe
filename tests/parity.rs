//! Docker's behaviour in the places users trip on: TERM with -t, HOME from
//! passwd, a missing -w made for the -u user, --read-only /etc files,
//! no_new_privs off unless asked, the monitor's name in `ps`.

mod support;

use support::{pty::Pty, Mini, IMAGE};

#[test]
fn term_is_set_for_a_terminal_only_and_may_be_overridden() {
    let Some(m) = Mini::new() else { return };
    let (code, out, err) = m.run_in(&[], &["sh", "-c", "echo \"[$TERM]\""]);
    assert_eq!((code, out.as_str()), (0, "[]\n"), "{err}");

    let pty = Pty::open(24, 80);
    let mut cmd = m.cmd(&["run", "--rm", "-t", IMAGE, "sh", "-c", "echo \"[$TERM]\""]);
    pty.attach(&mut cmd);
    let status = cmd.spawn().unwrap().wait().unwrap();
    drop(cmd);
    assert_eq!(status.code(), Some(0));
    assert!(pty.output().contains("[xterm]"));

    let pty = Pty::open(24, 80);
    let mut cmd = m.cmd(&["run", "--rm", "-t", "-e", "TERM=vt100", IMAGE, "sh", "-c", "echo \"[$TERM]\""]);
    pty.attach(&mut cmd);
    let status = cmd.spawn().unwrap().wait().unwrap();
    drop(cmd);
    assert_eq!(status.code(), Some(0));
    assert!(pty.output().contains("[vt100]"));
    assert!(m.containers().is_empty());
}

#[test]
fn home_comes_from_passwd_when_unset_or_empty() {
    let Some(m) = Mini::new() else { return };
    let home = |flags: &[&str]| {
        let (code, out, err) = m.run_in(flags, &["sh", "-c", "echo \"$HOME\""]);
        assert_eq!(code, 0, "{err}");
        out.trim().to_string()
    };
    assert_eq!(home(&[]), "/root");
    assert_eq!(home(&["-e", "HOME="]), "/root");
    assert_eq!(home(&["-u", "app", "-e", "HOME="]), "/home/app");
    assert_eq!(home(&["-u", "4242"]), "/", "a uid without a passwd entry");
    assert_eq!(home(&["-e", "HOME=/srv"]), "/srv");
}

#[test]
fn a_missing_workdir_is_made_for_the_user() {
    let Some(m) = Mini::new() else { return };
    let (code, out, err) = m.run_in(
        &["-u", "1000:1000", "-w", "/opt/new/work"],
        &["sh", "-c", "pwd; stat -c %u:%g /opt/new /opt/new/work /opt"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "/opt/new/work\n1000:1000\n1000:1000\n0:0\n", "only the parts it made belong to the user");
}

#[test]
fn read_only_covers_the_etc_files() {
    let Some(m) = Mini::new() else { return };
    for f in ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"] {
        let (code, _, err) = m.run_in(&["--read-only"], &["sh", "-c", &format!("echo x >> {f}")]);
        assert_ne!(code, 0, "{f} writable under --read-only");
        assert!(err.contains("Read-only file system"), "{f}: {err}");
        let (code, _, err) = m.run_in(&[], &["sh", "-c", &format!("echo x >> {f}")]);
        assert_eq!(code, 0, "{f} not writable without --read-only: {err}");
    }
}

#[test]
fn dockers_masked_and_read_only_paths() {
    let Some(m) = Mini::new() else { return };
    // Masked: empty (a directory that exists on the host shows nothing).
    for d in ["/proc/acpi", "/proc/asound", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"] {
        let (code, out, err) = m.run_in(&[], &["sh", "-c", &format!("ls -A {d} 2>/dev/null | wc -l")]);
        assert_eq!((code, out.trim()), (0, "0"), "{d} not masked: {err}");
    }
    for f in ["/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/sched_debug"] {
        let (code, out, err) = m.run_in(&[], &["sh", "-c", &format!("cat {f} 2>/dev/null | wc -c")]);
        assert_eq!((code, out.trim()), (0, "0"), "{f} not masked: {err}");
    }
    // Read-only: a bind of itself, mounted ro (where the host has the path).
    for p in ["/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs"] {
        if !std::path::Path::new(p).exists() {
            let (_, out, _) = m.run_in(&[], &["sh", "-c", &format!("test -e {p} && echo present")]);
            assert_eq!(out, "", "{p} is absent on this host, and so in the container");
            continue;
        }
        let (_, out, _) = m.run_in(&[], &["sh", "-c", &format!("grep -E ' {p} ' /proc/self/mountinfo")]);
        assert!(
            out.lines().any(|l| l.split_whitespace().nth(5).is_some_and(|o| o.split(',').any(|x| x == "ro"))),
            "{p}: {out}"
        );
    }
}

#[test]
fn no_new_privileges_is_off_by_default_and_on_when_asked() {
    let Some(m) = Mini::new() else { return };
    let nnp = |flags: &[&str]| {
        let (code, out, err) = m.run_in(flags, &["grep", "NoNewPrivs", "/proc/self/status"]);
        assert_eq!(code, 0, "{err}");
        out.split_whitespace().last().unwrap_or_default().to_string()
    };
    assert_eq!(nnp(&[]), "0", "Docker's default lets setuid binaries work");
    assert_eq!(nnp(&["--security-opt", "no-new-privileges"]), "1");
    assert_eq!(nnp(&["--security-opt", "no-new-privileges=false"]), "0");
    // The seccomp filter is there either way.
    let (_, out, _) = m.run_in(&[], &["grep", "Seccomp:", "/proc/self/status"]);
    assert_eq!(out.split_whitespace().last(), Some("2"), "{out}");

    let (code, _, err) = m.run_in(&["--security-opt", "label=disable"], &["true"]);
    assert_eq!(code, 125);
    assert!(err.starts_with("mini: invalid --security-opt \"label=disable\""), "{err}");
    assert!(m.containers().is_empty(), "a refused run left a container");
}

#[test]
fn seccomp_profiles_from_a_file_unconfined_and_bad_ones() {
    let Some(m) = Mini::new() else { return };
    let seccomp = |flags: &[&str]| {
        let (code, out, err) = m.run_in(flags, &["grep", "Seccomp:", "/proc/self/status"]);
        assert_eq!(code, 0, "{err}");
        out.split_whitespace().last().unwrap_or_default().to_string()
    };
    assert_eq!(seccomp(&["--security-opt", "seccomp=unconfined"]), "0");
    // A profile in Docker's format: everything allowed but mkdir, and
    // chroot only with a capability the container does not hold.
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("profile.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
                        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": []}],
            "syscalls": [
              {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
              {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_SYS_ADMIN"]}}
            ]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let (code, out, _) =
        m.run_in(&["--security-opt", &opt], &["sh", "-c", "mkdir /tmp/d; echo $?; rmdir /tmp; echo $?"]);
    assert_eq!((code, out.as_str()), (0, "1\n0\n"), "mkdir refused; rmdir's rule needs CAP_SYS_ADMIN, so it works");
    let (code, _, err) = m.run_in(&["--security-opt", &opt], &["mkdir", "/tmp/d"]);
    assert_eq!(code, 1);
    assert!(err.contains("Permission denied"), "errnoRet 13 is EACCES: {err}");
    // The profile is resolved at create: exec gets the same one later.
    let out = m.cmd(&["run", "-d", "--security-opt", &opt, IMAGE, "sleep", "100"]).output().unwrap();
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let exec = m.cmd(&["exec", &id, "mkdir", "/tmp/e"]).output().unwrap();
    let _ = m.cmd(&["rm", "-f", &id]).output();
    assert_eq!(exec.status.code(), Some(1), "exec under the container's profile");

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"defaultAction": "SCMP_ACT_SOMETIMES"}"#).unwrap();
    let cases = [
        (format!("seccomp={}", bad.display()), "unknown variant `SCMP_ACT_SOMETIMES`"),
        ("seccomp=/nonexistent/profile.json".to_string(), "read /nonexistent/profile.json: No such file"),
        ("seccomp=".to_string(), "supported: no-new-privileges"),
    ];
    for (opt, why) in cases {
        let (code, _, err) = m.run_in(&["--security-opt", &opt], &["true"]);
        assert_eq!(code, 125, "{opt}: {err}");
        assert!(err.starts_with(&format!("mini: invalid --security-opt \"{opt}\"")) && err.contains(why), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    }
    assert!(m.containers().is_empty(), "a refused run left a container");
}

#[test]
fn the_monitor_shows_up_as_mini_monitor() {
    let Some(m) = Mini::new() else { return };
    let out = m.cmd(&["run", "-d", IMAGE, "sleep", "100"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let state = std::fs::read(m.root.join("containers").join(&id).join("state.json")).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&state).unwrap();
    let monitor = v["monitor_pid"].as_i64().unwrap();
    let comm = std::fs::read_to_string(format!("/proc/{monitor}/comm")).unwrap_or_default();
    let cmdline = std::fs::read(format!("/proc/{monitor}/cmdline")).unwrap_or_default();
    let removed = m.cmd(&["rm", "-f", &id]).output().unwrap();
    assert!(removed.status.success());
    assert_eq!(comm.trim(), "mini-monitor");
    assert!(cmdline.starts_with(b"mini-monitor\0"), "{:?}", String::from_utf8_lossy(&cmdline));
    assert!(String::from_utf8_lossy(&cmdline).contains(&id));
}

/// The effective capability mask (hex) the container's root has.
fn cap_eff(m: &Mini, flags: &[&str]) -> (i32, String, String) {
    m.run_in(flags, &["sh", "-c", "grep CapEff /proc/self/status | cut -f2"])
}

#[test]
fn cap_add_and_cap_drop_change_the_set_as_dockers_do() {
    let Some(m) = Mini::new() else { return };
    let (code, out, err) = cap_eff(&m, &[]);
    assert_eq!((code, out.trim()), (0, "00000000a80425fb"), "Docker's 14: {err}");
    let (code, out, _) = cap_eff(&m, &["--cap-drop", "ALL"]);
    assert_eq!((code, out.trim()), (0, "0000000000000000"));
    let (code, out, _) = cap_eff(&m, &["--cap-drop", "all", "--cap-add", "kill"]);
    assert_eq!((code, out.trim()), (0, "0000000000000020"), "CAP_KILL alone");
    // Dropped: chown fails even for root.
    let (code, _, err) = m.run_in(&["--cap-drop", "CHOWN"], &["chown", "1000", "/etc/passwd"]);
    assert_ne!(code, 0, "chown without CAP_CHOWN: {err}");
    // Added: CAP_SYS_ADMIN also opens the syscalls Docker's profile opens
    // for it, so a mount works.
    let (code, out, err) = m.run_in(
        &["--cap-add", "SYS_ADMIN"],
        &["sh", "-c", "mount -t tmpfs none /mnt && grep -c ' /mnt ' /proc/mounts"],
    );
    assert_eq!((code, out.trim()), (0, "1"), "{err}");
    let (code, _, err) = m.run_in(&[], &["mount", "-t", "tmpfs", "none", "/mnt"]);
    assert_ne!(code, 0, "mount without it: {err}");
    // exec gets the container's set.
    let out = m.run(&["run", "-d", "--name", "capped", "--cap-drop", "ALL", IMAGE, "sleep", "1000"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = m.run(&["exec", "capped", "sh", "-c", "grep CapEff /proc/self/status | cut -f2"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0000000000000000");
    assert!(m.run(&["rm", "-f", "capped"]).status.success());
    // Unknown names: one line, 125, nothing made.
    for (flag, name) in [("--cap-add", "BOGUS"), ("--cap-drop", "CAP_NOPE")] {
        let (code, _, err) = m.run_in(&[flag, name], &["true"]);
        assert_eq!(code, 125, "{err}");
        assert!(err.contains(&format!("invalid {flag} \"{name}\"")) && err.contains("unknown capability"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    assert!(m.containers().is_empty());
}

#[test]
fn rename_changes_the_name_and_refuses_a_taken_one() {
    let Some(m) = Mini::new() else { return };
    assert!(m.run(&["create", "--name", "first", IMAGE, "true"]).status.success());
    assert!(m.run(&["create", "--name", "other", IMAGE, "true"]).status.success());
    let out = m.run(&["rename", "first", "second"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ps = String::from_utf8_lossy(&m.run(&["ps", "-a", "--format", "{{.Names}}"]).stdout).to_string();
    assert!(ps.lines().any(|l| l == "second") && !ps.lines().any(|l| l == "first"), "{ps}");
    for (args, needle) in [
        (["rename", "second", "other"], "already in use"),
        (["rename", "nosuch", "x1"], "no such container"),
        (["rename", "second", "bad/name"], "invalid --name"),
    ] {
        let out = m.run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{err}");
        assert!(err.contains(needle) && err.lines().count() == 1, "{args:?}: {err}");
    }
    let ps = String::from_utf8_lossy(&m.run(&["ps", "-a", "--format", "{{.Names}}"]).stdout).to_string();
    let mut names: Vec<&str> = ps.lines().collect();
    names.sort();
    assert_eq!(names, ["other", "second"]);
}

#[test]
fn completions_man_pages_and_version_come_from_the_command_line_itself() {
    let mini = env!("CARGO_BIN_EXE_mini");
    let out = |args: &[&str]| std::process::Command::new(mini).args(args).output().unwrap();
    let bash = out(&["completion", "bash"]);
    assert!(bash.status.success());
    let script = String::from_utf8_lossy(&bash.stdout).to_string();
    assert!(script.contains("complete -F _mini") && script.contains("network") && script.contains("--publish"));
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &script).unwrap();
    let check = std::process::Command::new("bash").arg("-n").arg(file.path()).status().unwrap();
    assert!(check.success(), "bash -n of the completion script");
    assert!(String::from_utf8_lossy(&out(&["completion", "zsh"]).stdout).starts_with("#compdef mini"));
    assert!(String::from_utf8_lossy(&out(&["completion", "fish"]).stdout).contains("complete -c mini"));
    let bad = out(&["completion", "tcsh"]);
    assert_eq!(bad.status.code(), Some(125));
    let dir = tempfile::tempdir().unwrap();
    assert!(out(&["man", dir.path().to_str().unwrap()]).status.success());
    for page in ["mini.1", "mini-run.1", "mini-network-create.1", "mini-push.1"] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH"), "{page} is a man page");
    }
    let version = String::from_utf8_lossy(&out(&["version"]).stdout).to_string();
    assert!(version.starts_with(&format!("mini version {}", env!("CARGO_PKG_VERSION"))), "{version}");
    assert!(version.contains("Cgroups:"), "{version}");
}

#[test]
fn ulimits_apply_to_the_container_and_exec_and_are_checked_at_create() {
    let Some(m) = Mini::new() else { return };
    let (code, out, err) = m.run_in(&["--ulimit", "nofile=1024:2048"], &["sh", "-c", "ulimit -n; ulimit -Hn"]);
    assert_eq!((code, out.as_str()), (0, "1024\n2048\n"), "{err}");
    let out = m.run(&["run", "-d", "--name", "limited", "--ulimit", "nproc=300", IMAGE, "sleep", "1000"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = m.run(&["exec", "limited", "sh", "-c", "ulimit -u"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "300\n");
    assert!(m.run(&["rm", "-f", "limited"]).status.success());
    // Above mini's own hard limit: refused at create unless mini could
    // raise it (this host's root lacks CAP_SYS_RESOURCE; see HOST-NOTES).
    let hard: u64 = std::fs::read_to_string("/proc/self/limits")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4).and_then(|v| v.parse().ok()))
        .unwrap();
    let above = format!("nofile={0}:{0}", hard + 1);
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let eff = status.lines().find_map(|l| l.strip_prefix("CapEff:")).unwrap().trim();
    let can_raise = u64::from_str_radix(eff, 16).unwrap() & (1 << 24) != 0; // CAP_SYS_RESOURCE
    let (code, out, err) = m.run_in(&["--ulimit", &above], &["sh", "-c", "ulimit -Hn"]);
    if can_raise {
        assert_eq!((code, out.trim()), (0, (hard + 1).to_string().as_str()), "{err}");
    } else {
        assert_eq!(code, 125, "{err}");
        assert!(err.contains("cannot raise without CAP_SYS_RESOURCE") && err.lines().count() == 1, "{err}");
    }
    for bad in ["bogus=1", "nofile=9:3", "nofile"] {
        let (code, _, err) = m.run_in(&["--ulimit", bad], &["true"]);
        assert_eq!(code, 125, "{bad}: {err}");
        assert!(err.contains(&format!("invalid --ulimit \"{bad}\"")), "{err}");
    }
    assert!(m.containers().is_empty());
}

#[test]
fn shm_size_sets_dev_shm_and_defaults_to_dockers_64m() {
    let Some(m) = Mini::new() else { return };
    let size = "df -k /dev/shm | tail -1 | awk '{print $2}'";
    let (code, out, err) = m.run_in(&[], &["sh", "-c", size]);
    assert_eq!((code, out.trim()), (0, "65536"), "{err}");
    let (code, out, err) = m.run_in(&["--shm-size", "128m"], &["sh", "-c", size]);
    assert_eq!((code, out.trim()), (0, "131072"), "{err}");
    for bad in ["lots", "1"] {
        let (code, _, err) = m.run_in(&["--shm-size", bad], &["true"]);
        assert_eq!(code, 125, "{err}");
        assert!(err.contains(&format!("invalid --shm-size \"{bad}\"")) && err.lines().count() == 1, "{err}");
    }
    assert!(m.containers().is_empty());
}

#[test]
fn sysctls_are_set_in_the_containers_namespaces_only() {
    let Some(m) = Mini::new() else { return };
    let host = std::fs::read_to_string("/proc/sys/kernel/shmmax").unwrap();
    let (code, out, err) = m.run_in(
        &["--sysctl", "kernel.shmmax=12345678", "--sysctl", "net.ipv4.ip_forward=1", "--network", "none"],
        &["cat", "/proc/sys/kernel/shmmax", "/proc/sys/net/ipv4/ip_forward"],
    );
    assert_eq!((code, out.as_str()), (0, "12345678\n1\n"), "{err}");
    assert_eq!(std::fs::read_to_string("/proc/sys/kernel/shmmax").unwrap(), host, "the host's value changed");
    // /proc/sys is still read-only for the command.
    let (code, _, _) =
        m.run_in(&["--sysctl", "kernel.shmmax=12345678"], &["sh", "-c", "echo 1 > /proc/sys/kernel/shmmax"]);
    assert_ne!(code, 0);
    for (flags, needle) in [
        (
            vec!["--sysctl", "kernel.core_pattern=x"],
            "invalid --sysctl \"kernel.core_pattern=x\": not a namespaced sysctl",
        ),
        (vec!["--sysctl", "vm.swappiness=1"], "not a namespaced sysctl"),
        (vec!["--network", "host", "--sysctl", "net.ipv4.ip_forward=1"], "own network namespace"),
        (vec!["--sysctl", "kernel.shmmax"], "expected KEY=VALUE"),
        (vec!["--sysctl", "kernel.shmmax=lots"], "set sysctl kernel.shmmax"),
        (vec!["--sysctl", "net.ipv4.no_such_thing=1"], "no such setting"),
    ] {
        let (code, _, err) = m.run_in(&flags, &["true"]);
        assert_eq!(code, 125, "{flags:?}: {err}");
        assert!(err.contains(needle) && err.lines().count() == 1, "{flags:?}: {err}");
    }
    assert!(m.containers().is_empty());
}

#[test]
fn devices_are_bound_and_allowed_in_the_device_cgroup() {
    let Some(m) = Mini::new() else { return };
    // /dev/fuse (10:229) is not among the devices every container gets.
    let (code, out, err) = m.run_in(&[], &["sh", "-c", "test -e /dev/fuse || echo absent"]);
    assert_eq!((code, out.as_str()), (0, "absent\n"), "{err}");
    let (code, out, err) =
        m.run_in(&["--device", "/dev/fuse:/dev/myfuse"], &["sh", "-c", "stat -c '%F %t:%T' /dev/myfuse"]);
    assert_eq!((code, out.as_str()), (0, "character special file a:e5\n"), "{err}");
    // Opening it is up to the device cgroup rule: with `r`, a write open is refused.
    let open_rw = "exec 3<>/dev/fuse && echo opened";
    let (code, out, err) = m.run_in(&["--device", "/dev/fuse"], &["sh", "-c", open_rw]);
    assert_eq!((code, out.as_str()), (0, "opened\n"), "{err}");
    let (code, _, err) = m.run_in(&["--device", "/dev/fuse:r"], &["sh", "-c", open_rw]);
    assert_ne!(code, 0, "write open allowed by an `r` rule");
    assert!(err.contains("Operation not permitted"), "{err}");
    for (spec, needle) in [
        ("/dev/nope", "invalid --device \"/dev/nope\": /dev/nope: No such file or directory"),
        ("/etc/passwd", "is not a device node"),
        ("/dev/fuse:/dev/f:rx", "bad mode"),
        ("/dev/fuse:/proc/x", "cannot mount under /proc"),
    ] {
        let (code, _, err) = m.run_in(&["--device", spec], &["true"]);
        assert_eq!(code, 125, "{spec}: {err}");
        assert!(err.contains(needle) && err.lines().count() == 1, "{spec}: {err}");
    }
    assert!(m.containers().is_empty());
}

#[test]
fn privileged_has_every_capability_no_filter_no_masks_and_the_hosts_devices() {
    let Some(m) = Mini::new() else { return };
    let mine = std::fs::read_to_string("/proc/self/status").unwrap();
    let eff = mine.lines().find_map(|l| l.strip_prefix("CapEff:")).unwrap().trim().to_string();
    let script = "grep -E '^(CapEff|Seccomp):' /proc/self/status | cut -f2; \
                  grep -cE ' /proc/(kcore|keys|sys) ' /proc/self/mountinfo; \
                  awk '$5 == \"/sys\" { split($6, o, \",\"); print o[1] }' /proc/self/mountinfo; \
                  test -c /dev/fuse && test -b /dev/loop0 && echo devices";
    let (code, out, err) = m.run_in(&["--privileged"], &["sh", "-c", script]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("{eff}\n0\n0\nrw\ndevices\n"));
    // Without it: Docker's 14, the filter (2), masks and a read-only /sys.
    let (_, out, _) = m.run_in(&[], &["sh", "-c", script]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..2], ["00000000a80425fb", "2"]);
    assert_ne!(lines[2], "0");
    assert!(lines[3].starts_with("ro"), "{out}");
    // exec in a privileged container gets no filter either.
    let out = m.run(&["run", "-d", "--name", "priv", "--privileged", IMAGE, "sleep", "1000"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = m.run(&["exec", "priv", "grep", "Seccomp:", "/proc/self/status"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).split_whitespace().last(), Some("0"));
    assert!(m.run(&["rm", "-f", "priv"]).status.success());
    assert!(m.containers().is_empty());
}

#[test]
fn go_templates_format_listings_and_inspect_and_bad_ones_are_refused() {
    let Some(m) = Mini::new() else { return };
    let ok = |args: &[&str]| {
        let o = m.cmd(args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let id = ok(&["run", "-d", "--name", "tmpl", IMAGE, "sleep", "100"]).trim().to_string();
    let ps = ok(&["ps", "--format", "{{.Names}} {{.State}} {{len .ID}}"]);
    let table = ok(&["ps", "--format", "table {{.Names}}\\t{{upper .State}}"]);
    let inspect = ok(&["inspect", "-f", "{{.Name}} {{.State.Running}} {{json .Config.Cmd}}", "tmpl"]);
    let images = ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let json_line = ok(&["ps", "--format", "{{json .}}"]);
    let _ = m.cmd(&["rm", "-f", &id]).output();
    assert_eq!(ps, "tmpl running 12\n");
    assert_eq!(table, "NAMES   STATE\ntmpl    RUNNING\n");
    assert_eq!(inspect, "/tmpl true [\"sleep\",\"100\"]\n");
    assert_eq!(images, format!("{IMAGE}\n"));
    let v: serde_json::Value = serde_json::from_str(json_line.trim()).unwrap();
    assert_eq!(v["Names"], "tmpl");
    ok(&["volume", "create", "vol1"]);
    assert_eq!(ok(&["volume", "ls", "--format", "{{.Driver}}/{{.Name}}"]), "local/vol1\n");

    for (args, bad) in [
        (&["ps", "--format", "{{.Names"][..], "{{.Names"),
        (&["images", "--format", "{{nosuch .ID}}"][..], "{{nosuch .ID}}"),
        (&["inspect", "-f", "{{end}}", "vol1"][..], "{{end}}"),
    ] {
        let o = m.cmd(args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {err}");
        assert!(err.starts_with(&format!("mini: invalid --format \"{bad}\"")), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(o.stdout.is_empty());
    }
}

#[test]
fn info_and_system_df_count_what_the_store_holds() {
    let Some(m) = Mini::new() else { return };
    let ok = |args: &[&str]| {
        let o = m.cmd(args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let script = "dd if=/dev/zero of=/data/f bs=1k count=200 2>/dev/null; dd if=/dev/zero of=/big bs=1k count=300 2>/dev/null; echo ready; sleep 100";
    let id = ok(&["run", "-d", "-v", "dfvol:/data", IMAGE, "sh", "-c", script]).trim().to_string();
    ok(&["volume", "create", "spare"]);
    ok(&["create", IMAGE, "true"]);
    support::wait_for(std::time::Duration::from_secs(10), "the container's writes", || {
        ok(&["logs", &id]).contains("ready").then_some(())
    });
    let info = ok(&[
        "info",
        "--format",
        "{{.Containers}} {{.ContainersRunning}} {{.ContainersStopped}} {{.Images}} {{.Volumes}} {{.CgroupDriver}}",
    ]);
    let df = ok(&["system", "df", "--format", "{{.Type}}|{{.TotalCount}}|{{.Active}}|{{.Reclaimable}}"]);
    let plain = ok(&["info"]);
    let _ = m.cmd(&["rm", "-f", &id]).output();
    assert_eq!(info, "2 1 1 1 2 cgroupfs\n");
    let lines: Vec<&str> = df.lines().collect();
    assert_eq!(lines[0], "Images|1|1|0B (0%)", "{df}");
    assert!(lines[1].starts_with("Containers|2|1|0B"), "the created container wrote nothing: {df}");
    assert!(lines[2].starts_with("Local Volumes|2|1|0B"), "spare is empty: {df}");
    assert!(plain.contains("Cgroup Driver: cgroupfs") && plain.contains("Storage Driver: overlay"), "{plain}");
    let table = ok(&["system", "df"]);
    assert!(table.starts_with("TYPE            TOTAL   ACTIVE   SIZE"), "{table}");
}

#[test]
fn events_record_what_happened_and_follow_new_ones() {
    let Some(m) = Mini::new() else { return };
    let ok = |args: &[&str]| {
        let o = m.cmd(args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let since =
        format!("{:.3}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64());
    let (code, _, _) = m.run_in(&["--name", "evrm"], &["sh", "-c", "exit 3"]);
    assert_eq!(code, 3);
    let id = ok(&["run", "-d", "--name", "evd", IMAGE, "sleep", "100"]).trim().to_string();
    ok(&["pause", "evd"]);
    ok(&["unpause", "evd"]);
    ok(&["rename", "evd", "evd2"]);
    ok(&["stop", "-t", "0", "evd2"]);
    ok(&["rm", "evd2"]);
    let show = |filters: &[&str]| {
        let mut args = vec![
            "events",
            "--since",
            &since,
            "--until",
            "0s",
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}",
        ];
        args.extend_from_slice(filters);
        ok(&args)
    };
    let rm_run = show(&["--filter", "container=evrm"]);
    assert_eq!(rm_run, "container create evrm <no value>\ncontainer start evrm <no value>\ncontainer die evrm 3\ncontainer destroy evrm <no value>\n");
    let by_id: Vec<String> = show(&["--filter", &format!("container={}", &id[..12])])
        .lines()
        .map(|l| l.split(' ').nth(1).unwrap().to_string())
        .collect();
    // stop -t 0: TERM, then KILL at once, as Docker records them.
    assert_eq!(by_id, ["create", "start", "pause", "unpause", "rename", "kill", "kill", "die", "stop", "destroy"]);
    let dies = show(&["--filter", "event=die", "--filter", "type=container"]);
    assert_eq!(dies.lines().count(), 2, "{dies}");

    // Following: a volume made after `events` started shows up.
    let mut follow = m
        .cmd(&["events", "--filter", "type=volume", "--format", "{{.Action}} {{.Actor.ID}}"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    ok(&["volume", "create", "evvol"]);
    ok(&["volume", "rm", "evvol"]);
    let mut out = follow.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        let mut text = String::new();
        while !text.contains("destroy evvol\n") {
            match std::io::Read::read(&mut out, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
        text
    });
    support::wait_for(std::time::Duration::from_secs(10), "the followed events", || reader.is_finished().then_some(()));
    let _ = follow.kill();
    let _ = follow.wait();
    assert_eq!(reader.join().unwrap(), "create evvol\ndestroy evvol\n");

    for (args, start) in [
        (&["events", "--since", "soon"][..], "mini: invalid --since \"soon\""),
        (&["events", "--filter", "label=x", "--until", "0s"][..], "mini: invalid filter \"label=x\""),
        (&["events", "--format", "{{.Type", "--until", "0s"][..], "mini: invalid --format \"{{.Type\""),
    ] {
        let o = m.cmd(args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {err}");
        assert!(err.starts_with(start) && err.trim_end().lines().count() == 1, "{err}");
    }
}

#[test]
fn inspect_shows_entrypoint_and_cmd_apart() {
    let Some(m) = Mini::new() else { return };
    let show = |args: &[&str]| {
        let o = m.cmd(args).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let id = String::from_utf8_lossy(&o.stdout).trim().to_string();
        let f = m.cmd(&["inspect", "-f", "{{json .Config.Entrypoint}} {{json .Config.Cmd}}", &id]).output().unwrap();
        let _ = m.cmd(&["rm", "-f", &id]).output();
        String::from_utf8_lossy(&f.stdout).into_owned()
    };
    assert_eq!(show(&["create", "--entrypoint", "sh", IMAGE, "-c", "sleep 1"]), "[\"sh\"] [\"-c\",\"sleep 1\"]\n");
    assert_eq!(show(&["create", IMAGE, "echo", "hi"]), "null [\"echo\",\"hi\"]\n");
}
