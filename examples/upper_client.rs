//! The client of `upper_server`: sends each line you type (or each `--say`), prints the
//! answer. Plain blocking `std::net` code — a client needs nothing else.
//!
//! `cargo run --release --example upper_client -- [--addr 127.0.0.1:8080] [--say hello]`

#[path = "common/args.rs"]
mod args;

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;

fn main() -> std::io::Result<()> {
    let args = args::Cli::new(
        "upper_client",
        "sends lines to upper_server and prints the upper-case answers",
    )
    .mirrors("the client with input('>>: '), course note 3 (process isolation, daemons, Lock, Semaphore, Event)")
    .flag("addr", "ADDR", "127.0.0.1:8080", "the upper_server")
    .repeated("say", "TEXT", "send TEXT instead of reading lines from the terminal")
    .parse();
    let mut conn = TcpStream::connect(args.raw("addr"))?;
    let said = args.all("say");
    let lines: Box<dyn Iterator<Item = String>> = if said.is_empty() {
        print_prompt();
        Box::new(std::io::stdin().lock().lines().map_while(Result::ok))
    } else {
        Box::new(said.into_iter())
    };
    let mut buf = [0u8; 1024];
    for line in lines {
        let msg = line.trim();
        if msg.is_empty() {
            print_prompt();
            continue;
        }
        conn.write_all(msg.as_bytes())?;
        let n = conn.read(&mut buf)?;
        if n == 0 {
            println!("[client] the server closed the connection");
            break;
        }
        println!("{}", String::from_utf8_lossy(&buf[..n]));
        print_prompt();
    }
    Ok(())
}

fn print_prompt() {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        print!(">>: ");
        let _ = std::io::stdout().flush();
    }
}
