//! A callback-style echo server straight on `mio` (Python's `selectors` example): one loop,
//! no coroutines. accept -> register -> on readable: read and echo -> if the socket is full,
//! keep the rest and wait for writable -> on end of input: flush, half-close, forget.
//!
//! `cargo run --release --example echo_selectors -- [--addr 127.0.0.1:9000]`
//!
//! The first line of output is `listening on <addr>`. Compare with `echo_server`: the same
//! protocol as straight-line code in a green thread.

#[path = "common/args.rs"]
mod args;

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::Shutdown;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

const LISTENER: Token = Token(0);

/// One connection: bytes read but not yet echoed, and whether the peer has finished sending.
struct Conn {
    stream: TcpStream,
    pending: Vec<u8>,
    peer_done: bool,
}

/// Handles readiness on a connection; false when it is finished and should be dropped.
fn on_ready(conn: &mut Conn, buf: &mut [u8]) -> io::Result<bool> {
    loop {
        // Echo what is pending first; if the socket is full, wait for writable.
        while !conn.pending.is_empty() {
            match conn.stream.write(&conn.pending) {
                Ok(n) => {
                    conn.pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if conn.peer_done {
            conn.stream.shutdown(Shutdown::Write)?;
            return Ok(false);
        }
        match conn.stream.read(buf) {
            Ok(0) => conn.peer_done = true,
            Ok(n) => conn.pending.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn main() -> io::Result<()> {
    let addr: String = args::Cli::new(
        "echo_selectors",
        "a callback-style echo server straight on mio, no coroutines",
    )
    .mirrors("the selectors echo server, course note 2 (TCP/UDP, processes, threads, coroutines)")
    .flag("addr", "ADDR", "127.0.0.1:9000", "where to listen")
    .parse()
    .get("addr");
    let mut listener = TcpListener::bind(addr.parse().map_err(io::Error::other)?)?;
    println!("listening on {}", listener.local_addr()?);
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut conns: HashMap<Token, Conn> = HashMap::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 16 * 1024];
    let mut next = 1;
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let token = Token(next);
                            next += 1;
                            let _ = stream.set_nodelay(true);
                            poll.registry().register(
                                &mut stream,
                                token,
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            conns.insert(
                                token,
                                Conn {
                                    stream,
                                    pending: Vec::new(),
                                    peer_done: false,
                                },
                            );
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            eprintln!("[echo_selectors] accept: {e}");
                            break;
                        }
                    }
                }
                continue;
            }
            let token = event.token();
            let keep = match conns.get_mut(&token) {
                Some(conn) => on_ready(conn, &mut buf).unwrap_or(false),
                None => continue,
            };
            if !keep && let Some(mut conn) = conns.remove(&token) {
                let _ = poll.registry().deregister(&mut conn.stream);
            }
        }
    }
}
