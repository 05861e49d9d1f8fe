//! `mini unshare [COMMAND...]`: run a command in rootless mini's user
//! namespace (as `podman unshare`), to look at or remove the store's files
//! by hand; `mini system migrate`: end that namespace so the next mini
//! makes it again (after /etc/subuid changed).

use std::ffi::OsString;

use clap::Args as ClapArgs;

use crate::config::Config;
use crate::error::{Error, Result};

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// The command and its arguments (default: $SHELL, else /bin/sh)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<OsString>,
}

fn rootless_only(verb: &str) -> Result<&'static crate::rootless::User> {
    crate::rootless::current().ok_or_else(|| {
        Error::new(format!("mini {verb}")).because("it is for rootless mini; root needs no user namespace")
    })
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    rootless_only("unshare")?;
    let mut argv = args.command;
    if argv.is_empty() {
        argv.push(std::env::var_os("SHELL").filter(|s| !s.is_empty()).unwrap_or_else(|| "/bin/sh".into()));
    }
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new(&argv[0]).args(&argv[1..]).env("MINI_STORE", &config.root).exec();
    use crate::error::Kind;
    let kind = if err.kind() == std::io::ErrorKind::NotFound { Kind::CommandNotFound } else { Kind::CannotExecute };
    Err(Error::new(format!("run {}", argv[0].to_string_lossy())).because(err).kind(kind))
}

pub fn migrate(config: &Config) -> Result<i32> {
    let user = rootless_only("system migrate")?;
    let store = mini_store::Store::open(&config.root)?;
    let cs = crate::container::containers(&store)?;
    let ids = cs.ids().map_err(|e| Error::new("list containers").because(e))?;
    let running =
        ids.iter().filter(|id| cs.get(id).state().is_ok_and(|s| crate::container::state::is_running(&s))).count();
    crate::rootless::ns::migrate(&crate::rootless::Paths::of_process(user), running)?;
    Ok(0)
}
