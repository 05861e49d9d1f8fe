//! Rootless mini: pull, run, exec, logs, export and the user-mode network
//! as an ordinary user (`minitest`, with a subordinate id range; and
//! `mininorange`, without one), and the clear failures of what cannot
//! work. See docs/rootless.md.

mod support;

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use support::rootless::{Rootless, WITHOUT_RANGE, WITH_RANGE};
use support::{pty::Pty, IMAGE};

/// minitest's first subordinate uid and gid (.ci/rootless-users).
const SUB: u32 = 100000;

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = [0u8; 64];
    // SAFETY: lgetxattr into a local buffer of the given size.
    let len = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| buf[..len as usize].to_vec())
}

fn layer_dirs(r: &Rootless) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(r.store().join("layers"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path().join("diff")))
        .filter(|p| p.is_dir())
        .collect()
}

#[test]
fn pull_unpacks_owned_by_the_user_in_the_user_overlay_form() {
    let Some(r) = Rootless::new(WITH_RANGE) else { return };
    assert_eq!(std::fs::read_to_string(r.store().join("overlay-form")).unwrap().trim(), "user");
    let layers = layer_dirs(&r);
    assert_eq!(layers.len(), 2, "{layers:?}");
    // Root-owned files in the image are the user's own on the host.
    let sh = layers.iter().map(|d| d.join("bin/busybox")).find(|p| p.exists()).expect("busybox in a layer");
    assert_eq!(std::fs::metadata(&sh).unwrap().uid(), r.uid);
    // Layer 2's opaque directory and whiteout, in the form overlay reads
    // under userxattr (trusted.* cannot be set in a user namespace).
    let opq = layers.iter().map(|d| d.join("opt/replaced")).find(|p| p.is_dir()).expect("opaque dir");
    assert_eq!(xattr(&opq, "user.overlay.opaque").as_deref(), Some(&b"y"[..]));
    assert_eq!(xattr(&opq, "trusted.overlay.opaque"), None);
    let wh = layers.iter().map(|d| d.join("etc/removed-later")).find(|p| p.symlink_metadata().is_ok()).unwrap();
    let m = wh.symlink_metadata().unwrap();
    assert!(m.file_type().is_char_device() && m.rdev() == 0, "whiteout {wh:?} is {m:?}");
    // The store stays an OCI layout.
    assert!(r.store().join("oci-layout").is_file() && r.store().join("index.json").is_file());
    // ... that root's mini refuses, as the rootless one refuses root's.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mini"))
        .args(["--root", r.store().to_str().unwrap(), "images"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains("overlay's user.* form, which root cannot use"), "{err}");
}

#[test]
fn run_is_root_inside_with_every_namespace_and_mapped_ids_outside() {
    let Some(r) = Rootless::new(WITH_RANGE) else { return };
    let vol = r.dir.join("vol");
    std::fs::create_dir(&vol).unwrap();
    std::os::unix::fs::chown(&vol, Some(r.uid), Some(r.gid)).unwrap();
    let v = format!("{}:/v", vol.display());
    let script = "id -u; id -g; for n in pid uts ipc mnt net cgroup user; do readlink /proc/self/ns/$n; done; \
                  touch /v/by-root; touch /v/by-app && chown 1000:1000 /v/by-app; exit 3";
    let (code, out, err) = r.run(&["run", "--rm", "-v", &v, IMAGE, "sh", "-c", script]);
    assert_eq!(code, 3, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..2], ["0", "0"], "{out}");
    for (i, n) in ["pid", "uts", "ipc", "mnt", "net", "cgroup", "user"].iter().enumerate() {
        let host = std::fs::read_link(format!("/proc/self/ns/{n}")).unwrap();
        assert_ne!(lines[2 + i], host.to_str().unwrap(), "{n} namespace shared with the host");
    }
    let owner = |f: &str| {
        let m = std::fs::metadata(vol.join(f)).unwrap();
        (m.uid(), m.gid())
    };
    assert_eq!(owner("by-root"), (r.uid, r.gid), "container root is the user");
    assert_eq!(owner("by-app"), (SUB + 999, SUB + 999), "container uid 1000 is the user's 1000th subuid");
    assert!(r.containers().is_empty(), "--rm left {:?}", r.containers());
}

