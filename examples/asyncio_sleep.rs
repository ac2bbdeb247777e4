//! The classic asyncio demo — two async tasks print `start: i`, await a 2 s sleep, print
//! `end: i`, and finish together after about 2 s — next to the same program with green
//! threads. Each async task is a stackless future run by `greenrt::block_on` inside a green
//! thread; its sleep is a future on the hub's timers, so both wait at the same time.
//! (`--quick` sleeps 0.2 s.)

#[path = "common/args.rs"]
mod args;

use std::time::{Duration, Instant};

async fn task(i: u32, pause: Duration) {
    println!("start: {i}");
    greenrt::bridge::sleep(pause).await;
    println!("end: {i}");
}

fn main() {
    let args = args::Cli::new(
        "asyncio_sleep",
        "two async tasks sleep together (about 2 s, not 4), next to the same with green threads",
    )
    .mirrors("asyncio.gather of two sleeping coroutines, course note 1 (pools, callbacks, gevent, asyncio)")
    .switch("quick", "sleep 0.2 s instead of 2 s")
    .parse();
    let quick = args.has("quick");
    let pause = if quick {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(2)
    };

    println!("[main] async tasks (stackless futures, driven by block_on):");
    let start = Instant::now();
    let tasks: Vec<_> = (1..=2)
        .map(|i| greenrt::spawn(move || greenrt::block_on(task(i, pause))))
        .collect();
    greenrt::joinall(tasks);
    println!(
        "[main] both done after {:.1} s\n",
        start.elapsed().as_secs_f64()
    );

    println!("[main] the same with green threads (stackful):");
    let start = Instant::now();
    let threads: Vec<_> = (1..=2)
        .map(|i| {
            greenrt::spawn(move || {
                println!("start: {i}");
                greenrt::sleep(pause);
                println!("end: {i}");
            })
        })
        .collect();
    greenrt::joinall(threads);
    println!(
        "[main] both done after {:.1} s",
        start.elapsed().as_secs_f64()
    );
}
