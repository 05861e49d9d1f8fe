//! Placement on fake cgroupfs trees in temp dirs: a pure v1 host, a pure
//! v2 host, and this machine's hybrid. Each test describes the host as
//! mountinfo + /proc/self/cgroup bytes pointing into the temp dir, asserts
//! the whole plan, then runs the executor and checks the files it wrote.

use std::path::{Path, PathBuf};

use super::detect::{Layout, Version};
use super::limits::{Flags, Limits};
use super::place::{self, Request, Step, DEVICE_RULES, LEAF};
use super::*;

struct Fake {
    tmp: tempfile::TempDir,
}

impl Fake {
    fn new() -> Fake {
        Fake { tmp: tempfile::tempdir().unwrap() }
    }
    fn p(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }
    /// A cgroup directory with the (empty) files cgroupfs would show.
    fn cgroup(&self, rel: &str, files: &[(&str, &str)]) {
        let d = self.p(rel);
        std::fs::create_dir_all(&d).unwrap();
        for (f, text) in files {
            std::fs::write(d.join(f), text).unwrap();
        }
    }
    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.p(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }
    fn mountinfo(&self, mounts: &[(&str, &str, &str)]) -> Vec<u8> {
        let mut s = String::new();
        for (i, (dir, fstype, opts)) in mounts.iter().enumerate() {
            s += &format!("{} 31 0:{i} / {} rw - {fstype} {fstype} rw,{opts}\n", 40 + i, self.p(dir).display());
        }
        s.into_bytes()
    }
    fn layout(&self, mounts: &[(&str, &str, &str)], self_cgroup: &[u8]) -> Layout {
        Layout::parse(&self.mountinfo(mounts), self_cgroup, &|p| std::fs::read_to_string(p).ok())
    }
}

fn limits(f: impl FnOnce(&mut Flags)) -> Limits {
    let mut flags = Flags::default();
    f(&mut flags);
    Limits::from_flags(&flags, &[0, 1, 2, 3]).unwrap()
}

fn plan_of(fake: &Fake, layout: &Layout, parent: &str, l: &Limits) -> Plan {
    let _ = fake;
    place::plan(layout, &Request { id: "abc", parent, limits: l }, &|p| std::fs::read_to_string(p).ok()).unwrap()
}

const V1_MOUNTS: [(&str, &str, &str); 6] = [
    ("memory", "cgroup", "memory"),
    ("pids", "cgroup", "pids"),
    ("cpu,cpuacct", "cgroup", "cpu,cpuacct"),
    ("cpuset", "cgroup", "cpuset"),
    ("devices", "cgroup", "devices"),
    ("systemd", "cgroup", "name=systemd"),
];

