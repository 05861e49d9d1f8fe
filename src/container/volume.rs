//! Named volumes, the engine's side: `mini volume create/ls/inspect/rm/
//! prune`, and what `run`/`create` do with `-v NAME:/path` and `--mount
//! type=volume`: the volume is made if missing (as Docker does) and its
//! `_data` directory bound at the target; a new or empty volume is first
//! filled with what the image has there (unless `volume-nocopy`). Which
//! containers use a volume is read from their records; the on-disk format
//! is the store's (`mini_store::volumes`).

use mini_store::volumes::{Volume, VolumeMeta, Volumes};
use mini_store::Store;
use serde_json::{json, Value};

use super::record::Record;
use crate::error::{Error, Result};

pub fn volumes(store: &Store) -> Result<Volumes> {
    store.volumes().map_err(|e| Error::new("open the volumes directory").because(e))
}

/// Docker's rule for local volume names.
pub fn check_name(flag: &str, name: &str) -> Result<()> {
    let ok = name.len() >= 2
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        return Ok(());
    }
    Err(Error::new(format!("{flag} \"{name}\""))
        .because("includes invalid characters for a local volume name, only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        .hint("to bind a host directory, give its absolute path"))
}

/// `mini volume create [NAME]`: an anonymous name (64 hex) when none.
pub fn create(store: &Store, name: Option<&str>, labels: &[String]) -> Result<String> {
    let mut meta = VolumeMeta {
        name: String::new(),
        created: mini_store::rfc3339_now(),
        anonymous: name.is_none(),
        labels: Default::default(),
    };
    for l in labels {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        meta.labels.insert(k.to_string(), v.to_string());
    }
    meta.name = match name {
        Some(n) => {
            check_name("create volume", n)?;
            n.to_string()
        }
        None => mini_store::containers::new_id(),
    };
    let (v, _) =
        volumes(store)?.create(&meta).map_err(|e| Error::new(format!("create volume {}", meta.name)).because(e))?;
    super::events::emit(store.root(), "volume", "create", &v.name, &[("driver", "local")]);
    Ok(v.name)
}

fn find(store: &Store, op: &str, name: &str) -> Result<Volume> {
    volumes(store)?.find(name).ok_or_else(|| Error::new(format!("{op} {name}")).because("no such volume"))
}

pub fn list(store: &Store) -> Result<Vec<Volume>> {
    volumes(store)?.list().map_err(|e| Error::new("list volumes").because(e))
}

/// Docker's `volume inspect` object.
pub fn inspect(store: &Store, name: &str) -> Result<Value> {
    let v = find(store, "inspect volume", name)?;
    let meta = v.meta().map_err(|e| Error::new(format!("inspect volume {name}")).because(e))?;
    Ok(json!({
        "CreatedAt": meta.created, "Driver": "local", "Labels": meta.labels, "Mountpoint": v.data(),
        "Name": v.name, "Options": {}, "Scope": "local",
    }))
}

/// The containers (ids) whose records use volume `name`.
pub fn users(store: &Store, name: &str) -> Vec<String> {
    let Ok(cs) = super::containers(store) else { return vec![] };
    cs.ids()
        .unwrap_or_default()
        .into_iter()
        .filter(|id| Record::read(&cs.get(id)).is_ok_and(|r| r.container.volumes.iter().any(|v| v == name)))
        .collect()
}

/// `mini volume rm NAME`: refused while a container (running or not)
/// uses it, as Docker does.
pub fn remove(store: &Store, name: &str) -> Result<()> {
    find(store, "remove volume", name)?;
    if let Some(id) = users(store, name).first() {
        return Err(Error::new(format!("remove volume {name}"))
            .because(format!("volume is in use by container {}", &id[..12]))
            .hint("remove the container first"));
    }
    volumes(store)?.remove(name).map_err(|e| Error::new(format!("remove volume {name}")).because(e))?;
    super::events::emit(store.root(), "volume", "destroy", name, &[("driver", "local")]);
    Ok(())
}

/// `mini volume prune [-a]`: unused anonymous volumes, or with `all` every
/// unused one (Docker ≥ 23); the removed names.
pub fn prune(store: &Store, all: bool) -> Result<Vec<String>> {
    let vs = volumes(store)?;
    vs.sweep_tmp();
    let mut gone = Vec::new();
    for v in list(store)? {
        let anonymous = v.meta().is_ok_and(|m| m.anonymous);
        if (all || anonymous) && users(store, &v.name).is_empty() {
            vs.remove(&v.name).map_err(|e| Error::new(format!("remove volume {}", v.name)).because(e))?;
            super::events::emit(store.root(), "volume", "destroy", &v.name, &[("driver", "local")]);
            gone.push(v.name);
        }
    }
    Ok(gone)
}

/// After a container's removal: its anonymous volumes that no other
/// container uses go too (`--rm`, `rm -v`, as Docker does); named ones stay.
pub fn remove_anonymous(store: &Store, names: &[String]) {
    let Ok(vs) = volumes(store) else { return };
    for name in names {
        let anonymous = vs.find(name).is_some_and(|v| v.meta().is_ok_and(|m| m.anonymous));
        if anonymous && users(store, name).is_empty() {
            if let Err(e) = vs.remove(name) {
                eprintln!("mini: warning: remove volume {name}: {e}");
            }
        }
    }
}

/// The data directory of volume `name` for a container being created,
/// made (anonymous when `name` is None) if missing; its name.
pub fn for_container(store: &Store, name: Option<&str>) -> Result<(String, std::path::PathBuf)> {
    let name = match name {
        Some(n) if volumes(store)?.find(n).is_some() => n.to_string(),
        n => create(store, n, &[])?,
    };
    Ok((name.clone(), volumes(store)?.get(&name).data()))
}
