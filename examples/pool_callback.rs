//! The classic pool-with-callback program of the multiprocessing notes: a pool of 3 worker
//! processes, ten `apply_async(foo, i)` calls where `foo` sleeps 2 s and returns `i + 100`,
//! and a callback `bar` — run in the main process — that prints `-->exec done: <value>`.
//! Then `close()` and `join()`.
//!
//! `cargo run --release --example pool_callback -- [--secs 2] [--workers 3] [--tasks 10]`

#[path = "common/args.rs"]
mod args;

use std::time::{Duration, Instant};

use greenrt::process::{Pool, current_pid};

/// How long `foo` sleeps, in milliseconds: read from the environment the parent set before
/// `Pool::new`, so every forked worker sees it.
fn sleep_ms() -> u64 {
    std::env::var("POOL_CALLBACK_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

fn foo(i: u32) -> u32 {
    println!("[pid {}] foo({i}) running", current_pid());
    std::thread::sleep(Duration::from_millis(sleep_ms()));
    i + 100
}

fn bar(value: &u32) {
    println!("[pid {}] -->exec done: {value}", current_pid());
}

fn main() -> std::io::Result<()> {
    let args = args::Cli::new(
        "pool_callback",
        "a pool of 3 processes, ten apply_async calls with a callback",
    )
    .mirrors("Pool.apply_async(callback=...), course note 1 (pools, callbacks, gevent, asyncio)")
    .flag("secs", "S", 2.0, "how long each task sleeps")
    .flag("workers", "N", 3, "worker processes")
    .flag("tasks", "N", 10, "tasks")
    .parse();
    let secs: f64 = args.get("secs");
    let workers: usize = args.get("workers");
    let tasks: u32 = args.get("tasks");
    // SAFETY-free: set before any thread or worker exists, so every process reads the same value.
    // (std::env::set_var is unsafe in edition 2024 because other threads might read the
    // environment concurrently; none exist yet.)
    // SAFETY: no other thread has been started at this point.
    unsafe { std::env::set_var("POOL_CALLBACK_MS", ((secs * 1000.0) as u64).to_string()) };
    println!(
        "[pid {}] main: pool of {workers}, {tasks} tasks of {secs} s each",
        current_pid()
    );
    let start = Instant::now();
    let pool = Pool::new(workers)?;
    let results: Vec<_> = (0..tasks)
        .map(|i| pool.apply_async_with(foo, i, bar, |e| eprintln!("task failed: {e}")))
        .collect();
    pool.close();
    pool.join().expect("closed first");
    let values: Vec<u32> = results.into_iter().filter_map(|r| r.get().ok()).collect();
    println!(
        "[pid {}] main: all {} done in {:.1} s: {values:?}",
        current_pid(),
        values.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
