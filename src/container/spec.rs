//! Image config + `mini run` flags → the container's record: the
//! process description ([`RunSpec`], what the runtime runs) and the
//! container options (what the engine does around it), both decided
//! before anything is created. Pure: host env and env-file contents come
//! in as arguments, and every bad input becomes one error line naming the
//! flag and its value.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use clap::Args as ClapArgs;

use super::process::{RunSpec, SeccompChoice, Tmpfs, Userns, Volume};
use crate::error::{Error, Result};
use crate::runtime::cgroups;
use crate::runtime::child::DEFAULT_PATH;
use crate::runtime::user::UserSpec;

/// The flags of `mini run` / `mini create`, as typed: the CLI parses
/// into this struct directly, so a new flag is one field here and its use.
#[derive(Debug, Clone, Default, ClapArgs)]
pub struct RunFlags {
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Logging driver: json-file (default) or none
    #[arg(long = "log-driver", value_name = "DRIVER")]
    pub log_driver: Option<String>,
    /// A log driver option: max-size=SIZE, max-file=N
    #[arg(long = "log-opt", value_name = "OPT=VALUE")]
    pub log_opt: Vec<String>,
    /// Restart policy: no (default), on-failure[:N], always, unless-stopped
    #[arg(long, value_name = "POLICY")]
    pub restart: Option<String>,
    /// Keep stdin attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Run mini's init as pid 1: forwards signals, reaps zombies
    #[arg(long)]
    pub init: bool,
    /// Set an environment variable (KEY=VALUE, or KEY to copy the host's)
    #[arg(short, long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    /// Read environment variables from a file
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container (created if missing)
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// User: name|uid[:group|gid]
    #[arg(short, long)]
    pub user: Option<String>,
    /// Container host name (default: the short id)
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Bind mount a host path or a named volume: /host:/container[:ro], NAME:/container[:ro]
    #[arg(short, long = "volume", value_name = "SRC:DST[:ro]")]
    pub volumes: Vec<String>,
    /// A mount: type=bind|volume|tmpfs,source=…,target=…[,readonly][,volume-nocopy][,tmpfs-size=…][,tmpfs-mode=…]
    #[arg(long, value_name = "SPEC")]
    pub mount: Vec<String>,
    /// Mount a tmpfs: /path[:options]
    #[arg(long, value_name = "PATH[:OPTS]")]
    pub tmpfs: Vec<String>,
    /// Mount the container's root read-only
    #[arg(long)]
    pub read_only: bool,
    /// Override the image's entrypoint
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// User namespace: host (default) or auto
    #[arg(long, value_name = "host|auto")]
    pub userns: Option<String>,
    /// Pull the image: missing (default), always, never
    #[arg(long, value_name = "missing|always|never")]
    pub pull: Option<String>,
    /// Security options: no-new-privileges[=true|false]
    #[arg(long = "security-opt", value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// Add a Linux capability (NAME, CAP_NAME or ALL)
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a Linux capability (NAME, CAP_NAME or ALL)
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// A resource limit: NAME=SOFT[:HARD], e.g. nofile=1024:2048
    #[arg(long = "ulimit", value_name = "NAME=SOFT[:HARD]")]
    pub ulimit: Vec<String>,
    /// A namespaced kernel parameter: KEY=VALUE (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*)
    #[arg(long = "sysctl", value_name = "KEY=VALUE")]
    pub sysctl: Vec<String>,
    /// A host device for the container: HOST[:CONTAINER[:PERMS]] (PERMS of rwm)
    #[arg(long = "device", value_name = "HOST[:CONTAINER[:PERMS]]")]
    pub device: Vec<String>,
    /// Every capability, no seccomp filter, no masked paths, the host's devices
    #[arg(long)]
    pub privileged: bool,
    /// Size of /dev/shm (default 64m)
    #[arg(long = "shm-size", value_name = "SIZE")]
    pub shm_size: Option<String>,
    /// Network: bridge (default), none, host, container:NAME|ID, or a network's name
    #[arg(long, alias = "net", value_name = "MODE")]
    pub network: Option<String>,
    /// Publish a container's port: [IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]
    #[arg(short = 'p', long = "publish", value_name = "SPEC")]
    pub publish: Vec<String>,
    /// Publish every port the image exposes on a random host port
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// A fixed IPv4 address on a user network
    #[arg(long, value_name = "IP")]
    pub ip: Option<String>,
    /// The container's MAC address
    #[arg(long = "mac-address", value_name = "MAC")]
    pub mac_address: Option<String>,
    /// Another name for the container on its user network
    #[arg(long = "network-alias", alias = "net-alias", value_name = "NAME")]
    pub network_alias: Vec<String>,
    /// Add a line to /etc/hosts: HOST:IP (IP may be host-gateway)
    #[arg(long = "add-host", value_name = "HOST:IP")]
    pub add_host: Vec<String>,
    /// A nameserver for /etc/resolv.conf
    #[arg(long = "dns", value_name = "IP")]
    pub dns: Vec<String>,
    /// A search domain for /etc/resolv.conf
    #[arg(long = "dns-search", value_name = "DOMAIN")]
    pub dns_search: Vec<String>,
    /// An option line entry for /etc/resolv.conf
    #[arg(long = "dns-option", alias = "dns-opt", value_name = "OPT")]
    pub dns_option: Vec<String>,
    #[command(flatten)]
    pub resources: cgroups::Flags,
    #[command(flatten)]
    pub health: super::health::HealthFlags,
    /// The image, then the command and its arguments (passed byte for
    /// byte): flags end at the image, as Docker's (`--entrypoint sh IMAGE -c …`)
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "IMAGE [COMMAND] [ARG...]"
    )]
    pub positionals: Vec<OsString>,
    /// The image, from `positionals` (see [`RunFlags::split_positionals`]).
    #[arg(skip)]
    pub image: String,
    #[arg(skip)]
    pub command: Vec<OsString>,
}

