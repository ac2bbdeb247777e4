//! A pool of 3 green threads running 20 tasks that each sleep 1–4 s: at most three run at a
//! time, so the run takes about 20 * 2.5 / 3 ≈ 17 s, and `spawn` itself waits for a free
//! slot. Each task prints its start and end with its green thread id.
//! (`--quick` divides the sleeps by 10.)

#[path = "common/args.rs"]
mod args;

use std::time::{Duration, Instant};

fn main() {
    let args = args::Cli::new(
        "green_pool",
        "20 sleeping tasks on a pool of 3 green threads: at most three run at a time",
    )
    .mirrors("gevent.pool.Pool, course note 1 (pools, callbacks, gevent, asyncio)")
    .switch("quick", "sleep a tenth as long")
    .parse();
    let scale = if args.has("quick") { 10 } else { 1 };
    let pool = greenrt::pool::GreenPool::new(3).unwrap();
    let start = Instant::now();
    for task in 0..20u64 {
        let secs = 1 + (task * 7) % 4; // 1..=4, a fixed mix
        pool.spawn(move || {
            let id = greenrt::current().id();
            println!("[green {id}] task {task:2} starts, sleeping {secs} s");
            greenrt::sleep(Duration::from_millis(secs * 1000 / scale));
            println!("[green {id}] task {task:2} ends");
        });
    }
    pool.join();
    println!(
        "[main] 20 tasks on 3 green threads took {:.1} s",
        start.elapsed().as_secs_f64()
    );
}
