//! Unpacks an uncompressed layer tar into a store, for benchmarking and manual checks.
//!
//! usage: unpack STORE_ROOT LAYER.tar   (prints the diff-id and the time taken)

use std::fs::File;
use std::io::BufReader;
use std::time::Instant;

use mini_store::{Sha256Reader, Store};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, root, tar] = args.as_slice() else {
        return Err("usage: unpack STORE_ROOT LAYER.tar".into());
    };
    let store = Store::open(root.as_ref())?;
    let (diff_id, size) = Sha256Reader::new(File::open(tar)?).drain()?;
    let start = Instant::now();
    let reader = BufReader::with_capacity(1 << 20, File::open(tar)?);
    store.layers().unpack(&diff_id, reader)?.commit()?;
    let secs = start.elapsed().as_secs_f64();
    println!("{diff_id} {size} bytes unpacked in {secs:.3}s into {}", store.layers().diff_path(&diff_id).display());
    Ok(())
}
