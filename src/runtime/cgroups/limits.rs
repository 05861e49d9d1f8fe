//! Resource flags as typed (Docker's syntax and units) → validated
//! [`Limits`] → the file writes that carry them out on v1 or v2.
//!
//! Pure: the host's online CPUs come in as an argument. v1 and v2 differ
//! only in file names and units, so each limit is one [`Setting`] and one
//! function maps a setting to its file and value for a version.

use super::detect::Version;
use crate::error::{Error, Result};

/// The resource flags of `mini run`, as typed, Docker's spelling. Values
/// stay strings here: [`Limits::from_flags`] parses them, so every bad
/// value gets the same one-line error naming flag and value. (The CLI
/// parses straight into this struct; the help texts are its doc comments.)
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::Args)]
#[serde(default)]
pub struct Flags {
    /// Memory limit (b, k, m, g; at least 6m)
    #[arg(short = 'm', long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory plus swap (-1: unlimited swap; default twice --memory)
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Soft memory limit
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Number of CPUs (e.g. 0.5)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub cpus: Option<String>,
    /// CPU shares, relative weight (cgroup v1 units, 2-262144)
    #[arg(short = 'c', long, value_name = "N", allow_hyphen_values = true)]
    pub cpu_shares: Option<String>,
    /// CPU weight (cgroup v2 units, 1-10000)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub cpu_weight: Option<String>,
    /// CPUs the container may use (0-1,3)
    #[arg(long, value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Maximum number of tasks (-1: unlimited)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<String>,
    /// Parent cgroup: relative to mini's own cgroup, or absolute
    #[arg(long, value_name = "PATH")]
    pub cgroup_parent: Option<String>,
}

/// Docker's floor: the kernel needs some room to even start a process.
pub const MIN_MEMORY: u64 = 6 * 1024 * 1024;
/// The CFS period mini uses (Docker's and the kernel's default), in µs.
pub const CPU_PERIOD: u64 = 100_000;

/// Validated limits; `None` leaves the kernel's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub memory: Option<u64>,
    /// memory + swap, as Docker's --memory-swap.
    pub memory_swap: Option<Swap>,
    pub memory_reservation: Option<u64>,
    /// CFS quota in µs per [`CPU_PERIOD`].
    pub cpu_quota: Option<u64>,
    pub cpu_weight: Option<CpuWeight>,
    /// A validated CPU list ("0-1,3").
    pub cpuset_cpus: Option<String>,
    pub pids: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Swap {
    /// Total of memory and swap, in bytes.
    Total(u64),
    Unlimited,
}

/// CPU weight in the unit the user chose; converted for the other version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuWeight {
    /// v1 `cpu.shares` (2–262144).
    Shares(u64),
    /// v2 `cpu.weight` (1–10000).
    Weight(u64),
}

impl Limits {
    /// Validate the flags; `online_cpus` are the host's online CPU ids.
    pub fn from_flags(f: &Flags, online_cpus: &[u32]) -> Result<Limits> {
        let memory = f.memory.as_deref().map(|v| memory_size("--memory", v)).transpose()?;
        let memory_reservation =
            f.memory_reservation.as_deref().map(|v| size("--memory-reservation", v)).transpose()?;
        if let (Some(m), Some(r)) = (memory, memory_reservation) {
            if r > m {
                return Err(invalid("--memory-reservation", f.memory_reservation.as_deref().unwrap_or_default())
                    .because("it must not be larger than --memory"));
            }
        }
        let memory_swap = swap(f, memory)?;
        let cpu_weight = match (&f.cpu_shares, &f.cpu_weight) {
            (Some(_), Some(_)) => {
                return Err(Error::new("invalid --cpu-weight").because("give --cpu-shares or --cpu-weight, not both"))
            }
            (Some(s), None) => shares(s)?,
            (None, Some(w)) => Some(CpuWeight::Weight(ranged("--cpu-weight", w, 1, 10_000)?)),
            (None, None) => None,
        };
        Ok(Limits {
            memory,
            memory_swap,
            memory_reservation,
            cpu_quota: f.cpus.as_deref().map(|v| cpus(v, online_cpus.len())).transpose()?,
            cpu_weight,
            cpuset_cpus: f.cpuset_cpus.as_deref().map(|v| cpuset(v, online_cpus)).transpose()?,
            pids: f.pids_limit.as_deref().map(pids).transpose()?.flatten(),
        })
    }

