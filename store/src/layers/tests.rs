//! Layer extraction tests, including hostile tars in the style of containerd's
//! TestBreakouts. Most need root (chown, mknod, trusted.* xattrs).

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::Arc;

use tar::EntryType;

use crate::digest::Digest;
use crate::error::StoreError;
use crate::testutil::{is_root, snapshot, Tar, E};
use crate::Store;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("root")).unwrap();
    (dir, s)
}

/// Unpacks and commits; returns the diff dir.
fn unpack(s: &Store, tar: &[u8]) -> crate::Result<std::path::PathBuf> {
    let d = Digest::of_bytes(tar);
    let p = s.layers().unpack(&d, tar)?;
    assert_eq!(p.size(), tar.len() as u64);
    p.commit()?;
    Ok(s.layers().diff_path(&d))
}

fn xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    let n = rustix::fs::lgetxattr(p, name, &mut buf[..]).ok()?;
    buf.truncate(n);
    Some(buf)
}

fn no_temp_left(s: &Store) {
    let names: Vec<_> = fs::read_dir(s.root().join("layers")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(names.iter().all(|n| !n.to_string_lossy().starts_with(".tmp-")), "{names:?}");
    assert_eq!(fs::read_dir(s.root().join("trash")).unwrap().count(), 0);
}

macro_rules! requires_root {
    () => {
        if !is_root() {
            eprintln!("skipping: needs root (chown, mknod, trusted xattrs)");
            return;
        }
    };
}

#[test]
fn regular_tree_and_metadata() {
    requires_root!();
    let (_t, s) = store();
    let mut t = Tar::new();
    t.entry(E { name: b"./", kind: EntryType::Directory, mode: 0o751, mtime: 1_500_000_001, ..E::default() });
    t.entry(E {
        name: b"./etc/",
        kind: EntryType::Directory,
        mode: 0o750,
        uid: 1000,
        gid: 1001,
        mtime: 1_500_000_000,
        ..E::default()
    });
    t.entry(E {
        name: b"./etc/passwd",
        data: b"root:x:0:0\n",
        mode: 0o640,
        uid: 1000,
        gid: 1001,
        mtime: 1_400_000_000,
        ..E::default()
    });
    t.entry(E { name: b"bin/su", data: b"\x7fELF", mode: 0o4755, uid: 0, gid: 0, ..E::default() });
    t.entry(E { name: b"bin/sg", data: b"x", mode: 0o2711, uid: 5, gid: 6, ..E::default() });
    t.entry(E { name: b"tmp", kind: EntryType::Directory, mode: 0o1777, ..E::default() });
    t.entry(E {
        name: b"bin/sh",
        kind: EntryType::Symlink,
        link: b"/bin/busybox",
        uid: 7,
        gid: 8,
        mtime: 1_300_000_000,
        ..E::default()
    });
    t.entry(E { name: b"etc/passwd-", kind: EntryType::Link, link: b"etc/passwd", ..E::default() });
    t.entry(E { name: b"dev/fifo", kind: EntryType::Fifo, mode: 0o620, ..E::default() });
    t.entry(E { name: b"dev/null", kind: EntryType::Char, mode: 0o666, dev: (1, 3), ..E::default() });
    t.entry(E { name: b"dev/loop0", kind: EntryType::Block, mode: 0o660, dev: (7, 0), gid: 6, ..E::default() });
    t.pax(&[
        (
            "SCHILY.xattr.security.capability",
            b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        ),
        ("SCHILY.xattr.user.note", b"hi"),
        ("mtime", b"1234567890.5"),
    ]);
    t.entry(E { name: b"bin/ping", data: b"ping", mode: 0o755, uid: 0, ..E::default() });
    let long = format!("deep/{}/{}", "d".repeat(120), "f".repeat(100));
    t.entry(E {
        name: b"pax_global_header",
        kind: EntryType::XGlobalHeader,
        data: b"19 comment=ignored\n",
        ..E::default()
    });
    t.pax(&[("path", long.as_bytes()), ("uid", b"3000000000")]);
    t.entry(E { name: b"ignored-name", data: b"long", ..E::default() });
    t.entry(E { name: b"rw-all", data: b"w", mode: 0o666, ..E::default() });
    t.entry(E { name: b"read-only", data: b"r", mode: 0o444, uid: 9, ..E::default() });
    t.pax(&[("SCHILY.xattr.trusted.link", b"t"), ("SCHILY.xattr.user.refused-by-kernel", b"u")]);
    t.entry(E { name: b"link-with-xattr", kind: EntryType::Symlink, link: b"rw-all", ..E::default() });
    let root = unpack(&s, &t.finish()).unwrap();

    let m = |p: &str| fs::symlink_metadata(root.join(p)).unwrap();
    assert_eq!(m("").mode() & 0o7777, 0o751);
    assert_eq!(m("").mtime(), 1_500_000_001);
    assert_eq!((m("etc").mode() & 0o7777, m("etc").uid(), m("etc").gid()), (0o750, 1000, 1001));
    assert_eq!(m("etc").mtime(), 1_500_000_000, "directory mtime survives its children");
    assert_eq!(fs::read(root.join("etc/passwd")).unwrap(), b"root:x:0:0\n");
    assert_eq!((m("etc/passwd").mode() & 0o7777, m("etc/passwd").uid()), (0o640, 1000));
    assert_eq!(m("etc/passwd").mtime(), 1_400_000_000);
    assert_eq!(m("bin/su").mode() & 0o7777, 0o4755);
    assert_eq!((m("bin/sg").mode() & 0o7777, m("bin/sg").uid(), m("bin/sg").gid()), (0o2711, 5, 6));
    assert_eq!(m("tmp").mode() & 0o7777, 0o1777);
    assert_eq!(fs::read_link(root.join("bin/sh")).unwrap(), Path::new("/bin/busybox"));
    assert_eq!((m("bin/sh").uid(), m("bin/sh").gid(), m("bin/sh").mtime()), (7, 8, 1_300_000_000));
    assert_eq!(m("etc/passwd-").ino(), m("etc/passwd").ino());
    assert!(m("dev/fifo").file_type().is_fifo());
    assert_eq!(m("dev/fifo").mode() & 0o7777, 0o620);
    assert!(m("dev/null").file_type().is_char_device());
    assert_eq!(m("dev/null").rdev(), rustix::fs::makedev(1, 3));
    assert!(m("dev/loop0").file_type().is_block_device());
    assert_eq!((m("dev/loop0").rdev(), m("dev/loop0").gid()), (rustix::fs::makedev(7, 0), 6));
    assert!(xattr(&root.join("bin/ping"), "security.capability").is_some(), "capability set after chown");
    assert_eq!(xattr(&root.join("bin/ping"), "user.note").unwrap(), b"hi");
    assert_eq!(m("bin/ping").mtime(), 1_234_567_890);
    assert_eq!(m("bin/ping").mtime_nsec(), 500_000_000);
    assert_eq!(fs::read(root.join(&long)).unwrap(), b"long");
    assert_eq!(m(&long).uid(), 3_000_000_000);
    assert!(!root.join("pax_global_header").exists());
    assert_eq!(m("rw-all").mode() & 0o7777, 0o666, "umask does not leak into modes");
    assert_eq!((m("read-only").mode() & 0o7777, m("read-only").uid()), (0o444, 9));
    assert_eq!(fs::read(root.join("read-only")).unwrap(), b"r");
    assert_eq!(xattr(&root.join("link-with-xattr"), "trusted.link").unwrap(), b"t");
    assert!(xattr(&root.join("rw-all"), "trusted.link").is_none(), "xattr on the link, not its target");
    let meta = s.layers().meta(&Digest::of_bytes(&t.finish())).unwrap().unwrap();
    assert_eq!(meta.size, t.finish().len() as u64);
    no_temp_left(&s);
}

#[test]
fn setgid_directories_do_not_leak_their_group() {
    requires_root!();
    let (_t, s) = store();
    let mut t = Tar::new();
    t.entry(E { name: b"g/", kind: EntryType::Directory, mode: 0o2775, gid: 50, ..E::default() });
    t.entry(E { name: b"g/f", data: b"x", mode: 0o644, ..E::default() });
    t.entry(E { name: b"g/l", kind: EntryType::Symlink, link: b"f", ..E::default() });
    t.entry(E { name: b"g/d/", kind: EntryType::Directory, mode: 0o755, ..E::default() });
    t.entry(E { name: b"g/d/inner", data: b"y", ..E::default() });
    t.entry(E { name: b"g/p", kind: EntryType::Fifo, mode: 0o600, ..E::default() });
    let root = unpack(&s, &t.finish()).unwrap();
    let m = |p: &str| fs::symlink_metadata(root.join(p)).unwrap();
    assert_eq!((m("g").gid(), m("g").mode() & 0o7777), (50, 0o2775));
    for p in ["g/f", "g/l", "g/d", "g/d/inner", "g/p"] {
        assert_eq!(m(p).gid(), 0, "{p} took the setgid directory's group");
    }
    assert_eq!(m("g/d").mode() & 0o7777, 0o755, "setgid bit not inherited");
}

#[test]
fn whiteouts_become_overlay_form() {
    requires_root!();
    let (_t, s) = store();
    let mut t = Tar::new();
    t.dir("a").file("a/x", b"1").file("a/.wh.gone", b"").file("a/.wh.x", b"");
    t.file("b/.wh..wh..opq", b"").file("b/kept", b"k");
    t.file("c/.wh..wh.plnk", b"");
    let root = unpack(&s, &t.finish()).unwrap();
    for p in ["a/gone", "a/x"] {
        let m = fs::symlink_metadata(root.join(p)).unwrap();
        assert!(m.file_type().is_char_device(), "{p}");
        assert_eq!(m.rdev(), 0);
    }
    assert_eq!(xattr(&root.join("b"), "trusted.overlay.opaque").unwrap(), b"y");
    assert!(root.join("b/kept").is_file());
    assert!(!root.join("b/.wh..wh..opq").exists());
    assert_eq!(fs::read_dir(root.join("c")).unwrap().count(), 0);
    let bad = Tar::new().file("d/.wh..", b"").finish();
    assert!(matches!(unpack(&s, &bad), Err(StoreError::UnsafeEntry { .. })));
    no_temp_left(&s);
}

#[test]
fn later_entries_replace_earlier_ones() {
    let (_t, s) = store();
    let mut t = Tar::new();
    t.dir("d").file("d/inner", b"1").dir("d/sub").file("d/sub/f", b"2");
    t.file("d", b"now a file");
    t.file("f", b"file").dir("f").file("f/child", b"c");
    t.dir("s").symlink("s", "target");
    t.file("same", b"old").file("same", b"new");
    let root = unpack(&s, &t.finish()).unwrap();
    assert_eq!(fs::read(root.join("d")).unwrap(), b"now a file");
    assert_eq!(fs::read(root.join("f/child")).unwrap(), b"c");
    assert_eq!(fs::read_link(root.join("s")).unwrap(), Path::new("target"));
    assert_eq!(fs::read(root.join("same")).unwrap(), b"new");
}

#[test]
fn names_are_normalized() {
    let (_t, s) = store();
    let mut t = Tar::new();
    t.file("/abs", b"1").file("./dot", b"2").file("a/./b/../c", b"3").file("//x//y", b"4");
    let root = unpack(&s, &t.finish()).unwrap();
    for (p, c) in [("abs", "1"), ("dot", "2"), ("a/c", "3"), ("x/y", "4")] {
        assert_eq!(fs::read_to_string(root.join(p)).unwrap(), c);
    }
    assert!(!root.join("a/b").exists() || root.join("a/b").is_dir());
}

#[test]
fn many_directories_exercise_the_fd_cache() {
    let (_t, s) = store();
    let mut t = Tar::new();
    for i in 0..600 {
        t.file(&format!("d{}/e{}/f{i}", i % 300, i % 7), b"x");
    }
    t.file("d0/e0/again", b"y");
    let root = unpack(&s, &t.finish()).unwrap();
    assert!(root.join("d299/e5/f299").is_file());
    assert!(root.join("d0/e0/again").is_file());
    assert_eq!(walk_count(&root), 300 + 600 + 600 + 1);
}

fn walk_count(p: &Path) -> usize {
    fs::read_dir(p)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            1 + if e.file_type().unwrap().is_dir() { walk_count(&e.path()) } else { 0 }
        })
        .sum()
}

