//! [`FakeSys`]: records every call in one ordered log and can fail any
//! call, so the executor's order and error handling are tested without root.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use super::overlay::MountPlan;
use super::{flags, Kind, Resolved, Sys};
use crate::error::{Error, Result};

#[derive(Debug, Default)]
pub struct FakeSys {
    log: RefCell<Vec<String>>,
    /// Fail the first call whose log line contains this text.
    fail_on: Option<String>,
    /// Container paths that `resolve` reports as absent.
    absent: Vec<PathBuf>,
}

impl FakeSys {
    pub fn new() -> FakeSys {
        FakeSys::default()
    }

    pub fn failing_on(text: &str) -> FakeSys {
        FakeSys { fail_on: Some(text.to_string()), ..FakeSys::default() }
    }

    pub fn with_absent(mut self, paths: &[&str]) -> FakeSys {
        self.absent = paths.iter().map(PathBuf::from).collect();
        self
    }

    pub fn calls(&self) -> Vec<String> {
        self.log.borrow().clone()
    }

    fn record(&self, line: String) -> Result<()> {
        let fail = self.fail_on.as_deref().is_some_and(|f| line.contains(f));
        self.log.borrow_mut().push(line.clone());
        if fail {
            Err(Error::new(line).because("injected failure"))
        } else {
            Ok(())
        }
    }
}

fn d(p: &Path) -> String {
    p.display().to_string()
}

impl Sys for FakeSys {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        fl: u64,
        data: Option<&str>,
    ) -> Result<()> {
        self.record(format!(
            "mount {} {} {} {}{}",
            source.map_or("-".into(), d),
            d(target),
            fstype.unwrap_or("-"),
            flags::render(fl),
            data.map_or(String::new(), |x| format!(" {x}"))
        ))
    }

    fn mount_overlay(&self, plan: &MountPlan) -> Result<()> {
        self.record(format!("overlay {} {}", d(&plan.target), plan.classic_options(None)))
    }

    fn resolve(
        &self,
        root: &Path,
        path: &Path,
        kind: Kind,
        create: bool,
        no_symlinks: bool,
    ) -> Result<Option<Resolved>> {
        let mut line = format!("resolve {} {} {kind:?}", d(root), d(path)).to_lowercase();
        if create {
            line.push_str(" create");
        }
        if no_symlinks {
            line.push_str(" nosymlinks");
        }
        self.record(line)?;
        if !create && self.absent.iter().any(|a| a == path) {
            return Ok(None);
        }
        let rel: PathBuf = path.components().skip(1).collect();
        Ok(Some(Resolved { path: root.join(rel), _fd: None }))
    }

    fn pivot_root(&self, root: &Path) -> Result<()> {
        self.record(format!("pivot_root {}", d(root)))
    }

    fn attach(&self, _mount: &std::os::fd::OwnedFd, target: &Path) -> Result<()> {
        self.record(format!("attach {}", d(target)))
    }

    fn mknod(&self, path: &Path, block: bool, major: u32, minor: u32, mode: u32) -> Result<()> {
        let kind = if block { 'b' } else { 'c' };
        self.record(format!("mknod {} {kind} {major}:{minor} {mode:o}", d(path)))
    }

    fn symlink(&self, target: &Path, link: &Path) -> Result<()> {
        self.record(format!("symlink {} -> {}", d(link), d(target)))
    }

    fn create_file(&self, path: &Path, content: &[u8]) -> Result<()> {
        self.record(format!("write {} ({} bytes)", d(path), content.len()))
    }

    fn remove_file(&self, path: &Path) -> Result<()> {
        self.record(format!("remove {}", d(path)))
    }

    fn sethostname(&self, name: &str) -> Result<()> {
        self.record(format!("sethostname {name}"))
    }

    fn copy_tree(&self, from: &Path, to: &Path) -> Result<()> {
        self.record(format!("copy {} -> {}", d(from), d(to)))
    }

    fn write_file(&self, path: &Path, value: &str) -> Result<()> {
        self.record(format!("write {} {value}", d(path)))
    }

    fn loopback_up(&self) -> Result<()> {
        self.record("loopback up".to_string())
    }
}