    /// The controllers these limits need (besides those every container gets).
    pub fn needs(&self) -> Vec<&'static str> {
        self.settings().iter().map(|s| s.controller()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.settings().is_empty()
    }

    fn settings(&self) -> Vec<Setting> {
        let mut s = Vec::new();
        // Order matters on v1: memory before memory+swap (memsw may never
        // be below memory), the period before the quota.
        if let Some(m) = self.memory {
            s.push(Setting::Memory(m));
        }
        if let (Some(m), Some(sw)) = (self.memory, self.memory_swap) {
            s.push(Setting::MemorySwap { memory: m, total: sw });
        }
        if let Some(r) = self.memory_reservation {
            s.push(Setting::Reservation(r));
        }
        if let Some(q) = self.cpu_quota {
            s.push(Setting::CpuQuota(q));
        }
        if let Some(w) = self.cpu_weight {
            s.push(Setting::CpuWeight(w));
        }
        if let Some(c) = &self.cpuset_cpus {
            s.push(Setting::Cpuset(c.clone()));
        }
        if let Some(p) = self.pids {
            s.push(Setting::Pids(p));
        }
        s
    }

    /// The writes that set these limits on a hierarchy of `version`, in order.
    pub fn writes(&self, version: Version) -> Vec<Write> {
        self.settings().iter().flat_map(|s| s.writes(version)).collect()
    }
}

/// One file write into the container's cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub controller: &'static str,
    pub file: &'static str,
    pub value: String,
    /// Skipped when the file does not exist (v1 memsw without swap accounting).
    pub optional: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Setting {
    Memory(u64),
    MemorySwap { memory: u64, total: Swap },
    Reservation(u64),
    CpuQuota(u64),
    CpuWeight(CpuWeight),
    Cpuset(String),
    Pids(u64),
}

impl Setting {
    fn controller(&self) -> &'static str {
        match self {
            Setting::Memory(_) | Setting::MemorySwap { .. } | Setting::Reservation(_) => "memory",
            Setting::CpuQuota(_) | Setting::CpuWeight(_) => "cpu",
            Setting::Cpuset(_) => "cpuset",
            Setting::Pids(_) => "pids",
        }
    }

    /// File and value for each version: the only place v1 and v2 differ.
    fn writes(&self, v: Version) -> Vec<Write> {
        let v1 = v == Version::V1;
        let w =
            |file: &'static str, value: String| Write { controller: self.controller(), file, value, optional: false };
        match self {
            Setting::Memory(m) => vec![w(if v1 { "memory.limit_in_bytes" } else { "memory.max" }, m.to_string())],
            Setting::MemorySwap { memory, total } => {
                let value = match (total, v1) {
                    (Swap::Unlimited, true) => "-1".to_string(),
                    (Swap::Unlimited, false) => "max".to_string(),
                    (Swap::Total(t), true) => t.to_string(),
                    // v2 counts swap alone.
                    (Swap::Total(t), false) => t.saturating_sub(*memory).to_string(),
                };
                let file = if v1 { "memory.memsw.limit_in_bytes" } else { "memory.swap.max" };
                vec![Write { optional: true, ..w(file, value) }]
            }
            Setting::Reservation(r) => {
                vec![w(if v1 { "memory.soft_limit_in_bytes" } else { "memory.low" }, r.to_string())]
            }
            Setting::CpuQuota(q) if v1 => {
                vec![w("cpu.cfs_period_us", CPU_PERIOD.to_string()), w("cpu.cfs_quota_us", q.to_string())]
            }
            Setting::CpuQuota(q) => vec![w("cpu.max", format!("{q} {CPU_PERIOD}"))],
            Setting::CpuWeight(cw) if v1 => vec![w("cpu.shares", shares_of(*cw).to_string())],
            Setting::CpuWeight(cw) => vec![w("cpu.weight", weight_of(*cw).to_string())],
            Setting::Cpuset(c) => vec![w("cpuset.cpus", c.clone())],
            Setting::Pids(p) => vec![w("pids.max", p.to_string())],
        }
    }
}

