//! A chat client for `chat_server`: prints whatever the room says, and sends what you type
//! (or the `--say` lines, for a scripted run). Green threads: one receives, one sends; the
//! terminal is read by a plain thread that hands lines over through a green queue.
//!
//! `cargo run --release --example chat_client -- --addr 127.0.0.1:9100 --name ann`
//! `... --name bob --say "hi all" --say "bye" --linger-ms 500` (scripted: send, listen, leave)

#[path = "common/args.rs"]
mod args;

use std::io::{BufRead, BufReader, Write};
use std::sync::Arc;
use std::time::Duration;

use greenrt::net::TcpStream;
use greenrt::sync::Queue;

fn main() -> std::io::Result<()> {
    let args = args::Cli::new(
        "chat_client",
        "a chat client: prints what the room says, sends what you type (or the --say lines)",
    )
    .mirrors("the socket client of the chat room, course note 2 (TCP/UDP, processes, threads, coroutines)")
    .flag("addr", "ADDR", "127.0.0.1:9100", "the chat_server to join")
    .flag("name", "NAME", "user<pid>", "the name others see")
    .repeated("say", "LINE", "send LINE instead of reading the terminal, then leave")
    .flag("linger-ms", "MS", 300, "after the last --say, how long to keep printing")
    .parse();
    let addr: String = args.get("addr");
    let name: String = match args.raw("name") {
        "user<pid>" => format!("user{}", std::process::id()),
        given => given.to_string(),
    };
    let said: Vec<String> = args.all("say");
    let linger = Duration::from_millis(args.get("linger-ms"));
    let mut conn = TcpStream::connect(&addr)?;
    conn.write_all(format!("{name}\n").as_bytes())?;
    let receiver = greenrt::spawn({
        let conn = conn.try_clone()?;
        move || {
            for line in BufReader::new(conn).lines() {
                match line {
                    Ok(line) => println!("{line}"),
                    Err(_) => break,
                }
            }
        }
    });
    let outgoing: Arc<Queue<String>> = Arc::new(Queue::new(0));
    if said.is_empty() {
        // Interactive: a plain thread reads the terminal; the queue wakes the green sender.
        let q = outgoing.clone();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines().map_while(Result::ok) {
                let _ = q.put(line);
            }
            q.close();
        });
    } else {
        greenrt::sleep(Duration::from_millis(100)); // let the others see us join first
        said.into_iter().for_each(|l| drop(outgoing.put(l)));
        outgoing.close();
    }
    while let Ok(line) = outgoing.get() {
        conn.write_all(format!("{line}\n").as_bytes())?;
        greenrt::sleep(Duration::from_millis(20));
    }
    greenrt::sleep(linger); // hear the replies before leaving
    conn.shutdown(std::net::Shutdown::Write)?;
    let _ = greenrt::timeout(Duration::from_secs(2), || receiver.join());
    Ok(())
}