#[test]
fn diff_id_mismatch_removes_temp() {
    let (_t, s) = store();
    let tar = Tar::new().file("a", b"1").finish();
    let wrong = Digest::of_bytes(b"not this");
    let err = s.layers().unpack(&wrong, &tar[..]).unwrap_err();
    assert!(matches!(&err, StoreError::DigestMismatch { what, .. } if what == "layer diff_id"), "{err}");
    assert!(err.to_string().starts_with(&format!("digest mismatch for layer diff_id {wrong}: got sha256:")));
    assert!(!s.layers().contains(&wrong));
    no_temp_left(&s);
    // Trailing bytes after the end-of-archive blocks count as part of the stream.
    let mut padded = tar.clone();
    padded.extend_from_slice(&[0; 512]);
    let err = s.layers().unpack(&Digest::of_bytes(&tar), &padded[..]).unwrap_err();
    assert!(matches!(err, StoreError::DigestMismatch { .. }));
    no_temp_left(&s);
}

#[test]
fn dropped_pending_layer_is_discarded() {
    let (_t, s) = store();
    let tar = Tar::new().file("a", b"1").finish();
    let d = Digest::of_bytes(&tar);
    let p = s.layers().unpack(&d, &tar[..]).unwrap();
    drop(p);
    assert!(!s.layers().contains(&d));
    no_temp_left(&s);
}

