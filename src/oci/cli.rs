//! runc's command line, as containerd's shim, conmon (Podman) and other
//! OCI tools speak it: global flags, then one verb.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

use super::exec::ExecOptions;
use super::launch::{self, CreateOptions};
use super::state::{Root, Status};
use super::{exec, features, hooks};
use crate::error::{Error, Result};
use crate::runtime::process::{exit_code, Started};
use crate::sys::process as p;

#[derive(Debug, Parser)]
#[command(name = "mini-runc", version = super::VERSION_TEXT, about = "mini as an OCI runtime, with runc's command line")]
struct Cli {
    /// Where container state lives
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Also write errors to this file
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// The log file's format: text or json
    #[arg(long = "log-format", value_name = "FORMAT", default_value = "text")]
    log_format: String,
    /// Accepted for runc compatibility (mini-runc says what fails anyway)
    #[arg(long)]
    debug: bool,
    /// Let systemd manage cgroups: not supported
    #[arg(long = "systemd-cgroup")]
    systemd_cgroup: bool,
    /// Accepted for runc compatibility: true, false or auto
    #[arg(long, value_name = "VALUE")]
    rootless: Option<String>,
    /// Accepted for runc compatibility (checkpointing is not supported)
    #[arg(long, value_name = "PATH")]
    criu: Option<String>,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, clap::Args)]
struct CreateArgs {
    /// The bundle directory (holding config.json)
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Write the container process's pid here
    #[arg(long = "pid-file", value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// A unix socket to receive the terminal's master (process.terminal)
    #[arg(long = "console-socket", value_name = "PATH")]
    console_socket: Option<PathBuf>,
    /// Accepted for runc compatibility: mini-runc always pivots
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Accepted for runc compatibility: no session keyring is made
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    /// Pass this many fds from 3 up into the container
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    id: String,
}

#[derive(Debug, Subcommand)]
enum Verb {
    /// Create a container from a bundle; its process waits for start
    Create(CreateArgs),
    /// Let a created container's process run
    Start { id: String },
    /// Create and start; without --detach, wait and exit with its status
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Return once it runs
        #[arg(short, long)]
        detach: bool,
        /// Keep the container's state after it exits
        #[arg(long)]
        keep: bool,
    },
    /// The container's state as JSON
    State { id: String },
    /// Send a signal (default TERM) to the container's process
    Kill {
        id: String,
        signal: Option<String>,
        /// To every process in the container's cgroup
        #[arg(short, long)]
        all: bool,
    },
    /// Delete a container's state (a running one only with --force)
    Delete {
        id: String,
        #[arg(short, long)]
        force: bool,
    },
    /// Run another process in a running container
    Exec {
        /// The process as JSON (runtime-spec's process)
        #[arg(short, long, value_name = "FILE")]
        process: Option<PathBuf>,
        #[arg(short, long)]
        detach: bool,
        #[arg(long = "pid-file", value_name = "FILE")]
        pid_file: Option<PathBuf>,
        #[arg(short, long)]
        tty: bool,
        #[arg(long = "console-socket", value_name = "PATH")]
        console_socket: Option<PathBuf>,
        #[arg(long)]
        cwd: Option<PathBuf>,
        #[arg(short, long = "env")]
        env: Vec<String>,
        /// uid[:gid]
        #[arg(short, long)]
        user: Option<String>,
        #[arg(long = "preserve-fds", default_value_t = 0)]
        preserve_fds: u32,
        id: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The processes in the container
    Ps {
        #[arg(short, long, default_value = "table")]
        format: String,
        id: String,
        /// Options for ps(1) (table format)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// The containers under --root
    List {
        #[arg(short, long, default_value = "table")]
        format: String,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Freeze every process in the container
    Pause { id: String },
    /// Thaw a paused container
    Resume { id: String },
    /// Change the container's resource limits
    Update {
        /// linux.resources as JSON ("-": stdin)
        #[arg(short, long, value_name = "FILE")]
        resources: Option<PathBuf>,
        #[command(flatten)]
        flags: features::UpdateFlags,
        id: String,
    },
    /// What this runtime supports (runtime-spec's features document)
    Features,
    /// Write a default config.json
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// For a rootless container (a user namespace mapping the caller)
        #[arg(long)]
        rootless: bool,
    },
}

/// The default state root: runc's, beside it.
fn default_root() -> PathBuf {
    match crate::rootless::current() {
        Some(_) => {
            std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir).join("mini-runc")
        }
        None => PathBuf::from("/run/mini-runc"),
    }
}

/// Run mini-runc with `args` (argv[0] first); returns the exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 1 } else { 0 };
        }
    };
    let log = cli.log.clone();
    let json = cli.log_format == "json";
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mini-runc: {e}");
            if let Some(path) = log {
                write_log(&path, json, &e.to_string());
            }
            1
        }
    }
}

