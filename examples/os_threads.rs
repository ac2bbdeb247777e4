//! OS threads, as in the threading part of the course notes: threads with names, the list of
//! running threads and their count (`threading.enumerate()` / `active_count()`), and a
//! daemon thread that simply ends with the process.
//!
//! Rust's `std::thread` is the thread API; what Python adds is read here from
//! `/proc/self/task` (the kernel's own list of this process's threads and their names — at
//! most 15 bytes of each). Every thread Rust starts is a daemon in Python's sense: the
//! process ends when `main` returns, whoever still runs. A thread you want finished is one
//! you `join` (Python's non-daemon threads are joined for you at exit).
//!
//! `cargo run --release --example os_threads`

#[path = "common/args.rs"]
mod args;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// `threading.enumerate()`: every thread of this process, `(tid, name)`, from the kernel.
fn enumerate() -> Vec<(u32, String)> {
    let mut threads: Vec<(u32, String)> = std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|entry| {
            let tid = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let name = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).ok()?;
            Some((tid, name.trim_end().to_string()))
        })
        .collect();
    threads.sort();
    threads
}

fn show(when: &str) {
    let threads = enumerate();
    let names: Vec<&str> = threads.iter().map(|(_, name)| name.as_str()).collect();
    println!("[main] {when}: active count {} — {names:?}", threads.len());
}

fn main() {
    let args = args::Cli::new(
        "os_threads",
        "named OS threads, the running list and count, and a daemon thread",
    )
    .mirrors("threading.Thread(name=...), enumerate(), active_count(), daemon threads, course note 2 (TCP/UDP, processes, threads, coroutines)")
    .flag("work-ms", "MS", 500, "how long each worker thread works")
    .parse();
    let work = Duration::from_millis(args.get("work-ms"));
    show("alone");
    let started = Arc::new(Barrier::new(5)); // three workers, the daemon and main
    let workers: Vec<_> = (1..=3)
        .map(|i| {
            let started = started.clone();
            std::thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || {
                    let me = std::thread::current();
                    println!("[{}] working", me.name().unwrap_or("?"));
                    started.wait();
                    std::thread::sleep(work);
                    println!("[{}] done", me.name().unwrap_or("?"));
                })
                .expect("cannot start a thread")
        })
        .collect();
    // A daemon: never joined; it beats until the process ends.
    let daemon_started = started.clone();
    std::thread::Builder::new()
        .name("daemon".into())
        .spawn(move || {
            daemon_started.wait();
            loop {
                println!("[daemon] beat");
                std::thread::sleep(work / 2);
            }
        })
        .expect("cannot start a thread");
    started.wait(); // every thread runs, with its name set
    show("with three workers and the daemon");
    for worker in workers {
        worker.join().expect("a worker panicked");
    }
    // `join` returns once a thread has finished; the kernel drops its entry a moment later.
    let deadline = Instant::now() + Duration::from_secs(1);
    while enumerate().len() > 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    show("after joining the workers");
    println!("[main] returning: the daemon ends with the process");
}