#[test]
fn concurrent_unpacks_of_same_layer_both_succeed() {
    let (_t, s) = store();
    let s = Arc::new(s);
    let mut t = Tar::new();
    for i in 0..200 {
        t.file(&format!("dir{}/file{i}", i % 10), format!("content {i}").as_bytes());
    }
    let tar = Arc::new(t.finish());
    let d = Digest::of_bytes(&tar);
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let (s, tar, d) = (s.clone(), tar.clone(), d.clone());
            std::thread::spawn(move || s.layers().unpack(&d, &tar[..])?.commit())
        })
        .collect();
    for th in threads {
        th.join().unwrap().unwrap();
    }
    assert!(s.layers().contains(&d));
    assert_eq!(s.layers().list().unwrap(), vec![d.clone()]);
    assert_eq!(fs::read_to_string(s.layers().diff_path(&d).join("dir3/file13")).unwrap(), "content 13");
    no_temp_left(&s);
    // A second unpack after commit is also fine.
    s.layers().unpack(&d, &tar[..]).unwrap().commit().unwrap();
    s.layers().remove(&d).unwrap();
    assert!(!s.layers().contains(&d));
    assert!(s.layers().list().unwrap().is_empty());
}

/// Each hostile tar must leave the sentinel directory outside the layer exactly
/// as it was, whether the unpack is refused or contained.
#[test]
fn breakouts_leave_the_outside_untouched() {
    requires_root!();
    let base = tempfile::tempdir().unwrap();
    let outside = base.path().join("outside");
    let out = outside.to_str().unwrap().to_string();
    // How to reach the sentinel from inside layers/.tmp-x/diff with `..`.
    let up = "../../../../../../../../../../../../../..";
    let rel_out = format!("{up}{out}");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("dotdot name", Tar::new().file(&format!("{up}{out}/passwd"), b"pwned").finish()),
        ("dotdot inside", Tar::new().file("a/../../passwd", b"pwned").finish()),
        ("absolute name", Tar::new().file(&format!("{out}/passwd"), b"pwned").finish()),
        ("abs symlink parent", Tar::new().symlink("evil", &out).file("evil/passwd", b"pwned").finish()),
        ("rel symlink parent", Tar::new().symlink("evil", &rel_out).file("evil/passwd", b"pwned").finish()),
        ("symlink parent new file", Tar::new().symlink("evil", &out).file("evil/newfile", b"pwned").finish()),
        ("symlink parent dir", Tar::new().symlink("evil", &out).dir("evil/newdir").finish()),
        ("nested symlink parent", Tar::new().dir("a").symlink("a/b", &rel_out).file("a/b/passwd", b"pwned").finish()),
        ("symlink chain", Tar::new().symlink("l1", "l2").symlink("l2", &out).file("l1/passwd", b"pwned").finish()),
        ("symlink then write over it", Tar::new().symlink("s", &format!("{out}/passwd")).file("s", b"pwned").finish()),
        (
            "symlink then dir over it",
            Tar::new()
                .symlink("s", &out)
                .entry(E { name: b"s", kind: EntryType::Directory, mode: 0o777, uid: 4242, ..E::default() })
                .finish(),
        ),
        (
            "symlink then chmod via dir entry",
            Tar::new()
                .symlink("s", &out)
                .entry(E { name: b"s/", kind: EntryType::Directory, mode: 0o777, uid: 4242, ..E::default() })
                .finish(),
        ),
        ("hardlink dotdot", Tar::new().hardlink("h", &format!("{up}{out}/passwd")).finish()),
        ("hardlink absolute", Tar::new().hardlink("h", &format!("{out}/passwd")).file("h", b"pwned").finish()),
        ("hardlink via symlink parent", Tar::new().symlink("evil", &out).hardlink("h", "evil/passwd").finish()),
        (
            "hardlink to symlink out",
            Tar::new().symlink("s", &format!("{out}/passwd")).hardlink("h", "s").file("h", b"pwned").finish(),
        ),
        (
            "hardlink to symlink then write",
            Tar::new()
                .symlink("s", &format!("{out}/passwd"))
                .hardlink("h", "s")
                .entry(E { name: b"h", kind: EntryType::Fifo, ..E::default() })
                .finish(),
        ),
        ("whiteout via symlink parent", Tar::new().symlink("evil", &out).file("evil/.wh.passwd", b"").finish()),
        ("whiteout dotdot", Tar::new().file(&format!("{up}{out}/.wh.passwd"), b"").finish()),
        ("opaque via symlink parent", Tar::new().symlink("evil", &out).file("evil/.wh..wh..opq", b"").finish()),
        (
            "device via symlink parent",
            Tar::new()
                .symlink("evil", &out)
                .entry(E { name: b"evil/passwd", kind: EntryType::Char, dev: (1, 3), ..E::default() })
                .finish(),
        ),
        ("symlink via symlink parent", Tar::new().symlink("evil", &out).symlink("evil/passwd", "/x").finish()),
        (
            "xattr via symlink",
            Tar::new().symlink("s", &out).pax(&[("SCHILY.xattr.trusted.pwned", b"1")]).symlink("s", &out).finish(),
        ),
        (
            "xattr on file via symlink",
            Tar::new()
                .symlink("s", &format!("{out}/passwd"))
                .pax(&[("SCHILY.xattr.trusted.pwned", b"1")])
                .file("s", b"x")
                .finish(),
        ),
        ("symlink loop", Tar::new().symlink("loop", "loop").file("loop/x", b"pwned").finish()),
        (
            "proc magic link",
            Tar::new().symlink("p", "/proc/self/root").file(&format!("p{out}/passwd"), b"pwned").finish(),
        ),
        ("dotdot dir then file", Tar::new().dir("..").file("../passwd", b"pwned").finish()),
        ("dotdot hardlink target", Tar::new().file("a", b"x").hardlink("b", "../a").finish()),
    ];
    for (what, tar) in cases {
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("passwd"), b"orig").unwrap();
        let before = snapshot(&outside);
        let store_dir = base.path().join(format!("store-{}", what.replace(' ', "-")));
        let s = Store::open(&store_dir).unwrap();
        let result = unpack(&s, &tar);
        let after = snapshot(&outside);
        eprintln!(
            "breakout case `{what}`: {}",
            match &result {
                Ok(_) => "contained".to_string(),
                Err(e) => format!("refused: {e}"),
            }
        );
        assert_eq!(before, after, "case `{what}` changed the outside ({result:?})");
        if let Err(e) = &result {
            assert!(!matches!(e, StoreError::DigestMismatch { .. }), "case `{what}`: {e}");
        }
        no_temp_left(&s);
        // Store dirs are unique per case: no delete-and-refill on ext4.
    }
}

