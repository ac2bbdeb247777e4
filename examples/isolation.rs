//! Processes do not share memory: a named child sets the global `N` from 100 to 0 and
//! prints it; the parent, a second later, still sees 100. The child's name is given with
//! `Builder::name` and read inside it with `current_name()` (Python's `Process(name=...)`
//! and `current_process().name`). To share, use `ipc::Value` (see `shared_value`).
//!
//! `cargo run --release --example isolation`

#[path = "common/args.rs"]
mod args;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use greenrt::process::{Builder, current_name, current_pid};

/// The global the child changes (Python's module-level `n = 100`).
static N: AtomicU32 = AtomicU32::new(100);

fn main() -> std::io::Result<()> {
    let args = args::Cli::new(
        "isolation",
        "a named child sets a global to 0; the parent still sees 100",
    )
    .mirrors("global n in Process(target=func), course note 3 (process isolation, daemons, Lock, Semaphore, Event)")
    .flag("wait-ms", "MS", 1000, "how long the parent waits before it looks")
    .parse();
    println!(
        "[parent pid {}] n = {}",
        current_pid(),
        N.load(Ordering::SeqCst)
    );
    let child = Builder::new().name("changer").spawn(|| {
        N.store(0, Ordering::SeqCst);
        println!(
            "[child '{}' pid {}] set n = {}",
            current_name().unwrap_or("?"),
            current_pid(),
            N.load(Ordering::SeqCst)
        );
    })?;
    greenrt::sleep(Duration::from_millis(args.get("wait-ms")));
    println!(
        "[parent pid {}] after the child {:?} (pid {}) ran: n = {}",
        current_pid(),
        child.name().unwrap_or("?"),
        child.pid(),
        N.load(Ordering::SeqCst)
    );
    child.join()?;
    Ok(())
}
