//! greenrt's echo server against a tokio current_thread echo server, same load generator,
//! same core pinning: the server process on CPU 0, the load generator (greenrt green threads)
//! on CPU 1. Prints, at 1, 50 and 1000 connections, round trips/s, the *server's CPU time per
//! round trip* (user + system, read from /proc around the run: what the server spends, not
//! what the load generator can push) and p99 latency, with the ratios greenrt / tokio.
//! The CPU ratio is the median of each round's own ratio (a round runs the two servers back
//! to back, so a machine that slows down over minutes slows both), and the last column says
//! in how many rounds greenrt's server used less CPU than tokio's.
//!
//! `cargo run --release --example echo_compare -- [--secs 2] [--rounds 3] [--size 64]`
//!
//! `--versus greenrt` runs greenrt against itself (an A/A run): its ratios are the noise of
//! this machine, the band a greenrt / tokio ratio must leave before it says anything.

#[path = "common/args.rs"]
mod args;
#[path = "common/echo.rs"]
mod echo;
#[path = "common/pin.rs"]
mod pin;
#[path = "common/stats.rs"]
mod stats;

use pin::pin_to_cpu;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

fn main() {
    let args = args::Cli::new(
        "echo_compare",
        "greenrt's echo server vs tokio's, pinned, same load, 1/50/1000 connections",
    )
    .flag("secs", "S", 2.0, "seconds per measurement")
    .flag("rounds", "N", 3, "alternating rounds")
    .flag("size", "BYTES", 64, "message size")
    .flag(
        "conns",
        "LIST",
        "1,50,1000",
        "connection counts, comma-separated",
    )
    .flag(
        "only",
        "SERVER",
        "both",
        "greenrt, tokio or both (to profile one server)",
    )
    .flag(
        "versus",
        "SERVER",
        "tokio",
        "the second server: tokio, or greenrt for an A/A run that shows the noise of the ratios",
    )
    .switch("serve-greenrt", "internal: be the greenrt server child")
    .switch("serve-tokio", "internal: be the tokio server child")
    .parse();
    if args.has("serve-greenrt") {
        return serve_greenrt();
    }
    if args.has("serve-tokio") {
        return serve_tokio();
    }
    let secs: f64 = args.get("secs");
    let rounds: usize = args.get("rounds");
    let size: usize = args.get("size");
    let conn_counts: Vec<usize> = args
        .get::<String>("conns")
        .split(',')
        .map(|c| {
            c.trim()
                .parse()
                .expect("--conns takes numbers, e.g. 1,50,1000")
        })
        .collect();
    let only: String = args.get("only");
    let (run_greenrt, run_tokio) = (only != "tokio", only != "greenrt");
    let versus: String = args.get("versus");
    let second_mode = match versus.as_str() {
        "tokio" => "--serve-tokio",
        "greenrt" => "--serve-greenrt",
        other => panic!("--versus takes tokio or greenrt, not {other:?}"),
    };
    if versus == "greenrt" {
        println!(
            "[main] A/A run: the \"tokio\" columns are a second greenrt server; their ratios show the noise"
        );
    }
    pin_to_cpu(1);
    println!(
        "[main] echo servers pinned to CPU 0, load generator to CPU 1; {secs} s per run, {size}-byte messages"
    );
    println!(
        "{:>6} {:>13} {:>13} {:>6} {:>12} {:>12} {:>6} {:>12} {:>12} {:>7}",
        "conns",
        "greenrt rt/s",
        "tokio rt/s",
        "ratio",
        "greenrt CPU",
        "tokio CPU",
        "ratio",
        "greenrt p99",
        "tokio p99",
        "g. less"
    );
    for conns in conn_counts {
        // Machines are noisy: alternate which server goes first and keep the median run. A
        // server left out (`--only`) is replaced by the other's runs, so its ratios read 1.
        let mut gs = Vec::new();
        let mut ts = Vec::new();
        for round in 0..rounds {
            let greenrt = || run_against("--serve-greenrt", conns, secs, size);
            let tokio = || run_against(second_mode, conns, secs, size);
            if round % 2 == 0 {
                gs.extend(run_greenrt.then(greenrt));
                ts.extend(run_tokio.then(tokio));
            } else {
                ts.extend(run_tokio.then(tokio));
                gs.extend(run_greenrt.then(greenrt));
            }
        }
        if gs.is_empty() {
            gs = ts.clone();
        }
        if ts.is_empty() {
            ts = gs.clone();
        }
        let (g_cpu, t_cpu) = (median_cpu(&gs), median_cpu(&ts));
        let (cpu_ratio, won) = paired_cpu_ratio(&gs, &ts);
        let (g, t) = (median(gs), median(ts));
        println!(
            "{conns:>6} {:>13.0} {:>13.0} {:>6.2} {:>9.2} us {:>9.2} us {:>6.2} {:>9} us {:>9} us {:>5}/{rounds}",
            g.0.rate(),
            t.0.rate(),
            g.0.rate() / t.0.rate(),
            g_cpu,
            t_cpu,
            cpu_ratio,
            g.0.percentile_us(0.99),
            t.0.percentile_us(0.99),
            won
        );
        let (g, t) = (g.0, t.0);
        if g.errors + g.mismatches + t.errors + t.mismatches > 0 {
            eprintln!(
                "errors: greenrt {}+{} tokio {}+{}",
                g.errors, g.mismatches, t.errors, t.mismatches
            );
            std::process::exit(1);
        }
    }
}