#[test]
fn escaping_names_are_rejected_with_a_clear_error() {
    let (_t, s) = store();
    let tar = Tar::new().file("../x", b"1").finish();
    let err = unpack(&s, &tar).unwrap_err().to_string();
    assert!(err.starts_with("unsafe path in layer sha256:"), "{err}");
    assert!(err.ends_with("entry `../x` escapes the layer root"), "{err}");
    let tar = Tar::new().file("a", b"1").hardlink("b", "a/../../a").finish();
    assert!(matches!(unpack(&s, &tar), Err(StoreError::UnsafeEntry { .. })));
    no_temp_left(&s);
}

/// Unmounts on drop, even if the test panics.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
    }
}

/// The whiteout forms we write are the ones the kernel's overlayfs honours.
#[test]
fn overlayfs_honours_our_whiteouts() {
    requires_root!();
    let (t, s) = store();
    let lower = Tar::new().file("a/x", b"x").file("a/y", b"y").file("b/old", b"o").file("c", b"c").finish();
    let mut upper = Tar::new();
    upper.file("a/.wh.x", b"").file("b/.wh..wh..opq", b"").file("b/new", b"n").file(".wh.c", b"");
    let (l1, l2) = (unpack(&s, &lower).unwrap(), unpack(&s, &upper.finish()).unwrap());
    let mnt = t.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let opts = std::ffi::CString::new(format!("lowerdir={}:{}", l2.display(), l1.display())).unwrap();
    let mounted = rustix::mount::mount("overlay", &mnt, "overlay", rustix::mount::MountFlags::RDONLY, opts.as_c_str());
    if let Err(e) = mounted {
        eprintln!("skipping: overlay mount failed here: {e}");
        return;
    }
    let _guard = Mounted(mnt.clone());
    assert!(mnt.join("a/y").exists());
    assert!(!mnt.join("a/x").exists(), "whiteout hides a lower file");
    assert!(mnt.join("b/new").exists());
    assert!(!mnt.join("b/old").exists(), "opaque dir hides lower contents");
    assert!(!mnt.join("c").exists());
}

