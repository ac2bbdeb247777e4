//! A pre-forked echo server: N worker processes share one listening socket (made before the
//! fork and inherited); each worker has its own hub and a green thread per connection —
//! processes for the cores, green threads for the I/O. A worker that dies is replaced.
//!
//! `cargo run --release --example echo_prefork -- [--addr 127.0.0.1:9000] [--workers 2]`
//!
//! The first line of output is `listening on <addr>`.

#[path = "common/args.rs"]
mod args;
#[path = "common/echo.rs"]
mod echo;

use std::cell::Cell;
use std::rc::Rc;

use greenrt::net::TcpListener;
use greenrt::process::{Builder, Process, current_pid};

fn start_worker(listener: &TcpListener, n: usize) -> std::io::Result<Process> {
    let listener = listener.try_clone()?;
    // A daemon: workers end when the parent does, even if it is killed.
    Builder::new()
        .name(format!("echo worker {n}"))
        .daemon(true)
        .spawn(move || {
            eprintln!("[pid {}] worker {n} serving", current_pid());
            echo::serve(listener, Rc::new(Cell::new(0)), true)
        })
}

fn main() -> std::io::Result<()> {
    let args = args::Cli::new(
        "echo_prefork",
        "N worker processes share one listening socket, a green thread per connection",
    )
    .mirrors(
        "pre-forked processes serving one socket, course note 0 (sockets, socketserver, processes)",
    )
    .flag("addr", "ADDR", "127.0.0.1:9000", "where to listen")
    .flag("workers", "N", 2, "worker processes")
    .parse();
    let addr: String = args.get("addr");
    let workers: usize = args.get("workers");
    let listener = TcpListener::bind(&addr)?;
    println!("listening on {}", listener.local_addr()?);
    eprintln!(
        "[pid {}] echo_prefork: {workers} worker processes",
        current_pid()
    );
    // One green thread per worker slot: join the worker, and start a new one if it dies.
    let slots: Vec<_> = (0..workers)
        .map(|n| {
            let listener = listener.try_clone().expect("dup the listener");
            greenrt::spawn(move || {
                loop {
                    let worker = start_worker(&listener, n).expect("fork a worker");
                    let status = worker.join().expect("join a worker");
                    eprintln!(
                        "[pid {}] worker {n} (pid {}) ended: {status}; restarting",
                        current_pid(),
                        worker.pid()
                    );
                }
            })
        })
        .collect();
    for slot in slots {
        let _ = slot.join();
    }
    Ok(())
}