#[test]
fn v1_places_beneath_minis_own_cgroup_with_devices_cpuset_and_limits() {
    let f = Fake::new();
    let own = b"9:name=systemd:/\n6:devices:/ci\n5:cpuset:/ci\n4:memory:/ci\n3:pids:/ci\n2:cpu,cpuacct:/ci\n";
    let layout = f.layout(&V1_MOUNTS, own);
    assert_eq!(layout.kind(), "v1");
    let l = limits(|x| {
        x.memory = Some("16m".into());
        x.cpus = Some("0.5".into());
        x.pids_limit = Some("16".into());
        x.cpuset_cpus = Some("1-2".into());
    });
    let plan = plan_of(&f, &layout, "mini", &l);
    let dirs: Vec<PathBuf> = plan.dirs.iter().map(|d| d.path.clone()).collect();
    let under = |h: &str| f.p(&format!("{h}/ci/mini/abc"));
    assert_eq!(dirs, [under("memory"), under("pids"), under("cpu,cpuacct"), under("devices"), under("cpuset")]);
    assert_eq!(plan.levels, 2);
    // The cpuset hierarchy inherits cpus/mems level by level, then limits.
    let cpuset: Vec<&Step> = plan.steps.iter().filter(|s| format!("{s:?}").contains("/cpuset/")).collect();
    assert_eq!(
        cpuset,
        [
            &Step::MakeDir(f.p("cpuset/ci/mini")),
            &Step::InheritCpuset(f.p("cpuset/ci/mini")),
            &Step::MakeDir(under("cpuset")),
            &Step::InheritCpuset(under("cpuset")),
            &Step::Write { file: under("cpuset").join("cpuset.cpus"), value: "1-2".into(), optional: false },
        ]
    );

    // Execute on a fake tree that has the files cgroupfs would create.
    f.cgroup("cpuset/ci", &[("cpuset.cpus", "0-3\n"), ("cpuset.mems", "0\n")]);
    f.cgroup("cpuset/ci/mini", &[("cpuset.cpus", ""), ("cpuset.mems", "")]);
    f.cgroup("cpuset/ci/mini/abc", &[("cpuset.cpus", ""), ("cpuset.mems", ""), ("tasks", "")]);
    f.cgroup(
        "memory/ci/mini/abc",
        &[("memory.limit_in_bytes", ""), ("memory.memsw.limit_in_bytes", ""), ("tasks", "")],
    );
    f.cgroup("pids/ci/mini/abc", &[("pids.max", ""), ("tasks", "")]);
    f.cgroup("cpu,cpuacct/ci/mini/abc", &[("cpu.cfs_period_us", ""), ("cpu.cfs_quota_us", ""), ("tasks", "")]);
    f.cgroup("devices/ci/mini/abc", &[("devices.deny", ""), ("devices.allow", ""), ("tasks", "")]);
    place::execute(&plan.steps).unwrap();
    let files = open_join_files(&plan.dirs.iter().map(|d| d.path.clone()).collect::<Vec<_>>()).unwrap();
    assert_eq!(files.len(), 5);
    assert_eq!(f.read("memory/ci/mini/abc/memory.limit_in_bytes"), "16777216");
    assert_eq!(f.read("memory/ci/mini/abc/memory.memsw.limit_in_bytes"), "33554432");
    assert_eq!(f.read("pids/ci/mini/abc/pids.max"), "16");
    assert_eq!(f.read("cpu,cpuacct/ci/mini/abc/cpu.cfs_quota_us"), "50000");
    assert_eq!(f.read("cpu,cpuacct/ci/mini/abc/cpu.cfs_period_us"), "100000");
    assert_eq!(f.read("cpuset/ci/mini/cpuset.cpus"), "0-3");
    assert_eq!(f.read("cpuset/ci/mini/abc/cpuset.mems"), "0");
    assert_eq!(f.read("cpuset/ci/mini/abc/cpuset.cpus"), "1-2");
    assert_eq!(f.read("devices/ci/mini/abc/devices.deny"), "a");
    // One open, one write per rule (a plain file just appends them).
    assert_eq!(f.read("devices/ci/mini/abc/devices.allow"), DEVICE_RULES.concat());
    let allows = plan.steps.iter().filter(|s| matches!(s, Step::Write { file, .. } if file.ends_with("devices.allow")));
    assert_eq!(allows.count(), DEVICE_RULES.len());
    join(&files).unwrap();
    assert_eq!(f.read("pids/ci/mini/abc/tasks"), "0");
}

#[test]
fn v1_parent_absolute_relative_and_refused() {
    let f = Fake::new();
    let layout = f.layout(&V1_MOUNTS[..2], b"4:memory:/ci\n3:pids:/\n");
    let none = Limits::default();
    let abs = plan_of(&f, &layout, "/batch/x", &none);
    assert_eq!(abs.dirs[0].path, f.p("memory/batch/x/abc"));
    assert_eq!(abs.dirs[1].path, f.p("pids/batch/x/abc"));
    assert_eq!(abs.levels, 3);
    // mini at a hierarchy's root: the container still gets a level of its
    // own parent ("mini") between it and the root.
    let rel = plan_of(&f, &layout, "mini", &none);
    assert_eq!(rel.dirs[1].path, f.p("pids/mini/abc"));
    let err = place::plan(&layout, &Request { id: "abc", parent: "a/../..", limits: &none }, &|_| None).unwrap_err();
    assert_eq!(err.to_string(), "invalid --cgroup-parent \"a/../..\": \"..\" is not allowed");
    // A limit whose controller the host lacks is an error, not a no-op.
    let l = limits(|x| x.cpus = Some("1".into()));
    let err = place::plan(&layout, &Request { id: "abc", parent: "mini", limits: &l }, &|_| None).unwrap_err();
    assert_eq!(err.to_string(), "set the container's cpu limit: this host (cgroup v1) has no cpu controller");
}

