//! N processes increment one shared `ipc::Value` under its lock; the total is exact.
//!
//! `cargo run --release --example shared_value -- [--procs 10] [--times 1000]`

#[path = "common/args.rs"]
mod args;

use std::time::Instant;

use greenrt::ipc::{LockError, Value};
use greenrt::process::{Process, current_pid};

fn main() -> std::io::Result<()> {
    let args = args::Cli::new(
        "shared_value",
        "N processes increment one shared ipc::Value under its lock; the total is exact",
    )
    .mirrors("multiprocessing.Value, course note 4 (multiprocessing: Process, Queue, Pipe, Manager, Pool)")
    .flag("procs", "N", 10, "processes")
    .flag("times", "N", 1000, "increments per process")
    .parse();
    let procs: u64 = args.get("procs");
    let times: u64 = args.get("times");
    let counter = Value::new(0u64)?;
    let start = Instant::now();
    let children: Vec<Process> = (0..procs)
        .map(|_| {
            let counter = counter.clone();
            Process::spawn(move || {
                for _ in 0..times {
                    *counter
                        .lock()
                        .or_else(LockError::recover)
                        .expect("value lock") += 1;
                }
                println!("[pid {}] added {times}", current_pid());
            })
        })
        .collect::<Result<_, _>>()?;
    for child in &children {
        child.join()?;
    }
    let total = counter.get()?;
    println!(
        "shared_value: total={total} expected={} in {:.1} ms",
        procs * times,
        start.elapsed().as_secs_f64() * 1e3
    );
    if total != procs * times {
        std::process::exit(1);
    }
    Ok(())
}
