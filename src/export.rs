//! `mini export`: a container's merged filesystem as a tar stream.
use std::path::Path;

use crate::config::Config;
use crate::error::{Error, Result};

pub fn export(_config: &Config, key: &str, _out: Option<&Path>) -> Result<()> {
    Err(Error::new(format!("export {key}")).because("not implemented yet"))
}
