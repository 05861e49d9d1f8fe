//! Docker's seccomp profile format, and mini's default profile in it.
//!
//! A Docker profile is an OCI `linux.seccomp` with conditions: `archMap`
//! instead of `architectures`, and per rule `includes` / `excludes` on the
//! container's capabilities, the machine's architecture and the kernel's
//! version. The engine resolves them for one container (as Docker's daemon
//! does when it writes the spec); the runtime then only sees the OCI form.
//!
//! The default (`seccomp-default.json` beside this file) is an allow-list
//! equivalent to Docker's default profile for Docker ≥ 25: unknown and
//! future syscalls fail with EPERM, io_uring is not allowed, `clone` may
//! not make namespaces and `clone3` answers ENOSYS (so libc falls back to
//! `clone`, whose flags a filter can read) unless the container holds
//! CAP_SYS_ADMIN; `personality` and `socket(AF_VSOCK)` are filtered by
//! argument; capabilities beyond Docker's default set open the calls
//! Docker's profile opens for them.

use caps::Capability;
use oci_spec::runtime::LinuxSeccomp;
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// mini's default profile, in Docker's format.
const DEFAULT: &str = include_str!("seccomp-default.json");

/// The machine a profile is resolved for.
pub struct Machine<'a> {
    /// As a profile's `archMap` names it (`SCMP_ARCH_X86_64`).
    pub scmp_arch: &'a str,
    /// As `includes.arches` names it (Go's: `amd64`, `arm64`).
    pub go_arch: &'a str,
    /// The running kernel's version (major, minor).
    pub kernel: (u32, u32),
}

impl Machine<'static> {
    pub fn current() -> Machine<'static> {
        let (scmp_arch, go_arch) =
            if cfg!(target_arch = "aarch64") { ("SCMP_ARCH_AARCH64", "arm64") } else { ("SCMP_ARCH_X86_64", "amd64") };
        let release = rustix::system::uname().release().to_string_lossy().into_owned();
        Machine { scmp_arch, go_arch, kernel: kernel_version(&release) }
    }
}

/// "6.18.0-1-amd64" → (6, 18); what cannot be read counts as new.
fn kernel_version(release: &str) -> (u32, u32) {
    let mut parts = release.split(|c: char| !c.is_ascii_digit()).filter_map(|p| p.parse().ok());
    (parts.next().unwrap_or(u32::MAX), parts.next().unwrap_or(0))
}

/// The default profile for a container holding `caps`.
pub fn default_profile(caps: &[Capability]) -> Result<LinuxSeccomp> {
    resolve(DEFAULT.as_bytes(), caps, &Machine::current()).map_err(|e| e.within("mini's default seccomp profile"))
}

/// A profile in Docker's format (or plain OCI form, which is a subset)
/// resolved for a container holding `caps` on `machine`.
pub fn resolve(bytes: &[u8], caps: &[Capability], machine: &Machine) -> Result<LinuxSeccomp> {
    let mut profile: Map<String, Value> = match serde_json::from_slice(bytes) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return Err(Error::new("read the profile").because("expected a JSON object")),
        Err(e) => return Err(Error::new("read the profile").because(e)),
    };
    if let Some(map) = profile.remove("archMap") {
        if !profile.contains_key("architectures") {
            profile.insert("architectures".into(), architectures(&map, machine.scmp_arch)?);
        }
    }
    if let Some(Value::Array(rules)) = profile.remove("syscalls") {
        let kept: Vec<Value> = rules.into_iter().filter_map(|r| applies(r, caps, machine)).collect();
        profile.insert("syscalls".into(), Value::Array(kept));
    }
    serde_json::from_value(Value::Object(profile)).map_err(|e| Error::new("read the profile").because(e))
}

/// The architectures of `archMap`'s entry for this machine: it and its
/// sub-architectures.
fn architectures(map: &Value, native: &str) -> Result<Value> {
    let entries = map.as_array().ok_or_else(|| Error::new("read archMap").because("expected a list"))?;
    let mut out = vec![Value::from(native)];
    for e in entries.iter().filter(|e| e["architecture"] == native) {
        out.extend(e["subArchitectures"].as_array().into_iter().flatten().cloned());
    }
    Ok(Value::Array(out))
}