impl RunFlags {
    /// `positionals` → `image` and `command`. An unknown flag before the
    /// image lands in `positionals` (they take leading hyphens, for the
    /// command's sake) and is refused here, as clap would refuse it.
    pub fn split_positionals(mut self) -> Result<RunFlags> {
        let mut words = std::mem::take(&mut self.positionals).into_iter();
        let image = words.next().unwrap_or_default();
        let image = image.into_string().map_err(|i| Error::new(format!("invalid image {i:?}")).because("not UTF-8"))?;
        if image.starts_with('-') {
            return Err(Error::new(format!("unknown flag: {image}")).hint("see mini run --help"));
        }
        (self.image, self.command) = (image, words.collect());
        Ok(self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Missing,
    Always,
    Never,
}

/// What the image's config says about running it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageDefaults {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub workdir: String,
    pub user: String,
}

impl ImageDefaults {
    pub fn from_oci(config: &oci_spec::image::ImageConfiguration) -> ImageDefaults {
        let Some(c) = config.config() else { return ImageDefaults::default() };
        ImageDefaults {
            entrypoint: c.entrypoint().clone().unwrap_or_default(),
            cmd: c.cmd().clone().unwrap_or_default(),
            env: c.env().clone().unwrap_or_default(),
            workdir: c.working_dir().clone().unwrap_or_default(),
            user: c.user().clone().unwrap_or_default(),
        }
    }
}

/// A read env file: its path (for messages) and its bytes.
pub type EnvFile = (PathBuf, Vec<u8>);

/// The process description for `flags` over the image's defaults. The
/// host name, when not given, and the id map are filled in once the
/// container's id is known.
pub fn process(
    image: &ImageDefaults,
    flags: &RunFlags,
    host_env: &dyn Fn(&str) -> Option<String>,
    env_files: &[EnvFile],
) -> Result<RunSpec> {
    let hostname = flags.hostname.as_deref().map(check_hostname).transpose()?;
    let (argv, entrypoint_len) = argv(image, flags)?;
    let (volumes, tmpfs, fill) = mounts(flags)?;
    let capabilities = if flags.privileged { Some(all_caps()) } else { cap_names(flags)? };
    let (no_new_privs, seccomp) = security_opts(&flags.security_opt, capabilities.as_deref())?;
    Ok(RunSpec {
        argv,
        entrypoint_len,
        env: env(image, flags, host_env, env_files, hostname.as_deref())?,
        workdir: workdir(image, flags)?,
        user: UserSpec::parse(flags.user.as_deref().unwrap_or(&image.user)).map_err(|e| {
            if flags.user.is_some() {
                e
            } else {
                e.within("image config User")
            }
        })?,
        hostname,
        volumes,
        tmpfs,
        fill,
        read_only: flags.read_only,
        init: flags.init,
        interactive: flags.interactive,
        tty: flags.tty,
        userns: parse_userns(flags.userns.as_deref())?,
        no_new_privs,
        capabilities,
        rlimits: flags
            .ulimit
            .iter()
            .map(|u| parse_ulimit(u, &crate::sys::process::getrlimit))
            .collect::<Result<_>>()?,
        shm_size: flags.shm_size.as_deref().map(parse_shm_size).transpose()?,
        // Checked once the network is known (net.*) and the nodes are
        // found on the host: see `container::run`.
        sysctls: Vec::new(),
        devices: Vec::new(),
        privileged: flags.privileged,
        id_map: None,
        seccomp,
    })
}

/// Every capability mini itself may hold (`--privileged`: Docker gives
/// all its daemon has; asking for more would fail at start).
fn all_caps() -> Vec<String> {
    let mine = caps::read(None, caps::CapSet::Bounding).unwrap_or_else(|_| caps::runtime::thread_all_supported());
    let mut caps: Vec<caps::Capability> = mine.into_iter().collect();
    caps.sort_by_key(|c| c.index());
    caps.iter().map(|c| c.to_string()).collect()
}

/// The sysctls Docker lets a container set: those the kernel keeps per
/// IPC namespace, and (with a network namespace of its own) net.*.
const IPC_SYSCTLS: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// `--sysctl KEY=VALUE`, as Docker validates it; `own_network`: the
/// container has a network namespace of its own (not host, not another
/// container's).
pub fn parse_sysctl(text: &str, own_network: bool) -> Result<(String, String)> {
    let bad = |why: &str| Error::new(format!("invalid --sysctl \"{text}\"")).because(why.to_string());
    let (key, value) = text.split_once('=').ok_or_else(|| bad("expected KEY=VALUE"))?;
    let well_formed = !key.is_empty()
        && key
            .split('.')
            .all(|c| !c.is_empty() && c != ".." && c.chars().all(|ch| ch.is_ascii_alphanumeric() || "_-".contains(ch)));
    if !well_formed {
        return Err(bad("not a sysctl name (letters, digits, '_' and '-' between dots)"));
    }
    let ipc = IPC_SYSCTLS.contains(&key) || key.starts_with("fs.mqueue.");
    let net = key.starts_with("net.");
    if net && !own_network {
        return Err(bad("net.* sysctls need the container's own network namespace (not --network host or container:)"));
    }
    if !ipc && !net {
        return Err(bad(
            "not a namespaced sysctl; allowed: kernel.msgmax, kernel.msgmnb, kernel.msgmni, kernel.sem, kernel.shmall, \
             kernel.shmmax, kernel.shmmni, kernel.shm_rmid_forced, fs.mqueue.*, net.*",
        ));
    }
    Ok((key.to_string(), value.to_string()))
}

/// `--device HOST[:CONTAINER[:PERMS]]`, split as Docker does (a second
/// part that is a mode is the mode): (host, container path, perms).
pub fn parse_device(text: &str) -> Result<(PathBuf, PathBuf, String)> {
    let bad = |why: &str| Error::new(format!("invalid --device \"{text}\"")).because(why.to_string());
    let mode = |m: &str| {
        !m.is_empty() && m.len() <= 3 && m.chars().all(|c| "rwm".contains(c)) && {
            let mut v: Vec<char> = m.chars().collect();
            v.sort();
            v.dedup();
            v.len() == m.len()
        }
    };
    let parts: Vec<&str> = text.split(':').collect();
    let (src, dst, perms) = match parts.as_slice() {
        [s] => (*s, *s, "rwm"),
        [s, m] if mode(m) => (*s, *s, *m),
        [s, d] => (*s, *d, "rwm"),
        [s, d, m] if mode(m) => (*s, *d, *m),
        [_, _, m] => return Err(bad(&format!("bad mode \"{m}\" (a combination of r, w and m)"))),
        _ => return Err(bad("expected HOST[:CONTAINER[:PERMS]]")),
    };
    if !src.starts_with('/') {
        return Err(bad("the host path must be absolute"));
    }
    Ok((clean(Path::new(src)), check_target("--device", text, Path::new(dst))?, perms.to_string()))
}

/// The command, and how many of its leading words are the entrypoint.
fn argv(image: &ImageDefaults, flags: &RunFlags) -> Result<(Vec<OsString>, usize)> {
    // As Docker: --entrypoint replaces the image's entrypoint and drops its
    // Cmd; trailing arguments replace Cmd.
    let (entry, cmd): (Vec<OsString>, Vec<OsString>) = match &flags.entrypoint {
        Some(e) if e.is_empty() => (vec![], flags.command.clone()),
        Some(e) => (vec![e.into()], flags.command.clone()),
        None if flags.command.is_empty() => (os(&image.entrypoint), os(&image.cmd)),
        None => (os(&image.entrypoint), flags.command.clone()),
    };
    let entrypoint_len = entry.len();
    let argv: Vec<OsString> = entry.into_iter().chain(cmd).collect();
    if argv.is_empty() {
        return Err(Error::new(format!("run {}", flags.image))
            .because("no command specified")
            .hint("the image has no Entrypoint or Cmd; give a command after the image"));
    }
    Ok((argv, entrypoint_len))
}

fn os(v: &[String]) -> Vec<OsString> {
    v.iter().map(OsString::from).collect()
}

fn env(
    image: &ImageDefaults,
    flags: &RunFlags,
    host_env: &dyn Fn(&str) -> Option<String>,
    env_files: &[EnvFile],
    hostname: Option<&str>,
) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let mut set = |kv: String| {
        let key = kv.split('=').next().unwrap_or_default().to_string();
        match out.iter_mut().find(|e| e.split('=').next() == Some(&key)) {
            Some(slot) => *slot = kv,
            None => out.push(kv),
        }
    };
    set(format!("PATH={DEFAULT_PATH}"));
    if let Some(h) = hostname {
        set(format!("HOSTNAME={h}"));
    }
    // As Docker: a terminal gets TERM, which -e or the image may override.
    if flags.tty {
        set("TERM=xterm".to_string());
    }
    for kv in &image.env {
        if kv.contains('=') && !kv.starts_with('=') {
            set(kv.clone());
        }
    }
    for (path, bytes) in env_files {
        let text = String::from_utf8_lossy(bytes);
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let kv = env_entry(line, host_env).map_err(|why| {
                Error::new(format!("invalid --env-file {} line {}", path.display(), n + 1)).because(why)
            })?;
            kv.map(&mut set);
        }
    }
    for e in &flags.env {
        let kv = env_entry(e, host_env).map_err(|why| Error::new(format!("invalid -e \"{e}\"")).because(why))?;
        kv.map(&mut set);
    }
    Ok(out)
}

