//! Bursts, side by side in one run: greenrt against tokio (current_thread) and may (one
//! worker), alternating which goes first.
//!
//! * **spawn burst** — spawn N green threads / tasks / coroutines at once (each returns its
//!   index), then join them all; the first round on a fresh runtime (fresh stacks), the
//!   second on the same runtime again.
//! * **sleeper storm** — N spawned in one burst, each sleeping once for a random 0..R ms;
//!   lateness is measured from the moment each one *starts* sleeping, so a sleeper that waits
//!   behind the start-up burst counts (p50 / p99 / max).
//!
//! `cargo run --release --example burst_compare -- [--n 100000] [--range-ms 1000] [--rounds 3]`

#[path = "common/args.rs"]
mod args;
#[path = "common/stats.rs"]
mod stats;

use std::time::{Duration, Instant};

/// Nanoseconds per task of (first round, second round).
type SpawnFigures = (f64, f64);

/// Lateness percentiles in microseconds: (p50, p99, max).
type Lateness = (f64, f64, f64);

fn main() {
    let args = args::Cli::new(
        "burst_compare",
        "spawn bursts and a 100k-sleeper storm, greenrt vs tokio vs may, alternating",
    )
    .flag("n", "N", 100_000, "green threads per burst")
    .flag(
        "range-ms",
        "MS",
        1000,
        "the storm sleeps a random 0..MS each",
    )
    .flag(
        "rounds",
        "N",
        3,
        "alternating rounds (medians are reported)",
    )
    .parse();
    let n: usize = args.get("n");
    let range_ms: u64 = args.get("range-ms");
    let rounds: usize = args.get("rounds");
    may::config().set_workers(1).set_stack_size(0x4000);
    println!(
        "[burst_compare] spawn burst of {n} (first and second round) and a storm of {n} \
         sleepers (random 0..{range_ms} ms); {rounds} alternating rounds, medians"
    );
    let mut spawn: [Vec<SpawnFigures>; 3] = Default::default();
    let mut storm: [Vec<Lateness>; 3] = Default::default();
    let mut storm_failed = [false; 3];
    for round in 0..rounds {
        let order: [usize; 3] = [round % 3, (round + 1) % 3, (round + 2) % 3];
        for &who in &order {
            spawn[who].push(on_fresh_thread(move || spawn_burst(who, n)));
            println!("  round {} {:8} spawn burst done", round + 1, NAMES[who]);
        }
        for &who in &order {
            if storm_failed[who] {
                continue;
            }
            let trial = std::thread::spawn(move || sleeper_storm(who, n, range_ms, round as u64));
            match trial.join() {
                Ok(figures) => storm[who].push(figures),
                Err(_) => storm_failed[who] = true,
            }
            println!("  round {} {:8} sleeper storm done", round + 1, NAMES[who]);
        }
    }
    print_table(n, &spawn, &storm);
    if storm_failed[2] {
        println!(
            "may's sleeper storm failed (the panic above): may maps each coroutine's stack on \
             its own, and {n} of them pass vm.max_map_count"
        );
    }
}

const NAMES: [&str; 3] = ["greenrt", "tokio", "may"];

/// Runs `f` on a new OS thread, so each greenrt trial starts with a fresh hub (no pooled
/// stacks) and each tokio trial with a fresh runtime.
fn on_fresh_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f).join().expect("a trial panicked")
}

fn spawn_burst(who: usize, n: usize) -> SpawnFigures {
    let once = |round: &dyn Fn() -> u64| {
        let t0 = Instant::now();
        let sum = round();
        assert_eq!(
            sum,
            (n as u64 - 1) * n as u64 / 2,
            "every task returned its index"
        );
        t0.elapsed().as_nanos() as f64 / n as f64
    };
    match who {
        0 => {
            let round = || {
                let handles: Vec<_> = (0..n as u64).map(|i| greenrt::spawn(move || i)).collect();
                handles.into_iter().map(|h| h.join().unwrap()).sum()
            };
            (once(&round), once(&round))
        }
        1 => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let round = || {
                rt.block_on(async {
                    let handles: Vec<_> = (0..n as u64)
                        .map(|i| tokio::spawn(async move { i }))
                        .collect();
                    let mut sum = 0;
                    for h in handles {
                        sum += h.await.unwrap();
                    }
                    sum
                })
            };
            (once(&round), once(&round))
        }
        _ => {
            let round = || {
                let handles: Vec<_> = (0..n as u64)
                    // SAFETY: may's spawn is unsafe because a coroutine must not block its
                    // worker thread with thread-local tricks; these only return a number.
                    .map(|i| unsafe { may::coroutine::spawn(move || i) })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).sum()
            };
            (once(&round), once(&round))
        }
    }
}

