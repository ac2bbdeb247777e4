//! The four echo server models under the same load, side by side in one run: green threads
//! on one hub (`echo_server`), pre-forked processes with green threads (`echo_prefork`), an
//! OS thread per connection (`echo_threads`) and callbacks on mio (`echo_selectors`). Each
//! server runs as its own process; this process drives it with the green load generator
//! (64-byte messages, every echo checked).
//!
//! `cargo run --release --example echo_models -- [--conns 50] [--secs 3] [--workers 2]`
//!
//! The server binaries are the sibling examples: build them first
//! (`cargo build --release --examples`).

#[path = "common/args.rs"]
mod args;
#[path = "common/echo.rs"]
mod echo;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

fn start(name: &str, extra: &[&str]) -> std::io::Result<(Child, SocketAddr)> {
    let exe = std::env::current_exe()?.with_file_name(name);
    let mut child = Command::new(&exe)
        .args(["--addr", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            std::io::Error::other(format!("{}: {e} (build the examples first)", exe.display()))
        })?;
    let mut first = String::new();
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    out.read_line(&mut first)?;
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let addr = first
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or("")
        .parse()
        .map_err(std::io::Error::other)?;
    Ok((child, addr))
}

fn main() -> std::io::Result<()> {
    let args = args::Cli::new(
        "echo_models",
        "the four echo server models under the same load, side by side",
    )
    .mirrors("the server models (socketserver, fork, threads, selectors), course note 0 (sockets, socketserver, processes)")
    .flag("conns", "N", 50, "connections")
    .flag("secs", "S", 3.0, "seconds per model")
    .flag("workers", "N", 2, "processes for the pre-forked model")
    .parse();
    let conns: usize = args.get("conns");
    let secs: f64 = args.get("secs");
    let workers: String = args.get("workers");
    let models: [(&str, &str, Vec<&str>); 4] = [
        ("green (1 hub)", "echo_server", vec![]),
        (
            "prefork + green",
            "echo_prefork",
            vec!["--workers", &workers],
        ),
        ("thread per conn", "echo_threads", vec![]),
        ("selectors (mio)", "echo_selectors", vec![]),
    ];
    println!("[echo_models] {conns} connections, {secs} s per model, 64-byte messages");
    println!(
        "{:<18} {:>12} {:>10} {:>10} {:>8}",
        "model", "rt/s", "p50 us", "p99 us", "errors"
    );
    let mut base = None;
    for (label, name, extra) in models {
        let (mut child, addr) = start(name, &extra)?;
        let r = echo::bench(addr, conns, secs, 64);
        let _ = child.kill();
        let _ = child.wait();
        let rate = r.rate();
        let base_rate = *base.get_or_insert(rate);
        println!(
            "{label:<18} {rate:>12.0} {:>10} {:>10} {:>8}   {:.2}x green",
            r.percentile_us(0.5),
            r.percentile_us(0.99),
            r.errors + r.mismatches,
            rate / base_rate
        );
    }
    Ok(())
}
