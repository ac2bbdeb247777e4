//! A TCP proxy on 127.0.0.1 that can lose a reply on purpose: after `cut_next_reply`, the
//! next bytes the server sends are dropped and both connections closed — the server did the
//! work, the client never hears of it. Plain OS threads, so it works beside any hub.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

pub struct CuttingProxy {
    pub port: u16,
    cut: Arc<AtomicBool>,
    cuts: Arc<AtomicUsize>,
}

impl CuttingProxy {
    /// Forwards every connection to `127.0.0.1:upstream` until the process ends.
    pub fn start(upstream: u16) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a proxy port");
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let cuts = Arc::new(AtomicUsize::new(0));
        let (cut2, cuts2) = (cut.clone(), cuts.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                pipe(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    None,
                );
                pipe(server, client, Some((cut2.clone(), cuts2.clone())));
            }
        });
        CuttingProxy { port, cut, cuts }
    }

    /// Drops the next reply of any connection and closes that connection.
    pub fn cut_next_reply(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }

    /// How many replies were dropped.
    pub fn cuts(&self) -> usize {
        self.cuts.load(Ordering::SeqCst)
    }
}

/// Copies `from` to `to` on a thread; with `cut`, drops a chunk and closes both when asked.
fn pipe(mut from: TcpStream, mut to: TcpStream, cut: Option<(Arc<AtomicBool>, Arc<AtomicUsize>)>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16384];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if let Some((cut, cuts)) = &cut
                && cut.swap(false, Ordering::SeqCst)
            {
                cuts.fetch_add(1, Ordering::SeqCst);
                break;
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    });
}
