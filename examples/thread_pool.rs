//! 20 tasks on a pool of 3 OS threads, each returning `i * (i + 1)`: collected once with
//! `result()` in submission order, and once with `add_done_callback` as each finishes
//! (Python's `ThreadPoolExecutor` with `submit`, `result` and `add_done_callback`).

#[path = "common/args.rs"]
mod args;

use std::time::Duration;

use greenrt::thread_pool::ThreadPool;

fn work(i: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(50 + (i * 37) % 100)); // blocking is fine here
    i * (i + 1)
}

fn main() {
    args::Cli::new("thread_pool", "20 tasks on 3 OS threads, collected with result() and with add_done_callback")
        .mirrors("ThreadPoolExecutor with submit / result / add_done_callback, course note 1 (pools, callbacks, gevent, asyncio)")
        .parse();
    let pool = ThreadPool::new(3).unwrap();

    println!("[main] collecting with result():");
    let tasks: Vec<_> = (0..20).map(|i| pool.submit(move || work(i))).collect();
    let results: Vec<u64> = tasks
        .into_iter()
        .map(|t| t.result().expect("no task panics"))
        .collect();
    println!("[main] {results:?}");

    println!("[main] collecting with add_done_callback:");
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let task = pool.submit(move || work(i));
            task.add_done_callback(move |r| {
                let thread = std::thread::current();
                println!(
                    "[{}] task {i} done: {}",
                    thread.name().unwrap_or("?"),
                    r.as_ref().expect("no panic")
                );
            });
            task
        })
        .collect();
    for task in tasks {
        task.result().expect("no task panics");
    }
    pool.shutdown(true);
    println!("[main] pool shut down");
}
