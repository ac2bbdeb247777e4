//! An echo server that forks a process per connection (socketserver.ForkingTCPServer): the
//! parent only accepts; each child serves one client on its own fresh hub and exits.
//!
//! `cargo run --release --example echo_fork -- [--addr 127.0.0.1:0] [--clients 5] [--serve]`
//!
//! By default it also runs `--clients` green client threads against itself, checks every
//! echo, and exits; with `--serve` it serves until killed.

#[path = "common/args.rs"]
mod args;
#[path = "common/echo.rs"]
mod echo;

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;

use greenrt::net::{TcpListener, TcpStream};
use greenrt::process::{Process, current_pid};

/// The children forked so far, for a parent that waits for them before it reports; `None`
/// when serving forever (dropped `Process` handles are reaped by greenrt's reaper thread, so
/// finished children never linger as zombies).
type Children = Option<Rc<RefCell<Vec<Process>>>>;

/// Accepts forever, forking a child per connection.
fn serve(listener: TcpListener, children: Children) -> ! {
    loop {
        match listener.accept() {
            Ok((conn, peer)) => {
                let child = Process::spawn(move || {
                    println!("[pid {}] serving {peer}", current_pid());
                    let _ = echo::echo(conn);
                    println!("[pid {}] {peer} done", current_pid());
                });
                // The parent's copy of `conn` was moved into the closure and dropped here:
                // only the child keeps the connection open.
                match (child, &children) {
                    (Ok(child), Some(children)) => children.borrow_mut().push(child),
                    (Ok(_), None) => {}
                    (Err(e), _) => eprintln!("[pid {}] fork failed: {e}", current_pid()),
                }
            }
            Err(e) => eprintln!("[pid {}] accept: {e}", current_pid()),
        }
    }
}

fn client(addr: SocketAddr, id: usize) -> std::io::Result<usize> {
    let mut conn = TcpStream::connect(addr)?;
    let message = format!("hello from client {id} ").repeat(100 + id * 37);
    conn.write_all(message.as_bytes())?;
    conn.shutdown(std::net::Shutdown::Write)?;
    let mut echoed = Vec::new();
    conn.read_to_end(&mut echoed)?;
    assert_eq!(echoed, message.as_bytes(), "client {id}: wrong echo");
    Ok(echoed.len())
}

fn main() -> std::io::Result<()> {
    let args = args::Cli::new(
        "echo_fork",
        "an echo server that forks a process per connection, with a few clients",
    )
    .mirrors("socketserver.ForkingTCPServer, course note 0 (sockets, socketserver, processes)")
    .flag(
        "addr",
        "ADDR",
        "127.0.0.1:0",
        "where to listen (port 0: any free port)",
    )
    .flag("clients", "N", 5, "clients to run against it")
    .switch("serve", "serve until killed, no clients")
    .parse();
    let addr: String = args.get("addr");
    let clients: usize = args.get("clients");
    let listener = TcpListener::bind(&addr)?;
    let local = listener.local_addr()?;
    println!("[pid {}] forking echo server on {local}", current_pid());
    if args.has("serve") {
        serve(listener, None);
    }
    let children: Children = Some(Rc::default());
    let forked = children.clone();
    greenrt::spawn(move || serve(listener, forked));
    let handles: Vec<_> = (0..clients)
        .map(|id| greenrt::spawn(move || client(local, id)))
        .collect();
    let mut bytes = 0;
    for h in handles {
        bytes += h.join().expect("client panicked")?;
    }
    // Each child ends once its client has hung up; wait for them, so that their last lines
    // come before the summary.
    let forked = children.map(|c| std::mem::take(&mut *c.borrow_mut()));
    for child in forked.into_iter().flatten() {
        child.join()?;
    }
    println!("echo_fork: {clients} clients echoed {bytes} bytes through forked children");
    Ok(())
}
