//! Figures for `greenrt::dist` in one run, rounds alternating: the Redis work queue's
//! tasks/s with 1 and 2 worker processes, and the spider's pages/s on a shared Redis frontier
//! with 1, 2 and 4 processes beside the in-process spider, with Redis round trips per page.
//!
//! `cargo run --release --features monkey,redis --example dist_bench -- [--rounds 3] [--tasks 20000] [--pages 2000] [--delay-ms 20] [--concurrency 25]`
//!
//! Starts its own `redis-server` (no persistence) on a free port and `site_server` from the
//! examples directory; the spider runs as separate processes (`--frontier`), as a user would
//! start them. Needs `redis-server` on the PATH and the examples built with
//! `--features monkey,redis`.

#[path = "common/args.rs"]
mod args;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenrt::dist::WorkQueue;
use greenrt::process::Process;

fn main() {
    let args = args::Cli::new(
        "dist_bench",
        "the Redis work queue and the spider on a shared Redis frontier, in one run",
    )
    .flag("rounds", "N", 3, "alternating rounds")
    .flag("tasks", "N", 20_000, "tasks per queue round")
    .flag("pages", "N", 2000, "pages of the crawled site")
    .flag("delay-ms", "MS", 20, "how long the site takes per page")
    .flag("concurrency", "N", 25, "green threads per spider process")
    .parse();
    let rounds: usize = args.get("rounds");
    let tasks: u64 = args.get("tasks");
    let pages: u32 = args.get("pages");
    let delay_ms: u32 = args.get("delay-ms");
    let concurrency: usize = args.get("concurrency");
    let dir = examples_dir();
    let redis = Redis::start();
    println!(
        "[dist_bench] redis-server on port {}; {tasks} tasks a run; a site of {pages} pages \
         ({delay_ms} ms each, 6 links), {concurrency} green threads per spider; {rounds} rounds",
        redis.port
    );
    let mut task_rates: Vec<Vec<f64>> = vec![Vec::new(); 2];
    let mut task_redis_cpu: Vec<Vec<f64>> = vec![Vec::new(); 2];
    let spider_setups = [0usize, 1, 2, 4]; // 0: the in-process spider, no Redis
    let mut page_rates: Vec<Vec<f64>> = vec![Vec::new(); spider_setups.len()];
    let mut trips_per_page: Vec<Vec<f64>> = vec![Vec::new(); spider_setups.len()];
    for round in 0..rounds {
        for k in 0..2 {
            let workers = 1 + (round + k) % 2;
            let run = task_run(&redis.url(), workers, tasks, round);
            println!(
                "  round {} queue  {workers} worker(s): {:9.0} tasks/s, Redis CPU {:.1} µs a task",
                round + 1,
                run.rate,
                run.redis_cpu_us
            );
            task_rates[workers - 1].push(run.rate);
            task_redis_cpu[workers - 1].push(run.redis_cpu_us);
        }
        for k in 0..spider_setups.len() {
            let which = (round + k) % spider_setups.len();
            let procs = spider_setups[which];
            let crawl = format!("bench-{}-{round}-{procs}", std::process::id());
            let run = spider_run(
                &dir,
                &redis.url(),
                &crawl,
                procs,
                pages,
                delay_ms,
                concurrency,
            );
            println!(
                "  round {} spider {}: {:7.0} pages/s  ({} pages in {:.2} s, {:.2} Redis round trips a page)",
                round + 1,
                setup_name(procs),
                run.pages as f64 / run.secs,
                run.pages,
                run.secs,
                run.round_trips as f64 / run.pages as f64
            );
            page_rates[which].push(run.pages as f64 / run.secs);
            trips_per_page[which].push(run.round_trips as f64 / run.pages as f64);
        }
    }
    println!("\nmedians:");
    for (w, rates) in task_rates.iter().enumerate() {
        let ratio = median(rates) / median(&task_rates[0]);
        println!(
            "  queue  {} worker(s): {:9.0} tasks/s  {ratio:4.2}x one worker  Redis CPU {:.1} µs a task",
            w + 1,
            median(rates),
            median(&task_redis_cpu[w])
        );
    }
    let in_process = median(&page_rates[0]);
    for (i, procs) in spider_setups.iter().enumerate() {
        println!(
            "  spider {}: {:7.0} pages/s  {:4.2}x the in-process spider  {:.2} round trips a page",
            setup_name(*procs),
            median(&page_rates[i]),
            median(&page_rates[i]) / in_process,
            median(&trips_per_page[i])
        );
    }
}

fn setup_name(procs: usize) -> String {
    if procs == 0 {
        "in-process (no Redis)   ".to_string()
    } else {
        format!("Redis frontier, {procs} proc(s)")
    }
}

struct TaskRun {
    /// Tasks/s from the first put to the last result.
    rate: f64,
    /// The Redis server's CPU time (user + system) per task: what limits scaling out.
    redis_cpu_us: f64,
}

