//! Accounting read from a container's cgroups, as `docker stats` shows it:
//! CPU time, memory usage (minus inactive page cache, as Docker counts it)
//! and limit, number of tasks. The same files exist under different names
//! on v1 and v2, so each quantity is a list of (file, how to read it) and
//! the first one present wins.

use std::path::{Path, PathBuf};

/// One reading of a container's cgroups.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    /// CPU time used so far, in nanoseconds.
    pub cpu_ns: Option<u64>,
    pub mem_usage: Option<u64>,
    /// None: unlimited.
    pub mem_limit: Option<u64>,
    pub pids: Option<u64>,
}

/// How a quantity is read from one file.
enum Read {
    /// The whole file is a number, scaled.
    Number(u64),
    /// A `key value` line of a flat-keyed file, scaled.
    Field(&'static str, u64),
}

const CPU: [(&str, Read); 2] = [("cpuacct.usage", Read::Number(1)), ("cpu.stat", Read::Field("usage_usec", 1000))];
const MEM_USAGE: [(&str, Read); 2] = [("memory.usage_in_bytes", Read::Number(1)), ("memory.current", Read::Number(1))];
/// Inactive file cache is reclaimable: Docker subtracts it from usage.
const MEM_INACTIVE: [(&str, Read); 2] =
    [("memory.stat", Read::Field("total_inactive_file", 1)), ("memory.stat", Read::Field("inactive_file", 1))];
const MEM_LIMIT: [(&str, Read); 2] = [("memory.limit_in_bytes", Read::Number(1)), ("memory.max", Read::Number(1))];
const PIDS: [(&str, Read); 1] = [("pids.current", Read::Number(1))];

/// Read a sample from the container's cgroup directories.
pub fn sample(dirs: &[PathBuf]) -> Sample {
    let usage = first(dirs, &MEM_USAGE);
    let inactive = first(dirs, &MEM_INACTIVE).unwrap_or(0);
    Sample {
        cpu_ns: first(dirs, &CPU),
        mem_usage: usage.map(|u| if inactive < u { u - inactive } else { u }),
        // v1 reports "unlimited" as a huge page-aligned number, v2 as "max".
        mem_limit: first(dirs, &MEM_LIMIT).filter(|l| *l < (1 << 62)),
        pids: first(dirs, &PIDS),
    }
}

fn first(dirs: &[PathBuf], how: &[(&str, Read)]) -> Option<u64> {
    how.iter().find_map(|(file, read)| dirs.iter().find_map(|d| read_one(&d.join(file), read)))
}

fn read_one(path: &Path, how: &Read) -> Option<u64> {
    let bytes = std::fs::read(path).ok()?;
    match how {
        Read::Number(scale) => String::from_utf8_lossy(&bytes).trim().parse::<u64>().ok().map(|n| n * scale),
        Read::Field(key, scale) => field(&bytes, key).map(|n| n * scale),
    }
}

/// The value of `key` in a flat-keyed cgroup file ("key value" lines).
pub fn field(bytes: &[u8], key: &str) -> Option<u64> {
    String::from_utf8_lossy(bytes).lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// CPU use between two samples as Docker shows it: 100% is one full CPU.
pub fn cpu_percent(before: &Sample, after: &Sample, elapsed_ns: u64) -> f64 {
    match (before.cpu_ns, after.cpu_ns) {
        (Some(a), Some(b)) if elapsed_ns > 0 && b >= a => (b - a) as f64 / elapsed_ns as f64 * 100.0,
        _ => 0.0,
    }
}

/// Bytes the way Docker prints them: "1.5MiB", "7.66GiB", "0B".
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes}B")
    } else {
        format!("{}{}", trim_float(v), UNITS[u])
    }
}

/// At most two decimals, no trailing zeros.
fn trim_float(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_and_v2_files_read_alike() {
        let tmp = tempfile::tempdir().unwrap();
        let (mem, cpu, pids) = (tmp.path().join("memory"), tmp.path().join("cpuacct"), tmp.path().join("pids"));
        for d in [&mem, &cpu, &pids] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(mem.join("memory.usage_in_bytes"), "10485760\n").unwrap();
        std::fs::write(mem.join("memory.stat"), "inactive_file 0\ntotal_inactive_file 2097152\n").unwrap();
        std::fs::write(mem.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        std::fs::write(cpu.join("cpuacct.usage"), "123456789\n").unwrap();
        std::fs::write(pids.join("pids.current"), "3\n").unwrap();
        let s = sample(&[mem.clone(), cpu, pids]);
        assert_eq!(s, Sample { cpu_ns: Some(123456789), mem_usage: Some(8 << 20), mem_limit: None, pids: Some(3) });

        let v2 = tmp.path().join("v2");
        std::fs::create_dir_all(&v2).unwrap();
        std::fs::write(v2.join("memory.current"), "4096\n").unwrap();
        std::fs::write(v2.join("memory.stat"), "anon 4096\ninactive_file 1024\n").unwrap();
        std::fs::write(v2.join("memory.max"), "16777216\n").unwrap();
        std::fs::write(v2.join("cpu.stat"), "usage_usec 1500\nuser_usec 1000\n").unwrap();
        std::fs::write(v2.join("pids.current"), "1\n").unwrap();
        let s = sample(&[v2]);
        assert_eq!(
            s,
            Sample { cpu_ns: Some(1_500_000), mem_usage: Some(3072), mem_limit: Some(16 << 20), pids: Some(1) }
        );
    }

    #[test]
    fn percentages_and_units() {
        let a = Sample { cpu_ns: Some(0), ..Sample::default() };
        let b = Sample { cpu_ns: Some(500_000_000), ..Sample::default() };
        assert_eq!(cpu_percent(&a, &b, 1_000_000_000), 50.0);
        assert_eq!(cpu_percent(&b, &a, 1_000_000_000), 0.0);
        assert_eq!(human(0), "0B");
        assert_eq!(human(1536 * 1024), "1.5MiB");
        assert_eq!(human(16 << 20), "16MiB");
        assert_eq!(field(b"oom 0\noom_kill 2\n", "oom_kill"), Some(2));
        assert_eq!(field(b"under_oom 0\n", "oom_kill"), None);
    }
}
