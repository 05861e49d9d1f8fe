//! `mini history IMAGE [--no-trunc] [-q] [--format json|TEMPLATE]`

use clap::Args as ClapArgs;
use mini_store::Store;
use serde_json::json;

use crate::cli::format::{ago, ellipsis, human_size, parse_time, table};
use crate::cli::template::Format;
use crate::config::Config;
use crate::error::Result;
use crate::image::history::{history, Row};

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Show full ids and commands
    #[arg(long)]
    pub no_trunc: bool,
    /// Show only image ids
    #[arg(short, long)]
    pub quiet: bool,
    /// table, json (one object per line) or a Go template ("{{.CreatedBy}}\t{{.Size}}")
    #[arg(long)]
    pub format: Option<String>,
    /// Image (reference or id prefix)
    pub image: String,
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    let store = Store::open(&config.root)?;
    let (_, rows) = history(&store, &args.image)?;
    print!("{}", render(&rows, &args, chrono::Utc::now())?);
    Ok(0)
}

/// The cells of one row as Docker names its template fields.
fn fields(r: &Row, no_trunc: bool, now: chrono::DateTime<chrono::Utc>) -> [(&'static str, String); 6] {
    let id = match &r.id {
        Some(id) if no_trunc => id.clone(),
        Some(id) => id.trim_start_matches("sha256:").chars().take(12).collect(),
        None => "<missing>".to_string(),
    };
    let by = r.created_by.replace('\t', " ");
    [
        ("ID", id),
        ("CreatedSince", ago(r.created.as_deref().and_then(parse_time), now)),
        ("CreatedAt", r.created.clone().unwrap_or_default()),
        ("CreatedBy", if no_trunc { by } else { ellipsis(&by, 45) }),
        ("Size", human_size(r.size)),
        ("Comment", r.comment.clone()),
    ]
}

/// Docker's column titles for `--format "table …"`.
const TITLES: [(&str, &str); 6] = [
    ("ID", "IMAGE"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedBy", "CREATED BY"),
    ("Size", "SIZE"),
    ("Comment", "COMMENT"),
];

fn render(rows: &[Row], args: &Args, now: chrono::DateTime<chrono::Utc>) -> Result<String> {
    let all: Vec<_> = rows.iter().map(|r| fields(r, args.no_trunc, now)).collect();
    if args.quiet {
        return Ok(all.iter().map(|f| f[0].1.clone() + "\n").collect());
    }
    let json: Vec<serde_json::Value> = all
        .iter()
        .map(|f| serde_json::Value::Object(f.iter().map(|(k, v)| (k.to_string(), json!(v))).collect()))
        .collect();
    Format::parse(args.format.as_deref())?.render(&json, &TITLES, || {
        let cells: Vec<Vec<String>> =
            all.iter().map(|f| [0, 1, 3, 4, 5].iter().map(|&i| f[i].1.clone()).collect()).collect();
        table(&["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], &cells)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_like_docker() {
        let now = parse_time("2026-01-15T00:00:00Z").unwrap();
        let long = "/bin/sh -c #(nop) ADD file:0123456789abcdef0123456789abcdef in / ";
        let rows = vec![
            Row {
                id: Some("sha256:0123456789abcdef".into()),
                created: Some("2026-01-01T00:00:00Z".into()),
                created_by: "CMD [\"sh\"]".into(),
                size: 0,
                comment: String::new(),
            },
            Row {
                id: None,
                created: Some("2026-01-01T00:00:00Z".into()),
                created_by: long.into(),
                size: 4_261_000,
                comment: "c".into(),
            },
        ];
        let args = Args { no_trunc: false, quiet: false, format: None, image: String::new() };
        let out = render(&rows, &args, now).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("IMAGE          CREATED       CREATED BY"), "{out}");
        assert!(lines[1].starts_with("0123456789ab   2 weeks ago   CMD [\"sh\"]"), "{out}");
        assert!(
            lines[2].starts_with("<missing>")
                && lines[2].contains("/bin/sh -c #(nop) ADD file:0123456789abcdef0…   4.26MB   c"),
            "{out}"
        );
        let q = Args { quiet: true, ..args };
        assert_eq!(render(&rows, &q, now).unwrap(), "0123456789ab\n<missing>\n");
        let j = Args { quiet: false, format: Some("json".into()), ..q };
        assert!(render(&rows, &j, now).unwrap().lines().next().unwrap().contains("\"CreatedBy\":\"CMD [\\\"sh\\\"]\""));
    }
}
