//! `mini rmi [-f] IMAGE…`: remove image records, then the blobs and layers
//! no other image still uses.

use clap::Args as ClapArgs;
use mini_store::Store;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::image::local::LocalImage;
use crate::image::reference::Reference;
use crate::prune;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Images by name or ID
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Remove every name of an image given by ID, and ignore missing images
    #[arg(short, long)]
    pub force: bool,
}

pub fn run(args: Args, config: &Config) -> Result<i32> {
    let store = Store::open(&config.root)?;
    let mut failed = None;
    for text in &args.images {
        match remove(&store, text, args.force) {
            Ok(names) => names.iter().for_each(|n| println!("Untagged: {n}")),
            Err(e) => {
                eprintln!("mini: {e}");
                failed = Some(e);
            }
        }
    }
    let report = prune::unused(&store)?;
    if report.blobs_removed + report.layers_removed > 0 {
        println!("Deleted: {} blobs, {} layers", report.blobs_removed, report.layers_removed);
    }
    match failed {
        // The error was printed already; exit like docker rmi does.
        Some(_) => Ok(1),
        None => Ok(0),
    }
}

/// Remove the records `text` names; returns the names removed.
fn remove(store: &Store, text: &str, force: bool) -> Result<Vec<String>> {
    let by_name = Reference::parse(text).ok().map(|r| r.to_string());
    if let Some(name) = &by_name {
        if store.images().remove(name)? {
            return Ok(vec![name.clone()]);
        }
    }
    let image = match LocalImage::find(store, text) {
        Ok(Some(image)) => image,
        Ok(None) | Err(_) if force => return Ok(Vec::new()),
        Ok(None) => return Err(Error::new(format!("remove image {text}")).because("no such image")),
        Err(e) => return Err(e),
    };
    // By ID: every name pointing at that config.
    let mut names = Vec::new();
    for record in store.images().list()? {
        let name = record.name.clone();
        if LocalImage::from_record(store, record).is_ok_and(|i| i.id == image.id) {
            names.push(name);
        }
    }
    if names.len() > 1 && !force {
        return Err(Error::new(format!("remove image {text}"))
            .because(format!("it is referenced by {} names", names.len()))
            .hint("remove it by name, or use -f"));
    }
    for name in &names {
        store.images().remove(name)?;
    }
    Ok(names)
}