/// v1 shares → v2 weight, as runc converts: [2, 262144] → [1, 10000].
pub fn shares_to_weight(shares: u64) -> u64 {
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

/// v2 weight → v1 shares: the inverse mapping.
pub fn weight_to_shares(weight: u64) -> u64 {
    2 + (weight.clamp(1, 10_000) - 1) * 262_142 / 9999
}

fn shares_of(w: CpuWeight) -> u64 {
    match w {
        CpuWeight::Shares(s) => s,
        CpuWeight::Weight(w) => weight_to_shares(w),
    }
}

fn weight_of(w: CpuWeight) -> u64 {
    match w {
        CpuWeight::Shares(s) => shares_to_weight(s),
        CpuWeight::Weight(w) => w,
    }
}

fn invalid(flag: &str, value: &str) -> Error {
    Error::new(format!("invalid {flag} \"{value}\""))
}

/// Docker's RAMInBytes: a number (fractions allowed) and an optional
/// binary unit b, k, m, g, t, p (case-insensitive, "kb"/"kib" too).
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    let num_end = lower.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(lower.len());
    let (num, unit) = lower.split_at(num_end);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.matches('.').count() > 1 {
        return None;
    }
    let unit = unit.strip_prefix(' ').unwrap_or(unit);
    let unit = unit.strip_suffix('b').unwrap_or(unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let mult: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => return None,
    };
    let value: f64 = num.parse().ok()?;
    let bytes = value * mult as f64;
    (bytes.is_finite() && bytes < u64::MAX as f64).then_some(bytes as u64)
}

fn size(flag: &str, v: &str) -> Result<u64> {
    parse_size(v).ok_or_else(|| invalid(flag, v).because("not a size (a number with an optional unit b, k, m or g)"))
}

fn memory_size(flag: &str, v: &str) -> Result<u64> {
    let n = size(flag, v)?;
    if n < MIN_MEMORY {
        return Err(invalid(flag, v).because("Minimum memory limit allowed is 6MB"));
    }
    Ok(n)
}

/// Docker's --memory-swap: memory + swap; -1 unlimited; unset with
/// --memory means twice the memory.
fn swap(f: &Flags, memory: Option<u64>) -> Result<Option<Swap>> {
    let Some(v) = f.memory_swap.as_deref() else {
        return Ok(memory.map(|m| Swap::Total(m.saturating_mul(2))));
    };
    let Some(m) = memory else {
        return Err(invalid("--memory-swap", v).because("it needs --memory as well"));
    };
    if v.trim() == "-1" {
        return Ok(Some(Swap::Unlimited));
    }
    let total = size("--memory-swap", v)?;
    if total < m {
        return Err(
            invalid("--memory-swap", v).because("it is memory plus swap, so it must not be smaller than --memory")
        );
    }
    Ok(Some(Swap::Total(total)))
}

fn cpus(v: &str, host_cpus: usize) -> Result<u64> {
    let n: f64 = v.trim().parse().map_err(|_| invalid("--cpus", v).because("not a number"))?;
    let quota = (n * CPU_PERIOD as f64).round();
    // The kernel's smallest quota is 1 ms per 100 ms period.
    if !n.is_finite() || quota < 1000.0 || n > host_cpus as f64 {
        return Err(invalid("--cpus", v).because(format!(
            "range of CPUs is from 0.01 to {host_cpus}.00, as there are only {host_cpus} CPUs available"
        )));
    }
    Ok(quota as u64)
}

