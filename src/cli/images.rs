//! `mini images [-q] [--format table|json|TEMPLATE] [REPOSITORY[:TAG]]`

use clap::Args as ClapArgs;
use mini_store::Store;
use serde_json::json;

use crate::cli::format::{ago, human_size, parse_time, table};
use crate::cli::template::Format;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::image::local::LocalImage;
use crate::image::reference::Reference;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Show only image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// table, json (one object per line, as docker's) or a Go template ("{{.Repository}}:{{.Tag}}")
    #[arg(long)]
    pub format: Option<String>,
    /// Only images of this repository (and tag)
    pub filter: Option<String>,
}

/// One row of the listing.
struct Row {
    repository: String,
    tag: String,
    image: LocalImage,
    size: u64,
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    let store = Store::open(&config.root)?;
    let filter = args.filter.as_deref().map(Reference::parse).transpose()?;
    let explicit_tag =
        args.filter.as_deref().is_some_and(|f| f.rsplit('/').next().is_some_and(|last| last.contains(':')));
    let mut rows = Vec::new();
    for record in store.images().list()? {
        let name = record.name.clone();
        let image =
            LocalImage::from_record(&store, record).map_err(|e| e.hint("remove it with `mini rmi` and pull again"))?;
        if crate::image::local::is_untagged(&name) {
            if filter.is_none() {
                let size = image.size(&store)?;
                rows.push(Row { repository: "<none>".into(), tag: "<none>".into(), image, size });
            }
            continue;
        }
        let reference =
            Reference::parse(&name).map_err(|e| Error::new(format!("read image record `{name}`")).because(e))?;
        if let Some(f) = &filter {
            if f.name() != reference.name() || (explicit_tag && f.tag != reference.tag) {
                continue;
            }
        }
        let size = image.size(&store)?;
        rows.push(Row {
            repository: reference.familiar_name(),
            tag: reference.tag.clone().unwrap_or_else(|| "<none>".into()),
            image,
            size,
        });
    }
    rows.sort_by(|a, b| (&a.repository, &a.tag).cmp(&(&b.repository, &b.tag)));
    let format = Format::parse(args.format.as_deref())?;
    print!("{}", render(&rows, args.quiet, &format)?);
    Ok(0)
}

/// Docker's column titles for `--format "table …"`.
const TITLES: [(&str, &str); 7] = [
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("ID", "IMAGE ID"),
    ("Digest", "DIGEST"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedSince", "CREATED"),
    ("Size", "SIZE"),
];

fn render(rows: &[Row], quiet: bool, format: &Format) -> Result<String> {
    let now = chrono::Utc::now();
    if quiet {
        let mut seen = Vec::new();
        for r in rows {
            let id = r.image.id.short().to_string();
            if !seen.contains(&id) {
                seen.push(id);
            }
        }
        return Ok(seen.iter().map(|id| format!("{id}\n")).collect());
    }
    let created = |r: &Row| r.image.config.created().as_deref().and_then(parse_time);
    let json: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            json!({
                "Repository": r.repository, "Tag": r.tag, "ID": r.image.id.short(),
                "Digest": r.image.record.digest.to_string(),
                "CreatedAt": r.image.config.created().clone().unwrap_or_default(),
                "CreatedSince": ago(created(r), now), "Size": human_size(r.size),
                "VirtualSize": r.size,
            })
        })
        .collect();
    format.render(&json, &TITLES, || {
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.repository.clone(),
                    r.tag.clone(),
                    r.image.id.short().to_string(),
                    ago(created(r), now),
                    human_size(r.size),
                ]
            })
            .collect();
        table(&["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], &cells)
    })
}