/// `K=V` as is, `K` from the host (skipped when unset there).
fn env_entry(text: &str, host_env: &dyn Fn(&str) -> Option<String>) -> std::result::Result<Option<String>, String> {
    if text.is_empty() {
        return Err("empty variable".into());
    }
    let key = text.split('=').next().unwrap_or_default();
    if key.is_empty() {
        return Err("variable name is empty".into());
    }
    if key.contains(|c: char| c.is_whitespace() || c == '\0') {
        return Err(format!("variable name \"{key}\" contains whitespace"));
    }
    if text.contains('=') {
        Ok(Some(text.to_string()))
    } else {
        Ok(host_env(key).map(|v| format!("{key}={v}")))
    }
}

fn workdir(image: &ImageDefaults, flags: &RunFlags) -> Result<PathBuf> {
    let (text, flag) = match &flags.workdir {
        Some(w) => (w.as_str(), "-w"),
        None if image.workdir.is_empty() => ("/", "-w"),
        None => (image.workdir.as_str(), "image config WorkingDir"),
    };
    let p = Path::new(text);
    if !p.is_absolute() {
        return Err(
            Error::new(format!("invalid {flag} \"{text}\"")).because("the working directory must be an absolute path")
        );
    }
    Ok(clean(p))
}

/// Lexically normalise an absolute path ("/a/./b/../c" → "/a/c").
pub fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Mount targets that would hide or subvert what the runtime sets up.
fn check_target(flag: &str, text: &str, target: &Path) -> Result<PathBuf> {
    let bad = |why: &str| Err(Error::new(format!("invalid {flag} \"{text}\"")).because(why.to_string()));
    if !target.is_absolute() {
        return bad("the container path must be absolute");
    }
    let t = clean(target);
    if t == Path::new("/") {
        return bad("cannot mount over the container's root");
    }
    if t.starts_with("/proc") {
        return bad("cannot mount under /proc");
    }
    Ok(t)
}