#[test]
fn non_utf8_names_round_trip() {
    let (_t, s) = store();
    let mut t = Tar::new();
    t.entry(E { name: b"caf\xe9/\xff\xfe", data: b"bytes", ..E::default() });
    t.entry(E { name: b"link", kind: EntryType::Symlink, link: b"caf\xe9/\xff\xfe", ..E::default() });
    let root = unpack(&s, &t.finish()).unwrap();
    use std::os::unix::ffi::OsStrExt;
    let p = root.join(std::ffi::OsStr::from_bytes(b"caf\xe9/\xff\xfe"));
    assert_eq!(fs::read(&p).unwrap(), b"bytes");
    assert_eq!(fs::read(root.join("link")).unwrap(), b"bytes");
}

/// `mini cp`'s use: `.wh.` names are plain files, the top name is
/// replaced (in hardlink targets too), owners go through the mapper.
#[test]
fn copies_rename_the_top_map_owners_and_keep_wh_names() {
    requires_root!();
    let dir = tempfile::tempdir().unwrap();
    let mut t = Tar::new();
    t.dir("etc").file("etc/.wh.x", b"plain").file("etc/a", b"a").hardlink("etc/b", "etc/a");
    let root = fs::File::open(dir.path()).unwrap();
    crate::extract::Extractor::new(root.into(), dir.path(), "copy")
        .for_copy(Some("renamed".into()), Box::new(|u, g| (u + 100, g + 200)))
        .extract(&t.finish()[..])
        .unwrap();
    let r = dir.path().join("renamed");
    assert_eq!(fs::read(r.join(".wh.x")).unwrap(), b"plain");
    let (a, b) = (fs::metadata(r.join("a")).unwrap(), fs::metadata(r.join("b")).unwrap());
    assert_eq!(a.ino(), b.ino(), "the hardlink's target was renamed too");
    assert_eq!((a.uid(), a.gid()), (100, 200));
    assert!(!dir.path().join("etc").exists());
}

