//! A TCP proxy on 127.0.0.1 in front of a fixture registry that cuts the
//! first connection through which a client has sent more than `cut_after`
//! bytes (a blob upload, mid-body); every later connection passes. For
//! pushes interrupted by a dropped connection.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

pub struct CuttingProxy {
    pub port: u16,
    pub cuts: Arc<AtomicU32>,
    /// Bytes passed from clients to the registry, over all connections.
    pub forwarded: Arc<AtomicU64>,
}

impl CuttingProxy {
    pub fn start(upstream: &'static str, cut_after: u64) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        let cuts = Arc::new(AtomicU32::new(0));
        let forwarded = Arc::new(AtomicU64::new(0));
        let armed = Arc::new(AtomicBool::new(true));
        let (counter, total) = (cuts.clone(), forwarded.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(upstream) else { continue };
                let (armed, counter, total) = (armed.clone(), counter.clone(), total.clone());
                std::thread::spawn(move || relay(client, server, cut_after, (&armed, &counter, &total)));
            }
        });
        CuttingProxy { port, cuts, forwarded }
    }
}

fn relay(
    client: TcpStream,
    server: TcpStream,
    cut_after: u64,
    (armed, cuts, total): (&AtomicBool, &AtomicU32, &AtomicU64),
) {
    let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let (mut s_in, mut c_out) = (server, client);
    let back = std::thread::spawn(move || {
        let _ = std::io::copy(&mut s_in, &mut c_out);
        let _ = c_out.shutdown(Shutdown::Write);
    });
    let mut sent = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match c_in.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        sent += n as u64;
        if sent > cut_after && armed.swap(false, Ordering::SeqCst) {
            cuts.fetch_add(1, Ordering::SeqCst);
            let _ = c_in.shutdown(Shutdown::Both);
            let _ = s_out.shutdown(Shutdown::Both);
            break;
        }
        if s_out.write_all(&buf[..n]).is_err() {
            break;
        }
        total.fetch_add(n as u64, Ordering::SeqCst);
    }
    let _ = s_out.shutdown(Shutdown::Write);
    let _ = back.join();
}
