//! `mini inspect IMAGE…`: a JSON array, one object per image, like `docker image inspect`.

use clap::Args as ClapArgs;
use mini_store::images::ANNOTATION_INDEX_DIGEST;
use mini_store::Store;
use serde_json::{json, Value};

use crate::config::Config;
use crate::error::{Context, Result};
use crate::image::local::LocalImage;
use crate::image::reference::Reference;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Images by name or ID
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    let store = Store::open(&config.root)?;
    let mut out = Vec::new();
    for text in &args.images {
        let image = LocalImage::load(&store, text)?;
        out.push(describe(&store, &image)?);
    }
    let text = serde_json::to_string_pretty(&Value::Array(out)).context(|| "encode inspect output")?;
    println!("{text}");
    Ok(0)
}

fn describe(store: &Store, image: &LocalImage) -> Result<Value> {
    let reference = Reference::parse(&image.name)?;
    let repo_digest = image.record.annotations.get(ANNOTATION_INDEX_DIGEST).cloned().unwrap_or_else(|| image.record.digest.to_string());
    let c = &image.config;
    Ok(json!({
        "Id": image.id.to_string(),
        "RepoTags": reference.tag.as_ref().map(|t| vec![format!("{}:{t}", reference.familiar_name())]).unwrap_or_default(),
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
