//! The classic first socket program, with both sides as green threads in one program: the
//! server sends `hello`, the client prints it and answers, the server prints the answer.

#[path = "common/args.rs"]
mod args;

use std::io::{Read, Write};

use greenrt::net::{TcpListener, TcpStream};

fn main() -> std::io::Result<()> {
    args::Cli::new(
        "hello_socket",
        "a server sends hello, the client prints it and answers; both green threads in one program",
    )
    .mirrors("the first socket server and client, course note 0 (sockets, socketserver, processes)")
    .parse();
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    println!("[main] server listening on {addr}");

    let server = greenrt::spawn(move || -> std::io::Result<()> {
        let (mut conn, peer) = listener.accept()?;
        println!("[server] connection from {peer}");
        conn.write_all(b"hello")?;
        let mut answer = String::new();
        conn.read_to_string(&mut answer)?;
        println!("[server] client answered: {answer}");
        Ok(())
    });

    let client = greenrt::spawn(move || -> std::io::Result<()> {
        let mut conn = TcpStream::connect(addr)?;
        let mut greeting = [0; 5];
        conn.read_exact(&mut greeting)?;
        println!(
            "[client] server said: {}",
            String::from_utf8_lossy(&greeting)
        );
        conn.write_all(b"hello to you too")?;
        Ok(()) // dropping the stream closes it: the server's read_to_string ends
    });

    for outcome in greenrt::joinall([server, client]) {
        outcome.expect("neither side panics")?;
    }
    Ok(())
}
