//! A bundle's `config.json`, read into the runtime-spec's `Spec`; what
//! runs from it is planned by `runtime::plan`.

use std::path::Path;

use oci_spec::runtime::Spec;

use crate::error::{Error, Result};

/// The config of the bundle at `dir`.
pub fn load(dir: &Path) -> Result<Spec> {
    let file = dir.join("config.json");
    let what = || format!("read the OCI config {}", file.display());
    let bytes = std::fs::read(&file)
        .map_err(|e| Error::new(what()).because(e).hint("give --bundle DIR holding config.json"))?;
    // The path of the field serde refused ("linux.namespaces[0].type"),
    // so the one line names it as runc's errors do.
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        match field.as_str() {
            "." | "" => Error::new(what()).because(inner),
            _ => crate::runtime::plan::invalid(&field, inner),
        }
    })
}
