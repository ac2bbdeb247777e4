//! greenrt's spider against the Python reference spider (`ThreadPoolExecutor` + `urllib`,
//! `examples/python/spider.py`), side by side in one run, on a site served by Python's own
//! `ThreadingHTTPServer` (`examples/python/site.py`: HTTP/1.1, headers and body written
//! separately, 100 ms per page, 6 links a page, 301 pages). Rounds alternate which spider goes
//! first; each run gets a fresh site, whose request counts prove every page was fetched once.
//!
//! `cargo run --release --features monkey --example spider_compare -- [--rounds 3] [--backlog 128] [--serial] [--timeout 10]`
//!
//! `--backlog 5` serves the site with Python's default listen backlog (a burst of connects
//! overflows it; `--timeout` is greenrt's deadline per attempt); `--serial` adds greenrt's serial mode (301 × 100 ms: about 30 s a run).
//! Needs `python3` and the `spider` example next to this one (built with `--features monkey`).

#[path = "common/args.rs"]
mod args;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

fn main() {
    let args = args::Cli::new(
        "spider_compare",
        "greenrt's spider vs Python's (ThreadPoolExecutor + urllib), on Python's server",
    )
    .mirrors("the spider with a thread pool, course note 1 (pools, callbacks, gevent, asyncio)")
    .flag("rounds", "N", 3, "alternating rounds")
    .flag("backlog", "N", 128, "the site's listen backlog")
    .flag("timeout", "S", 10.0, "per-request deadline")
    .switch("serial", "also time the serial spiders")
    .parse();
    let rounds: usize = args.get("rounds");
    let backlog: u32 = args.get("backlog");
    let timeout: f64 = args.get("timeout");
    let dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .filter(|d| d.join("spider").exists());
    let Some(dir) = dir else {
        eprintln!(
            "error: build the spider first: cargo build --release --features monkey --examples"
        );
        std::process::exit(2);
    };
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python");
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("error: python3 is not on the PATH; nothing to compare against");
        std::process::exit(2);
    }
    let mut spiders = vec!["python", "green", "threads"];
    if args.has("serial") {
        spiders.push("serial");
    }
    println!(
        "[spider_compare] 301 pages, 100 ms each, 6 links a page, listen backlog {backlog}; \
         {rounds} rounds, alternating"
    );
    let mut secs: Vec<Vec<f64>> = vec![Vec::new(); spiders.len()];
    for round in 0..rounds {
        for k in 0..spiders.len() {
            let who = (round + k) % spiders.len();
            let run = crawl_once(&dir, &scripts, spiders[who], backlog, timeout);
            println!(
                "  round {} {:8} {:6.2} s  pages {} errors {}  site: {}",
                round + 1,
                spiders[who],
                run.secs,
                run.pages,
                run.errors,
                run.site_stats
            );
            if !run.site_stats.contains("distinct=301") {
                eprintln!("error: {} did not fetch every page", spiders[who]);
            }
            secs[who].push(run.secs);
        }
    }
    println!();
    let python = median(&secs[0]);
    for (who, name) in spiders.iter().enumerate() {
        let m = median(&secs[who]);
        println!(
            "{name:8} median {m:6.2} s   {:5.2}x the Python spider's time",
            m / python
        );
    }
}

/// One spider run against a fresh site.
struct Run {
    secs: f64,
    pages: String,
    errors: String,
    site_stats: String,
}

fn crawl_once(dir: &Path, scripts: &Path, spider: &str, backlog: u32, timeout: f64) -> Run {
    let (mut site, addr) = start_site(scripts, backlog);
    let start = format!("http://{addr}/page/0");
    let t0 = Instant::now();
    let output = if spider == "python" {
        Command::new("python3")
            .arg(scripts.join("spider.py"))
            .args(["--start", &start])
            .output()
    } else {
        Command::new(dir.join("spider"))
            .args(["--start", &start, "--mode", spider, "--max-pages", "1000"])
            .args(["--timeout", &timeout.to_string()])
            .output()
    }
    .expect("run the spider");
    let secs = t0.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or("").to_string();
    let field = |name: &str| {
        last.split_whitespace()
            .find_map(|f| f.strip_prefix(name))
            .unwrap_or("?")
            .to_string()
    };
    let site_stats = get_stats(&addr);
    let _ = site.kill();
    let _ = site.wait();
    Run {
        secs,
        pages: field("pages="),
        errors: field("errors="),
        site_stats,
    }
}

/// Starts `site.py` on a free port; returns it and its address.
fn start_site(scripts: &Path, backlog: u32) -> (Child, String) {
    let mut child = Command::new("python3")
        .arg(scripts.join("site.py"))
        .args(["--port", "0", "--backlog", &backlog.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start python3 site.py");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut line)
        .expect("read the site's address");
    let addr = line.trim().trim_start_matches("listening on ").to_string();
    (child, addr)
}

/// The site's own count of requests (`GET /stats`), over a plain std socket.
fn get_stats(addr: &str) -> String {
    let Ok(mut conn) = std::net::TcpStream::connect(addr) else {
        return "unreachable".into();
    };
    let _ = write!(
        conn,
        "GET /stats HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    answer.lines().last().unwrap_or("").trim().to_string()
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}
