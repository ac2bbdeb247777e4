//! The upper-case server of the course notes: each client's messages come back in upper
//! case. A green thread per connection (the notes fork a process per connection; see
//! `echo_fork` for that model). Its client is a separate program, `upper_client`.
//!
//! ```text
//! cargo run --release --example upper_server                 # serves on 127.0.0.1:8080
//! cargo run --release --example upper_client -- --say hello   # prints HELLO
//! ```

#[path = "common/args.rs"]
mod args;

use std::io::{Read, Write};

use greenrt::net::{TcpListener, TcpStream};

fn main() -> std::io::Result<()> {
    let args = args::Cli::new(
        "upper_server",
        "answers every message in upper case, a green thread per connection",
    )
    .mirrors("the server that sends msg.upper(), course note 3 (process isolation, daemons, Lock, Semaphore, Event)")
    .flag("addr", "ADDR", "127.0.0.1:8080", "where to listen (port 0: any free port)")
    .flag("connections", "N", 0, "end after serving N connections (0: serve until killed)")
    .parse();
    let listener = TcpListener::bind(args.raw("addr"))?;
    println!("[server] listening on {}", listener.local_addr()?);
    let limit: usize = args.get("connections");
    let mut served = Vec::new();
    loop {
        let (conn, peer) = listener.accept()?;
        println!("[server] {peer} connected");
        served.push(greenrt::spawn(move || talk(conn, peer)));
        if limit != 0 && served.len() == limit {
            break;
        }
    }
    greenrt::joinall(served);
    println!("[server] served {limit} connections, bye");
    Ok(())
}

/// Python's `talk`: until the client goes, answer each message in upper case.
fn talk(mut conn: TcpStream, peer: std::net::SocketAddr) {
    let mut buf = [0u8; 1024];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if conn.write_all(&buf[..n].to_ascii_uppercase()).is_err() {
                    break;
                }
            }
        }
    }
    println!("[server] {peer} gone");
}
