//! CPU-bound work mapped over a process pool versus done serially in one process: counting
//! primes below a bound for each of several bounds. With 2 cores the pool should take about
//! half the serial time.
//!
//! `cargo run --release --example pool_map -- [--items 16] [--bound 200000] [--workers 2]`

#[path = "common/args.rs"]
mod args;

use std::time::Instant;

use greenrt::process::{Pool, current_pid};

/// Primes below `bound`, by trial division: deliberately CPU-bound.
fn count_primes(bound: u64) -> u64 {
    (2..bound)
        .filter(|&n| (2..).take_while(|d| d * d <= n).all(|d| n % d != 0))
        .count() as u64
}

fn main() -> std::io::Result<()> {
    let args = args::Cli::new(
        "pool_map",
        "CPU-bound work mapped over a process pool vs serially",
    )
    .mirrors("Pool.map, course note 4 (multiprocessing: Process, Queue, Pipe, Manager, Pool)")
    .flag("items", "N", 16, "bounds to count primes below")
    .flag("bound", "N", 200_000, "the largest bound")
    .flag("workers", "N", 2, "worker processes")
    .parse();
    let items: u64 = args.get("items");
    let bound: u64 = args.get("bound");
    let workers: usize = args.get("workers");
    let bounds: Vec<u64> = (0..items).map(|i| bound + i * 1000).collect();
    println!(
        "[pid {}] counting primes below {items} bounds near {bound}",
        current_pid()
    );
    let start = Instant::now();
    let serial: Vec<u64> = bounds.iter().map(|&b| count_primes(b)).collect();
    let serial_secs = start.elapsed().as_secs_f64();
    println!("serial:         {serial_secs:.2} s");
    let pool = Pool::new(workers)?;
    let start = Instant::now();
    let parallel = pool
        .map_chunked(count_primes, bounds.clone(), 1)
        .expect("pool map");
    let pool_secs = start.elapsed().as_secs_f64();
    println!("pool of {workers}:      {pool_secs:.2} s");
    assert_eq!(serial, parallel, "the pool computed something else");
    pool.close();
    pool.join().expect("closed first");
    println!(
        "pool_map: serial={serial_secs:.2}s pool={pool_secs:.2}s speedup={:.2}x",
        serial_secs / pool_secs
    );
    Ok(())
}