/// A rule with its conditions met, in OCI form (`name` → `names`, the
/// conditions and comments dropped); None when they are not met.
fn applies(rule: Value, caps: &[Capability], machine: &Machine) -> Option<Value> {
    let Value::Object(mut rule) = rule else { return Some(rule) };
    let strings = |v: Option<&Value>, key: &str| -> Vec<String> {
        v.and_then(|v| v[key].as_array()).into_iter().flatten().filter_map(|s| s.as_str().map(str::to_string)).collect()
    };
    let holds = |name: &String| caps.iter().any(|c| c.to_string() == *name);
    let includes = rule.remove("includes");
    let excludes = rule.remove("excludes");
    let (inc, exc) = (includes.as_ref(), excludes.as_ref());
    if !strings(inc, "caps").iter().all(holds) || strings(exc, "caps").iter().any(holds) {
        return None;
    }
    let arches = strings(inc, "arches");
    if !arches.is_empty() && !arches.iter().any(|a| a == machine.go_arch) {
        return None;
    }
    if strings(exc, "arches").iter().any(|a| a == machine.go_arch) {
        return None;
    }
    if let Some(min) = inc.and_then(|i| i["minKernel"].as_str()) {
        if machine.kernel < kernel_version(min) {
            return None;
        }
    }
    rule.remove("comment");
    if let Some(name) = rule.remove("name") {
        rule.entry("names").or_insert_with(|| Value::Array(vec![name]));
    }
    Some(Value::Object(rule))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::seccomp::compile;
    use crate::runtime::seccomp::testing::{check, run};
    use crate::runtime::security::DEFAULT_CAPS;
    use std::str::FromStr;

    const AMD64: Machine = Machine { scmp_arch: "SCMP_ARCH_X86_64", go_arch: "amd64", kernel: (6, 1) };

    fn names(p: &LinuxSeccomp) -> Vec<String> {
        p.syscalls().iter().flatten().flat_map(|r| r.names().clone()).collect()
    }

    #[test]
    fn conditions_on_caps_arches_and_kernel_pick_the_rules() {
        let profile = br#"{
            "defaultAction": "SCMP_ACT_ERRNO",
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
                        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
            "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW", "comment": "always"},
                {"name": "mount", "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
                {"names": ["set_tls"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm"]}},
                {"names": ["future"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "6.2"}},
                {"names": ["past"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}}
            ]}"#;
        let plain = resolve(profile, &DEFAULT_CAPS, &AMD64).unwrap();
        assert_eq!(names(&plain), ["read", "clone3", "arch_prctl", "past"]);
        let arches: Vec<String> = plain.architectures().iter().flatten().map(|a| format!("{a:?}")).collect();
        assert_eq!(arches, ["ScmpArchX86_64", "ScmpArchX86"]);
        let admin = resolve(profile, &[Capability::CAP_SYS_ADMIN], &AMD64).unwrap();
        assert_eq!(names(&admin), ["read", "mount", "arch_prctl", "past"]);
    }

    #[test]
    fn bad_profiles_say_why() {
        let e = resolve(b"[1]", &DEFAULT_CAPS, &AMD64).unwrap_err().to_string();
        assert_eq!(e, "read the profile: expected a JSON object");
        let e = resolve(b"{\"defaultAction\": \"SCMP_ACT_NOPE\"}", &DEFAULT_CAPS, &AMD64).unwrap_err().to_string();
        assert!(e.starts_with("read the profile: unknown variant `SCMP_ACT_NOPE`"), "{e}");
        let e = resolve(b"{", &DEFAULT_CAPS, &AMD64).unwrap_err().to_string();
        assert!(e.starts_with("read the profile: EOF"), "{e}");
    }

    /// For Docker's default capabilities on amd64 the default resolves to
    /// exactly the profile Docker writes into its containers' specs (the
    /// runtime's fixture, which `bench/run.sh` also gives crun).
    #[test]
    fn for_dockers_default_caps_it_is_dockers_profile() {
        let docker: LinuxSeccomp =
            serde_json::from_str(include_str!("../runtime/seccomp/testdata/docker-default-seccomp.json")).unwrap();
        assert_eq!(resolve(DEFAULT.as_bytes(), &DEFAULT_CAPS, &AMD64).unwrap(), docker);
    }

    /// The default is an allow-list: what Docker's profile allows passes,
    /// everything else (the host's management calls, io_uring, calls the
    /// filter does not know) fails, and capabilities open what Docker's
    /// profile opens for them.
    #[test]
    fn the_default_is_dockers_allow_list() {
        let arch = if cfg!(target_arch = "aarch64") { 0xc000_00b7 } else { 0xc000_003e };
        let nr = |name: &str| syscalls::Sysno::from_str(name).unwrap().id() as u32;
        let verdict = |caps: &[Capability], call: u32, arg0: u64| {
            let c = compile(&default_profile(caps).unwrap()).unwrap();
            check(&c.program);
            run(&c.program, arch, call, [arg0, 0, 0, 0, 0, 0])
        };
        let (allow, eperm, enosys) = (0x7fff_0000, 0x0005_0000 | libc::EPERM as u32, 0x0005_0000 | libc::ENOSYS as u32);
        let d = &DEFAULT_CAPS[..];
        for call in ["read", "getpid", "openat", "execve", "chroot", "ptrace", "socket"] {
            assert_eq!(verdict(d, nr(call), libc::AF_INET as u64), allow, "{call}");
        }
        let host_calls = [
            "keyctl",
            "mount",
            "umount2",
            "pivot_root",
            "reboot",
            "kexec_load",
            "init_module",
            "bpf",
            "perf_event_open",
            "userfaultfd",
            "unshare",
            "setns",
            "open_by_handle_at",
            "swapon",
            "acct",
            "io_uring_setup",
            "io_uring_enter",
            "io_uring_register",
        ];
        for call in host_calls {
            assert_eq!(verdict(d, nr(call), 0), eperm, "{call}");
        }
        assert_eq!(verdict(d, 1023, 0), eperm, "a syscall number no profile knows");
        assert_eq!(verdict(d, nr("socket"), libc::AF_VSOCK as u64), eperm);
        assert_eq!(verdict(d, nr("personality"), 0), allow);
        assert_eq!(verdict(d, nr("personality"), 0x0040_0000), eperm, "READ_IMPLIES_EXEC");
        assert_eq!(verdict(d, nr("clone3"), 0), enosys);
        assert_eq!(verdict(d, nr("clone"), libc::CLONE_NEWNS as u64 | libc::SIGCHLD as u64), eperm);
        assert_eq!(verdict(d, nr("clone"), libc::CLONE_NEWUSER as u64), eperm);
        let thread = (libc::CLONE_VM | libc::CLONE_THREAD) as u64 | libc::SIGCHLD as u64;
        assert_eq!(verdict(d, nr("clone"), thread), allow);
        // Capabilities open Docker's calls for them, and dropping one
        // closes its calls.
        let mut admin = d.to_vec();
        admin.push(Capability::CAP_SYS_ADMIN);
        assert_eq!(verdict(&admin, nr("mount"), 0), allow);
        assert_eq!(verdict(&admin, nr("clone"), libc::CLONE_NEWNS as u64), allow);
        assert_eq!(verdict(&admin, nr("clone3"), 0), allow);
        assert_eq!(verdict(&admin, nr("kexec_load"), 0), eperm);
        assert_eq!(verdict(&[Capability::CAP_SYS_TIME], nr("clock_settime"), 0), allow);
        assert_eq!(verdict(d, nr("clock_settime"), 0), eperm);
        let no_chroot: Vec<Capability> = d.iter().copied().filter(|c| *c != Capability::CAP_SYS_CHROOT).collect();
        assert_eq!(verdict(&no_chroot, nr("chroot"), 0), eperm);
    }
}