fn shares(v: &str) -> Result<Option<CpuWeight>> {
    let n: i64 = v.trim().parse().map_err(|_| invalid("--cpu-shares", v).because("not an integer"))?;
    match n {
        0 => Ok(None), // Docker: 0 means the default
        2..=262_144 => Ok(Some(CpuWeight::Shares(n as u64))),
        _ => Err(invalid("--cpu-shares", v).because("must be 2 to 262144 (0 for the default)")),
    }
}

fn ranged(flag: &str, v: &str, lo: u64, hi: u64) -> Result<u64> {
    match v.trim().parse::<u64>() {
        Ok(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err(invalid(flag, v).because(format!("must be an integer from {lo} to {hi}"))),
    }
}

/// Docker's --pids-limit: a positive cap; 0 or -1 mean unlimited.
fn pids(v: &str) -> Result<Option<u64>> {
    match v.trim().parse::<i64>() {
        Ok(n) if n > 0 => Ok(Some(n as u64)),
        Ok(0) | Ok(-1) => Ok(None),
        _ => Err(invalid("--pids-limit", v).because("must be a positive integer (or -1 for unlimited)")),
    }
}

/// Parse a CPU list ("0-2,4") into ids; None if malformed.
pub fn parse_cpu_list(text: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in text.trim().split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        if a > b || b - a > 65_536 {
            return None;
        }
        out.extend(a..=b);
    }
    Some(out)
}

fn cpuset(v: &str, online: &[u32]) -> Result<String> {
    let cpus = parse_cpu_list(v).ok_or_else(|| invalid("--cpuset-cpus", v).because("not a CPU list such as 0-1,3"))?;
    if let Some(c) = cpus.iter().find(|c| !online.contains(c)) {
        return Err(invalid("--cpuset-cpus", v)
            .because(format!("CPU {c} is not available (online: {})", format_cpu_list(online))));
    }
    Ok(v.trim().to_string())
}

