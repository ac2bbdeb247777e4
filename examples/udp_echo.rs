//! A UDP echo: no connection, no accept — the server answers each datagram to whoever sent
//! it (`recv_from` / `send_to`). Server and client are green threads on one hub; the
//! server's `recv_from` parks only its green thread.
//!
//! `cargo run --release --example udp_echo -- [--say hello --say world]`

#[path = "common/args.rs"]
mod args;

use std::time::Duration;

use greenrt::net::UdpSocket;

fn main() -> std::io::Result<()> {
    let args = args::Cli::new(
        "udp_echo",
        "a UDP echo server and client as green threads: recv_from, send_to, no connection",
    )
    .mirrors("socket(AF_INET, SOCK_DGRAM) server and client, course note 2 (TCP/UDP, processes, threads, coroutines)")
    .flag("addr", "ADDR", "127.0.0.1:0", "where the server binds (port 0: any free port)")
    .repeated("say", "TEXT", "what the client sends (default: three greetings)")
    .parse();
    let mut said = args.all("say");
    if said.is_empty() {
        said = vec!["hello".into(), "udp".into(), "bye".into()];
    }
    let server = UdpSocket::bind(args.raw("addr"))?;
    let at = server.local_addr()?;
    println!("[server] on {at}");
    let count = said.len();
    let serving = greenrt::spawn(move || -> std::io::Result<()> {
        let mut buf = [0u8; 1500];
        for _ in 0..count {
            let (n, from) = server.recv_from(&mut buf)?;
            println!(
                "[server] {} bytes from {from}: {:?}",
                n,
                String::from_utf8_lossy(&buf[..n])
            );
            server.send_to(&buf[..n], from)?;
        }
        Ok(())
    });
    let client = UdpSocket::bind("127.0.0.1:0")?;
    client.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = [0u8; 1500];
    for text in &said {
        client.send_to(text.as_bytes(), at)?;
        let (n, from) = client.recv_from(&mut buf)?;
        println!(
            "[client] echo from {from}: {:?}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
    serving.join().expect("the server green thread panicked")?;
    Ok(())
}