#[test]
fn v2_moves_mini_into_a_leaf_and_enables_controllers_along_the_path() {
    let f = Fake::new();
    let ctl = ("cgroup.controllers", "cpuset cpu io memory hugetlb pids\n");
    f.cgroup("unified", &[ctl, ("cgroup.subtree_control", "")]);
    let ty = ("cgroup.type", "domain\n"); // the true root alone lacks it
    f.cgroup("unified/user/job", &[ctl, ty, ("cgroup.subtree_control", ""), ("cgroup.procs", "4242\n4243\n")]);
    let layout = f.layout(&[("unified", "cgroup2", "nsdelegate")], b"0::/user/job\n");
    assert_eq!(layout.kind(), "v2");
    let l = limits(|x| {
        x.memory = Some("64m".into());
        x.memory_swap = Some("96m".into());
        x.cpus = Some("1.5".into());
        x.cpu_shares = Some("1024".into());
        x.pids_limit = Some("100".into());
    });
    let plan = plan_of(&f, &layout, "mini", &l);
    let (job, leaf, mini, abc) = (
        f.p("unified/user/job"),
        f.p(&format!("unified/user/job/{LEAF}")),
        f.p("unified/user/job/mini"),
        f.p("unified/user/job/mini/abc"),
    );
    let ctls: Vec<String> = ["memory", "pids", "cpu"].map(String::from).to_vec();
    let w = |file: &str, value: &str| Step::Write { file: abc.join(file), value: value.into(), optional: false };
    assert_eq!(
        plan.steps,
        [
            Step::MakeDir(leaf.clone()),
            Step::Evacuate { from: job.clone(), to: leaf.clone() },
            Step::Enable { dir: job.clone(), controllers: ctls.clone() },
            Step::MakeDir(mini.clone()),
            Step::Enable { dir: mini.clone(), controllers: ctls.clone() },
            Step::MakeDir(abc.clone()),
            w("memory.max", "67108864"),
            Step::Write { file: abc.join("memory.swap.max"), value: "33554432".into(), optional: true },
            w("cpu.max", "150000 100000"),
            w("cpu.weight", "39"),
            w("pids.max", "100"),
        ]
    );
    assert_eq!(plan.dirs.len(), 1);
    assert_eq!(
        (plan.dirs[0].version, &plan.dirs[0].path, plan.dirs[0].mount_name.as_str()),
        (Version::V2, &abc, "unified")
    );

    // Run it (pids that no longer exist are skipped, as a real exit would).
    f.cgroup("unified/user/job/mini", &[("cgroup.subtree_control", "")]);
    f.cgroup(
        "unified/user/job/mini/abc",
        &[("memory.max", ""), ("cpu.max", ""), ("cpu.weight", ""), ("pids.max", ""), ("cgroup.procs", "")],
    );
    f.cgroup(&format!("unified/user/job/{LEAF}"), &[("cgroup.procs", "")]);
    std::fs::write(job.join("cgroup.procs"), format!("{}\n", std::process::id())).unwrap();
    place::execute(&plan.steps).unwrap();
    assert_eq!(f.read(&format!("unified/user/job/{LEAF}/cgroup.procs")), std::process::id().to_string());
    assert_eq!(f.read("unified/user/job/cgroup.subtree_control"), "+memory +pids +cpu");
    assert_eq!(f.read("unified/user/job/mini/cgroup.subtree_control"), "+memory +pids +cpu");
    assert_eq!(f.read("unified/user/job/mini/abc/cpu.max"), "150000 100000");
    assert!(!abc.join("memory.swap.max").exists(), "optional file skipped when absent");

    // The next mini starts inside the leaf: its base is the leaf's parent,
    // already delegating, so nothing moves and nothing nests.
    std::fs::write(job.join("cgroup.subtree_control"), "memory pids cpu\n").unwrap();
    std::fs::write(mini.join("cgroup.subtree_control"), "memory pids cpu\n").unwrap();
    let layout = f.layout(&[("unified", "cgroup2", "nsdelegate")], format!("0::/user/job/{LEAF}\n").as_bytes());
    let again = plan_of(&f, &layout, "mini", &Limits::default());
    assert_eq!(again.steps, [Step::MakeDir(mini.clone()), Step::MakeDir(abc.clone())]);
}

#[test]
fn v2_refuses_a_limit_whose_controller_is_not_delegated() {
    let f = Fake::new();
    f.cgroup("unified", &[("cgroup.controllers", "memory\n")]);
    let layout = f.layout(&[("unified", "cgroup2", "")], b"0::/\n");
    let l = limits(|x| x.pids_limit = Some("5".into()));
    let err =
        place::plan(&layout, &Request { id: "abc", parent: "mini", limits: &l }, &|p| std::fs::read_to_string(p).ok());
    // pids is not listed at all, so the host "has no pids controller".
    assert!(err.unwrap_err().to_string().contains("has no pids controller"));
    // At the v2 root there is no internal-process rule: no leaf, no move.
    std::fs::write(f.p("unified/cgroup.procs"), "1\n").unwrap();
    let p = plan_of(&f, &layout, "mini", &limits(|x| x.memory = Some("8m".into())));
    assert_eq!(p.steps[0], Step::Enable { dir: f.p("unified"), controllers: vec!["memory".into()] });
    assert!(!p.steps.iter().any(|s| matches!(s, Step::Evacuate { .. })));
    // The root of a cgroup namespace looks like a root but is not one.
    std::fs::write(f.p("unified/cgroup.type"), "domain\n").unwrap();
    let p = plan_of(&f, &layout, "mini", &limits(|x| x.memory = Some("8m".into())));
    assert_eq!(p.steps[1], Step::Evacuate { from: f.p("unified"), to: f.p(&format!("unified/{LEAF}")) });
}

