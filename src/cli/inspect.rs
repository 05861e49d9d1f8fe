//! `mini inspect NAME…`: a JSON array, one object per container or image.
//! Each name is looked up as a container first (name, id, id prefix),
//! then as an image, as `docker inspect` does when given no `--type`;
//! `mini image inspect` looks up images only.

use clap::Args as ClapArgs;
use mini_store::images::ANNOTATION_INDEX_DIGEST;
use mini_store::Store;
use serde_json::{json, Value};

use crate::config::Config;
use crate::error::{Context, Error, Result};
use crate::image::local::LocalImage;
use crate::image::reference::Reference;
use mini_store::StoreError;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// A Go template per object ("{{.State.Status}}", "{{json .Config}}"), or json
    #[arg(short, long)]
    pub format: Option<String>,
    /// Containers or images, by name or ID
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `mini inspect`: containers first, then images.
pub fn run(args: Args, config: &Config) -> Result<i32> {
    print_all(args, config, true)
}

/// `mini image inspect`: images only.
pub fn run_images(args: Args, config: &Config) -> Result<i32> {
    print_all(args, config, false)
}

fn print_all(args: Args, config: &Config, containers_first: bool) -> Result<i32> {
    let format = crate::cli::template::Format::parse(args.format.as_deref())?;
    let store = Store::open(&config.root)?;
    let cs = crate::container::containers(&store)?;
    let mut out = Vec::new();
    for text in &args.images {
        if containers_first {
            match cs.find(text) {
                Ok(c) => {
                    out.push(describe_container(&store, &c)?);
                    continue;
                }
                Err(e @ StoreError::AmbiguousContainer(..)) => {
                    return Err(Error::new(format!("inspect {text}")).because(e))
                }
                Err(_) => {}
            }
        }
        let image = LocalImage::load(&store, text)?;
        out.push(describe(&store, &image)?);
    }
    // Docker: the whole array without a format; with one, a line per object.
    let text = format.render(&out, &[], || {
        serde_json::to_string_pretty(&Value::Array(out.clone())).map(|t| t + "\n").unwrap_or_default()
    })?;
    print!("{text}");
    Ok(0)
}

