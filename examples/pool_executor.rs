//! A ProcessPoolExecutor of 3: 20 tasks submitted at once, each printing its worker's pid
//! as it starts and ends and sleeping 1–4 units (250 ms each; Python sleeps 1–4 s); only three
//! pids ever appear, since the same three worker processes take every task. Then `result()` of each in submission order
//! (`apply_async` returns greenrt's future; `get` is Python's `result`).
//!
//! `cargo run --release --example pool_executor` (`-- --unit-ms 100` for a quicker run)

#[path = "common/args.rs"]
mod args;

use std::collections::BTreeSet;
use std::time::Duration;

use greenrt::process::{Pool, current_pid};

/// The unit of sleep, read from the environment the parent set before `Pool::new`, so every
/// forked worker sees it.
fn unit() -> Duration {
    let ms = std::env::var("POOL_EXECUTOR_UNIT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    Duration::from_millis(ms)
}

/// Python's `func`: prints its pid at the start and at the end, sleeps 1–4 units.
fn func(i: u32) -> u32 {
    println!("{} start (task {i})", current_pid());
    std::thread::sleep(unit() * (1 + (i * 7 + 3) % 4));
    println!("{} end (task {i})", current_pid());
    current_pid()
}

fn main() -> std::io::Result<()> {
    let args = args::Cli::new(
        "pool_executor",
        "20 tasks on a pool of 3 processes, each printing its worker's pid: three pids in all",
    )
    .mirrors(
        "ProcessPoolExecutor(3) with submit, course note 1 (pools, callbacks, gevent, asyncio)",
    )
    .flag("tasks", "N", 20, "tasks to submit")
    .flag("workers", "N", 3, "worker processes")
    .flag("unit-ms", "MS", 250, "a task sleeps 1-4 of these")
    .parse();
    // SAFETY: no other thread runs yet, so nothing reads the environment concurrently.
    unsafe { std::env::set_var("POOL_EXECUTOR_UNIT_MS", args.raw("unit-ms")) };
    let pool = Pool::new(args.get("workers"))?;
    let tasks: u32 = args.get("tasks");
    let futures: Vec<_> = (0..tasks).map(|i| pool.apply_async(func, i)).collect();
    let mut pids = BTreeSet::new();
    for future in futures {
        pids.insert(future.get()?);
    }
    pool.close();
    pool.join()?;
    println!(
        "[main] {tasks} tasks ran in {} worker processes: {pids:?}",
        pids.len()
    );
    Ok(())
}
