//! Named volumes: `volumes/<name>/` with `_data/` (what containers mount,
//! as Docker's local driver lays it out) and `meta.json` (a
//! [`VolumeMeta`]: name, creation time, whether it was made anonymously,
//! labels). A volume is created as `volumes/.tmp-<random>/` and renamed
//! into place, so it is visible whole or not at all; an existing name
//! counts as already created (Docker's `volume create` is idempotent).
//! Removal renames into the store's trash first. Which containers use a
//! volume is the runtime side's knowledge (their records), not kept here.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};

pub const DATA: &str = "_data";
pub const META: &str = "meta.json";
const TMP_PREFIX: &str = ".tmp-";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeMeta {
    pub name: String,
    /// RFC 3339.
    pub created: String,
    /// Made for a container that named none (`-v /path` in a Dockerfile's
    /// sense, `--mount type=volume` without a source).
    #[serde(default)]
    pub anonymous: bool,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Volume {
    pub name: String,
    pub dir: PathBuf,
}

impl Volume {
    /// The directory containers mount.
    pub fn data(&self) -> PathBuf {
        self.dir.join(DATA)
    }

    pub fn meta(&self) -> Result<VolumeMeta> {
        let path = self.dir.join(META);
        let bytes = fs::read(&path).map_err(|e| StoreError::io("read", &path, e))?;
        serde_json::from_slice(&bytes).map_err(|source| StoreError::Json { path, source })
    }
}

#[derive(Debug, Clone)]
pub struct Volumes {
    dir: PathBuf,
    trash: PathBuf,
}

impl Volumes {
    pub fn open(dir: PathBuf, trash: PathBuf) -> Result<Volumes> {
        fs::create_dir_all(&dir).map_err(|e| StoreError::io("create", &dir, e))?;
        Ok(Volumes { dir, trash })
    }

    /// `volumes/<name>` (whether or not it exists).
    pub fn get(&self, name: &str) -> Volume {
        Volume { name: name.to_string(), dir: self.dir.join(name) }
    }

    /// The volume called `name`, if it exists.
    pub fn find(&self, name: &str) -> Option<Volume> {
        let v = self.get(name);
        v.dir.join(META).is_file().then_some(v)
    }

    /// Create `meta.name` unless it exists; true when this call made it.
    pub fn create(&self, meta: &VolumeMeta) -> Result<(Volume, bool)> {
        let v = self.get(&meta.name);
        if v.dir.exists() {
            return Ok((v, false));
        }
        let tmp = self.dir.join(format!("{TMP_PREFIX}{}", crate::containers::new_id()));
        let made = (|| -> io::Result<()> {
            fs::create_dir(&tmp)?;
            fs::create_dir(tmp.join(DATA))?;
            let bytes = serde_json::to_vec_pretty(meta).map_err(io::Error::other)?;
            fs::write(tmp.join(META), bytes)?;
            fs::rename(&tmp, &v.dir)
        })();
        match made {
            Ok(()) => Ok((v, true)),
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                // Someone else made it meanwhile: already done.
                if v.dir.join(META).is_file() {
                    return Ok((v, false));
                }
                Err(StoreError::io("create", &v.dir, e))
            }
        }
    }

    /// Every volume, by name.
    pub fn list(&self) -> Result<Vec<Volume>> {
        let rd = fs::read_dir(&self.dir).map_err(|e| StoreError::io("read", &self.dir, e))?;
        let mut out: Vec<Volume> = rd
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| !n.starts_with(TMP_PREFIX))
            .filter_map(|n| self.find(&n))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Remove a volume: renamed into the trash, then deleted.
    pub fn remove(&self, name: &str) -> Result<()> {
        let v = self.get(name);
        fs::create_dir_all(&self.trash).map_err(|e| StoreError::io("create", &self.trash, e))?;
        let doomed = self.trash.join(format!("volume-{}", crate::containers::new_id()));
        fs::rename(&v.dir, &doomed).map_err(|e| StoreError::io("remove", &v.dir, e))?;
        fs::remove_dir_all(&doomed).map_err(|e| StoreError::io("remove", &doomed, e))
    }

    /// Creations a killed process left half done.
    pub fn sweep_tmp(&self) {
        let Ok(rd) = fs::read_dir(&self.dir) else { return };
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
}

/// Whether `dir` holds nothing (a volume not yet filled).
pub fn is_empty(dir: &Path) -> bool {
    fs::read_dir(dir).map(|mut rd| rd.next().is_none()).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: &str) -> VolumeMeta {
        VolumeMeta {
            name: name.into(),
            created: "2026-01-01T00:00:00Z".into(),
            anonymous: false,
            labels: Default::default(),
        }
    }

    #[test]
    fn create_is_whole_and_idempotent_list_and_remove() {
        let tmp = tempfile::tempdir().unwrap();
        let vs = Volumes::open(tmp.path().join("volumes"), tmp.path().join("trash")).unwrap();
        let (v, made) = vs.create(&meta("data")).unwrap();
        assert!(made && v.data().is_dir() && is_empty(&v.data()));
        fs::write(v.data().join("f"), b"x").unwrap();
        let (again, made) = vs.create(&meta("data")).unwrap();
        assert!(!made && again.data().join("f").exists(), "an existing volume is kept as it is");
        fs::create_dir(tmp.path().join("volumes/.tmp-dead")).unwrap();
        vs.create(&meta("b2")).unwrap();
        let names: Vec<String> = vs.list().unwrap().into_iter().map(|v| v.name).collect();
        assert_eq!(names, ["b2", "data"]);
        assert_eq!(vs.find("data").unwrap().meta().unwrap(), meta("data"));
        vs.sweep_tmp();
        assert!(!tmp.path().join("volumes/.tmp-dead").exists());
        vs.remove("data").unwrap();
        assert!(vs.find("data").is_none());
        assert!(vs.remove("data").is_err());
    }
}
