//! `mini cp`, `mini diff` and `mini history` as a user drives them: round
//! trips that keep modes (and owners with -a) on running and stopped
//! containers, tar streams both ways, symlinks in the container that point
//! at the host's root never reaching it, bad input refused in one line with
//! nothing left behind. Needs root and the fixture registry.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use support::life::{assert_refused, text, Life, IMAGE};

/// (mode, uid, gid, content) of every entry below `dir`, by relative path.
fn tree(dir: &Path) -> BTreeMap<String, (u32, u32, u32, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (u32, u32, u32, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let data = if m.is_file() { std::fs::read(&p).unwrap() } else { vec![] };
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            out.insert(rel, (m.mode() & 0o7777, m.uid(), m.gid(), data));
            if m.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// A host source tree: `f` (0751, 1234:5678) and `d/sub/a` (sub 0700, a owned 42:43).
fn host_source(dir: &Path) -> PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("d/sub")).unwrap();
    std::fs::write(src.join("f"), b"file\n").unwrap();
    std::fs::write(src.join("d/sub/a"), b"a\n").unwrap();
    std::fs::set_permissions(src.join("f"), std::fs::Permissions::from_mode(0o751)).unwrap();
    std::fs::set_permissions(src.join("d/sub"), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(src.join("f"), Some(1234), Some(5678)).unwrap();
    std::os::unix::fs::chown(src.join("d/sub/a"), Some(42), Some(43)).unwrap();
    src
}

fn ok(l: &Life, args: &[&str]) -> String {
    let (code, out, err) = l.mini(args);
    assert_eq!(code, 0, "mini {args:?}: {err}");
    out
}

/// Copy in with and without -a, then back out with -a into a fresh dir:
/// modes always kept, owners kept with -a, root's without.
fn round_trip(l: &Life, c: &str) {
    let src = host_source(l.m.dir());
    let s = |p: &str| src.join(p).display().to_string();
    ok(l, &["cp", "-a", &s("f"), &format!("{c}:/f")]);
    ok(l, &["cp", &s("f"), &format!("{c}:/tmp/plain")]);
    ok(l, &["cp", "-a", &s("d"), &format!("{c}:/d")]);
    let back = l.m.dir().join(format!("back-{c}"));
    std::fs::create_dir(&back).unwrap();
    let b = |p: &str| back.join(p).display().to_string();
    ok(l, &["cp", "-a", &format!("{c}:/f"), &b("f")]);
    ok(l, &["cp", "-a", &format!("{c}:/tmp/plain"), &b("plain")]);
    ok(l, &["cp", "-a", &format!("{c}:/d"), &back.display().to_string()]);
    let (want, got) = (tree(&src), tree(&back));
    assert_eq!(got["f"], want["f"]);
    assert_eq!(got["d/sub"], want["d/sub"]);
    assert_eq!(got["d/sub/a"], want["d/sub/a"]);
    assert_eq!(got["plain"], (0o751, 0, 0, b"file\n".to_vec()), "without -a the container's copy is root's");
    // Out without -a: the caller's (root's) ids whatever the container's.
    let mine = l.m.dir().join(format!("mine-{c}"));
    ok(l, &["cp", &format!("{c}:/d"), &mine.display().to_string()]);
    assert_eq!(tree(&mine)["sub/a"], (0o644, 0, 0, b"a\n".to_vec()));
    assert!(l.m.host_mounts().is_empty());
}

#[test]
fn cp_round_trips_on_a_running_container_which_sees_the_change() {
    let Some(l) = Life::new() else { return };
    l.detach(&["--name", "live"], &["sleep", "1000"]);
    round_trip(&l, "live");
    let (_, out, _) = l.mini(&["exec", "live", "stat", "-c", "%a %u %g", "/f", "/tmp/plain", "/d/sub/a"]);
    assert_eq!(out, "751 1234 5678\n751 0 0\n644 42 43\n");
}

#[test]
fn cp_round_trips_on_created_and_exited_containers() {
    let Some(l) = Life::new() else { return };
    ok(&l, &["create", "--name", "idle", IMAGE, "stat", "-c", "%a %u %g", "/f"]);
    round_trip(&l, "idle");
    let (code, out, err) = l.mini(&["start", "-a", "idle"]);
    assert_eq!((code, out.as_str()), (0, "751 1234 5678\n"), "{err}");
    // Exited now: copying out of it still works, and in again too.
    let out = l.m.dir().join("exited-f");
    ok(&l, &["cp", "idle:/f", &out.display().to_string()]);
    assert_eq!(std::fs::read(&out).unwrap(), b"file\n");
    ok(&l, &["cp", &out.display().to_string(), "idle:/g"]);
    assert_eq!(l.mini(&["diff", "idle"]).1.lines().filter(|l| *l == "A /g").count(), 1);
}

#[test]
fn cp_docker_path_rules_on_the_host_side() {
    let Some(l) = Life::new() else { return };
    ok(&l, &["create", "--name", "idle", IMAGE]);
    let d = l.m.dir().join("rules");
    std::fs::create_dir(&d).unwrap();
    let at = |p: &str| d.join(p).display().to_string();
    ok(&l, &["cp", "idle:/etc/passwd", &at("renamed")]);
    ok(&l, &["cp", "idle:/etc/passwd", &format!("{}/", d.display())]);
    ok(&l, &["cp", "idle:/etc", &at("etc-copy")]);
    std::fs::create_dir(d.join("into")).unwrap();
    ok(&l, &["cp", "idle:/etc", &at("into")]);
    ok(&l, &["cp", "idle:/etc/.", &at("contents")]);
    assert!(d.join("renamed").is_file() && d.join("passwd").is_file());
    assert!(d.join("etc-copy/passwd").is_file() && d.join("into/etc/passwd").is_file());
    assert!(d.join("contents/passwd").is_file() && !d.join("contents/etc").exists());
}

#[test]
fn cp_tar_streams_both_ways() {
    let Some(l) = Life::new() else { return };
    l.detach(&["--name", "live"], &["sleep", "1000"]);
    let out = l.m.cmd(&["cp", "live:/etc", "-"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut ar = tar::Archive::new(&out.stdout[..]);
    let names: Vec<String> = ar.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect();
    assert!(names.contains(&"etc/".to_string()) && names.contains(&"etc/passwd".to_string()), "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("etc/")), "{names:?}");

    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o640);
    h.set_uid(7);
    h.set_gid(8);
    h.set_mtime(0);
    b.append_data(&mut h, "streamed/x", &b"abc"[..]).unwrap();
    let bytes = b.into_inner().unwrap();
    let mut child = l.m.cmd(&["cp", "-", "live:/opt"]).stdin(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    let (code, _, err) = text(child.wait_with_output().unwrap());
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = l.mini(&["exec", "live", "stat", "-c", "%a %u %n", "/opt/streamed/x"]);
    assert_eq!(out, "640 0 /opt/streamed/x\n");

    // A container side failing mid-stream is reported, not a broken pipe.
    l.detach(&["--name", "frozen", "--read-only"], &["sleep", "1000"]);
    let mut child = l.m.cmd(&["cp", "-", "frozen:/opt"]).stdin(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let _ = child.stdin.take().unwrap().write_all(&bytes);
    assert_refused(text(child.wait_with_output().unwrap()), "Read-only file system");
    let f = l.m.dir().join("f");
    std::fs::write(&f, vec![7u8; 4 << 20]).unwrap();
    assert_refused(l.mini(&["cp", &f.display().to_string(), "frozen:/big"]), "Read-only file system");
}

/// Symlinks to the host's root inside the container resolve inside it.
fn escapes_stay_inside(l: &Life, c: &str) {
    let d = l.m.dir().join(format!("esc-{c}"));
    std::fs::create_dir(&d).unwrap();
    let shadow = d.join("shadow");
    ok(l, &["cp", &format!("{c}:/escape/etc/shadow"), &shadow.display().to_string()]);
    let direct = d.join("direct");
    ok(l, &["cp", &format!("{c}:/etc/shadow"), &direct.display().to_string()]);
    let got = std::fs::read(&shadow).unwrap();
    assert_ne!(got, std::fs::read("/etc/shadow").unwrap(), "read the host's /etc/shadow");
    assert_eq!(got, std::fs::read(&direct).unwrap(), "not the container's /etc/shadow");
    ok(l, &["cp", &format!("{c}:/up/etc/passwd"), &d.join("passwd").display().to_string()]);
    assert!(std::fs::read_to_string(d.join("passwd")).unwrap().contains("app:x:1000"), "not the container's passwd");

    let marker = format!("mini-cp-escape-{}-{c}", std::process::id());
    let host_tmp = Path::new("/tmp").join(&marker);
    let f = d.join("f");
    std::fs::write(&f, b"inside\n").unwrap();
    ok(l, &["cp", &f.display().to_string(), &format!("{c}:/escape/tmp/{marker}")]);
    ok(l, &["cp", &f.display().to_string(), &format!("{c}:/up/tmp/{marker}-up")]);
    assert!(!host_tmp.exists() && !Path::new(&format!("/tmp/{marker}-up")).exists(), "wrote on the host");
    let back = d.join("back");
    ok(l, &["cp", &format!("{c}:/tmp/{marker}"), &back.display().to_string()]);
    assert_eq!(std::fs::read(&back).unwrap(), b"inside\n", "the copy landed in the container's /tmp");
}

#[test]
fn symlinks_to_the_host_root_never_leave_the_container() {
    let Some(l) = Life::new() else { return };
    let links = "ln -s / /escape; ln -s ../../../../.. /up";
    l.detach(&["--name", "live"], &["sh", "-c", &format!("{links}; sleep 1000")]);
    l.until("links made", || l.mini(&["exec", "live", "test", "-L", "/up"]).0 == 0);
    escapes_stay_inside(&l, "live");
    ok(&l, &["run", "--name", "gone", IMAGE, "sh", "-c", links]);
    escapes_stay_inside(&l, "gone");
    assert!(l.m.host_mounts().is_empty());
}

#[test]
fn bad_copies_are_refused_in_one_line_leaving_nothing() {
    let Some(l) = Life::new() else { return };
    ok(&l, &["create", "--name", "idle", IMAGE]);
    let d = l.m.dir().join("bad");
    std::fs::create_dir(&d).unwrap();
    let at = |p: &str| d.join(p).display().to_string();
    std::fs::create_dir(d.join("dir")).unwrap();
    std::fs::write(d.join("file"), b"x").unwrap();
    let before = l.mini(&["diff", "idle"]).1;
    assert_refused(l.mini(&["cp", "idle:/nope", &at("out")]), "/nope in container idle: no such file or directory");
    assert_refused(l.mini(&["cp", "nosuch:/etc", &at("out")]), "no such container");
    assert_refused(l.mini(&["cp", &at("file"), "nosuch:/x"]), "no such container");
    assert_refused(l.mini(&["cp", "idle:/etc/passwd", &at("no/such/dir")]), "copy into");
    assert_refused(l.mini(&["cp", &at("missing"), "idle:/x"]), "no such file or directory");
    assert_refused(l.mini(&["cp", &at("dir"), "idle:/etc/passwd"]), "cannot copy a directory to a file");
    assert_refused(l.mini(&["cp", &at("file"), "idle:/newdir/"]), "destination directory must exist");
    assert_refused(l.mini(&["cp", "idle:/etc/passwd/", &at("out")]), "not a directory");
    assert_refused(l.mini(&["cp", "idle:/etc", "idle:/x"]), "between containers");
    assert_refused(l.mini(&["cp", &at("file"), &at("x")]), "neither side is a container");
    assert_refused(l.mini(&["cp", "idle:/etc", &at("file")]), "cannot copy a directory to a file");
    assert_eq!(std::fs::read_dir(&d).unwrap().count(), 2, "something was written on the host");
    assert_eq!(l.mini(&["diff", "idle"]).1, before, "something was written in the container");
    assert!(l.m.host_mounts().is_empty());
}

#[test]
fn diff_shows_added_changed_and_deleted_exactly() {
    let Some(l) = Life::new() else { return };
    let script = "rm /etc/shadow; echo new > /newfile; echo more >> /etc/passwd; mkdir -p /x/y; touch /x/y/z";
    ok(&l, &["run", "--name", "changed", IMAGE, "sh", "-c", script]);
    let (code, out, err) = l.mini(&["diff", "changed"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "C /etc\nC /etc/passwd\nD /etc/shadow\nA /newfile\nA /x\nA /x/y\nA /x/y/z\n");
    // Running: the same reading of the upper dir.
    l.detach(&["--name", "live"], &["sh", "-c", "rm -r /opt/replaced; sleep 1000"]);
    l.until("removed", || l.mini(&["diff", "live"]).1.contains("D /opt/replaced"));
    assert_eq!(l.mini(&["diff", "live"]).1, "C /opt\nD /opt/replaced\n");
    assert_refused(l.mini(&["diff", "nosuch"]), "no such container");
}

#[test]
fn history_matches_the_image_config() {
    let Some(l) = Life::new() else { return };
    let inspect: serde_json::Value = serde_json::from_str(&ok(&l, &["image", "inspect", IMAGE])).unwrap();
    let id = inspect[0]["Id"].as_str().unwrap().to_string();
    let blob = l.m.root.join("blobs/sha256").join(id.trim_start_matches("sha256:"));
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(blob).unwrap()).unwrap();
    let mut want: Vec<String> = config["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| format!("{}|{}", h["created_by"].as_str().unwrap_or(""), h["created"].as_str().unwrap_or("")))
        .collect();
    want.reverse();
    let got = ok(&l, &["history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.CreatedAt}}", IMAGE]);
    assert_eq!(got.lines().collect::<Vec<_>>(), want);
    let table = ok(&l, &["history", IMAGE]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("IMAGE ") && lines[0].contains("CREATED BY"), "{table}");
    assert!(lines[1].starts_with(&id.trim_start_matches("sha256:")[..12]), "{table}");
    assert!(lines[2..].iter().all(|l| l.starts_with("<missing>")), "{table}");
    assert_eq!(lines.len(), want.len() + 1);
    let quiet = ok(&l, &["history", "-q", IMAGE]);
    assert_eq!(quiet.lines().count(), want.len());
    assert_refused(l.mini(&["history", "127.0.0.1:5000/test/nosuch:1"]), "no such image");
}

#[test]
fn cp_maps_owners_through_the_userns_auto_range() {
    let Some(l) = Life::new() else { return };
    let id = l.detach(&["--name", "mapped", "--userns=auto"], &["sleep", "1000"]);
    let src = host_source(l.m.dir());
    let f = src.join("f").display().to_string();
    ok(&l, &["cp", "-a", &f, "mapped:/kept"]);
    ok(&l, &["cp", &f, "mapped:/rooted"]);
    let (_, out, _) = l.mini(&["exec", "mapped", "stat", "-c", "%u %g", "/kept", "/rooted"]);
    assert_eq!(out, "1234 5678\n0 0\n", "the container sees its own ids");
    let upper = l.m.root.join("containers").join(&id).join("upper");
    let host_uid = std::fs::metadata(upper.join("rooted")).unwrap().uid();
    assert!(host_uid >= 65536, "container root is an unprivileged host id, got {host_uid}");
    let back = l.m.dir().join("mapped-back");
    ok(&l, &["cp", "-a", "mapped:/kept", &back.display().to_string()]);
    let m = std::fs::metadata(&back).unwrap();
    assert_eq!((m.uid(), m.gid()), (1234, 5678), "ids come back as the container's");
    ok(&l, &["stop", "-t", "0", "mapped"]);
    assert_refused(l.mini(&["cp", &f, "mapped:/later"]), "stopped --userns=auto container is not supported");
    ok(&l, &["cp", "-a", "mapped:/kept", &l.m.dir().join("stopped-back").display().to_string()]);
    assert_eq!(std::fs::metadata(l.m.dir().join("stopped-back")).unwrap().uid(), 1234);
}