/// One queue run: `workers` processes with 64 slots each run `tasks` tasks (n → n + 1); the
/// producer puts them in batches of 100 and collects every result.
fn task_run(url: &str, workers: usize, tasks: u64, round: usize) -> TaskRun {
    let name = format!("bench-tasks-{}-{round}-{workers}", std::process::id());
    let queue: Rc<WorkQueue<u64, u64>> = Rc::new(WorkQueue::open(url, &name).unwrap());
    let children: Vec<Process> = (0..workers)
        .map(|_| {
            let (url, name) = (url.to_string(), name.clone());
            Process::spawn(move || worker_process(&url, &name)).expect("fork a worker")
        })
        .collect();
    let (started, cpu_before) = (Instant::now(), redis_cpu_secs(url));
    let producer = {
        let queue = queue.clone();
        greenrt::spawn(move || {
            let all: Vec<u64> = (0..tasks).collect();
            for batch in all.chunks(100) {
                queue.put_many(batch).expect("put");
            }
        })
    };
    let mut received = 0;
    while received < tasks {
        let r = queue
            .next_result(Duration::from_secs(30))
            .expect("results")
            .expect("a result within 30 s");
        assert_eq!(
            r.outcome,
            Ok(r.id),
            "task {} (n = id - 1) gives n + 1",
            r.id
        );
        received += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    let redis_cpu = redis_cpu_secs(url) - cpu_before;
    producer.join().unwrap();
    for child in &children {
        child.kill().unwrap();
        child.join().unwrap();
    }
    queue.purge().unwrap();
    TaskRun {
        rate: tasks as f64 / secs,
        redis_cpu_us: redis_cpu * 1e6 / tasks as f64,
    }
}

/// The Redis server's CPU seconds so far (`INFO cpu`: user + system of its main thread).
fn redis_cpu_secs(url: &str) -> f64 {
    let mut con = greenrt::dist::Connection::open(url).expect("redis");
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .query(&mut con)
        .expect("INFO cpu");
    info.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            ["used_cpu_sys_main_thread", "used_cpu_user_main_thread"]
                .contains(&k)
                .then(|| v.trim().parse::<f64>().ok())?
        })
        .sum()
}

/// A worker process: 64 green threads take and finish tasks until killed.
fn worker_process(url: &str, name: &str) {
    let queue: WorkQueue<u64, u64> = WorkQueue::open(url, name).unwrap();
    let worker = Rc::new(queue.worker(64).unwrap());
    let takers: Vec<_> = (0..64)
        .map(|_| {
            let worker = worker.clone();
            greenrt::spawn(move || {
                loop {
                    if let Some(lease) = worker.take(Duration::from_secs(1)).unwrap() {
                        let n = *lease.task();
                        lease.finish(Ok(n + 1)).unwrap();
                    }
                }
            })
        })
        .collect();
    greenrt::joinall(takers);
}

struct SpiderRun {
    pages: u64,
    secs: f64,
    round_trips: u64,
}

/// One crawl of a fresh site: by the in-process spider (`procs` 0) or by `procs` spider
/// processes sharing a Redis frontier. Checks that every page was fetched once.
fn spider_run(
    dir: &Path,
    redis: &str,
    crawl: &str,
    procs: usize,
    pages: u32,
    delay_ms: u32,
    concurrency: usize,
) -> SpiderRun {
    let (mut site, addr) = start_site(dir, pages, delay_ms);
    let start = format!("http://{addr}/page/0");
    let common = [
        "--start".to_string(),
        start,
        "--concurrency".to_string(),
        concurrency.to_string(),
        "--max-pages".to_string(),
        pages.to_string(),
    ];
    let started = Instant::now();
    let spiders: Vec<Child> = (0..procs.max(1))
        .map(|_| {
            let mut command = Command::new(dir.join("spider"));
            command.args(&common).stdout(Stdio::piped());
            if procs > 0 {
                command.args(["--frontier", redis, "--crawl", crawl]);
            }
            command.spawn().expect("spider")
        })
        .collect();
    let outputs: Vec<String> = spiders
        .into_iter()
        .map(|c| {
            String::from_utf8_lossy(&c.wait_with_output().expect("spider").stdout).into_owned()
        })
        .collect();
    let secs = started.elapsed().as_secs_f64();
    let stats = http_get(&addr, "/stats");
    let _ = site.kill();
    let _ = site.wait();
    if !stats.contains(&format!("distinct={pages} max_per_page=1")) {
        eprintln!(
            "warning: not every page fetched exactly once: {}",
            stats.trim()
        );
    }
    let field = |line: Option<&str>, name: &str| -> u64 {
        line.and_then(|l| l.split_whitespace().find_map(|f| f.strip_prefix(name)))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let mut run = SpiderRun {
        pages: 0,
        secs,
        round_trips: 0,
    };
    for out in &outputs {
        run.pages += field(out.lines().find(|l| l.starts_with("spider: ")), "pages=");
        run.round_trips += field(
            out.lines().find(|l| l.starts_with("crawl: ")),
            "redis_round_trips_here=",
        );
    }
    run
}

/// `site_server` on a free port; returns it and its address.
fn start_site(dir: &Path, pages: u32, delay_ms: u32) -> (Child, String) {
    let mut site = Command::new(dir.join("site_server"))
        .args(["--addr", "127.0.0.1:0", "--links", "6"])
        .args([
            "--pages",
            &pages.to_string(),
            "--delay-ms",
            &delay_ms.to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("site_server");
    let mut out = BufReader::new(site.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let addr = first.trim().rsplit(' ').next().unwrap().to_string();
    (site, addr)
}

/// A plain HTTP GET on a std socket (the bench itself is not monkey-patched).
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("the site");
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text
}

/// The directory holding the examples built next to this one.
fn examples_dir() -> PathBuf {
    let dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .filter(|d| d.join("spider").exists() && d.join("site_server").exists());
    dir.unwrap_or_else(|| {
        eprintln!("error: build the examples first: cargo build --release --features monkey,redis --examples");
        std::process::exit(2);
    })
}

/// A `redis-server` for the run, killed at the end.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|_| {
                eprintln!(
                    "error: redis-server is not on the PATH (apt-get install -y redis-server)"
                );
                std::process::exit(2);
            });
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Redis { child, port }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}