/// A rootfs tarball with busybox, files owned by 1000:1000 and a device
/// node, imported as the user: owners kept, the device skipped with a note.
#[test]
fn image_with_other_owners_and_a_device_node() {
    let Some(r) = Rootless::new(WITH_RANGE) else { return };
    let tarball = r.dir.join("rootfs.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&tarball).unwrap());
    let mut add = |path: &str, kind: tar::EntryType, mode: u32, ids: u64, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(ids);
        h.set_gid(ids);
        h.set_size(data.len() as u64);
        if kind == tar::EntryType::Char {
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
        }
        b.append_data(&mut h, path, data).unwrap();
    };
    let busybox = std::fs::read("/bin/busybox").expect("busybox-static installed");
    add("bin/", tar::EntryType::Directory, 0o755, 0, b"");
    add("bin/busybox", tar::EntryType::Regular, 0o755, 0, &busybox);
    add("home/app/", tar::EntryType::Directory, 0o750, 1000, b"");
    add("home/app/notes", tar::EntryType::Regular, 0o640, 1000, b"mine\n");
    add("dev/", tar::EntryType::Directory, 0o755, 0, b"");
    add("dev/mynull", tar::EntryType::Char, 0o666, 0, b"");
    b.into_inner().unwrap();
    std::os::unix::fs::chown(&tarball, Some(r.uid), None).unwrap();
    let (code, _, err) = r.run(&["import", tarball.to_str().unwrap(), "owners:1"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("skipped 1 device node"), "no note about the device: {err}");
    let out = r.ok(&[
        "run",
        "--rm",
        "owners:1",
        "/bin/busybox",
        "sh",
        "-c",
        "/bin/busybox stat -c '%u:%g %a' /home/app /home/app/notes; /bin/busybox cat /home/app/notes",
    ]);
    assert_eq!(out, "1000:1000 750\n1000:1000 640\nmine\n");
    let notes = layer_dirs(&r).into_iter().map(|d| d.join("home/app/notes")).find(|p| p.exists()).unwrap();
    let m = std::fs::metadata(notes).unwrap();
    assert_eq!((m.uid(), m.gid()), (SUB + 999, SUB + 999));
}

#[test]
fn a_terminal_works_rootless() {
    let Some(r) = Rootless::new(WITH_RANGE) else { return };
    let pty = Pty::open(24, 80);
    let mut cmd = r.cmd(&["run", "--rm", "-it", IMAGE, "sh", "-c", "tty; read l; echo got:$l; exit 5"]);
    pty.attach(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    std::thread::sleep(std::time::Duration::from_millis(1000));
    pty.send(b"typed\r");
    assert_eq!(child.wait().unwrap().code(), Some(5));
    let out = pty.output();
    assert!(out.contains("/dev/pts/0") && out.contains("got:typed"), "{out:?}");
}

#[test]
fn detached_container_logs_exec_stop_export_rm() {
    let Some(r) = Rootless::new(WITH_RANGE) else { return };
    let id = r.ok(&["run", "-d", "--name", "svc", IMAGE, "sh", "-c", "echo started; echo data > /state; sleep 60"]);
    let id = id.trim();
    support::wait_for(std::time::Duration::from_secs(5), "the log line", || {
        r.ok(&["logs", "svc"]).contains("started").then_some(())
    });
    assert!(r.ok(&["ps"]).contains("svc"));
    assert_eq!(r.ok(&["exec", "svc", "sh", "-c", "id -u; cat /state"]), "0\ndata\n");
    let (code, _, err) = r.run(&["exec", "svc", "nonexistent-cmd"]);
    assert_eq!(code, 127, "{err}");
    r.ok(&["stop", "-t", "1", "svc"]);
    assert!(r.ok(&["ps", "-a"]).contains("Exited (137)") || r.ok(&["ps", "-a"]).contains("Exited (143)"));
    let tar = r.output(&["export", "svc"]);
    assert!(tar.status.success());
    let names: Vec<String> = tar::Archive::new(&tar.stdout[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.iter().any(|n| n == "state") && names.iter().any(|n| n == "bin/busybox"), "{names:?}");
    r.ok(&["rm", "svc"]);
    assert!(!r.containers().contains(&id.to_string()));
    assert!(r.holder().is_some(), "the namespace holder keeps running for the next mini");
}

#[test]
fn read_only_root_and_volumes_the_user_cannot_read() {
    let Some(r) = Rootless::new(WITH_RANGE) else { return };
    let (code, out, _) = r.run(&["run", "--rm", "--read-only", IMAGE, "sh", "-c", "touch /x 2>&1; echo >> /etc/hosts"]);
    assert_ne!(code, 0);
    assert!(out.contains("Read-only file system"), "{out}");
    let secret = r.dir.join("secret");
    std::fs::create_dir(&secret).unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let (code, _, err) = r.run(&["run", "--rm", "-v", &format!("{}:/s", secret.display()), IMAGE, "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("is not readable by you"), "{err}");
    assert!(r.containers().is_empty());
}

#[test]
fn limits_are_refused_where_no_cgroup_is_delegated() {
    let Some(r) = Rootless::new(WITH_RANGE) else { return };
    let v2_delegated = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").is_ok();
    assert!(!v2_delegated, "this test expects a host without a delegated cgroup v2 tree (HOST-NOTES: v1 hybrid)");
    for flags in [&["-m", "64m"][..], &["--pids-limit", "10"], &["--cpus", "0.5"]] {
        let mut args = vec!["run", "--rm"];
        args.extend(flags);
        args.extend([IMAGE, "true"]);
        let (code, _, err) = r.run(&args);
        assert_eq!(code, 125, "{flags:?}: {err}");
        assert!(err.contains("rootless mini has no cgroup of its own") && err.contains("cgroup v2"), "{err}");
    }
    assert!(r.containers().is_empty());
    // Without limits it runs, without cgroups of its own, and stats says so.
    r.ok(&["run", "-d", "--name", "st", IMAGE, "sleep", "30"]);
    let (code, _, err) = r.run(&["stats", "--no-stream", "st"]);
    assert_eq!(code, 125);
    assert!(err.contains("mini cannot measure it"), "{err}");
}

#[test]
fn without_a_subid_range_only_the_users_own_id_maps() {
    let Some(r) = Rootless::new(WITHOUT_RANGE) else { return };
    // The note came with the namespace (made by the pull), once.
    let (code, out, err) = r.run(&["run", "--rm", IMAGE, "sh", "-c", "id -u; cat /proc/self/uid_map; chown 1000 /tmp"]);
    assert_ne!(code, 0, "chown to an unmapped id must fail: {out}");
    assert!(!err.contains("note:"), "the note is said once, not on every run: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"0"), "{out} {err}");
    assert_eq!(lines[1].split_whitespace().collect::<Vec<_>>(), ["0", &r.uid.to_string(), "1"]);
    assert!(err.contains("chown"), "{err}");
    // A fresh namespace says it again: once per namespace.
    // SAFETY: kill by pid, the holder this test's mini started.
    unsafe { libc::kill(r.holder().unwrap(), libc::SIGKILL) };
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (_, _, err) = r.run(&["images"]);
    assert_eq!(err.matches("no range").count(), 1, "{err}");
    assert!(err.contains("usermod --add-subuids"), "{err}");
}

#[test]
fn published_port_and_outbound_through_pasta() {
    let Some(r) = Rootless::new(WITH_RANGE) else { return };
    let ns = r.netns.as_ref().unwrap();
    // A server on the test namespace's loopback: pasta maps the gateway
    // address to it, which is how a container reaches its host.
    let www = r.dir.join("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::write(www.join("index.html"), "from-the-host\n").unwrap();
    let mut server = ns.cmd("busybox", &["httpd", "-f", "-p", "127.0.0.1:18091", "-h", www.to_str().unwrap()]);
    let mut server = server.spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = r.ok(&["run", "--rm", "--network", "pasta", IMAGE, "wget", "-q", "-O-", "http://10.77.0.1:18091/"]);
    assert_eq!(out, "from-the-host\n");
    let web = "mkdir /www && echo served-by-container > /www/index.html && httpd -f -p 80 -h /www";
    r.ok(&["run", "-d", "--name", "web", "--network", "pasta", "-p", "18092:80", IMAGE, "sh", "-c", web]);
    let fetched = support::poll_until(std::time::Duration::from_secs(5), || {
        let (code, out, _) = ns.run("busybox", &["wget", "-q", "-O-", "http://127.0.0.1:18092/"]);
        (code == 0).then_some(out)
    });
    assert_eq!(fetched.as_deref(), Some("served-by-container\n"));
    let pasta_pid: i32 =
        std::fs::read_to_string(r.store().join("containers").join(r.containers()[0].as_str()).join("pasta.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
    r.ok(&["rm", "-f", "web"]);
    let gone = support::poll_until(std::time::Duration::from_secs(5), || {
        (!Path::new(&format!("/proc/{pasta_pid}")).exists()).then_some(())
    });
    assert!(gone.is_some(), "pasta outlived its container");
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn failures_are_one_clear_line_and_leave_nothing() {
    let Some(mut r) = Rootless::new(WITH_RANGE) else { return };
    let low = r.run(&["run", "--rm", "--network", "pasta", "-p", "80:80", IMAGE, "true"]);
    assert_eq!(low.0, 125);
    assert!(low.2.contains("from 1024 (net.ipv4.ip_unprivileged_port_start)"), "{}", low.2);
    let bridge = r.run(&["run", "--rm", "--network", "bridge", IMAGE, "true"]);
    assert_eq!(bridge.0, 125);
    assert!(bridge.2.contains("rootless mini cannot make bridges"), "{}", bridge.2);
    let userns = r.run(&["run", "--rm", "--userns", "auto", IMAGE, "true"]);
    assert_eq!(userns.0, 125);
    assert!(r.containers().is_empty(), "{:?}", r.containers());
    // A runtime dir that is not the user's.
    r.env = vec![("XDG_RUNTIME_DIR".into(), "/root".into())];
    let (code, _, err) = r.run(&["images"]);
    assert_eq!(code, 125);
    assert!(err.contains("owned by uid 0, not by you"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    r.env.clear();
}

#[test]
fn no_newuidmap_and_a_store_without_user_xattrs() {
    let Some(mut r) = Rootless::empty(WITH_RANGE) else { return };
    // newuidmap not on PATH: the range cannot be mapped.
    r.env = vec![("PATH".into(), "/nonexistent".into())];
    let (code, _, err) = r.run(&["images"]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("newuidmap is not installed") && err.contains("uidmap package"), "{err}");
    assert!(r.holder().is_none(), "a half-made namespace was left");
    r.env.clear();
    // A store on ramfs, which takes no xattrs at all.
    let mnt = r.dir.join("ramfs");
    std::fs::create_dir(&mnt).unwrap();
    let st = std::process::Command::new("mount").args(["-t", "ramfs", "ramfs", mnt.to_str().unwrap()]).status();
    assert!(st.unwrap().success(), "mount ramfs");
    std::os::unix::fs::chown(&mnt, Some(r.uid), Some(r.gid)).unwrap();
    let (code, _, err) = r.run(&["--root", mnt.join("store").to_str().unwrap(), "images"]);
    let _ = std::process::Command::new("umount").arg(&mnt).status();
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("takes no user.* xattrs"), "{err}");
}

#[test]
fn host_network_binds_the_hosts_sys_read_only() {
    let Some(r) = Rootless::new(WITH_RANGE) else { return };
    // In a network namespace its user namespace does not own, a fresh
    // sysfs is refused (EPERM): the run succeeding at all is the bind,
    // which shows the interfaces of the namespace /sys was mounted for.
    let out = r.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        IMAGE,
        "sh",
        "-c",
        "grep ' /sys ' /proc/mounts; ls /sys/class/net; touch /sys/x 2>&1; true",
    ]);
    assert!(out.contains(" /sys sysfs ro,"), "{out}");
    assert!(out.contains("lo\n"), "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
}

/// Processes of `uid` whose command is `comm`.
fn processes(uid: u32, comm: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let c = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let owner = std::fs::metadata(format!("/proc/{pid}")).map(|m| m.uid()).unwrap_or(0);
            c.trim() == comm && owner == uid
        })
        .collect()
}

#[test]
fn slirp4netns_is_the_default_where_pasta_is_missing() {
    let Some(mut r) = Rootless::new(WITH_RANGE) else { return };
    let ns = r.netns.as_ref().unwrap();
    let bin = r.dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    for tool in ["newuidmap", "newgidmap", "slirp4netns"] {
        std::os::unix::fs::symlink(format!("/usr/bin/{tool}"), bin.join(tool)).unwrap();
    }
    std::fs::write(r.home().join(".config/mini/config.toml"), "").unwrap(); // the default network
    let www = r.dir.join("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::write(www.join("index.html"), "host-via-slirp\n").unwrap();
    let mut server = ns.cmd("busybox", &["httpd", "-f", "-p", "127.0.0.1:18093", "-h", www.to_str().unwrap()]);
    let mut server = server.spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    r.env = vec![("PATH".into(), bin.display().to_string())];
    let script = "cat /etc/resolv.conf; ip -4 -o addr show eth0; wget -q -O- http://10.0.2.2:18093/";
    let out = r.ok(&["run", "--rm", IMAGE, "sh", "-c", script]);
    assert!(out.contains("nameserver 10.0.2.3") && out.contains("10.0.2."), "{out}");
    assert!(out.ends_with("host-via-slirp\n"), "{out}");
    let ended = support::poll_until(std::time::Duration::from_secs(5), || {
        processes(r.uid, "slirp4netns").is_empty().then_some(())
    });
    assert!(ended.is_some(), "slirp4netns outlived the --rm container");
    let web = "mkdir /www && echo via-slirp > /www/index.html && httpd -f -p 80 -h /www";
    r.ok(&["run", "-d", "--name", "web", "-p", "18094:80", IMAGE, "sh", "-c", web]);
    let fetched = support::poll_until(std::time::Duration::from_secs(5), || {
        let (code, out, _) = ns.run("busybox", &["wget", "-q", "-O-", "http://127.0.0.1:18094/"]);
        (code == 0).then_some(out)
    });
    assert_eq!(fetched.as_deref(), Some("via-slirp\n"));
    assert!(!processes(r.uid, "slirp4netns").is_empty());
    r.ok(&["rm", "-f", "web"]);
    let gone = support::poll_until(std::time::Duration::from_secs(5), || {
        processes(r.uid, "slirp4netns").is_empty().then_some(())
    });
    assert!(gone.is_some(), "slirp4netns outlived its container");
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn a_lost_namespace_holder_is_replaced_in_the_running_containers_namespace() {
    let Some(r) = Rootless::new(WITH_RANGE) else { return };
    r.ok(&["run", "-d", "--name", "keep", IMAGE, "sleep", "60"]);
    let old = r.holder().expect("a holder");
    let userns = |pid: i32| std::fs::read_link(format!("/proc/{pid}/ns/user")).unwrap();
    let before = userns(old);
    // SAFETY: kill by pid, the holder this test's mini started.
    unsafe { libc::kill(old, libc::SIGKILL) };
    support::wait_for(std::time::Duration::from_secs(5), "the holder to end", || {
        (!Path::new(&format!("/proc/{old}")).exists()).then_some(())
    });
    // exec must reach the container, which needs its user namespace.
    assert_eq!(r.ok(&["exec", "keep", "echo", "reached"]), "reached\n");
    let new = r.holder().expect("a new holder");
    assert_ne!(new, old);
    assert_eq!(userns(new), before, "the new holder holds the running container's namespace");
    r.ok(&["rm", "-f", "keep"]);
}

#[test]
fn unshare_runs_commands_in_the_namespace_and_migrate_ends_it() {
    let Some(r) = Rootless::new(WITH_RANGE) else { return };
    let out = r.ok(&["unshare", "sh", "-c", "id -u; cat /proc/self/uid_map; echo $MINI_STORE"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0", "{out}");
    assert_eq!(lines[1].split_whitespace().collect::<Vec<_>>(), ["0", &r.uid.to_string(), "1"], "{out}");
    assert_eq!(lines[2].split_whitespace().collect::<Vec<_>>(), ["1", &SUB.to_string(), "65536"], "{out}");
    assert_eq!(lines.last().copied(), Some(r.store().to_str().unwrap()));
    // What the user cannot remove from outside (owned by its subuids),
    // it can from inside.
    let (code, _, err) = r.run(&["unshare", "rm", "-rf", r.store().join("trash").to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, _, _) = r.run(&["unshare", "no-such-command"]);
    assert_eq!(code, 127);
    // migrate: refused while a container runs, then the holder ends.
    r.ok(&["run", "-d", "--name", "m1", IMAGE, "sleep", "60"]);
    let (code, _, err) = r.run(&["system", "migrate"]);
    assert_eq!(code, 125);
    assert!(err.contains("1 container(s) run in it"), "{err}");
    r.ok(&["rm", "-f", "m1"]);
    let holder = r.holder().unwrap();
    r.ok(&["system", "migrate"]);
    let gone = support::poll_until(std::time::Duration::from_secs(5), || {
        (!Path::new(&format!("/proc/{holder}")).exists()).then_some(())
    });
    assert!(gone.is_some());
    // Root has no namespace to enter.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mini")).args(["unshare", "true"]).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("it is for rootless mini"));
}
