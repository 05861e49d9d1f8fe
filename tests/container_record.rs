//! A container starts from its record: what `create` decided (cgroups,
//! process) is what every later `start` uses, whatever the configuration
//! or the caller's cgroup is by then; a record that cannot be read is an
//! error naming the container and the file, never a silent default.

mod support;

use std::path::PathBuf;

use support::{Mini, IMAGE};

/// The container's pid from state.json, once it runs.
fn pid_of(m: &Mini, id: &str) -> i32 {
    let state = m.root.join("containers").join(id).join("state.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(state).unwrap()).unwrap();
    v["pid"].as_i64().expect("a running container has a pid") as i32
}

/// The memory hierarchy's path of `pid` (`/proc/PID/cgroup`).
fn memory_cgroup(pid: i32) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    text.lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctls, path) = (f.next()?, f.next()?, f.next()?);
            (ctls.split(',').any(|c| c == "memory") || ctls.is_empty()).then(|| path.to_string())
        })
        .unwrap()
}

/// Removes the container (and with it its cgroups) even when an assertion fails.
struct Removed<'a>(&'a Mini, &'a str, Vec<PathBuf>);

impl Drop for Removed<'_> {
    fn drop(&mut self) {
        let _ = self.0.cmd(&["rm", "-f", self.1]).output();
        for d in &self.2 {
            let _ = std::fs::remove_dir(d);
        }
    }
}

#[test]
fn start_uses_the_cgroups_planned_at_create_not_todays_config() {
    let Some(m) = Mini::new() else { return };
    let config = m.root.parent().unwrap().join("config.toml");
    let tag = format!("rec{}", std::process::id());
    let (first, second) = (format!("{tag}-a"), format!("{tag}-b"));
    std::fs::write(&config, format!("{}cgroup-parent = \"{first}\"\n", support::mini::CONFIG)).unwrap();
    let mini = |args: &[&str]| m.cmd(args).env("MINI_CONFIG", &config).output().unwrap();
    let out = mini(&["create", "--name", "planned", IMAGE, "sleep", "1000"]);
    assert!(out.status.success(), "create: {}", String::from_utf8_lossy(&out.stderr));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let _guard = Removed(&m, "planned", Vec::new());

    // The configuration changes between create and start.
    std::fs::write(&config, format!("{}cgroup-parent = \"{second}\"\n", support::mini::CONFIG)).unwrap();
    let out = mini(&["start", "planned"]);
    assert!(out.status.success(), "start: {}", String::from_utf8_lossy(&out.stderr));
    let path = memory_cgroup(pid_of(&m, &id));
    assert!(path.contains(&format!("/{first}/{id}")), "started in {path}, not beneath {first} as created");
    assert!(!path.contains(&second), "started in {path}, planned from today's config");
}

#[test]
fn an_unreadable_record_is_an_error_naming_the_container_and_file() {
    let Some(m) = Mini::new() else { return };
    let out = m.cmd(&["create", "--name", "broken", IMAGE, "true"]).output().unwrap();
    assert!(out.status.success(), "create: {}", String::from_utf8_lossy(&out.stderr));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let _guard = Removed(&m, "broken", Vec::new());
    let config = m.root.join("containers").join(&id).join("config.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    v["spec"] = serde_json::json!({"argv": 42});
    std::fs::write(&config, serde_json::to_vec(&v).unwrap()).unwrap();

    let out = m.cmd(&["start", "broken"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains(&id[..12]) && err.contains("config.json"), "error names neither container nor file: {err}");
    // Nothing started, nothing left running.
    let state = std::fs::read_to_string(m.root.join("containers").join(&id).join("state.json")).unwrap();
    assert!(state.contains("\"created\"") || state.contains("\"exited\""), "{state}");
}
