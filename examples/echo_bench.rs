//! A load generator on green threads for any echo server.
//!
//! `cargo run --release --example echo_bench -- --addr 127.0.0.1:9000 --conns 50 --secs 5 --size 64`
//!
//! Each connection is a green thread that writes `size` bytes, reads them back, checks them,
//! and repeats until the time is up. Prints round trips/s, MiB/s and p50/p99 latency.

#[path = "common/args.rs"]
mod args;
#[path = "common/echo.rs"]
mod echo;

use std::net::SocketAddr;

fn main() {
    let args = args::Cli::new(
        "echo_bench",
        "a load generator for any echo server: N connections echoing for S seconds",
    )
    .mirrors("the socketserver client loop, course note 0 (sockets, socketserver, processes)")
    .flag("addr", "ADDR", "127.0.0.1:9000", "the echo server")
    .flag("conns", "N", 50, "connections held open at once")
    .flag("secs", "S", 5.0, "how long to run")
    .flag("size", "BYTES", 64, "message size")
    .parse();
    let addr: SocketAddr = args.get("addr");
    let conns: usize = args.get("conns");
    let secs: f64 = args.get("secs");
    let size: usize = args.get("size");
    println!("[main] {conns} connections to {addr} for {secs} s, {size}-byte messages");
    let r = echo::bench(addr, conns, secs, size);
    println!(
        "round trips/s: {:.0}   MiB/s: {:.2}   p50: {} us   p99: {} us   errors: {}   mismatches: {}",
        r.rate(),
        r.mib_per_sec(),
        r.percentile_us(0.50),
        r.percentile_us(0.99),
        r.errors,
        r.mismatches
    );
    if r.errors > 0 || r.mismatches > 0 {
        std::process::exit(1);
    }
}