/// `-v SRC:DST[:ro|rw]`: SRC an absolute host path (a bind), or a volume
/// name (a relative source, resolved to the volume's directory at create).
pub fn parse_volume(text: &str) -> Result<Volume> {
    let bad = |why: &str| Error::new(format!("invalid -v \"{text}\"")).because(why.to_string());
    let parts: Vec<&str> = text.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [s, d] => (*s, *d, None),
        [s, d, m] => (*s, *d, Some(*m)),
        [_] => return Err(bad("expected /host/path:/container/path[:ro] or NAME:/container/path[:ro]")),
        _ => return Err(bad("too many ':'")),
    };
    if src.is_empty() {
        return Err(bad("the source is empty: a host path or a volume name"));
    }
    let read_only = match mode {
        None | Some("rw") => false,
        Some("ro") => true,
        Some(m) => return Err(bad(&format!("unknown mode \"{m}\" (use ro or rw)"))),
    };
    let source = if src.starts_with('/') {
        clean(Path::new(src))
    } else {
        crate::container::volume::check_name(&format!("invalid -v \"{text}\": volume"), src)?;
        PathBuf::from(src)
    };
    Ok(Volume { source, target: check_target("-v", text, Path::new(dst))?, read_only })
}

/// One `--mount`, as Docker's CSV of KEY[=VALUE].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountFlag {
    Bind(Volume),
    /// A named volume (relative source) or an anonymous one (empty
    /// source); `true`: volume-nocopy.
    Volume(Volume, bool),
    Tmpfs(Tmpfs),
}

pub fn parse_mount(text: &str) -> Result<MountFlag> {
    let bad = |why: String| Error::new(format!("invalid --mount \"{text}\"")).because(why);
    let (mut kind, mut source, mut target) = ("volume", None, None);
    let (mut read_only, mut nocopy, mut tmpfs_opts) = (false, false, Vec::new());
    let boolean = |k: &str, v: Option<&str>| match v {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(v) => Err(bad(format!("invalid value \"{v}\" for {k}: true or false"))),
    };
    for field in text.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (field, None),
        };
        let value = || v.filter(|v| !v.is_empty()).ok_or_else(|| bad(format!("{k} needs a value")));
        match k {
            "type" => kind = value()?,
            "source" | "src" => source = Some(value()?),
            "target" | "destination" | "dst" => target = Some(value()?),
            "readonly" | "ro" => read_only = boolean(k, v)?,
            "volume-nocopy" => nocopy = boolean(k, v)?,
            "tmpfs-size" => match crate::runtime::cgroups::limits::parse_size(value()?) {
                Some(b) => tmpfs_opts.push(format!("size={b}")),
                None => return Err(bad(format!("invalid tmpfs-size \"{}\"", value()?))),
            },
            "tmpfs-mode" => match u32::from_str_radix(value()?, 8) {
                Ok(m) if m <= 0o7777 => tmpfs_opts.push(format!("mode={m:o}")),
                _ => return Err(bad(format!("invalid tmpfs-mode \"{}\" (octal)", value()?))),
            },
            "bind-propagation" | "consistency" => {}
            _ => return Err(bad(format!("unexpected key '{k}' in '{field}'"))),
        }
    }
    let target = target.ok_or_else(|| bad("target is required".into()))?;
    let target = check_target("--mount", text, Path::new(target))?;
    match kind {
        "bind" => {
            let src = source.ok_or_else(|| bad("source is required for type=bind".into()))?;
            if !src.starts_with('/') {
                return Err(bad("the bind source must be an absolute host path".into()));
            }
            Ok(MountFlag::Bind(Volume { source: clean(Path::new(src)), target, read_only }))
        }
        "volume" => {
            if let Some(name) = source {
                crate::container::volume::check_name(&format!("invalid --mount \"{text}\": volume"), name)?;
            }
            let source = PathBuf::from(source.unwrap_or_default());
            Ok(MountFlag::Volume(Volume { source, target, read_only }, nocopy))
        }
        "tmpfs" => {
            if source.is_some() {
                return Err(bad("a tmpfs has no source".into()));
            }
            let options = (!tmpfs_opts.is_empty()).then(|| tmpfs_opts.join(","));
            Ok(MountFlag::Tmpfs(Tmpfs { target, options }))
        }
        other => Err(bad(format!("unknown type \"{other}\": bind, volume or tmpfs"))),
    }
}