/// A run's report and the server's CPU time per round trip in microseconds.
type Run = (echo::BenchReport, f64);

/// The run with the median throughput.
fn median(mut runs: Vec<Run>) -> Run {
    runs.sort_by(|a, b| a.0.rate().total_cmp(&b.0.rate()));
    runs.swap_remove(runs.len() / 2)
}

/// The CPU ratio greenrt / tokio as the median of each round's ratio (the two runs of a
/// round are adjacent in time, so a machine that slows down over minutes slows both), and
/// in how many rounds greenrt used less.
fn paired_cpu_ratio(gs: &[Run], ts: &[Run]) -> (f64, usize) {
    let ratios: Vec<f64> = gs.iter().zip(ts).map(|(g, t)| g.1 / t.1).collect();
    let won = ratios.iter().filter(|&&r| r < 1.0).count();
    (stats::median(ratios), won)
}

/// The median of the runs' server CPU per round trip (µs).
fn median_cpu(runs: &[Run]) -> f64 {
    stats::median(runs.iter().map(|r| r.1).collect())
}

/// Starts this binary as one of the servers, benchmarks it, stops it.
fn run_against(mode: &str, conns: usize, secs: f64, size: usize) -> Run {
    let (mut child, addr) = echo::spawn_self_server(mode).expect("start the server process");
    let before = cpu_time(child.id());
    let report = echo::bench(addr, conns, secs, size);
    let used = cpu_time(child.id()) - before;
    let _ = child.kill();
    let _ = child.wait();
    let per_rt = used.as_secs_f64() * 1e6 / report.round_trips.max(1) as f64;
    (report, per_rt)
}

/// User + system CPU time of process `pid` so far, from /proc (clock-tick resolution).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    // After the command name: state is field 3, utime 14 and stime 15 (1-based, proc(5)).
    let ticks = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // SAFETY: sysconf with a valid name has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_micros((ticks(14) + ticks(15)) * 1_000_000 / hz)
}

fn serve_greenrt() {
    pin_to_cpu(0);
    let listener = greenrt::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    println!("{}", listener.local_addr().expect("bound"));
    echo::serve(listener, Rc::new(Cell::new(0)), true)
}

fn serve_tokio() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    pin_to_cpu(0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!("{}", listener.local_addr().expect("bound"));
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let _ = conn.set_nodelay(true);
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if conn.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    })
}