/// runc's error log: one line per error (JSON for containerd and conmon).
fn write_log(path: &std::path::Path, json: bool, msg: &str) {
    let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let line = if json {
        serde_json::json!({"level": "error", "msg": msg, "time": time}).to_string()
    } else {
        format!("time=\"{time}\" level=error msg=\"{msg}\"")
    };
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(f, "{line}");
    }
}

fn run(cli: Cli) -> Result<i32> {
    if cli.systemd_cgroup {
        return Err(Error::new("--systemd-cgroup")
            .because("mini-runc manages cgroupfs itself, not through systemd")
            .hint("configure the caller for cgroupfs (containerd: SystemdCgroup = false; podman: cgroup_manager = \"cgroupfs\")"));
    }
    let root = Root::new(cli.root.clone().unwrap_or_else(default_root));
    match cli.verb {
        Verb::Create(a) => {
            launch::create(&root, &a.id, &create_options(&a))?;
            Ok(0)
        }
        Verb::Start { id } => launch::start(&root, &id).map(|()| 0),
        Verb::Run { create, detach, keep } => run_verb(&root, &create, detach, keep),
        Verb::State { id } => {
            let r = root.load(&id)?;
            let state = r.state_json(r.status(&root.dir_of(&id)));
            println!("{}", serde_json::to_string_pretty(&state).unwrap_or_default());
            Ok(0)
        }
        Verb::Kill { id, signal, all } => kill(&root, &id, signal.as_deref().unwrap_or("TERM"), all).map(|()| 0),
        Verb::Delete { id, force } => delete(&root, &id, force).map(|()| 0),
        Verb::Exec { process, detach, pid_file, tty, console_socket, cwd, env, user, preserve_fds, id, args } => {
            if process.is_none() && args.is_empty() {
                return Err(Error::new(format!("exec in container {id}")).because("give --process FILE or a command"));
            }
            let o = ExecOptions { process, args, env, cwd, user, tty, detach, pid_file, console_socket, preserve_fds };
            exec::exec(&root, &id, &o)
        }
        Verb::Ps { format, id, ps_args } => ps(&root, &id, &format, &ps_args).map(|()| 0),
        Verb::List { format, quiet } => list(&root, &format, quiet).map(|()| 0),
        Verb::Pause { id } => freeze(&root, &id, true).map(|()| 0),
        Verb::Resume { id } => freeze(&root, &id, false).map(|()| 0),
        Verb::Update { resources, flags, id } => {
            let mut r = read_resources(resources.as_deref())?;
            features::merge_update_flags(&mut r, &flags);
            features::update(&root, &id, &r).map(|()| 0)
        }
        Verb::Features => {
            println!("{}", serde_json::to_string_pretty(&features::document()).unwrap_or_default());
            Ok(0)
        }
        Verb::Spec { bundle, rootless } => features::write_default_spec(&bundle, rootless).map(|()| 0),
    }
}

fn create_options(a: &CreateArgs) -> CreateOptions {
    CreateOptions {
        bundle: a.bundle.clone(),
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        preserve_fds: a.preserve_fds,
    }
}

/// `run`: create, start, and (without --detach) wait, relaying signals
/// and a terminal, then delete unless --keep.
fn run_verb(root: &Root, a: &CreateArgs, detach: bool, keep: bool) -> Result<i32> {
    let mut handled = p::FORWARDED.to_vec();
    handled.push(libc::SIGCHLD);
    if !detach {
        // Blocked before the clone, so no signal meant for the container is lost.
        p::block(&handled);
    }
    let created = launch::create(root, &a.id, &create_options(a))?;
    if let Err(e) = launch::start(root, &a.id) {
        let _ = delete(root, &a.id, true);
        return Err(e);
    }
    if detach {
        return Ok(0);
    }
    let pid = created.record.pid.unwrap_or_default();
    let sigfd = p::signalfd(&handled)?;
    let exit = Started::adopt(pid, created.master, sigfd, true).wait();
    if !keep {
        delete(root, &a.id, true)?;
    }
    Ok(exit_code(exit?))
}

fn read_resources(path: Option<&std::path::Path>) -> Result<oci_spec::runtime::LinuxResources> {
    let Some(path) = path else { return Ok(Default::default()) };
    let what = || format!("read the resources {}", path.display());
    let bytes = if path == std::path::Path::new("-") {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut v).map_err(|e| Error::new(what()).because(e))?;
        v
    } else {
        std::fs::read(path).map_err(|e| Error::new(what()).because(e))?
    };
    serde_json::from_slice(&bytes).map_err(|e| Error::new(what()).because(e))
}

