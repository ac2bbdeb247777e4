//! A Lock keeping the output of several processes in order: three processes each print
//! `PID print 1`, `2` and `3` with a pause between, holding an `ipc::Lock` the whole time, so
//! each one's three lines come together. With `--no-lock` the lines of the three processes
//! interleave.
//!
//! `cargo run --release --example print_lock` (`-- --no-lock`)

#[path = "common/args.rs"]
mod args;

use std::time::Duration;

use greenrt::ipc::Lock;
use greenrt::process::{Process, current_pid};

fn main() -> std::io::Result<()> {
    let args = args::Cli::new(
        "print_lock",
        "three processes print three lines each: grouped under an ipc::Lock, interleaved without",
    )
    .mirrors("Process + Lock around print 1/2/3, course note 2 (TCP/UDP, processes, threads, coroutines)")
    .switch("no-lock", "print without taking the lock")
    .flag("pause-ms", "MS", 300, "the pause between two lines of one process")
    .parse();
    let use_lock = !args.has("no-lock");
    let pause = Duration::from_millis(args.get("pause-ms"));
    let mutex = Lock::new()?;
    let children: Vec<Process> = (0..3)
        .map(|_| {
            let mutex = &mutex;
            Process::spawn(move || {
                let _held = use_lock.then(|| {
                    mutex
                        .lock()
                        .unwrap_or_else(|_| panic!("a holder of the lock died"))
                });
                for line in 1..=3 {
                    if line > 1 {
                        std::thread::sleep(pause);
                    }
                    println!("{} print {line}", current_pid());
                }
            })
        })
        .collect::<Result<_, _>>()?;
    for child in &children {
        child.join()?;
    }
    println!(
        "[main] {}",
        if use_lock {
            "each process's three lines came together: it held the lock for all of them"
        } else {
            "without the lock the processes' lines interleave"
        }
    );
    Ok(())
}
