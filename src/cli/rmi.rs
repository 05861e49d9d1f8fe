//! `mini rmi [-f] IMAGE…`: remove image records, then the blobs and layers
//! no other image still uses.

use clap::Args as ClapArgs;
use mini_store::Store;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::image::local::LocalImage;
use crate::image::reference::Reference;

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
    let report = mini_store::gc::unused(&store)?;
    if report.blobs_removed + report.layers_removed > 0 {
        println!("Deleted: {} blobs, {} layers", report.blobs_removed, report.layers_removed);
    }
    match failed {
        // The error was printed already; exit like docker rmi does.
        Some(_) => Ok(1),
        None => Ok(0),
    }
}

/// Remove the records `text` names; returns the names removed. Like Docker,
/// the last name of an image a container uses is kept unless forced.
fn remove(store: &Store, text: &str, force: bool) -> Result<Vec<String>> {
    let what = || format!("remove image {text}");
    let by_name =
        Reference::parse(text).ok().map(|r| r.to_string()).filter(|n| store.images().get(n).ok().flatten().is_some());
    let image = match LocalImage::find(store, text) {
        Ok(Some(image)) => image,
        // A record whose manifest or config is unreadable can still be removed by name.
        Err(_) | Ok(None) if by_name.is_some() => {
            let name = by_name.unwrap_or_default();
            store.images().remove(&name)?;
            return Ok(vec![name]);
        }
        Ok(None) | Err(_) if force => return Ok(Vec::new()),
        Ok(None) => return Err(Error::new(what()).because("no such image")),
        Err(e) => return Err(e),
    };
    let all_names = names_of(store, &image)?;
    let doomed = match by_name {
        Some(name) => vec![name],
        None if all_names.len() > 1 && !force => {
            return Err(Error::new(what())
                .because(format!("image is referenced by {} names", all_names.len()))
                .hint("remove it by name, or use -f"))
        }
        None => all_names.clone(),
    };
    if doomed.len() == all_names.len() && !force {
        if let Some(container) = container_using(store, &image)? {
            return Err(Error::new(what())
                .because(format!(
                    "container {} is using its referenced image {}",
                    &container[..12.min(container.len())],
                    image.id.short()
                ))
                .hint("remove the container first, or use -f"));
        }
    }
    let id = image.id.to_string();
    for name in &doomed {
        store.images().remove(name)?;
        crate::container::events::emit(store.root(), "image", "untag", &id, &[("name", name)]);
    }
    if doomed.len() == all_names.len() {
        crate::container::events::emit(store.root(), "image", "delete", &id, &[]);
    }
    Ok(doomed)
}

/// Every record name pointing at the image's config.
fn names_of(store: &Store, image: &LocalImage) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for record in store.images().list()? {
        let name = record.name.clone();
        if LocalImage::from_record(store, record).is_ok_and(|i| i.id == image.id) {
            names.push(name);
        }
    }
    Ok(names)
}

/// The id of a container created from the image, if any.
fn container_using(store: &Store, image: &LocalImage) -> Result<Option<String>> {
    let containers = store.containers().map_err(|e| Error::new("list containers").because(e))?;
    let ids = containers.ids().map_err(|e| Error::new("list containers").because(e))?;
    let wanted = image.id.to_string();
    Ok(ids.into_iter().find(|id| containers.get(id).config().is_ok_and(|c| c.image_id == wanted)))
}
