//! `mini login [-u USER] [-p PASS | --password-stdin] [SERVER]` and
//! `mini logout [SERVER]`: Docker Hub when no server is given.

use std::io::{BufRead, IsTerminal, Write};

use clap::Args as ClapArgs;

use crate::config::{Config, DOCKER_HUB};
use crate::error::{Error, Result};
use crate::registry::auth::Credentials;
use crate::registry::login;

#[derive(Debug, ClapArgs)]
pub struct LoginArgs {
    /// Registry host[:port] (default: Docker Hub)
    pub server: Option<String>,
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password (visible to other users in `ps`: prefer --password-stdin)
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, ClapArgs)]
pub struct LogoutArgs {
    /// Registry host[:port] (default: Docker Hub)
    pub server: Option<String>,
}

pub fn login(args: LoginArgs, config: &Config) -> Result<i32> {
    let server = registry_of(args.server.as_deref());
    let what = || format!("log in to {server}");
    if args.password_stdin && args.password.is_some() {
        return Err(Error::new(what()).because("--password and --password-stdin exclude each other"));
    }
    let username = match args.username {
        Some(u) => u,
        None if args.password_stdin => {
            return Err(Error::new(what()).because("--password-stdin needs --username"));
        }
        None => prompt("Username: ", false)?,
    };
    let password = match (args.password, args.password_stdin) {
        (Some(p), _) => p,
        (None, true) => read_line(&mut std::io::stdin().lock())?,
        (None, false) => prompt("Password: ", true)?,
    };
    if username.is_empty() || password.is_empty() {
        return Err(Error::new(what()).because("username and password must not be empty"));
    }
    let creds = Credentials { username, password };
    login::check(config, &server, &creds)?;
    login::save(&server, &creds)?;
    println!("Login Succeeded");
    Ok(0)
}

pub fn logout(args: LogoutArgs) -> Result<i32> {
    let server = registry_of(args.server.as_deref());
    if login::remove(&server)? {
        println!("Removing login credentials for {server}");
    } else {
        println!("Not logged in to {server}");
    }
    Ok(0)
}

/// The registry a server argument names (`https://host/` → host).
fn registry_of(server: Option<&str>) -> String {
    let s = server.unwrap_or(DOCKER_HUB);
    let host = s.trim_start_matches("https://").trim_start_matches("http://");
    let host = host.split('/').next().unwrap_or(host);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "" => DOCKER_HUB.to_string(),
        h => h.to_string(),
    }
}

/// Ask on the terminal (without echo for a secret).
fn prompt(label: &str, secret: bool) -> Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Error::new("log in")
            .because(format!("{} needed and stdin is not a terminal", label.trim_end_matches(": ")))
            .hint("pass --username, and --password-stdin"));
    }
    eprint!("{label}");
    let _ = std::io::stderr().flush();
    let _echo = if secret { crate::sys::tty::echo_off(0).ok() } else { None };
    let line = read_line(&mut stdin.lock());
    if secret {
        eprintln!();
    }
    line
}

fn read_line(r: &mut impl BufRead) -> Result<String> {
    let mut line = String::new();
    r.read_line(&mut line).map_err(|e| Error::new("read from stdin").because(e))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
