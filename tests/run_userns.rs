//! `--userns=auto`: container root is an unprivileged host id, files from
//! the image keep their owners inside (idmapped layers), the container's
//! writes land in its upper dir with ids from its range, and export shows
//! the container's own ids.

mod support;

use std::os::unix::fs::MetadataExt;

use support::{Mini, IMAGE};

#[test]
fn userns_auto_maps_root_to_an_unprivileged_range() {
    let Some(m) = Mini::new() else { return };
    let script = "id -u; cat /proc/self/uid_map; stat -c '%u:%g' /etc/passwd /home/app/owned; cat /home/app/owned; \
                  readlink /proc/self/ns/user; echo x > /etc/new && echo wrote; mkdir /home/app/sub; chown 1000 /home/app/sub";
    // Volumes are reachable even below a directory only host root may search.
    let private = m.root.parent().unwrap().join("private");
    std::fs::create_dir_all(private.join("vol")).unwrap();
    std::fs::write(private.join("vol/in"), "host data\n").unwrap();
    std::fs::set_permissions(&private, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let v = format!("{}:/vol:ro", private.join("vol").display());
    let script = format!("{script}; cat /vol/in; touch /vol/x 2>/dev/null || echo ro-refused");
    let out = m.run(&["run", "--name", "u1", "--userns=auto", "-v", &v, IMAGE, "sh", "-c", &script]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "0");
    let map: Vec<&str> = lines[1].split_whitespace().collect();
    let base: u32 = map[1].parse().unwrap();
    assert_eq!((map[0], map[2]), ("0", "65536"));
    assert!(base >= 65536, "container root must not be a host user: {base}");
    assert_eq!(lines[2], "0:0");
    assert_eq!(lines[3], "1000:1000");
    assert_eq!(lines[4], "owned by 1000:1000");
    let host_ns = std::fs::read_link("/proc/self/ns/user").unwrap();
    assert_ne!(lines[5], host_ns.to_string_lossy());
    assert_eq!(lines[6], "wrote");
    assert_eq!(&lines[7..], ["host data", "ro-refused"]);

    let id = m.containers().pop().unwrap();
    let upper = m.root.join("containers").join(&id).join("upper");
    assert_eq!(std::fs::metadata(upper.join("etc/new")).unwrap().uid(), base);
    assert_eq!(std::fs::metadata(upper.join("home/app/sub")).unwrap().uid(), base + 1000);

    let out = m.run(&["export", "u1"]);
    assert!(out.status.success());
    let mut ar = tar::Archive::new(&out.stdout[..]);
    let mut owners = std::collections::BTreeMap::new();
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().trim_end_matches('/').to_string();
        owners.insert(path, e.header().uid().unwrap());
    }
    assert_eq!(owners["etc/new"], 0);
    assert_eq!(owners["home/app/sub"], 1000);
    assert_eq!(owners["home/app/owned"], 1000);
    assert!(m.run(&["rm", "u1"]).status.success());
    assert!(m.containers().is_empty());
}
