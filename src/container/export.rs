//! `mini export`: a container's merged filesystem as a tar stream.
//!
//! The merged view comes from a read-only overlay whose topmost lower is
//! the container's upper dir (so its deletions and opaque dirs apply and
//! no `.wh.` entry is ever seen), mounted in a private mount namespace of
//! this process: it works whether or not the container runs, never
//! touches the running container's own mount, and vanishes if mini is
//! killed. Entries keep owners (shifted back for `--userns=auto`), modes
//! with setuid bits, symlinks, hardlinks (by device and inode) and xattrs
//! (PAX `SCHILY.xattr.*`). Only the directories /proc, /sys and /dev are
//! written, not their contents, and volume contents never are: they live
//! on the host, not in the container's layers.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use mini_store::Store;

use super::launch;
use super::record::Record;
use super::tree::{Mode, TarWriter};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::runtime::overlay;
use crate::sys::{self, Sys};

pub fn export(config: &Config, key: &str, out: Option<&Path>) -> Result<()> {
    let what = || format!("export {key}");
    if out.is_none() && sys::tty::isatty(1) {
        return Err(Error::new(what())
            .because("refusing to write a tar archive to a terminal")
            .hint("use -o FILE or redirect stdout"));
    }
    let store = Store::open(&config.root)?;
    let cs = super::containers(&store)?;
    let c = cs.find(key).map_err(|e| Error::new(what()).because(e))?;
    let cfg = c.config().map_err(|e| Error::new(what()).because(e))?;
    let record = Record::of(&c, &cfg)?;
    let layers = launch::layer_dirs(&store, &cfg)?;
    let writer: Box<dyn Write> = match out {
        Some(p) => Box::new(File::create(p).map_err(|e| Error::new(format!("create {}", p.display())).because(e))?),
        None => Box::new(io::stdout().lock()),
    };
    sys::fs::private_mount_namespace().map_err(|e| e.within(what()))?;
    let view = c.rootfs();
    let mut plan = overlay::read_only_plan(&layers, &launch::dirs_of(&c), &view);
    plan.userxattr = launch::userxattr(&store);
    sys::RealSys.mount_overlay(&plan).map_err(|e| e.within(what()))?;
    let mut w = TarWriter::new(BufWriter::new(writer), Mode::Export, super::tree::id_base(&record));
    w.walk(&view, Path::new(""), 0).map_err(|e| Error::new(what()).because(e))?;
    w.finish().map(drop).map_err(|e| Error::new(what()).because(e))
}
