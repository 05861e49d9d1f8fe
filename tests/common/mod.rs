//! Shared helpers for the integration tests that drive the real `mini`
//! binary: a root gate, a fresh store per test (so tests run in parallel),
//! the fixture image pulled from the local registry, and a drop guard that
//! unmounts and removes whatever a test left, even when it panics.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The fixture image (see fixtures/): busybox /bin/sh, /etc/passwd with
/// root and app (uid 1000), a whiteout (/etc/removed-later) and an opaque
/// directory (/opt/replaced) in its second layer.
pub const IMAGE: &str = "127.0.0.1:5000/test/busybox:oci";

/// Tests that need root (namespaces, mounts) skip themselves without it.
pub fn requires_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipping: needs root");
    }
    root
}

pub struct Mini {
    pub root: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Mini {
    /// A fresh store with the fixture image pulled; None without root.
    pub fn new() -> Option<Mini> {
        if !requires_root() {
            return None;
        }
        let tmp = tempfile::Builder::new().prefix("mini-test-").tempdir().expect("temp dir");
        let m = Mini { root: tmp.path().join("store"), _tmp: tmp };
        let out = m.cmd(&["pull", "-q", IMAGE]).output().expect("run mini pull");
        assert!(
            out.status.success(),
            "pull {IMAGE} failed (is fixtures/up.sh running?): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(m)
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mini"));
        c.args(args).env("MINI_ROOT", &self.root).env_remove("MINI_CONFIG").stdin(Stdio::null());
        c
    }

    /// Run mini to completion, capturing output, and check that it left no
    /// mount behind in the host's mount table.
    pub fn run(&self, args: &[&str]) -> Output {
        let out = self.cmd(args).output().expect("run mini");
        assert_eq!(self.host_mounts(), Vec::<String>::new(), "mini left mounts behind: mini {args:?}");
        out
    }

    /// `mini run --rm IMAGE args...`, returning (code, stdout, stderr).
    pub fn run_in(&self, flags: &[&str], argv: &[&str]) -> (i32, String, String) {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.push(IMAGE);
        args.extend_from_slice(argv);
        let out = self.run(&args);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    /// Host mount points under this test's store.
    pub fn host_mounts(&self) -> Vec<String> {
        mounts_under(&self.root)
    }

    /// Container directories in the store.
    pub fn containers(&self) -> Vec<String> {
        let dir = self.root.join("containers");
        let Ok(rd) = std::fs::read_dir(dir) else { return vec![] };
        rd.flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.len() == 64)
            .collect()
    }
}

impl Drop for Mini {
    fn drop(&mut self) {
        // Deepest first, lazily: a failed test must not leave mounts behind.
        let mut mounts = mounts_under(&self.root);
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            if let Ok(c) = std::ffi::CString::new(m) {
                // SAFETY: valid C string.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
}

/// Mount points (field 5 of mountinfo) at or under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = dir.display().to_string();
    text.lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter(|m| m.starts_with(&prefix))
        .map(str::to_string)
        .collect()
}

/// Put a one-layer image named `name` into the store at `root` by hand:
/// the layer is the tar built by `fill`, unpacked through mini-store as a
/// pull would. For hostile images a registry would not serve.
pub fn build_image(root: &Path, name: &str, fill: impl FnOnce(&mut tar::Builder<Vec<u8>>)) {
    use mini_store::{Digest, ImageRecord, Store};
    let store = Store::open(root).expect("open store");
    let mut b = tar::Builder::new(Vec::new());
    fill(&mut b);
    let layer = b.into_inner().expect("tar");
    let diff_id = Digest::of_bytes(&layer);
    store.content().put(&layer).expect("put layer");
    store.layers().unpack(&diff_id, &layer[..]).expect("unpack").commit().expect("commit layer");
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]}
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = store.content().put(&config).expect("put config");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": diff_id.to_string(), "size": layer.len()}]
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let digest = store.content().put(&manifest).expect("put manifest");
    store
        .images()
        .put(ImageRecord {
            name: name.to_string(),
            digest,
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: manifest.len() as u64,
            platform: None,
            annotations: Default::default(),
        })
        .expect("put image record");
}

/// Tar helpers for `build_image`.
pub fn tar_dir(b: &mut tar::Builder<Vec<u8>>, path: &str) {
    let mut h = header();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    b.append_data(&mut h, path, std::io::empty()).unwrap();
}

pub fn tar_symlink(b: &mut tar::Builder<Vec<u8>>, path: &str, target: &str) {
    let mut h = header();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_mode(0o777);
    h.set_size(0);
    b.append_link(&mut h, path, target).unwrap();
}

pub fn tar_file(b: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32, data: &[u8]) {
    let mut h = header();
    h.set_mode(mode);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, path, data).unwrap();
}

fn header() -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

/// A pty pair driven by a test: the command gets the terminal end as its
/// stdio, the test writes to and reads from the master end.
pub struct Pty {
    pub master: std::os::fd::OwnedFd,
    pub slave: Option<std::os::fd::OwnedFd>,
}

impl Pty {
    /// A new pty whose window is `rows` x `cols`.
    pub fn open(rows: u16, cols: u16) -> Pty {
        use std::os::fd::{FromRawFd, OwnedFd};
        let (mut m, mut s) = (0, 0);
        // SAFETY: out pointers to locals; the fds become ours.
        let (master, slave) = unsafe {
            assert_eq!(libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()), 0);
            (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s))
        };
        let pty = Pty { master, slave: Some(slave) };
        pty.resize(rows, cols);
        pty
    }

    /// Set the window size, as a terminal emulator's resize does.
    pub fn resize(&self, rows: u16, cols: u16) {
        use std::os::fd::AsRawFd;
        let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: TIOCSWINSZ with a valid winsize on our own master.
        unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }

    /// The terminal end's fd (for termios checks).
    pub fn slave_fd(&self) -> i32 {
        use std::os::fd::AsRawFd;
        self.slave.as_ref().expect("terminal end still open").as_raw_fd()
    }

    /// Give `cmd` the terminal end as stdin, stdout and stderr.
    pub fn attach(&self, cmd: &mut Command) {
        let slave = self.slave.as_ref().expect("terminal end still open");
        cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave.try_clone().unwrap()));
    }

    /// Type `bytes` at the terminal.
    pub fn send(&self, bytes: &[u8]) {
        use std::io::Write;
        std::fs::File::from(self.master.try_clone().unwrap()).write_all(bytes).unwrap();
    }

    /// Close the terminal end and read everything the command wrote.
    pub fn output(mut self) -> String {
        use std::io::Read;
        self.slave = None;
        let mut master = std::fs::File::from(self.master);
        let (mut out, mut buf) = (Vec::new(), [0u8; 4096]);
        loop {
            match master.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}
