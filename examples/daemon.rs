//! A heartbeat daemon: a daemon child prints every 0.5 s while the main process works for a
//! while; when main ends, the kernel ends the daemon too (`PR_SET_PDEATHSIG`), so the
//! heartbeats stop. `--secs` sets how long main works (default 2).

#[path = "common/args.rs"]
mod args;

use std::time::Duration;

use greenrt::process::Builder;

fn main() -> std::io::Result<()> {
    let args = args::Cli::new(
        "daemon",
        "a daemon child prints a heartbeat while main works; it ends when main ends",
    )
    .mirrors("p.daemon = True (the heartbeat daemon), course note 3 (process isolation, daemons, Lock, Semaphore, Event)")
    .flag("secs", "S", 2.0, "how long main works")
    .parse();
    let secs: f64 = args.get("secs");
    let daemon = Builder::new().name("heartbeat").daemon(true).spawn(|| {
        loop {
            println!("[pid {}] heartbeat", greenrt::process::current_pid());
            std::thread::sleep(Duration::from_millis(500));
        }
    })?;
    println!(
        "[pid {}] main: working for {secs} s beside daemon {}",
        greenrt::process::current_pid(),
        daemon.pid()
    );
    greenrt::sleep(Duration::from_secs_f64(secs));
    println!("[main] done; the daemon ends with me");
    Ok(())
}