fn describe(store: &Store, image: &LocalImage) -> Result<Value> {
    let reference = Reference::parse(&image.name)?;
    let repo_digest = image
        .record
        .annotations
        .get(ANNOTATION_INDEX_DIGEST)
        .cloned()
        .unwrap_or_else(|| image.record.digest.to_string());
    let c = &image.config;
    Ok(json!({
        "Id": image.id.to_string(),
        "RepoTags": reference.tag.as_ref().filter(|_| !crate::image::local::is_untagged(&image.name)).map(|t| vec![format!("{}:{t}", reference.familiar_name())]).unwrap_or_default(),
        "RepoDigests": [format!("{}@{repo_digest}", reference.familiar_name())],
        "Name": image.name,
        "Digest": image.record.digest.to_string(),
        "MediaType": image.record.media_type,
        "Created": c.created(),
        "Author": c.author(),
        "Architecture": c.architecture().to_string(),
        "Os": c.os().to_string(),
        "Variant": c.variant(),
        "Platform": image.record.platform,
        "Config": c.config(),
        "RootFS": {"Type": "layers", "Layers": image.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
        "Layers": image.manifest.layers(),
        "Size": image.size(store)?,
        "Annotations": image.record.annotations,
    }))
}

/// Docker's container inspect fields that mini has.
fn describe_container(store: &Store, c: &mini_store::containers::Container) -> Result<Value> {
    use crate::container::{record::Record, state::is_running};
    let what = || format!("inspect container {}", c.short_id());
    let cfg = c.config().context(what)?;
    let state = c.state().context(what)?;
    let record = Record::of(c, &cfg)?;
    let (r, o) = (&record.process, &record.container);
    use crate::runtime::cgroups::limits::{CpuWeight, Swap, CPU_PERIOD};
    // As recorded (and validated) at create or by `update`.
    let limits = crate::runtime::cgroups::Limits::from_flags(&o.resources, &crate::runtime::cgroups::online_cpus())
        .unwrap_or_default();
    let running = is_running(&state);
    let time = |t: Option<u64>| {
        t.and_then(|s| chrono::DateTime::from_timestamp(s as i64, 0))
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string())
    };
    let restarting = crate::container::state::is_restarting(&state);
    let paused = running && state.paused;
    let status = match (state.status, running) {
        (mini_store::containers::Status::Created, _) => "created",
        (mini_store::containers::Status::Running, true) if paused => "paused",
        (mini_store::containers::Status::Running, true) => "running",
        _ if restarting => "restarting",
        _ => "exited",
    };
    let mounts: Vec<Value> = r
        .volumes
        .iter()
        .map(|v| {
            let ro = v.read_only;
            let mode = if ro { "ro" } else { "" };
            // A named volume's source is volumes/<name>/_data in the store.
            let volume = v.source.strip_prefix(store.root().join("volumes")).ok().and_then(|p| p.iter().next());
            match volume {
                Some(name) => json!({"Type": "volume", "Name": name.to_string_lossy(), "Source": v.source, "Destination": v.target, "Driver": "local", "Mode": mode, "RW": !ro}),
                None => json!({"Type": "bind", "Source": v.source, "Destination": v.target, "Mode": mode, "RW": !ro}),
            }
        })
        .collect();
    let binds: Vec<String> = r
        .volumes
        .iter()
        .map(|v| format!("{}:{}{}", v.source.display(), v.target.display(), if v.read_only { ":ro" } else { "" }))
        .collect();
    // `target[:options]`, as `--tmpfs` takes it.
    let tmpfs: Vec<String> = r
        .tmpfs
        .iter()
        .map(|t| match &t.options {
            Some(o) => format!("{}:{o}", t.target.display()),
            None => t.target.display().to_string(),
        })
        .collect();
    let argv: Vec<String> = r.argv.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let log = c.log();
    Ok(json!({
        "Id": cfg.id,
        "Created": cfg.created,
        "Path": argv.first(),
        "Args": argv.get(1..).unwrap_or_default(),
        "State": {
            "Status": status, "Running": running || restarting, "Paused": paused, "Restarting": restarting,
            "OOMKilled": state.oom_killed, "Dead": false,
            "Pid": if running { state.pid.unwrap_or(0) } else { 0 },
            "ExitCode": state.exit_code.unwrap_or(0), "Error": "",
            "StartedAt": time(state.started_at), "FinishedAt": time(state.finished_at),
            "Health": o.health.as_ref().and_then(|_| c.health::<crate::container::health::Health>().ok()),
        },
        "Image": cfg.image_id,
        "Name": format!("/{}", cfg.name),
        "RestartCount": state.restart_count,
        "LogPath": if log.exists() { log.display().to_string() } else { String::new() },
        "HostConfig": {
            "CgroupParent": o.resources.cgroup_parent.clone().unwrap_or_default(),
            "Binds": binds,
            "AutoRemove": o.rm, "ReadonlyRootfs": r.read_only, "Init": r.init,
            "Tmpfs": tmpfs, "UsernsMode": if r.id_map.is_some() { "auto" } else { "" },
            "NetworkMode": o.network,
            "RestartPolicy": {"Name": o.restart.name(), "MaximumRetryCount": o.restart.max_retries()},
            "Memory": limits.memory.unwrap_or(0),
            "MemorySwap": match limits.memory_swap {
                Some(Swap::Total(t)) => t as i64,
                Some(Swap::Unlimited) => -1,
                None => 0,
            },
            "MemoryReservation": limits.memory_reservation.unwrap_or(0),
            "NanoCpus": limits.cpu_quota.map_or(0, |q| q * 1_000_000_000 / CPU_PERIOD),
            "CpuShares": match limits.cpu_weight { Some(CpuWeight::Shares(s)) => s, _ => 0 },
            "CpusetCpus": limits.cpuset_cpus.clone().unwrap_or_default(),
            "PidsLimit": limits.pids,
            "LogConfig": {
                "Type": if o.log.none { "none" } else { "json-file" },
                "Config": {
                    "max-size": o.log.max_size.map(|b| b.to_string()),
                    "max-file": o.log.max_file.map(|n| n.to_string()),
                },
            },
        },
        "Mounts": mounts,
        "NetworkSettings": crate::network::manage::container_settings(
            &crate::network::records::read(store.root()).unwrap_or_default(),
            &cfg.id,
        ),
        "Config": {
            "Hostname": r.hostname(), "User": user_text(&r.user), "Env": r.env,
            "Entrypoint": (r.entrypoint_len > 0).then(|| &argv[..r.entrypoint_len.min(argv.len())]),
            "Cmd": argv.get(r.entrypoint_len..).filter(|c| !c.is_empty()), "Image": o.image_ref,
            "WorkingDir": r.workdir, "Tty": r.tty, "OpenStdin": r.interactive, "StopSignal": o.stop_signal,
            "Healthcheck": o.health.as_ref().map(|h| serde_json::json!({
                "Test": std::iter::once("CMD".to_string()).chain(h.argv.iter().cloned()).collect::<Vec<_>>(),
                "Interval": h.interval_ms * 1_000_000, "Timeout": h.timeout_ms * 1_000_000,
                "StartPeriod": h.start_period_ms * 1_000_000, "Retries": h.retries,
            })),
        },
    }))
}

/// The user as `-u` takes it; "" for the default (root), as Docker shows it.
fn user_text(u: &crate::runtime::user::UserSpec) -> String {
    if *u == crate::runtime::user::UserSpec::root() {
        String::new()
    } else {
        u.to_string()
    }
}
