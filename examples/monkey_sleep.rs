//! gevent's first program: three green threads each call the *plain* blocking sleep
//! (`std::thread::sleep`, Python's `time.sleep`) for 1, 2 and 3 s. Unpatched, each sleep
//! blocks the whole OS thread, so they run one after another: about 6 s. After
//! `monkey::patch_all()` the same unmodified call parks only its green thread: about 3 s.
//!
//! `cargo run --release --features monkey --example monkey_sleep` (`-- --scale 0.1` for a
//! tenth of the time)
//!
//! ```text
//! [unpatched] start: 1 / end: 1 / start: 2 / end: 2 / start: 3 / end: 3   (one line each)
//! [unpatched] took 6.0 s
//! [patched] start: 1 / start: 2 / start: 3 / end: 1 / end: 2 / end: 3
//! [patched] took 3.0 s
//! ```

#[path = "common/args.rs"]
mod args;

use std::time::{Duration, Instant};

fn main() {
    let args = args::Cli::new(
        "monkey_sleep",
        "three green threads call plain std::thread::sleep: 6 s unpatched, 3 s after monkey::patch_all",
    )
    .mirrors("monkey.patch_all() then time.sleep in gevent.spawn, course note 1 (pools, callbacks, gevent, asyncio)")
    .flag("scale", "X", 1.0, "multiply every sleep by X")
    .parse();
    let scale: f64 = args.get("scale");
    let unpatched = run("unpatched", scale);
    greenrt::monkey::patch_all();
    let patched = run("patched", scale);
    println!(
        "[main] unpatched {:.1} s (the sum: one after another), patched {:.1} s (the longest: together)",
        unpatched.as_secs_f64(),
        patched.as_secs_f64()
    );
}

/// Spawns three green threads sleeping 1, 2 and 3 units with the plain std sleep; joins them.
fn run(label: &'static str, scale: f64) -> Duration {
    let started = Instant::now();
    let handles: Vec<_> = (1..=3u32)
        .map(|i| {
            greenrt::spawn(move || {
                println!("[{label}] start: {i}");
                std::thread::sleep(Duration::from_secs_f64(f64::from(i) * scale));
                println!("[{label}] end: {i}");
            })
        })
        .collect();
    greenrt::joinall(handles);
    let took = started.elapsed();
    println!("[{label}] took {:.1} s", took.as_secs_f64());
    took
}