/// More directories than the parent cache holds: each directory's time is
/// set as it leaves the cache, and set again at the end when a later entry
/// went back into it (which changed its mtime).
#[test]
fn directory_times_survive_the_parent_cache_overflowing() {
    let (_t, s) = store();
    let names: Vec<String> = (0..600).map(|i| format!("d{i:03}/")).collect();
    let files: Vec<String> = (0..600).map(|i| format!("d{i:03}/f")).collect();
    let mut t = Tar::new();
    for (i, (dir, file)) in names.iter().zip(&files).enumerate() {
        t.entry(E {
            name: dir.as_bytes(),
            kind: EntryType::Directory,
            mode: 0o755,
            mtime: 1_000_000 + i as u64,
            ..E::default()
        });
        t.entry(E { name: file.as_bytes(), data: b"x", ..E::default() });
    }
    // Long after d000 left the cache: a new file in it.
    t.entry(E { name: b"d000/late", data: b"late", ..E::default() });
    let root = unpack(&s, &t.finish()).unwrap();
    for i in [0usize, 1, 127, 128, 129, 255, 256, 257, 599] {
        let m = fs::metadata(root.join(&names[i])).unwrap();
        assert_eq!(m.mtime(), 1_000_000 + i as i64, "{}", names[i]);
    }
    assert_eq!(fs::read(root.join("d000/late")).unwrap(), b"late");
    no_temp_left(&s);
}