/// "0-1,3" from ids.
pub fn format_cpu_list(cpus: &[u32]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        while i + 1 < sorted.len() && sorted[i + 1] == sorted[i] + 1 {
            i += 1;
        }
        parts.push(if sorted[i] == start { start.to_string() } else { format!("{start}-{}", sorted[i]) });
        i += 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(f: impl FnOnce(&mut Flags)) -> Flags {
        let mut x = Flags::default();
        f(&mut x);
        x
    }

    fn err(f: Flags) -> String {
        Limits::from_flags(&f, &[0, 1]).unwrap_err().to_string()
    }

    #[test]
    fn sizes_follow_dockers_units() {
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("16m"), Some(16 << 20));
        assert_eq!(parse_size("16MB"), Some(16 << 20));
        assert_eq!(parse_size("16MiB"), Some(16 << 20));
        assert_eq!(parse_size("1.5g"), Some(3 << 29));
        assert_eq!(parse_size("2k"), Some(2048));
        assert_eq!(parse_size("7b"), Some(7));
        for bad in ["abc", "-1", "", "m", "1x", "1..2m", ".5m", "1.m"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn memory_swap_and_reservation_as_docker() {
        let l = Limits::from_flags(&flags(|f| f.memory = Some("64m".into())), &[0]).unwrap();
        assert_eq!(l.memory_swap, Some(Swap::Total(128 << 20)), "unset swap is twice the memory");
        let l =
            Limits::from_flags(&flags(|f| (f.memory, f.memory_swap) = (Some("64m".into()), Some("-1".into()))), &[0])
                .unwrap();
        assert_eq!(l.memory_swap, Some(Swap::Unlimited));
        assert_eq!(
            err(flags(|f| f.memory = Some("abc".into()))),
            "invalid --memory \"abc\": not a size (a number with an optional unit b, k, m or g)"
        );
        assert_eq!(err(flags(|f| f.memory = Some("-1".into()))).lines().count(), 1);
        assert!(err(flags(|f| f.memory = Some("1m".into()))).ends_with("Minimum memory limit allowed is 6MB"));
        assert!(err(flags(|f| f.memory_swap = Some("1g".into()))).contains("needs --memory"));
        assert!(err(flags(|f| (f.memory, f.memory_swap) = (Some("64m".into()), Some("32m".into()))))
            .contains("--memory-swap \"32m\""));
        assert!(err(flags(|f| (f.memory, f.memory_reservation) = (Some("64m".into()), Some("65m".into()))))
            .contains("--memory-reservation"));
    }

    #[test]
    fn cpus_shares_weights_cpusets_pids() {
        let l = Limits::from_flags(&flags(|f| f.cpus = Some("0.5".into())), &[0, 1]).unwrap();
        assert_eq!(l.cpu_quota, Some(50_000));
        assert!(err(flags(|f| f.cpus = Some("0".into()))).contains("range of CPUs is from 0.01 to 2.00"));
        assert!(err(flags(|f| f.cpus = Some("3".into()))).starts_with("invalid --cpus \"3\""));
        assert!(err(flags(|f| f.cpus = Some("x".into()))).starts_with("invalid --cpus \"x\""));
        assert!(err(flags(|f| f.cpuset_cpus = Some("0-3".into()))).contains("CPU 2 is not available (online: 0-1)"));
        assert!(err(flags(|f| f.cpuset_cpus = Some("a".into()))).starts_with("invalid --cpuset-cpus \"a\""));
        assert!(err(flags(|f| f.cpu_weight = Some("0".into()))).starts_with("invalid --cpu-weight \"0\""));
        assert!(err(flags(|f| f.pids_limit = Some("x".into()))).starts_with("invalid --pids-limit \"x\""));
        let l = Limits::from_flags(&flags(|f| f.pids_limit = Some("-1".into())), &[0]).unwrap();
        assert!(l.is_empty());
        assert_eq!(format_cpu_list(&[3, 0, 1, 5, 6]), "0-1,3,5-6");
        assert_eq!(parse_cpu_list("0-2,4"), Some(vec![0, 1, 2, 4]));
    }

    #[test]
    fn unit_conversions_match_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(weight_to_shares(1), 2);
        assert_eq!(weight_to_shares(10_000), 262_144);
        assert_eq!(weight_to_shares(100), 2597);
    }

    #[test]
    fn writes_per_version() {
        let f = flags(|f| {
            f.memory = Some("64m".into());
            f.memory_swap = Some("96m".into());
            f.memory_reservation = Some("32m".into());
            f.cpus = Some("1.5".into());
            f.cpu_shares = Some("512".into());
            f.cpuset_cpus = Some("1".into());
            f.pids_limit = Some("100".into());
        });
        let l = Limits::from_flags(&f, &[0, 1]).unwrap();
        let show = |v| l.writes(v).iter().map(|w| format!("{}={}", w.file, w.value)).collect::<Vec<_>>().join(" ");
        assert_eq!(
            show(Version::V1),
            "memory.limit_in_bytes=67108864 memory.memsw.limit_in_bytes=100663296 memory.soft_limit_in_bytes=33554432 \
             cpu.cfs_period_us=100000 cpu.cfs_quota_us=150000 cpu.shares=512 cpuset.cpus=1 pids.max=100"
        );
        assert_eq!(
            show(Version::V2),
            "memory.max=67108864 memory.swap.max=33554432 memory.low=33554432 cpu.max=150000 100000 cpu.weight=20 \
             cpuset.cpus=1 pids.max=100"
        );
        assert_eq!(l.needs(), ["memory", "memory", "memory", "cpu", "cpu", "cpuset", "pids"]);
    }
}
