//! An echo server with a green thread per connection, serving until killed.
//!
//! `cargo run --release --example echo_server -- --addr 127.0.0.1:9000`
//!
//! Survives clients that reset, half-close (it finishes echoing, then closes its side) or sit
//! idle (an idle connection is a parked green thread: a few KiB, no CPU), and keeps accepting
//! when it runs out of file descriptors by backing off. Prints the number of live connections
//! every five seconds while it changes.

#[path = "common/args.rs"]
mod args;
#[path = "common/echo.rs"]
mod echo;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

fn main() -> std::io::Result<()> {
    let args = args::Cli::new(
        "echo_server",
        "an echo server with a green thread per connection, serving until killed",
    )
    .mirrors("the gevent echo server, course note 1 (pools, callbacks, gevent, asyncio)")
    .flag("addr", "ADDR", "127.0.0.1:9000", "where to listen")
    .parse();
    let addr: String = args.get("addr");
    let listener = greenrt::net::TcpListener::bind(&addr)?;
    println!("[main] echo server listening on {}", listener.local_addr()?);
    let live = Rc::new(Cell::new(0usize));
    let l = live.clone();
    greenrt::spawn(move || {
        let mut last = usize::MAX;
        loop {
            greenrt::sleep(Duration::from_secs(5));
            if l.get() != last {
                last = l.get();
                println!("[status] {last} live connections");
            }
        }
    });
    echo::serve(listener, live, false)
}