/// `-v`, `--tmpfs` and `--mount` together: the binds and volumes, the
/// tmpfs mounts, and the volume targets to fill from the image. A mount
/// point given twice is refused, as Docker does.
fn mounts(flags: &RunFlags) -> Result<(Vec<Volume>, Vec<Tmpfs>, Vec<PathBuf>)> {
    let (mut volumes, mut tmpfs, mut fill) = (Vec::new(), Vec::new(), Vec::new());
    for v in &flags.volumes {
        let v = parse_volume(v)?;
        if v.source.is_relative() {
            fill.push(v.target.clone());
        }
        volumes.push(v);
    }
    for t in &flags.tmpfs {
        tmpfs.push(parse_tmpfs(t)?);
    }
    for m in &flags.mount {
        match parse_mount(m)? {
            MountFlag::Bind(v) => volumes.push(v),
            MountFlag::Volume(v, nocopy) => {
                if !nocopy {
                    fill.push(v.target.clone());
                }
                volumes.push(v);
            }
            MountFlag::Tmpfs(t) => tmpfs.push(t),
        }
    }
    let mut seen: Vec<&Path> = Vec::new();
    for t in volumes.iter().map(|v| v.target.as_path()).chain(tmpfs.iter().map(|t| t.target.as_path())) {
        if seen.contains(&t) {
            return Err(Error::new(format!("mount {}", t.display())).because("duplicate mount point"));
        }
        seen.push(t);
    }
    Ok((volumes, tmpfs, fill))
}

pub fn parse_tmpfs(text: &str) -> Result<Tmpfs> {
    let (path, options) = match text.split_once(':') {
        Some((p, o)) => (p, Some(o.to_string())),
        None => (text, None),
    };
    Ok(Tmpfs { target: check_target("--tmpfs", text, Path::new(path))?, options })
}

/// `--shm-size` as Docker's sizes (`64m`, `1g`, bytes); at least 4 KiB.
fn parse_shm_size(text: &str) -> Result<u64> {
    match crate::runtime::cgroups::limits::parse_size(text) {
        Some(b) if b >= 4096 => Ok(b),
        _ => Err(Error::new(format!("invalid --shm-size \"{text}\""))
            .because("expected a size of at least 4k, e.g. 64m or 1g")),
    }
}

/// `--ulimit NAME=SOFT[:HARD]` (`-1` or `unlimited` for no limit), as
/// Docker parses it. A hard limit above what mini has is refused here when
/// mini could not raise it (no CAP_SYS_RESOURCE), rather than failing the
/// start; `current` gives mini's own limits.
pub fn parse_ulimit(
    text: &str,
    current: &dyn Fn(&str) -> Option<(u64, u64)>,
) -> Result<crate::container::process::Rlimit> {
    let bad = |why: String| Error::new(format!("invalid --ulimit \"{text}\"")).because(why);
    let (name, values) = text.split_once('=').ok_or_else(|| bad("expected NAME=SOFT[:HARD]".into()))?;
    let Some((_, hard_now)) = current(name) else {
        let names: Vec<&str> = crate::sys::process::RLIMITS.iter().map(|(n, _)| *n).collect();
        return Err(bad(format!("unknown resource {name:?}; one of {}", names.join(", "))));
    };
    let value = |v: &str| match v {
        "-1" | "unlimited" => Ok(u64::MAX),
        v => v.parse::<u64>().map_err(|_| bad(format!("{v:?} is not a number"))),
    };
    let (soft, hard) = match values.split_once(':') {
        Some((s, h)) => (value(s)?, value(h)?),
        None => (value(values)?, value(values)?),
    };
    if soft > hard {
        return Err(bad(format!("the soft limit {soft} is above the hard limit {hard}")));
    }
    let can_raise = caps::has_cap(None, caps::CapSet::Effective, caps::Capability::CAP_SYS_RESOURCE).unwrap_or(false);
    if hard > hard_now && !can_raise {
        let show = |v: u64| if v == u64::MAX { "unlimited".to_string() } else { v.to_string() };
        return Err(bad(format!(
            "the hard limit {} is above mini's own ({}), which it cannot raise without CAP_SYS_RESOURCE",
            show(hard),
            show(hard_now)
        )));
    }
    Ok(crate::container::process::Rlimit { name: name.to_string(), soft, hard })
}

/// The capability set as names, or None for Docker's default set (no
/// flag given: records stay as they were).
fn cap_names(flags: &RunFlags) -> Result<Option<Vec<String>>> {
    if flags.cap_add.is_empty() && flags.cap_drop.is_empty() {
        return Ok(None);
    }
    let caps = crate::runtime::security::capabilities(&flags.cap_add, &flags.cap_drop)?;
    Ok(Some(caps.iter().map(|c| c.to_string()).collect()))
}

/// `--security-opt` values, the last of each kind winning:
/// `no-new-privileges` with an optional `=true|false` (or Docker's older
/// `:true|false`), and `seccomp=unconfined|FILE` (a profile in Docker's
/// format, resolved for the container's capabilities `caps` now, so a bad
/// file fails `create`, not a later start).
fn security_opts(opts: &[String], caps: Option<&[String]>) -> Result<(bool, SeccompChoice)> {
    let (mut no_new_privs, mut seccomp) = (false, SeccompChoice::Default);
    for o in opts {
        let bad = |why: String| Error::new(format!("invalid --security-opt \"{o}\"")).because(why);
        let (key, value) = match o.split_once(['=', ':']) {
            Some((k, v)) => (k, Some(v)),
            None => (o.as_str(), None),
        };
        match (key, value) {
            ("no-new-privileges", None | Some("true")) => no_new_privs = true,
            ("no-new-privileges", Some("false")) => no_new_privs = false,
            ("no-new-privileges", Some(_)) => return Err(bad("expected no-new-privileges=true or =false".into())),
            ("seccomp", Some("unconfined")) => seccomp = SeccompChoice::Unconfined,
            ("seccomp", Some(path)) if !path.is_empty() => {
                seccomp = SeccompChoice::Profile(seccomp_file(path, caps).map_err(|e| bad(e.to_string()))?)
            }
            _ => return Err(bad("supported: no-new-privileges[=true|false], seccomp=unconfined|PROFILE.json".into())),
        }
    }
    Ok((no_new_privs, seccomp))
}

