//! `Semaphore(5)` acquired seven times without a release: the first five print 1 to 5, the
//! sixth blocks ("到这里就卡住了": it gets stuck here). Python's program hangs there for
//! good; this one waits 2 s for the sixth, says it is still blocked, and ends.
//!
//! Then the porting trap: in greenrt an acquire returns a *permit guard*, and dropping it
//! releases. A literal port — `let _ = sem.acquire()?;` — drops each permit at once, so it
//! prints 1 to 7 and never blocks. Keep the permits (in a `Vec`, or `Permit::forget` them,
//! the exact meaning of an acquire without release) to hold them.
//!
//! `cargo run --release --example semaphore_block`

#[path = "common/args.rs"]
mod args;

use std::time::Duration;

use greenrt::ipc::Semaphore;

fn main() -> std::io::Result<()> {
    let args = args::Cli::new(
        "semaphore_block",
        "Semaphore(5) acquired seven times without release: the sixth blocks; and the porting trap",
    )
    .mirrors("sem = Semaphore(5); sem.acquire(); print(1) … print(7), course note 0 (sockets, socketserver, processes)")
    .flag("wait-ms", "MS", 2000, "how long the sixth acquire waits before we give up")
    .parse();
    let wait = Duration::from_millis(args.get("wait-ms"));

    println!("[held] permits kept, as Python's acquire without release:");
    let sem = Semaphore::new(5)?;
    let mut held = Vec::new();
    for i in 1..=7 {
        match sem.acquire_timeout(wait)? {
            Some(permit) => {
                held.push(permit);
                println!("{i}");
            }
            None => {
                println!(
                    "[held] acquire {i}: still blocked after {:.1} s — {} permits held, {} free",
                    wait.as_secs_f64(),
                    held.len(),
                    sem.value()
                );
                break;
            }
        }
    }
    drop(held); // every permit back

    println!("[trap] a literal port, `let _ = sem.acquire()?;`, releases each permit at once:");
    let sem = Semaphore::new(5)?;
    for i in 1..=7 {
        let _ = sem.acquire()?; // dropped here: released
        println!("{i}");
    }
    println!("[trap] never blocked: {} of 5 permits free", sem.value());
    Ok(())
}