#[test]
fn hybrid_uses_v1_for_what_v1_owns_and_ignores_a_v2_tree_that_owns_nothing_needed() {
    let f = Fake::new();
    f.cgroup("unified", &[("cgroup.controllers", "hugetlb\n")]);
    let mounts = [V1_MOUNTS[0], V1_MOUNTS[1], ("unified", "cgroup2", "")];
    let layout = f.layout(&mounts, b"4:memory:/process_api/x\n3:pids:/\n0::/\n");
    assert_eq!(layout.kind(), "hybrid");
    let p = plan_of(&f, &layout, "mini", &limits(|x| x.memory = Some("16m".into())));
    let dirs: Vec<(Version, PathBuf)> = p.dirs.iter().map(|d| (d.version, d.path.clone())).collect();
    assert_eq!(dirs, [(Version::V1, f.p("memory/process_api/x/mini/abc")), (Version::V1, f.p("pids/mini/abc"))]);
}

#[test]
fn removal_takes_the_cgroup_and_empty_parents_mini_made_and_reads_oom() {
    let f = Fake::new();
    f.cgroup("memory/ci/mini/abc", &[]);
    f.cgroup("memory/ci/mini/other", &[]);
    f.cgroup("pids/ci/mini/abc", &[]);
    let dirs = [f.p("memory/ci/mini/abc"), f.p("pids/ci/mini/abc")];
    std::fs::write(f.p("memory/ci/mini/abc/memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
        .unwrap();
    assert!(oom_killed(&dirs));
    std::fs::remove_file(f.p("memory/ci/mini/abc/memory.oom_control")).unwrap();
    assert!(!oom_killed(&dirs));
    remove(&dirs, 2);
    assert!(!f.p("memory/ci/mini/abc").exists() && f.p("memory/ci/mini/other").exists());
    assert!(!f.p("pids/ci/mini").exists() && f.p("pids/ci").exists(), "mini's own cgroup stays");
    let _ = Path::new("");
}

#[test]
fn the_freezer_is_v2s_cgroup_freeze_else_v1s_freezer_state() {
    let f = Fake::new();
    // Hybrid with a v1 freezer and no v2 dir: freezer.state.
    let mounts = [V1_MOUNTS[0], ("freezer", "cgroup", "freezer"), ("unified", "cgroup2", "")];
    f.cgroup("unified", &[("cgroup.controllers", "")]);
    let layout = f.layout(&mounts, b"4:memory:/\n3:freezer:/\n0::/\n");
    let plan = plan_of(&f, &layout, "mini", &limits(|_| {}));
    let fr = Freezer::of(&plan.dirs).unwrap();
    assert_eq!(fr, Freezer { version: Version::V1, dir: f.p("freezer/mini/abc") });
    f.cgroup("freezer/mini/abc", &[("freezer.state", "THAWED\n")]);
    fr.set(true, Duration::from_millis(50)).unwrap();
    assert_eq!(f.read("freezer/mini/abc/freezer.state").trim(), "FROZEN");
    fr.set(false, Duration::from_millis(50)).unwrap();
    assert_eq!(f.read("freezer/mini/abc/freezer.state").trim(), "THAWED");

    // Pure v2: cgroup.freeze, complete once cgroup.events says so.
    let f = Fake::new();
    f.cgroup("unified", &[("cgroup.controllers", "memory pids\n"), ("cgroup.subtree_control", "memory pids\n")]);
    let layout = f.layout(&[("unified", "cgroup2", "")], b"0::/\n");
    let plan = plan_of(&f, &layout, "mini", &limits(|_| {}));
    let fr = Freezer::of(&plan.dirs).unwrap();
    assert_eq!(fr, Freezer { version: Version::V2, dir: f.p("unified/mini/abc") });
    f.cgroup("unified/mini/abc", &[("cgroup.freeze", "0\n"), ("cgroup.events", "populated 1\nfrozen 1\n")]);
    fr.set(true, Duration::from_millis(50)).unwrap();
    assert_eq!(f.read("unified/mini/abc/cgroup.freeze").trim(), "1");
    // A freeze the kernel never completes is undone and reported.
    std::fs::write(f.p("unified/mini/abc/cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
    let e = fr.set(true, Duration::from_millis(20)).unwrap_err().to_string();
    assert!(e.starts_with("freeze the container") && e.contains("frozen 1"), "{e}");
    assert_eq!(f.read("unified/mini/abc/cgroup.freeze").trim(), "0", "thawed again");
    // No freezer at all: pause is refused.
    assert_eq!(Freezer::of(&[]), None);
}

#[test]
fn rootless_keeps_only_a_delegated_v2_tree() {
    let f = Fake::new();
    let ctl = ("cgroup.controllers", "cpu memory pids\n");
    f.cgroup("unified", &[ctl, ("cgroup.subtree_control", "cpu memory pids\n")]);
    let ty = ("cgroup.type", "domain\n");
    f.cgroup("unified/user/alice", &[ctl, ty, ("cgroup.subtree_control", "cpu memory pids\n"), ("cgroup.procs", "")]);
    let mounts = [V1_MOUNTS[0], V1_MOUNTS[1], ("unified", "cgroup2", "")];
    let self_cgroup = b"4:memory:/\n3:pids:/\n0::/user/alice\n";
    // Delegated: the user's own v2 cgroup is writable; v1 never counts.
    let delegated = f.p("unified/user/alice");
    let mut layout = f.layout(&mounts, self_cgroup);
    layout.keep_delegated(&|p| p.starts_with(&delegated));
    assert_eq!(layout.hierarchies.len(), 1);
    assert_eq!(layout.hierarchies[0].version, Version::V2);
    let p = plan_of(&f, &layout, "mini", &limits(|x| x.memory = Some("16m".into())));
    let dirs: Vec<PathBuf> = p.dirs.iter().map(|d| d.path.clone()).collect();
    assert_eq!(dirs, [f.p("unified/user/alice/mini/abc")]);
    assert!(p.steps.iter().any(|s| matches!(s, Step::Write { file, .. } if file.ends_with("memory.max"))));
    // Nothing writable (this machine's case): nothing left to place in.
    let mut none = f.layout(&mounts, self_cgroup);
    none.keep_delegated(&|_| false);
    assert!(none.hierarchies.is_empty());
}

#[test]
fn set_limits_replaces_the_plans_limit_writes_keeps_device_rules_and_writes_now() {
    let f = Fake::new();
    let own = b"6:devices:/ci\n4:memory:/ci\n3:pids:/ci\n2:cpu,cpuacct:/ci\n";
    let layout = f.layout(&V1_MOUNTS[..5], own);
    let old = limits(|x| {
        x.memory = Some("16m".into());
        x.pids_limit = Some("16".into());
    });
    let mut cg = Cgroups { plan: plan_of(&f, &layout, "mini", &old), required: true, parent_source: None };
    let writes = |cg: &Cgroups| -> Vec<(String, String)> {
        cg.plan
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Write { file, value, .. } => {
                    Some((file.file_name().unwrap().to_string_lossy().into_owned(), value.clone()))
                }
                _ => None,
            })
            .filter(|(f, _)| !f.starts_with("devices."))
            .collect()
    };
    assert!(writes(&cg).contains(&("pids.max".into(), "16".into())));
    let new = limits(|x| {
        x.memory = Some("32m".into());
        x.cpus = Some("1".into());
    });
    // Not running: only the plan changes.
    cg.set_limits(&new, false).unwrap();
    let w = writes(&cg);
    assert!(w.contains(&("memory.limit_in_bytes".into(), (32u64 << 20).to_string())), "{w:?}");
    assert!(w.contains(&("cpu.cfs_quota_us".into(), "100000".into())), "{w:?}");
    assert!(!w.iter().any(|(f, _)| f == "pids.max"), "the old limit is gone: {w:?}");
    let rules = cg.plan.steps.iter().filter(|s| format!("{s:?}").contains("devices.allow")).count();
    assert_eq!(rules, DEVICE_RULES.len(), "device rules stay");
    // Running: the files are written now (on the fake tree).
    f.cgroup("memory/ci/mini/abc", &[("memory.limit_in_bytes", ""), ("memory.memsw.limit_in_bytes", "")]);
    f.cgroup("cpu,cpuacct/ci/mini/abc", &[("cpu.cfs_period_us", ""), ("cpu.cfs_quota_us", "")]);
    cg.set_limits(&new, true).unwrap();
    assert_eq!(f.read("memory/ci/mini/abc/memory.limit_in_bytes"), (32u64 << 20).to_string());
    assert_eq!(f.read("cpu,cpuacct/ci/mini/abc/cpu.cfs_quota_us"), "100000");
}
