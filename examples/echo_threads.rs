//! An echo server with an OS thread per connection (socketserver.ThreadingTCPServer), on
//! plain `std::net` — the baseline the green and forking servers are compared with.
//!
//! `cargo run --release --example echo_threads -- [--addr 127.0.0.1:9000]`
//!
//! The first line of output is `listening on <addr>`.

#[path = "common/args.rs"]
mod args;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};

fn echo(mut conn: TcpStream) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return conn.shutdown(Shutdown::Write);
        }
        conn.write_all(&buf[..n])?;
    }
}

fn main() -> std::io::Result<()> {
    let addr: String = args::Cli::new(
        "echo_threads",
        "an echo server with an OS thread per connection on std::net",
    )
    .mirrors("socketserver.ThreadingTCPServer, course note 0 (sockets, socketserver, processes)")
    .flag("addr", "ADDR", "127.0.0.1:9000", "where to listen")
    .parse()
    .get("addr");
    let listener = TcpListener::bind(&addr)?;
    println!("listening on {}", listener.local_addr()?);
    for conn in listener.incoming() {
        match conn {
            Ok(conn) => {
                let spawned = std::thread::Builder::new()
                    .stack_size(64 * 1024)
                    .spawn(move || {
                        let _ = echo(conn);
                    });
                if let Err(e) = spawned {
                    eprintln!("[echo_threads] cannot start a thread: {e}");
                }
            }
            Err(e) => {
                eprintln!("[echo_threads] accept: {e}");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
    Ok(())
}
