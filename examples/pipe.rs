//! A duplex pipe between two processes, as in the multiprocessing notes: the parent sends
//! requests, the child answers on the same pipe, and the parent sees `EOF` once the child
//! has gone.
//!
//! `cargo run --release --example pipe`

#[path = "common/args.rs"]
mod args;

use greenrt::ipc::pipe;
use greenrt::process::{Process, current_pid};

fn main() -> std::io::Result<()> {
    args::Cli::new("pipe", "a duplex pipe: the parent asks, the child answers, then EOF")
        .mirrors("multiprocessing.Pipe, course note 4 (multiprocessing: Process, Queue, Pipe, Manager, Pool)")
        .parse();
    let (parent_end, child_end) = pipe()?;
    let child = Process::spawn(move || {
        loop {
            match child_end.recv::<String>() {
                Ok(msg) if msg == "bye" => break,
                Ok(msg) => {
                    println!("[pid {}] child got {msg:?}", current_pid());
                    child_end.send(&msg.to_uppercase()).expect("send");
                }
                Err(e) => panic!("child: {e}"),
            }
        }
        child_end
            .send_bytes(b"raw bytes work too")
            .expect("send_bytes");
    })?;
    for word in ["hello", "from", "the parent"] {
        parent_end.send(&word.to_string())?;
        let answer: String = parent_end.recv()?;
        println!("[pid {}] parent got {answer:?}", current_pid());
    }
    parent_end.send(&"bye".to_string())?;
    let raw = parent_end.recv_bytes()?;
    println!(
        "[pid {}] parent got bytes {:?}",
        current_pid(),
        String::from_utf8_lossy(&raw)
    );
    child.join()?;
    match parent_end.recv_bytes() {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            println!("[pid {}] the child's end is closed: EOF", current_pid())
        }
        other => println!("[pid {}] unexpected: {other:?}", current_pid()),
    }
    Ok(())
}