/// The profile in `path`, resolved and compiled once to check it.
fn seccomp_file(path: &str, caps: Option<&[String]>) -> Result<oci_spec::runtime::LinuxSeccomp> {
    let bytes = std::fs::read(path).map_err(|e| Error::new(format!("read {path}")).because(e))?;
    let caps = crate::runtime::security::capabilities_of(caps)?;
    let machine = super::seccomp::Machine::current();
    let profile = super::seccomp::resolve(&bytes, &caps, &machine).map_err(|e| e.within(path.to_string()))?;
    crate::runtime::seccomp::compile(&profile).map_err(|e| e.within(path.to_string()))?;
    Ok(profile)
}

fn parse_userns(v: Option<&str>) -> Result<Userns> {
    match v {
        None | Some("") | Some("host") => Ok(Userns::Host),
        Some("auto") => Ok(Userns::Auto),
        Some(o) => Err(Error::new(format!("invalid --userns \"{o}\"")).because("expected host or auto")),
    }
}

pub fn parse_pull(v: Option<&str>) -> Result<PullPolicy> {
    match v {
        None | Some("missing") => Ok(PullPolicy::Missing),
        Some("always") => Ok(PullPolicy::Always),
        Some("never") => Ok(PullPolicy::Never),
        Some(o) => Err(Error::new(format!("invalid --pull \"{o}\"")).because("expected missing, always or never")),
    }
}

/// Docker's rule: [a-zA-Z0-9][a-zA-Z0-9_.-]+
pub fn check_name(name: &str) -> Result<String> {
    let ok = name.len() >= 2
        && name.len() <= 128
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(name.to_string())
    } else {
        Err(Error::new(format!("invalid --name \"{name}\"")).because("names match [a-zA-Z0-9][a-zA-Z0-9_.-]+"))
    }
}

