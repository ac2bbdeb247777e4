//! Memory per parked unit of concurrency, side by side: a greenrt green thread sleeping, a
//! tokio current_thread task sleeping, and an OS thread sleeping. Each is measured in its own
//! child process as the growth of RSS divided by the count.
//!
//! `cargo run --release --example memory_compare -- [--count 100000]`

#[path = "common/args.rs"]
mod args;

use std::process::Command;
use std::time::Duration;

fn main() {
    let args = args::Cli::new(
        "memory_compare",
        "RSS per parked green thread vs tokio task vs OS thread, each in its own process",
    )
    .flag("count", "N", 100_000, "units of each kind")
    .flag(
        "child",
        "KIND",
        "",
        "internal: measure KIND in this process",
    )
    .parse();
    let count: usize = args.get("count");
    let child: String = args.get("child");
    if !child.is_empty() {
        return measure(&child, count);
    }
    println!(
        "[main] RSS per parked unit, {count} of each (OS threads: {})",
        count.min(2000)
    );
    println!("{:<34} {:>14}", "unit", "RSS per unit");
    for kind in ["greenrt", "tokio", "os-thread"] {
        let n = if kind == "os-thread" {
            count.min(2000)
        } else {
            count
        };
        let out = Command::new(std::env::current_exe().expect("own path"))
            .args(["--child", kind, "--count", &n.to_string()])
            .output()
            .expect("run the child");
        let line = String::from_utf8_lossy(&out.stdout);
        println!("{:<34} {:>14}", label(kind), line.trim());
    }
}

fn label(kind: &str) -> &'static str {
    match kind {
        "greenrt" => "greenrt green thread in sleep()",
        "tokio" => "tokio current_thread task in sleep",
        _ => "OS thread in thread::sleep",
    }
}

fn rss() -> usize {
    greenrt::hub::resident_bytes().expect("/proc/self/statm")
}

/// Parks `count` units, prints the RSS growth per unit in KiB.
fn measure(kind: &str, count: usize) {
    let long = Duration::from_secs(3600);
    let before;
    let after;
    match kind {
        "greenrt" => {
            greenrt::sleep(Duration::ZERO); // the hub itself is not counted
            before = rss();
            let handles: Vec<_> = (0..count)
                .map(|_| greenrt::spawn(move || greenrt::sleep(long)))
                .collect();
            greenrt::yield_now(); // every green thread runs to its sleep
            after = rss();
            std::mem::forget(handles);
        }
        "tokio" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("runtime");
            before = rss();
            after = rt.block_on(async move {
                let handles: Vec<_> = (0..count)
                    .map(|_| tokio::spawn(tokio::time::sleep(long)))
                    .collect();
                tokio::time::sleep(Duration::from_millis(200)).await; // every task polled, parked
                let after = rss();
                std::mem::forget(handles);
                after
            });
        }
        _ => {
            before = rss();
            let handles: Vec<_> = (0..count)
                .map(|_| std::thread::spawn(move || std::thread::sleep(long)))
                .collect();
            std::thread::sleep(Duration::from_millis(500));
            after = rss();
            std::mem::forget(handles);
        }
    }
    println!(
        "{:.2} KiB",
        after.saturating_sub(before) as f64 / count as f64 / 1024.0
    );
    std::process::exit(0);
}