fn kill(root: &Root, id: &str, signal: &str, all: bool) -> Result<()> {
    let sig = crate::container::lifecycle::parse_signal(signal)?;
    let r = root.load(id)?;
    let status = r.status(&root.dir_of(id));
    if status == Status::Stopped || status == Status::Creating {
        return Err(Error::new(format!("kill container {id}")).because("it is not running"));
    }
    let pids = if all { r.pids() } else { r.pid.into_iter().collect() };
    for pid in pids {
        p::kill(pid, sig).map_err(|e| e.within(format!("kill container {id}")))?;
    }
    Ok(())
}

fn delete(root: &Root, id: &str, force: bool) -> Result<()> {
    let r = match root.load(id) {
        Ok(r) => r,
        Err(_) if force && !root.dir_of(id).join(super::state::STATE).exists() => {
            // runc's --force of a container that is not there succeeds;
            // a directory left by a create that died goes too.
            let _ = root.remove(id);
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let status = r.status(&root.dir_of(id));
    // As runc: a created container is killed and deleted without --force;
    // a running or paused one needs it.
    if !force && !matches!(status, Status::Stopped | Status::Creating | Status::Created) {
        return Err(Error::new(format!("delete container {id}"))
            .because(format!("it is {}", status.as_str()))
            .hint(format!("stop it first, or: mini-runc delete --force {id}")));
    }
    if status != Status::Stopped {
        if status == Status::Paused {
            let _ = r.cgroups.freeze(false);
        }
        for pid in r.pids().into_iter().chain(r.pid) {
            let _ = p::kill(pid, libc::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while r.alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    if let Some(h) = &r.hooks {
        if let Err(e) = hooks::run("poststop", h.poststop().as_deref(), &r.state_json(Status::Stopped)) {
            eprintln!("mini-runc: warning: {e}");
        }
    }
    remove_cgroups(&r);
    root.remove(id)
}

/// The cgroups go once their last process has (the kernel frees a dead
/// process's cgroup membership shortly after it exits).
fn remove_cgroups(r: &super::state::Record) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        r.cgroups.remove();
        let left = r.cgroups.dirs().iter().any(|d| d.exists());
        if !left || Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn ps(root: &Root, id: &str, format: &str, ps_args: &[String]) -> Result<()> {
    let r = root.load(id)?;
    let pids = r.pids();
    match format {
        "json" => {
            println!("{}", serde_json::to_string(&pids).unwrap_or_default());
            Ok(())
        }
        "table" => {
            let args: Vec<String> = if ps_args.is_empty() { vec!["-ef".into()] } else { ps_args.to_vec() };
            let out = std::process::Command::new("ps")
                .args(&args)
                .output()
                .map_err(|e| Error::new("run ps").because(e).hint("install procps, or use --format json"))?;
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or_default();
            let col = header
                .split_whitespace()
                .position(|c| c == "PID")
                .ok_or_else(|| Error::new("run ps").because("its output has no PID column"))?;
            println!("{header}");
            for l in lines {
                if l.split_whitespace().nth(col).and_then(|p| p.parse::<i32>().ok()).is_some_and(|p| pids.contains(&p))
                {
                    println!("{l}");
                }
            }
            Ok(())
        }
        other => Err(Error::new(format!("invalid --format \"{other}\"")).because("give table or json")),
    }
}

fn list(root: &Root, format: &str, quiet: bool) -> Result<()> {
    let states: Vec<serde_json::Value> = root
        .ids()
        .iter()
        .filter_map(|id| root.load(id).ok().map(|r| r.state_json(r.status(&root.dir_of(id)))))
        .collect();
    match format {
        "json" => println!("{}", serde_json::to_string(&states).unwrap_or_default()),
        "table" if quiet => states.iter().for_each(|s| println!("{}", s["id"].as_str().unwrap_or_default())),
        "table" => {
            println!("{:<20} {:<8} {:<10} {:<40} {:<32} OWNER", "ID", "PID", "STATUS", "BUNDLE", "CREATED");
            for s in &states {
                let f = |k: &str| s[k].as_str().unwrap_or_default().to_string();
                println!(
                    "{:<20} {:<8} {:<10} {:<40} {:<32} {}",
                    f("id"),
                    s["pid"],
                    f("status"),
                    f("bundle"),
                    f("created"),
                    f("owner")
                );
            }
        }
        other => return Err(Error::new(format!("invalid --format \"{other}\"")).because("give table or json")),
    }
    Ok(())
}

fn freeze(root: &Root, id: &str, frozen: bool) -> Result<()> {
    let r = root.load(id)?;
    let status = r.status(&root.dir_of(id));
    let (verb, wanted) = if frozen { ("pause", Status::Running) } else { ("resume", Status::Paused) };
    if status != wanted {
        return Err(Error::new(format!("{verb} container {id}")).because(format!("it is {}", status.as_str())));
    }
    r.cgroups.freeze(frozen)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
