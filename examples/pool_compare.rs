//! greenrt's process `Pool` against Python's `multiprocessing.Pool`, side by side in one run:
//! the throughput of trivial `apply_async` tasks and of `map` over many items, with the same
//! number of workers. Python runs only if `python3` is on the PATH.
//!
//! `cargo run --release --example pool_compare -- [--tasks 20000] [--workers 2] [--rounds 3]`

#[path = "common/args.rs"]
mod args;
#[path = "common/python.rs"]
mod python;

use std::time::Instant;

use greenrt::process::Pool;

fn plus_one(x: u64) -> u64 {
    x + 1
}

const PYTHON: &str = r#"
import multiprocessing as mp, sys, time
def plus_one(x): return x + 1
if __name__ == '__main__':
    n, workers, rounds = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    with mp.Pool(workers) as p:
        p.map(plus_one, range(1000))
        best_a = best_m = 0.0
        for _ in range(rounds):
            t = time.perf_counter()
            rs = [p.apply_async(plus_one, (i,)) for i in range(n)]
            assert [r.get() for r in rs] == list(range(1, n + 1))
            best_a = max(best_a, n / (time.perf_counter() - t))
            t = time.perf_counter()
            out = p.map(plus_one, range(n * 10))
            assert out[-1] == n * 10
            best_m = max(best_m, n * 10 / (time.perf_counter() - t))
    print(f"{best_a:.0f} {best_m:.0f}")
"#;

/// (apply_async tasks/s, map items/s), best of `rounds`.
fn greenrt_rates(pool: &Pool, n: u64, rounds: usize) -> (f64, f64) {
    let (mut best_a, mut best_m) = (0f64, 0f64);
    for _ in 0..rounds {
        let start = Instant::now();
        let results: Vec<_> = (0..n).map(|i| pool.apply_async(plus_one, i)).collect();
        let values: Vec<u64> = results
            .into_iter()
            .map(|r| r.get().expect("task"))
            .collect();
        assert_eq!(values.last(), Some(&n));
        best_a = best_a.max(n as f64 / start.elapsed().as_secs_f64());
        let start = Instant::now();
        let out = pool.map(plus_one, 0..n * 10).expect("map");
        assert_eq!(out.last(), Some(&(n * 10)));
        best_m = best_m.max((n * 10) as f64 / start.elapsed().as_secs_f64());
    }
    (best_a, best_m)
}

fn python_rates(n: u64, workers: usize, rounds: usize) -> Option<(f64, f64)> {
    let args = [n.to_string(), workers.to_string(), rounds.to_string()];
    let nums = python::numbers(PYTHON, &args)?;
    Some((*nums.first()?, *nums.get(1)?))
}

fn main() -> std::io::Result<()> {
    let args = args::Cli::new(
        "pool_compare",
        "greenrt's process Pool vs Python's multiprocessing.Pool, side by side",
    )
    .flag("tasks", "N", 20_000, "apply_async tasks per round")
    .flag("workers", "N", 2, "worker processes")
    .flag("rounds", "N", 3, "alternating rounds")
    .parse();
    let n: u64 = args.get("tasks");
    let workers: usize = args.get("workers");
    let rounds: usize = args.get("rounds");
    println!(
        "[pool_compare] {workers} workers; {n} trivial apply_async tasks, map over {} items; best of {rounds}",
        n * 10
    );
    let pool = Pool::new(workers)?;
    pool.map(plus_one, 0..1000).expect("warm-up");
    let (ga, gm) = greenrt_rates(&pool, n, rounds);
    pool.close();
    pool.join().expect("closed");
    println!("greenrt  apply_async {ga:>12.0} tasks/s   map {gm:>12.0} items/s");
    match python_rates(n, workers, rounds) {
        Some((pa, pm)) => {
            println!("python   apply_async {pa:>12.0} tasks/s   map {pm:>12.0} items/s");
            println!(
                "ratio    apply_async {:>11.1}x          map {:>11.1}x   (greenrt / python)",
                ga / pa,
                gm / pm
            );
        }
        None => println!("python3 not available: greenrt figures only"),
    }
    Ok(())
}