/// Directories are created with their own mode (no chmod), except in a
/// setgid directory, whose bit a new directory inherits until chmod.
#[test]
fn directory_modes_are_exact_also_under_a_setgid_parent() {
    let (_t, s) = store();
    let mut t = Tar::new();
    t.entry(E { name: b"plain/", kind: EntryType::Directory, mode: 0o705, ..E::default() });
    t.entry(E { name: b"sg/", kind: EntryType::Directory, mode: 0o2775, ..E::default() });
    t.entry(E { name: b"sg/child/", kind: EntryType::Directory, mode: 0o755, ..E::default() });
    t.entry(E { name: b"sg/kept/", kind: EntryType::Directory, mode: 0o2750, ..E::default() });
    let root = unpack(&s, &t.finish()).unwrap();
    let mode = |p: &str| fs::metadata(root.join(p)).unwrap().mode() & 0o7777;
    assert_eq!(mode("plain"), 0o705);
    assert_eq!(mode("sg"), 0o2775);
    assert_eq!(mode("sg/child"), 0o755, "the inherited setgid bit is cleared");
    assert_eq!(mode("sg/kept"), 0o2750);
}

/// The parent cache overflows in the middle of an entry: a hardlink into
/// `b126`, whose target's directory must be resolved again, evicts `b126`
/// itself, and the link is made after that; its time still wins.
#[test]
fn a_directory_evicted_mid_entry_keeps_its_time() {
    let (_t, s) = store();
    let mut t = Tar::new();
    t.entry(E { name: b"t/", kind: EntryType::Directory, mode: 0o755, mtime: 1_000, ..E::default() });
    t.entry(E { name: b"t/f", data: b"target", ..E::default() });
    // t plus 127 more fill the cache; the 128th new one empties it.
    let a: Vec<String> = (0..128).map(|i| format!("a{i:03}/")).collect();
    let b: Vec<String> = (0..127).map(|i| format!("b{i:03}/")).collect();
    for (i, name) in a.iter().chain(&b).enumerate() {
        t.entry(E {
            name: name.as_bytes(),
            kind: EntryType::Directory,
            mode: 0o755,
            mtime: 2_000 + i as u64,
            ..E::default()
        });
    }
    t.hardlink("b126/link", "t/f");
    let root = unpack(&s, &t.finish()).unwrap();
    assert_eq!(fs::read(root.join("b126/link")).unwrap(), b"target");
    let m = |p: &str| fs::metadata(root.join(p)).unwrap().mtime();
    assert_eq!(m("b126"), 2_000 + 128 + 126);
    assert_eq!(m("t"), 1_000);
    assert_eq!(m("a000"), 2_000);
}
