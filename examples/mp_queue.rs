//! Queues between processes, as in the multiprocessing notes: the parent puts first, then a
//! child process puts `n * n` for a few n; the parent gets them all in order (its own item,
//! then the child's); then `try_get` (Python's `get_nowait`) on the empty queue reports
//! `Empty` instead of blocking.
//!
//! `cargo run --release --example mp_queue -- [--n 5]`

#[path = "common/args.rs"]
mod args;

use greenrt::ipc::{GetError, Queue};
use greenrt::process::{Process, current_pid};

fn main() -> std::io::Result<()> {
    let n: u64 = args::Cli::new(
        "mp_queue",
        "a child puts squares, the parent gets them; get_nowait on the empty queue",
    )
    .mirrors("multiprocessing.Queue, course note 4 (multiprocessing: Process, Queue, Pipe, Manager, Pool)")
    .flag("n", "N", 5, "how many squares")
    .parse()
    .get("n");
    let q: Queue<(u32, u64)> = Queue::new(64 * 1024)?;
    q.put(&(current_pid(), 0))?;
    println!("[pid {}] parent put 0", current_pid());
    let child = Process::spawn({
        let q = q.clone();
        move || {
            for i in 1..=n {
                q.put(&(current_pid(), i * i)).expect("put");
                println!("[pid {}] child put {}", current_pid(), i * i);
            }
        }
    })?;
    for _ in 0..=n {
        let (from, square) = q.get()?;
        println!(
            "[pid {}] parent got {square} from pid {from}",
            current_pid()
        );
    }
    child.join()?;
    match q.try_get() {
        Err(GetError::Empty) => println!(
            "[pid {}] get_nowait on the empty queue: Empty",
            current_pid()
        ),
        other => println!("[pid {}] unexpected: {other:?}", current_pid()),
    }
    Ok(())
}
