//! Named volumes and `--mount`, as Docker has them: `mini volume
//! create/ls/inspect/rm/prune`, `-v NAME:/path` (made on first use and
//! filled with the image's content there), `--mount type=bind|volume|tmpfs`.

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use support::life::{assert_refused, Life, IMAGE};

fn inspect(l: &Life, what: &[&str]) -> serde_json::Value {
    let (code, out, err) = l.mini(what);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str::<serde_json::Value>(&out).unwrap()[0].clone()
}

fn mountpoint(l: &Life, name: &str) -> PathBuf {
    PathBuf::from(inspect(l, &["volume", "inspect", name])["Mountpoint"].as_str().unwrap())
}

fn run(l: &Life, flags: &[&str], argv: &[&str]) -> (i32, String, String) {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.push(IMAGE);
    args.extend_from_slice(argv);
    l.mini(&args)
}

#[test]
fn a_named_volume_keeps_data_across_containers_and_is_listed_and_inspected() {
    let Some(l) = Life::new() else { return };
    let (code, out, err) = l.mini(&["volume", "create", "data"]);
    assert_eq!((code, out.as_str()), (0, "data\n"), "{err}");
    assert_eq!(l.mini(&["volume", "create", "data"]).1, "data\n", "create is idempotent");
    let v = inspect(&l, &["volume", "inspect", "data"]);
    assert_eq!(
        (v["Name"].as_str(), v["Driver"].as_str(), v["Scope"].as_str()),
        (Some("data"), Some("local"), Some("local"))
    );
    let mp = mountpoint(&l, "data");
    assert!(mp.starts_with(&l.m.root) && mp.ends_with("volumes/data/_data") && mp.is_dir(), "{mp:?}");
    let (code, _, err) = run(&l, &["-v", "data:/data"], &["sh", "-c", "echo hi > /data/f"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read_to_string(mp.join("f")).unwrap(), "hi\n");
    let (code, out, err) =
        run(&l, &["--mount", "type=volume,source=data,target=/x,readonly"], &["sh", "-c", "cat /x/f; touch /x/g"]);
    assert_eq!((code, out.as_str()), (1, "hi\n"));
    assert!(err.contains("Read-only file system"), "{err}");
    // `-v NAME:` makes the volume on first use.
    let (code, _, err) = run(&l, &["-v", "made:/m"], &["true"]);
    assert_eq!(code, 0, "{err}");
    let (_, ls, _) = l.mini(&["volume", "ls"]);
    assert_eq!(ls, "DRIVER   VOLUME NAME\nlocal    data\nlocal    made\n");
    assert_eq!(l.mini(&["volume", "ls", "-q"]).1, "data\nmade\n");
    // A container's inspect names it.
    let (code, id, err) = l.mini(&["create", "-v", "data:/data", IMAGE, "true"]);
    assert_eq!(code, 0, "{err}");
    let c = inspect(&l, &["inspect", id.trim()]);
    assert_eq!(c["Mounts"][0]["Type"], "volume");
    assert_eq!(c["Mounts"][0]["Name"], "data");
    // In use (even by a stopped container): rm refuses, as Docker does.
    assert_refused(l.mini(&["volume", "rm", "data"]), "volume is in use by container");
    assert_eq!(l.mini(&["rm", id.trim()]).0, 0);
    let (code, out, err) = l.mini(&["volume", "rm", "data"]);
    assert_eq!((code, out.as_str()), (0, "data\n"), "{err}");
    assert!(!mp.exists());
    assert_refused(l.mini(&["volume", "rm", "data"]), "remove volume data: no such volume");
    // As Docker: an empty list on stdout, the error on stderr.
    let (code, out, err) = l.mini(&["volume", "inspect", "nosuch"]);
    assert_eq!((code, out.as_str()), (125, "[]\n"));
    assert!(err.contains("inspect volume nosuch: no such volume"), "{err}");
}

#[test]
fn a_new_volume_is_filled_with_the_images_content_there_unless_nocopy() {
    let Some(l) = Life::new() else { return };
    let (code, out, err) = run(&l, &["-v", "home:/home/app"], &["ls", "-A", "/home/app"]);
    assert_eq!((code, out.as_str()), (0, ".profile\nowned\n"), "{err}");
    let mp = mountpoint(&l, "home");
    let owned = std::fs::metadata(mp.join("owned")).unwrap();
    assert_eq!((owned.uid(), owned.gid(), owned.permissions().mode() & 0o7777), (1000, 1000, 0o640));
    let root = std::fs::metadata(&mp).unwrap();
    assert_eq!(
        (root.uid(), root.permissions().mode() & 0o7777),
        (1000, 0o755),
        "the volume takes the dir's owner and mode"
    );
    // Links stay links.
    let (code, _, err) = run(&l, &["-v", "links:/opt/links"], &["true"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read_link(mountpoint(&l, "links").join("sym")).unwrap(), PathBuf::from("a"));
    // Not empty any more: not filled again (what the container wrote stays).
    let (code, _, _) = run(&l, &["-v", "home:/home/app"], &["sh", "-c", "rm /home/app/owned"]);
    assert_eq!(code, 0);
    let (_, out, _) = run(&l, &["-v", "home:/home/app"], &["ls", "-A", "/home/app"]);
    assert_eq!(out, ".profile\n");
    let (code, out, err) =
        run(&l, &["--mount", "type=volume,src=bare,dst=/home/app,volume-nocopy"], &["ls", "-A", "/home/app"]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
}

#[test]
fn mount_binds_and_tmpfs_and_prune_takes_anonymous_volumes() {
    let Some(l) = Life::new() else { return };
    let dir = l.m.dir().join("host");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("in"), "host\n").unwrap();
    let bind = format!("type=bind,source={},target=/b,readonly", dir.display());
    let (code, out, err) = run(&l, &["--mount", &bind], &["sh", "-c", "cat /b/in; touch /b/x 2>/dev/null || echo ro"]);
    assert_eq!((code, out.as_str()), (0, "host\nro\n"), "{err}");
    let (code, out, err) = run(
        &l,
        &["--mount", "type=tmpfs,destination=/t,tmpfs-size=1m,tmpfs-mode=1770"],
        &["sh", "-c", "df -k /t | tail -1 | awk '{print $2}'; stat -c %a /t"],
    );
    assert_eq!((code, out.as_str()), (0, "1024\n1770\n"), "{err}");
    // A --rm container's anonymous volumes go with it (named ones stay), as Docker's.
    let (code, _, err) = run(&l, &["--mount", "type=volume,target=/anon", "-v", "named:/n"], &["true"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(l.mini(&["volume", "ls", "-q"]).1, "named\n");
    let (code, _, err) = l.mini(&["run", "-d", "--rm", "--mount", "type=volume,target=/a", IMAGE, "true"]);
    assert_eq!(code, 0, "{err}");
    l.until("the --rm container gone", || l.m.containers().is_empty());
    l.until("its volume gone", || l.mini(&["volume", "ls", "-q"]).1 == "named\n");
    // rm -v takes them too; plain rm leaves them (an anonymous volume:
    // a 64-hex name), for prune; prune -a takes the named ones too.
    for (rm, left) in [(vec!["rm", "-v"], 0), (vec!["rm"], 1)] {
        let (code, id, err) = l.mini(&["create", "--mount", "type=volume,target=/anon", IMAGE, "true"]);
        assert_eq!(code, 0, "{err}");
        let mut args = rm.clone();
        args.push(id.trim());
        assert_eq!(l.mini(&args).0, 0);
        let names = l.mini(&["volume", "ls", "-q"]).1;
        assert_eq!(names.lines().filter(|n| n.len() == 64).count(), left, "{rm:?}: {names}");
    }
    let names = l.mini(&["volume", "ls", "-q"]).1;
    let anon: Vec<&str> = names.lines().filter(|n| n.len() == 64).collect();
    assert_eq!(anon.len(), 1, "{names}");
    let (code, out, _) = l.mini(&["volume", "prune", "-f"]);
    assert_eq!((code, out), (0, format!("Deleted Volumes:\n{}\n", anon[0])));
    assert_eq!(l.mini(&["volume", "ls", "-q"]).1, "named\n");
    let (code, out, _) = l.mini(&["volume", "prune", "-a"]);
    assert_eq!((code, out.as_str()), (0, "Deleted Volumes:\nnamed\n"));
    assert_eq!(l.mini(&["volume", "ls", "-q"]).1, "");
}

#[test]
fn bad_volumes_and_mounts_are_refused_and_leave_nothing() {
    let Some(l) = Life::new() else { return };
    for (flags, needle) in [
        (vec!["-v", "_bad:/x"], "invalid characters for a local volume name"),
        (vec!["-v", "ok:/proc/x"], "cannot mount under /proc"),
        (vec!["--mount", "type=nfs,target=/x"], "unknown type \"nfs\""),
        (vec!["--mount", "type=bind,target=/x"], "source is required"),
        (vec!["--mount", "type=volume,src=v"], "target is required"),
        (vec!["--mount", "type=bind,src=/nope-mini,dst=/x"], "host path /nope-mini does not exist"),
        (vec!["--mount", "type=bind,src=/tmp,dst=/x,bogus=1"], "unexpected key 'bogus'"),
        (vec!["-v", "a1:/x", "--tmpfs", "/x"], "duplicate mount point"),
        (vec!["-v", "a1:/x", "--restart", "bogus"], "invalid --restart"),
    ] {
        let mut args = vec!["create"];
        args.extend(&flags);
        args.extend([IMAGE, "true"]);
        assert_refused(l.mini(&args), needle);
    }
    assert!(l.m.containers().is_empty());
    assert_eq!(l.mini(&["volume", "ls", "-q"]).1, "", "a refused create made a volume");
    assert_refused(l.mini(&["volume", "create", "a/b"]), "invalid characters");
    assert_refused(l.mini(&["volume", "create", "-d", "nfs", "x1"]), "only local");
}
