//! `mini commit`: a container's changes (a deleted file, a new one with
//! its owner and mode, an emptied directory) become a layer on top of its
//! image; the /etc files mini mounts stay out; an unknown container fails
//! with one line and changes nothing.

mod support;

use support::{Mini, Outcome, IMAGE};

const SCRIPT: &str = "rm /etc/shadow; echo hello > /new; chown 1000:1000 /new; chmod 4750 /new; \
    rm -r /opt/replaced; mkdir /opt/replaced; echo fresh > /opt/replaced/only";

#[test]
fn committed_changes_run_as_an_image() {
    let Some(m) = Mini::new() else { return };
    let out = m.run(&["run", "--name", "work", IMAGE, "sh", "-c", SCRIPT]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let o = Outcome::of(m.run(&[
        "commit",
        "-c",
        r#"CMD ["cat","/new"]"#,
        "-c",
        "ENV GREETING=hi",
        "-m",
        "a test commit",
        "-a",
        "Tester <t@example.com>",
        "work",
        "committed:1",
    ]));
    o.assert_ok();
    assert!(o.stdout.trim().starts_with("sha256:"), "{}", o.stdout);

    let out = m.run(&["run", "--rm", "committed:1"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
    let check = "test ! -e /etc/shadow && ls -ln /new && ls /opt/replaced && echo $GREETING && cat /etc/hostname";
    let out = m.run(&["run", "--rm", "--hostname", "fresh", "committed:1", "sh", "-c", check]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text} {}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = text.lines().collect();
    let ls: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!((ls[0], ls[2], ls[3]), ("-rwsr-x---", "1000", "1000"), "{text}");
    assert_eq!(&lines[1..], ["only", "hi", "fresh"], "opaque dir, env change, the run's own hostname");

    // The config carries the history entry (read from the store's OCI layout).
    let layout = format!("oci:{}:docker.io/library/committed:1", m.root.display());
    let cfg = std::process::Command::new("skopeo").args(["inspect", "--config", &layout]).output().unwrap();
    let cfg: serde_json::Value = serde_json::from_slice(&cfg.stdout).expect("skopeo inspect --config");
    let last = cfg["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["comment"].as_str(), last["author"].as_str()),
        (Some("a test commit"), Some("Tester <t@example.com>"))
    );
    assert_eq!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 3);
}

#[test]
fn commit_of_an_unknown_container_fails_and_changes_nothing() {
    let Some(m) = Mini::new() else { return };
    // Any container lookup makes the containers' name index: not the commit's doing.
    assert!(m.run(&["ps", "-a"]).status.success());
    let before = m.snapshot();
    Outcome::of(m.run(&["commit", "nosuch", "x:1"])).assert_error(&["commit nosuch", "no such container"]);
    Outcome::of(m.run(&["commit", "nosuch", "Bad:Name"])).assert_error(&["invalid reference format"]);
    assert_eq!(m.snapshot(), before);
}

#[test]
fn a_userns_auto_container_commits_its_own_ids_while_running() {
    let Some(life) = support::life::Life::new() else { return };
    let script = "mkdir /home/app/made && chown 1000:1000 /home/app/made && echo x > /rootfile && sleep 1000";
    let id = life.detach(&["--userns=auto"], &["sh", "-c", script]);
    let upper = life.m.root.join("containers").join(&id).join("upper");
    support::wait_for(std::time::Duration::from_secs(10), "the container's writes", || {
        upper.join("rootfile").metadata().ok().filter(|m| m.len() > 0)
    });
    let (code, out, err) = life.mini(&["commit", &id, "shifted:1"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("sha256:"));
    let check = "stat -c '%u:%g' /home/app/made /rootfile";
    let out = life.m.run(&["run", "--rm", "shifted:1", "sh", "-c", check]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1000:1000\n0:0\n", "{}", String::from_utf8_lossy(&out.stderr));
}

/// Docker's default `--pause`: the running container is frozen while its
/// changes are read, and runs on afterwards; `--pause=false` reads it live.
#[test]
fn commit_pauses_a_running_container_and_thaws_it() {
    let Some(life) = support::life::Life::new() else { return };
    let id = life.detach(
        &[],
        &["sh", "-c", "echo x > /made; i=0; while true; do i=$((i+1)); echo $i > /tick; sleep 0.02; done"],
    );
    let upper = life.m.root.join("containers").join(&id).join("upper");
    support::wait_for(std::time::Duration::from_secs(10), "the container's writes", || {
        upper.join("tick").metadata().ok().filter(|m| m.len() > 0)
    });
    let freezer = life.cgroups().into_iter().find(|d| d.to_string_lossy().contains("/freezer/"));
    let freezer = freezer.expect("a v1 freezer cgroup (HOST-NOTES: this host is v1 hybrid)");
    let (code, out, err) = life.mini(&["commit", &id, "paused:1"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("sha256:"));
    assert_eq!(std::fs::read_to_string(freezer.join("freezer.state")).unwrap().trim(), "THAWED");
    assert_eq!(life.status(&id), "running");
    // Still counting afterwards (a read may catch the file just truncated).
    let tick = || std::fs::read_to_string(upper.join("tick")).ok().filter(|t| !t.is_empty());
    let t1 = support::wait_for(std::time::Duration::from_secs(5), "a tick", tick);
    support::wait_for(std::time::Duration::from_secs(5), "the container to go on counting", || {
        tick().filter(|t| *t != t1)
    });
    let (code, _, err) = life.mini(&["commit", "--pause=false", &id, "live:1"]);
    assert_eq!(code, 0, "{err}");
    let out = life.m.run(&["run", "--rm", "paused:1", "cat", "/made"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "x\n");
}
