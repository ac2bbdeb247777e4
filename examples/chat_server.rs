//! A chat server: every line a client sends goes to all the other clients, prefixed with the
//! sender's name. Green threads throughout: per client, a reader that broadcasts and a writer
//! that drains the client's own outbox (so one slow client never blocks the others).
//!
//! `cargo run --release --example chat_server -- [--addr 127.0.0.1:9100]`
//!
//! The first line of output is `listening on <addr>`. A client's first line is its name.

#[path = "common/args.rs"]
mod args;

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::rc::Rc;

use greenrt::net::{TcpListener, TcpStream};
use greenrt::sync::Queue;

/// Each connected client's outbox, by client number.
type Room = Rc<RefCell<HashMap<u64, Rc<Queue<String>>>>>;

/// Sends `line` to everyone in the room but `from`. Outboxes are unbounded: put never parks.
fn broadcast(room: &Room, from: u64, line: &str) {
    for (id, outbox) in room.borrow().iter() {
        if *id != from {
            let _ = outbox.put(line.to_string());
        }
    }
}

fn serve_client(room: Room, id: u64, conn: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut name = String::new();
    reader.read_line(&mut name)?;
    let name = name.trim().to_string();
    let outbox = Rc::new(Queue::new(0));
    room.borrow_mut().insert(id, outbox.clone());
    println!("[chat] {name} joined ({} online)", room.borrow().len());
    broadcast(&room, id, &format!("* {name} joined\n"));
    let writer = greenrt::spawn({
        let (outbox, mut conn) = (outbox.clone(), conn);
        move || {
            while let Ok(line) = outbox.get() {
                if conn.write_all(line.as_bytes()).is_err() {
                    break;
                }
            }
        }
    });
    let mut line = String::new();
    while reader.read_line(&mut line)? > 0 {
        broadcast(&room, id, &format!("[{name}] {line}"));
        line.clear();
    }
    room.borrow_mut().remove(&id);
    outbox.close();
    let _ = writer.join();
    println!("[chat] {name} left ({} online)", room.borrow().len());
    broadcast(&room, id, &format!("* {name} left\n"));
    Ok(())
}

fn main() -> std::io::Result<()> {
    let addr: String = args::Cli::new(
        "chat_server",
        "every line a client sends goes to all the other clients",
    )
    .mirrors("the socketserver chat room, course note 2 (TCP/UDP, processes, threads, coroutines)")
    .flag("addr", "ADDR", "127.0.0.1:9100", "where to listen")
    .parse()
    .get("addr");
    let listener = TcpListener::bind(&addr)?;
    println!("listening on {}", listener.local_addr()?);
    let room: Room = Rc::default();
    let mut next = 0;
    loop {
        let (conn, _) = listener.accept()?;
        let room = room.clone();
        next += 1;
        let id = next;
        greenrt::spawn(move || {
            let _ = serve_client(room, id, conn);
        });
    }
}
