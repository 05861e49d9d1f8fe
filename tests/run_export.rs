//! `mini export`: the merged filesystem of a modified container, compared
//! with what the container itself saw, with owners, modes, links and
//! xattrs kept and nothing of /proc, /sys, /dev or volumes inside.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Stdio;

use support::{Mini, IMAGE};

const SCRIPT: &str = "echo hello > /new; ln /new /hard; ln -s new /sym; chown 1000:1000 /new; chmod 4755 /new; \
    rm /etc/shadow; rm -r /opt/keep; mkdir -p /deep/er; echo data > /vol/in-volume; \
    mknod /dev-null-copy c 1 3; mkfifo /fifo; \
    find / -xdev | sort";

struct Entry {
    kind: tar::EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    link: Option<String>,
    device: (u32, u32),
    data: Vec<u8>,
    xattrs: BTreeMap<String, Vec<u8>>,
}

fn read_tar(bytes: &[u8]) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    let mut ar = tar::Archive::new(bytes);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().trim_end_matches('/').to_string();
        let mut xattrs = BTreeMap::new();
        if let Ok(Some(pax)) = e.pax_extensions() {
            for x in pax.flatten() {
                if let Some(k) = x.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr.")) {
                    xattrs.insert(k.to_string(), x.value_bytes().to_vec());
                }
            }
        }
        let h = e.header().clone();
        let link = e.link_name().unwrap().map(|l| l.to_string_lossy().to_string());
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.insert(
            path,
            Entry {
                kind: h.entry_type(),
                mode: h.mode().unwrap(),
                uid: h.uid().unwrap(),
                gid: h.gid().unwrap(),
                link,
                device: (h.device_major().ok().flatten().unwrap_or(0), h.device_minor().ok().flatten().unwrap_or(0)),
                data,
                xattrs,
            },
        );
    }
    out
}

#[test]
fn export_matches_the_containers_view() {
    let Some(m) = Mini::new() else { return };
    let vol = m.root.parent().unwrap().join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    let v = format!("{}:/vol", vol.display());
    let out = m.run(&["run", "--name", "ex", "-v", &v, IMAGE, "sh", "-c", SCRIPT]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let seen: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| *l != "/")
        .map(|l| l.trim_start_matches('/').to_string())
        .collect();

    // An xattr set on the container's upper copy must survive.
    let id = m.containers().pop().unwrap();
    let upper_new = m.root.join("containers").join(&id).join("upper/new");
    let c = std::ffi::CString::new(upper_new.display().to_string()).unwrap();
    // SAFETY: valid C strings and buffer.
    let rc = unsafe { libc::lsetxattr(c.as_ptr(), c"user.test".as_ptr(), b"v1".as_ptr().cast(), 2, 0) };
    assert_eq!(rc, 0);

    let file = m.root.parent().unwrap().join("ex.tar");
    let out = m.run(&["export", "ex", "-o", &file.display().to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tar = read_tar(&std::fs::read(&file).unwrap());
    let names: BTreeSet<String> = tar.keys().cloned().collect();
    assert_eq!(names, seen, "export differs from the container's own view");
    assert!(!names.iter().any(|n| n.contains(".wh.")));
    assert!(!names.contains("etc/shadow") && !names.contains("opt/keep"));
    assert!(!names.iter().any(|n| n.starts_with("proc/") || n.starts_with("sys/") || n.starts_with("dev/")));
    assert!(names.contains("vol") && !names.contains("vol/in-volume"));

    let new = &tar["new"];
    assert_eq!((new.uid, new.gid, new.mode & 0o7777), (1000, 1000, 0o4755));
    assert_eq!(new.xattrs.get("user.test").map(Vec::as_slice), Some(&b"v1"[..]));
    // Hardlinks: the first in walk order carries the data, the other links to it.
    let (first, second) = if tar["hard"].kind == tar::EntryType::Link { ("new", "hard") } else { ("hard", "new") };
    assert_eq!(tar[first].data, b"hello\n");
    assert_eq!(tar[second].kind, tar::EntryType::Link);
    assert_eq!(tar[second].link.as_deref(), Some(first));
    assert_eq!(tar["sym"].kind, tar::EntryType::Symlink);
    assert_eq!(tar["sym"].link.as_deref(), Some("new"));
    assert_eq!(tar["opt/replaced/new1"].data, b"new1\n");
    assert!(tar["deep/er"].kind.is_dir());
    assert_eq!(tar["dev-null-copy"].kind, tar::EntryType::Char);
    assert_eq!(tar["dev-null-copy"].device, (1, 3));
    assert_eq!(tar["fifo"].kind, tar::EntryType::Fifo);

    // Exporting works again (nothing left mounted) and refuses a terminal.
    let out = m.run(&["export", "ex"]);
    assert!(out.status.success());
    assert_eq!(read_tar(&out.stdout).len(), tar.len());
    let (mut mfd, mut sfd) = (0, 0);
    // SAFETY: openpty into locals; fds become ours.
    let (_master, slave) = unsafe {
        assert_eq!(libc::openpty(&mut mfd, &mut sfd, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()), 0);
        (OwnedFd::from_raw_fd(mfd), OwnedFd::from_raw_fd(sfd))
    };
    assert!(slave.as_raw_fd() > 0);
    let out = m.cmd(&["export", "ex"]).stdout(Stdio::from(slave)).stderr(Stdio::piped()).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("terminal"));
    assert!(m.host_mounts().is_empty());
}