fn check_hostname(h: &str) -> Result<String> {
    let ok = !h.is_empty()
        && h.len() <= 64
        && h.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if ok {
        Ok(h.to_string())
    } else {
        Err(Error::new(format!("invalid --hostname \"{h}\""))
            .because("not a valid host name (letters, digits, '-' and '.', at most 64)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::user::Id;

    fn image() -> ImageDefaults {
        ImageDefaults {
            entrypoint: vec!["/entry".into()],
            cmd: vec!["a".into(), "b c".into()],
            env: vec!["PATH=/img/bin".into(), "LANG=C".into(), "EMPTY=".into()],
            workdir: "/srv".into(),
            user: "app".into(),
        }
    }

    fn host(k: &str) -> Option<String> {
        (k == "FROM_HOST").then(|| "h v".to_string())
    }

    fn build(f: RunFlags) -> Result<RunSpec> {
        process(&image(), &f, &host, &[])
    }

    #[test]
    fn flags_end_at_the_image_as_dockers() {
        use clap::Parser;
        #[derive(Parser)]
        #[command(disable_help_flag = true)]
        struct Cli {
            #[command(flatten)]
            flags: RunFlags,
        }
        let parse = |words: &[&str]| Cli::try_parse_from(words).map(|c| c.flags.split_positionals());
        let f = parse(&["run", "--entrypoint", "sh", "img", "-c", "echo -n hi", "--rm"]).unwrap().unwrap();
        assert_eq!((f.entrypoint.as_deref(), f.image.as_str(), f.rm), (Some("sh"), "img", false));
        assert_eq!(f.command, ["-c", "echo -n hi", "--rm"]);
        let e = parse(&["run", "--bogus", "img"]).unwrap().unwrap_err().to_string();
        assert_eq!(e, "unknown flag: --bogus (see mini run --help)");
        assert!(parse(&["run", "--rm"]).is_err(), "an image is required");
    }

    fn flags() -> RunFlags {
        RunFlags { image: "img".into(), ..Default::default() }
    }

    #[test]
    fn argv_follows_docker_rules() {
        let s = build(flags()).unwrap();
        assert_eq!(s.argv, ["/entry", "a", "b c"]);
        let s = build(RunFlags { command: vec!["x".into(), "".into(), "-y".into()], ..flags() }).unwrap();
        assert_eq!(s.argv, ["/entry", "x", "", "-y"]);
        let s = build(RunFlags { entrypoint: Some("/bin/sh".into()), ..flags() }).unwrap();
        assert_eq!(s.argv, ["/bin/sh"]);
        let s = build(RunFlags { entrypoint: Some("".into()), command: vec!["ls".into()], ..flags() }).unwrap();
        assert_eq!(s.argv, ["ls"]);
        let e = process(&ImageDefaults::default(), &flags(), &host, &[]).unwrap_err();
        assert!(e.to_string().contains("no command specified"), "{e}");
    }

    #[test]
    fn env_merges_in_order_with_later_winning() {
        let files = [(PathBuf::from("/e.env"), b"# c\n\nFILE=1\nLANG=fr\nFROM_HOST\nUNSET_ON_HOST\n".to_vec())];
        let f = RunFlags {
            env: vec!["LANG=de".into(), "FROM_HOST".into(), "X=a=b".into(), "NOPE".into()],
            hostname: Some("box".into()),
            ..flags()
        };
        let s = process(&image(), &f, &host, &files).unwrap();
        assert_eq!(s.env, ["PATH=/img/bin", "HOSTNAME=box", "LANG=de", "EMPTY=", "FILE=1", "FROM_HOST=h v", "X=a=b"]);
        assert_eq!(s.env_value("X"), Some("a=b"));
        let s = process(&ImageDefaults { cmd: vec!["x".into()], ..Default::default() }, &flags(), &host, &[]).unwrap();
        assert_eq!(s.env, [format!("PATH={DEFAULT_PATH}")]);
    }

    #[test]
    fn hostname_defaults_after_path_unless_set() {
        let mut s = build(flags()).unwrap();
        s.set_hostname_default("abc123def456");
        assert_eq!(&s.env[..2], ["PATH=/img/bin", "HOSTNAME=abc123def456"]);
        let mut s = build(RunFlags { env: vec!["HOSTNAME=mine".into()], ..flags() }).unwrap();
        s.set_hostname_default("abc123def456");
        assert_eq!(s.env_value("HOSTNAME"), Some("mine"));
    }

    #[test]
    fn a_terminal_gets_term_unless_given() {
        assert_eq!(build(flags()).unwrap().env_value("TERM"), None);
        assert_eq!(build(RunFlags { tty: true, ..flags() }).unwrap().env_value("TERM"), Some("xterm"));
        let f = RunFlags { tty: true, env: vec!["TERM=vt100".into()], ..flags() };
        assert_eq!(build(f).unwrap().env_value("TERM"), Some("vt100"));
    }

    #[test]
    fn no_new_privileges_is_off_unless_asked() {
        assert!(!build(flags()).unwrap().no_new_privs);
        for on in ["no-new-privileges", "no-new-privileges=true", "no-new-privileges:true"] {
            assert!(build(RunFlags { security_opt: vec![on.into()], ..flags() }).unwrap().no_new_privs, "{on}");
        }
        let f =
            RunFlags { security_opt: vec!["no-new-privileges".into(), "no-new-privileges=false".into()], ..flags() };
        assert!(!build(f).unwrap().no_new_privs);
        let e = build(RunFlags { security_opt: vec!["apparmor=x".into()], ..flags() }).unwrap_err().to_string();
        assert!(e.starts_with("invalid --security-opt \"apparmor=x\""), "{e}");
        assert!(build(RunFlags { security_opt: vec!["no-new-privileges=maybe".into()], ..flags() }).is_err());
    }

    #[test]
    fn bad_env_is_one_line_naming_the_value() {
        let e = build(RunFlags { env: vec!["".into()], ..flags() }).unwrap_err().to_string();
        assert_eq!(e, "invalid -e \"\": empty variable");
        let e = build(RunFlags { env: vec!["=x".into()], ..flags() }).unwrap_err().to_string();
        assert_eq!(e, "invalid -e \"=x\": variable name is empty");
        let files = [(PathBuf::from("/e.env"), b"OK=1\n=bad\n".to_vec())];
        let e = process(&image(), &flags(), &host, &files).unwrap_err().to_string();
        assert_eq!(e, "invalid --env-file /e.env line 2: variable name is empty");
    }

    #[test]
    fn workdir_user_and_defaults() {
        let s = build(flags()).unwrap();
        assert_eq!(s.workdir, PathBuf::from("/srv"));
        assert_eq!(s.user.user, Id::Name("app".into()));
        let s = build(RunFlags { workdir: Some("/a/./b/../c".into()), user: Some("0:0".into()), ..flags() }).unwrap();
        assert_eq!(s.workdir, PathBuf::from("/a/c"));
        assert_eq!(s.user, UserSpec { user: Id::Num(0), group: Some(Id::Num(0)) });
        let e = build(RunFlags { workdir: Some("rel".into()), ..flags() }).unwrap_err().to_string();
        assert_eq!(e, "invalid -w \"rel\": the working directory must be an absolute path");
        assert!(build(RunFlags { user: Some("4294967296".into()), ..flags() }).is_err());
    }

    #[test]
    fn volumes_and_tmpfs() {
        assert_eq!(
            parse_volume("/data:/mnt/d:ro").unwrap(),
            Volume { source: "/data".into(), target: "/mnt/d".into(), read_only: true }
        );
        assert!(!parse_volume("/data/../x:/y").unwrap().read_only);
        assert_eq!(parse_volume("/data/../x:/y").unwrap().source, PathBuf::from("/x"));
        assert_eq!(parse_volume("data:/x").unwrap().source, PathBuf::from("data"), "a named volume");
        for (bad, why) in [
            ("-data:/x", "invalid characters"),
            (":/x", "empty"),
            ("/data:x", "absolute"),
            ("/data:/", "root"),
            ("/data:/a/..", "root"),
            ("/data:/proc/sys", "/proc"),
            ("/data:/proc", "/proc"),
            ("/data", "expected"),
            ("/a:/b:rx", "unknown mode"),
        ] {
            let e = parse_volume(bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("invalid -v \"{bad}\": ")) && e.contains(why), "{e}");
        }
        assert_eq!(
            parse_tmpfs("/run:size=1m").unwrap(),
            Tmpfs { target: "/run".into(), options: Some("size=1m".into()) }
        );
        assert!(parse_tmpfs("/").is_err());
    }

    #[test]
    fn mount_flags_as_dockers() {
        let v = |s: &str, t: &str, ro| Volume { source: s.into(), target: t.into(), read_only: ro };
        assert_eq!(
            parse_mount("type=bind,source=/data,target=/mnt,readonly").unwrap(),
            MountFlag::Bind(v("/data", "/mnt", true))
        );
        assert_eq!(
            parse_mount("type=volume,src=db,dst=/var/db").unwrap(),
            MountFlag::Volume(v("db", "/var/db", false), false)
        );
        assert_eq!(parse_mount("target=/x,volume-nocopy").unwrap(), MountFlag::Volume(v("", "/x", false), true));
        assert_eq!(
            parse_mount("type=tmpfs,target=/run,tmpfs-size=1m,tmpfs-mode=1770").unwrap(),
            MountFlag::Tmpfs(Tmpfs { target: "/run".into(), options: Some("size=1048576,mode=1770".into()) })
        );
        for (bad, why) in [
            ("type=bind,target=/x", "source is required"),
            ("type=volume,source=/x", ""),
            ("type=bind,source=/a", "target is required"),
            ("type=nfs,target=/x", "unknown type"),
            ("type=bind,source=/a,target=/b,foo=bar", "unexpected key 'foo'"),
            ("type=tmpfs,source=x,target=/t", "no source"),
            ("type=bind,source=rel,target=/b", "absolute host path"),
            ("type=bind,source=/a,target=/proc/x", "/proc"),
            ("type=bind,source=/a,target=/b,ro=maybe", "true or false"),
        ] {
            let e = parse_mount(bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("invalid --mount \"{bad}\"")) && e.contains(why), "{e}");
        }
        let f = RunFlags { volumes: vec!["/a:/x".into()], mount: vec!["type=tmpfs,target=/x".into()], ..flags() };
        assert!(build(f).unwrap_err().to_string().contains("duplicate mount point"));
        let f = RunFlags {
            volumes: vec!["db:/db".into()],
            mount: vec!["type=volume,target=/v,volume-nocopy".into()],
            ..flags()
        };
        assert_eq!(build(f).unwrap().fill, [PathBuf::from("/db")]);
    }

    #[test]
    fn ulimits_parse_as_dockers_and_stay_under_the_hard_limit() {
        let current = |name: &str| (name == "nofile").then_some((1024, 20000));
        let r = parse_ulimit("nofile=1024:2048", &current).unwrap();
        assert_eq!((r.name.as_str(), r.soft, r.hard), ("nofile", 1024, 2048));
        assert_eq!(parse_ulimit("nofile=512", &current).unwrap().hard, 512);
        assert!(parse_ulimit("nofile=4:2", &current).unwrap_err().to_string().contains("above the hard limit"));
        assert!(parse_ulimit("bogus=1", &current).unwrap_err().to_string().contains("unknown resource"));
        assert!(parse_ulimit("nofile=x", &current).unwrap_err().to_string().contains("not a number"));
        assert!(parse_ulimit("nofile", &current).is_err());
    }

    #[test]
    fn sysctls_are_namespaced_only_and_net_needs_its_own_network() {
        assert_eq!(parse_sysctl("kernel.shmmax=42", false).unwrap(), ("kernel.shmmax".into(), "42".into()));
        assert!(parse_sysctl("fs.mqueue.msg_max=20", false).is_ok());
        assert_eq!(parse_sysctl("net.ipv4.ip_forward=1", true).unwrap().1, "1");
        for (bad, own, why) in [
            ("net.ipv4.ip_forward=1", false, "own network namespace"),
            ("kernel.core_pattern=x", true, "not a namespaced sysctl"),
            ("vm.swappiness=1", true, "not a namespaced sysctl"),
            ("kernel.shmmax", true, "expected KEY=VALUE"),
            ("net.ipv4..x=1", true, "not a sysctl name"),
            ("net/ipv4=1", true, "not a sysctl name"),
        ] {
            let e = parse_sysctl(bad, own).unwrap_err().to_string();
            assert!(e.starts_with(&format!("invalid --sysctl \"{bad}\": ")) && e.contains(why), "{e}");
        }
    }

    #[test]
    fn devices_split_as_dockers() {
        let d = |t: &str| parse_device(t).map(|(s, d, m)| (s.display().to_string(), d.display().to_string(), m));
        assert_eq!(d("/dev/fuse").unwrap(), ("/dev/fuse".into(), "/dev/fuse".into(), "rwm".into()));
        assert_eq!(d("/dev/fuse:r").unwrap(), ("/dev/fuse".into(), "/dev/fuse".into(), "r".into()));
        assert_eq!(d("/dev/fuse:/dev/f").unwrap(), ("/dev/fuse".into(), "/dev/f".into(), "rwm".into()));
        assert_eq!(d("/dev/fuse:/dev/f:mr").unwrap().2, "mr");
        for (bad, why) in
            [("/dev/a:/dev/b:x", "bad mode"), ("dev/a", "absolute"), ("/a:/b:r:w", "expected"), ("/a:rel", "absolute")]
        {
            let e = d(bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("invalid --device \"{bad}\": ")) && e.contains(why), "{e}");
        }
    }

    #[test]
    fn names_hostnames_and_modes() {
        assert!(check_name("web-1.a_b").is_ok());
        for bad in ["", "a", "-x", "a b", "a/b"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert!(build(RunFlags { hostname: Some("bad_host".into()), ..flags() }).is_err());
        assert_eq!(build(RunFlags { userns: Some("auto".into()), ..flags() }).unwrap().userns, Userns::Auto);
        assert!(build(RunFlags { userns: Some("keep-id".into()), ..flags() }).is_err());
        assert_eq!(parse_pull(Some("never")).unwrap(), PullPolicy::Never);
        assert!(parse_pull(Some("sometimes")).is_err());
    }
}