/// The sleep of sleeper `i` in a storm (deterministic, so every runtime gets the same).
fn sleep_of(i: usize, range_ms: u64, seed: u64) -> Duration {
    let mut x = (i as u64 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    Duration::from_micros(x % (range_ms * 1000).max(1))
}

fn sleeper_storm(who: usize, n: usize, range_ms: u64, seed: u64) -> Lateness {
    let late_us =
        |start: Instant, d: Duration| (start.elapsed().saturating_sub(d)).as_nanos() as f64 / 1e3;
    let mut lateness: Vec<f64> = match who {
        0 => {
            let handles: Vec<_> = (0..n)
                .map(|i| {
                    greenrt::spawn(move || {
                        let d = sleep_of(i, range_ms, seed);
                        let start = Instant::now();
                        greenrt::sleep(d);
                        late_us(start, d)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        }
        1 => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let handles: Vec<_> = (0..n)
                    .map(|i| {
                        tokio::spawn(async move {
                            let d = sleep_of(i, range_ms, seed);
                            let start = Instant::now();
                            tokio::time::sleep(d).await;
                            late_us(start, d)
                        })
                    })
                    .collect();
                let mut out = Vec::with_capacity(n);
                for h in handles {
                    out.push(h.await.unwrap());
                }
                out
            })
        }
        _ => {
            let handles: Vec<_> = (0..n)
                .map(|i| {
                    // SAFETY: as in `spawn_burst`: the coroutine only sleeps (may's own sleep).
                    unsafe {
                        may::coroutine::spawn(move || {
                            let d = sleep_of(i, range_ms, seed);
                            let start = Instant::now();
                            may::coroutine::sleep(d);
                            late_us(start, d)
                        })
                    }
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        }
    };
    lateness.sort_by(f64::total_cmp);
    let at = |q: f64| lateness[((lateness.len() - 1) as f64 * q) as usize];
    (at(0.5), at(0.99), at(1.0))
}

fn print_table(n: usize, spawn: &[Vec<SpawnFigures>; 3], storm: &[Vec<Lateness>; 3]) {
    let first = |w: usize| stats::median(spawn[w].iter().map(|f| f.0).collect());
    let second = |w: usize| stats::median(spawn[w].iter().map(|f| f.1).collect());
    let p = |w: usize, k: usize| {
        if storm[w].is_empty() {
            return f64::NAN;
        }
        stats::median(storm[w].iter().map(|l| [l.0, l.1, l.2][k]).collect())
    };
    println!();
    println!(
        "{:<10} {:>14} {:>14} {:>12} {:>12} {:>12}",
        "", "spawn 1st", "spawn 2nd", "storm p50", "storm p99", "storm max"
    );
    println!(
        "{:<10} {:>14} {:>14} {:>12} {:>12} {:>12}",
        "", "ns/task", "ns/task", "µs late", "µs late", "µs late"
    );
    for (w, name) in NAMES.iter().enumerate() {
        println!(
            "{:<10} {:>14.0} {:>14.0} {:>12.0} {:>12.0} {:>12.0}",
            name,
            first(w),
            second(w),
            p(w, 0),
            p(w, 1),
            p(w, 2)
        );
    }
    for (w, name) in NAMES.iter().enumerate().skip(1) {
        println!(
            "greenrt/{:<6} {:>10.2}x {:>13.2}x {:>11.2}x {:>11.2}x {:>11.2}x",
            name,
            first(0) / first(w),
            second(0) / second(w),
            p(0, 0) / p(w, 0),
            p(0, 1) / p(w, 1),
            p(0, 2) / p(w, 2)
        );
    }
    println!("({n} per burst; ratios below 1 favour greenrt)");
}
