//! The main job: a bounded run that exercises everything greenrt has and prints a table of
//! figures and PASS/FAIL invariants. Exits non-zero if any invariant fails.
//!
//! `cargo run --release --example stress` takes about half a minute on 2 cores (a million
//! green threads, 100k timers, 10k lock contenders, an echo pair); `-- --quick` a few seconds;
//! `-- --only freeze,ipc` runs only the storms named (names below). It says where it is as it
//! goes: `[3/9 sync] … starting at 12.3 s` as each storm starts, `[3/9 sync] … 4.2 s` at least
//! every 2 s while one runs, then the table of figures and checks.
//!
//! Storms:
//! * spawn — many parked green threads at once (RSS per green thread), then the spawn+join
//!   rate of trivial green threads;
//! * timer — green threads spawned in one burst, sleeping random 0..T ms again and again; how
//!   late each wakes (p50/p99/max), for the first sleeps (during the start-up burst) and in
//!   the steady state;
//! * sync  — 10k green threads contending one green Mutex and one bounded Queue;
//! * echo  — an echo server in a child process and the green load generator in this one,
//!   every round trip checked;
//! * ipc   — producer and consumer processes on one `ipc::Queue`, and workers on one
//!   `ipc::Lock`, while random ones are SIGKILLed (see examples/common/ipc_storm.rs);
//! * freeze — processes frozen (SIGSTOP) for 50–200 ms inside ipc primitives while others time
//!   their timed and `try_*` calls on them (see examples/common/ipc_freeze.rs);
//! * fuzz  — named objects of every kind damaged at random, then opened and used in a child
//!   with a watchdog: a clean error every time (see examples/common/ipc_fuzz.rs);
//! * pool  — many tiny tasks on a `process::Pool` while its workers are SIGKILLed mid-task;
//! * spider — `site_server` and the monkey-patched `spider` (if built: it needs
//!   `--features monkey`), every page fetched exactly once.

#[path = "common/args.rs"]
mod args;
#[path = "common/echo.rs"]
mod echo;
#[path = "common/ipc_freeze.rs"]
mod ipc_freeze;
#[path = "common/ipc_fuzz.rs"]
mod ipc_fuzz;
#[path = "common/ipc_storm.rs"]
mod ipc_storm;
#[path = "common/rng.rs"]
mod rng;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Sizes of one run.
struct Plan {
    parked: usize,
    spawn_joins: usize,
    sleepers: usize,
    sleep_range_ms: u64,
    timer_secs: f64,
    echo_conns: usize,
    echo_secs: f64,
    sync_threads: usize,
    sync_rounds: usize,
    ipc_secs: f64,
    spider_pages: usize,
}

const FULL: Plan = Plan {
    parked: 1_000_000,
    spawn_joins: 2_000_000,
    sleepers: 100_000,
    sleep_range_ms: 1000,
    timer_secs: 5.0,
    echo_conns: 50,
    echo_secs: 10.0,
    sync_threads: 10_000,
    sync_rounds: 100,
    ipc_secs: 5.0,
    spider_pages: 1000,
};

const QUICK: Plan = Plan {
    parked: 50_000,
    spawn_joins: 200_000,
    sleepers: 20_000,
    sleep_range_ms: 200,
    timer_secs: 1.0,
    echo_conns: 20,
    echo_secs: 1.0,
    sync_threads: 10_000,
    sync_rounds: 5,
    ipc_secs: 1.0,
    spider_pages: 200,
};

/// Figures and invariant outcomes, printed at the end.
#[derive(Default)]
struct Report {
    figures: Vec<(&'static str, String, String)>,
    checks: Vec<(bool, String)>,
}

impl Report {
    fn figure(&mut self, storm: &'static str, what: &str, value: String) {
        println!("[{storm}] {what}: {value}");
        self.figures.push((storm, what.to_string(), value));
    }

    fn check(&mut self, ok: bool, what: String) {
        self.checks.push((ok, what));
    }
}

/// One storm: it runs to a plan and adds its figures and checks to the report.
type Storm = fn(&Plan, &mut Report);

/// Every storm, in the order a full run takes them (`--only a,b` picks some).
const STORMS: [(&str, Storm); 9] = [
    ("spawn", spawn_storm),
    ("timer", timer_storm),
    ("sync", sync_storm),
    ("echo", echo_storm),
    ("ipc", ipc_storm),
    ("freeze", freeze_round),
    ("fuzz", fuzz_round),
    ("pool", pool_storm),
    ("spider", spider_round),
];

fn main() {
    let args = args::Cli::new(
        "stress",
        "the main job: a bounded run over everything greenrt has, with PASS/FAIL checks",
    )
    .switch("quick", "a short run of every storm")
    .flag(
        "only",
        "NAMES",
        "",
        "run only these storms (comma-separated)",
    )
    .switch("echo-server", "internal: be the echo server child")
    .parse();
    if args.has("echo-server") {
        return run_echo_server_child();
    }
    let plan = if args.has("quick") { QUICK } else { FULL };
    println!(
        "[main] greenrt stress ({} run)",
        if args.has("quick") { "quick" } else { "full" }
    );
    let only: String = args.get("only");
    let chosen = |name: &str| only.is_empty() || only.split(',').any(|o| o == name);
    let mut report = Report::default();
    let started = Instant::now();
    let storms: Vec<_> = STORMS.iter().filter(|(name, _)| chosen(name)).collect();
    let progress = Progress::start();
    for (i, (name, storm)) in storms.iter().enumerate() {
        progress.phase(format!("{}/{} {name}", i + 1, storms.len()));
        storm(&plan, &mut report);
    }
    progress.finish();
    if report.checks.is_empty() {
        let names: Vec<&str> = STORMS.iter().map(|(name, _)| *name).collect();
        eprintln!(
            "error: --only {only:?} names no storm; they are {}",
            names.join(",")
        );
        std::process::exit(2);
    }
    print_summary(&report, started.elapsed());
    if report.checks.iter().any(|(ok, _)| !ok) {
        std::process::exit(1);
    }
}

/// Where the run is, on stdout: a line as each storm starts (`[3/9 sync] … starting at 12.3 s`) and a
/// tick at least every 2 s while it runs (`[3/9 sync] … 4.2 s`), from a thread of its own —
/// a storm may keep the main thread busy for a while (a million green threads parking).
struct Progress {
    shared: Arc<(Mutex<Phase>, Condvar)>,
    ticker: std::thread::JoinHandle<()>,
    started: Instant,
}

/// The phase now running (`None` once the run is over) and when it started.
#[derive(Default)]
struct Phase {
    name: Option<String>,
    since: Option<Instant>,
    over: bool,
}

/// How often a running phase says it is still alive.
const TICK: Duration = Duration::from_millis(1800);

impl Progress {
    fn start() -> Progress {
        let shared = Arc::new((Mutex::new(Phase::default()), Condvar::new()));
        let watched = shared.clone();
        let ticker = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || tick_until_over(&watched))
            .expect("cannot start the progress thread");
        Progress {
            shared,
            ticker,
            started: Instant::now(),
        }
    }

    fn phase(&self, name: String) {
        let (phase, changed) = &*self.shared;
        let mut phase = phase.lock().unwrap();
        let at = self.started.elapsed().as_secs_f64();
        println!("[{name}] … starting at {at:.1} s");
        phase.name = Some(name);
        phase.since = Some(Instant::now());
        changed.notify_one();
    }

    fn finish(self) {
        let (phase, changed) = &*self.shared;
        phase.lock().unwrap().over = true;
        changed.notify_one();
        self.ticker.join().expect("the progress thread panicked");
    }
}

fn tick_until_over(shared: &(Mutex<Phase>, Condvar)) {
    let (phase, changed) = shared;
    let mut phase = phase.lock().unwrap();
    while !phase.over {
        let seen = phase.since;
        phase = changed.wait_timeout(phase, TICK).unwrap().0;
        if let (Some(name), Some(since)) = (&phase.name, phase.since)
            && phase.since == seen
            && !phase.over
        {
            println!("[{name}] … {:.1} s", since.elapsed().as_secs_f64());
        }
    }
}

fn spawn_storm(plan: &Plan, report: &mut Report) {
    println!("[spawn] parking {} green threads ...", plan.parked);
    let rss_before = greenrt::hub::resident_bytes().unwrap_or(0);
    let t0 = Instant::now();
    let handles: Vec<_> = (0..plan.parked)
        .map(|_| greenrt::spawn(|| greenrt::sleep(Duration::from_secs(3600))))
        .collect();
    greenrt::yield_now(); // every one runs to its sleep and parks
    let spawn_secs = t0.elapsed().as_secs_f64();
    let rss_after = greenrt::hub::resident_bytes().unwrap_or(0);
    let per_thread = rss_after.saturating_sub(rss_before) as f64 / plan.parked as f64;
    report.figure(
        "spawn",
        "parked at once",
        format!("{}", greenrt::hub::stats().alive),
    );
    report.figure(
        "spawn",
        "RSS per parked green thread",
        format!("{:.2} KiB", per_thread / 1024.0),
    );
    report.figure(
        "spawn",
        "spawn+park rate",
        format!("{:.0}/s", plan.parked as f64 / spawn_secs),
    );
    report.figure(
        "spawn",
        "stack guard",
        greenrt::hub::stats().guard.to_string(),
    );
    report.check(
        greenrt::hub::stats().alive == plan.parked,
        format!("spawn: {} green threads parked at once", plan.parked),
    );

    println!("[spawn] killing them ...");
    let t1 = Instant::now();
    for h in &handles {
        h.kill();
    }
    let killed = handles
        .into_iter()
        .filter(|h| h.is_finished())
        .map(|h| h.join())
        .filter(|r| matches!(r, Err(e) if e.is_killed()))
        .count();
    report.figure(
        "spawn",
        "kill rate",
        format!("{:.0}/s", plan.parked as f64 / t1.elapsed().as_secs_f64()),
    );
    report.check(
        killed == plan.parked,
        format!(
            "spawn: all {} killed, each join says Killed (got {killed})",
            plan.parked
        ),
    );

    println!(
        "[spawn] {} spawn+join of trivial green threads ...",
        plan.spawn_joins
    );
    let t2 = Instant::now();
    let mut sum = 0u64;
    for batch in 0..plan.spawn_joins / 1000 {
        let hs: Vec<_> = (0..1000u64)
            .map(|i| greenrt::spawn(move || i + batch as u64))
            .collect();
        sum += greenrt::joinall(hs)
            .into_iter()
            .map(|r| r.unwrap_or(0))
            .sum::<u64>();
    }
    let rate = plan.spawn_joins as f64 / t2.elapsed().as_secs_f64();
    report.figure(
        "spawn",
        "spawn+join rate (batches of 1000)",
        format!("{rate:.0}/s"),
    );
    let batches = (plan.spawn_joins / 1000) as u64;
    let expected = batches * 499_500 + 1000 * batches * (batches - 1) / 2;
    report.check(
        sum == expected,
        "spawn: every trivial green thread returned its value".into(),
    );
    report.check(
        greenrt::hub::stats().alive == 0,
        "spawn: no green thread left alive".into(),
    );
}

fn timer_storm(plan: &Plan, report: &mut Report) {
    println!(
        "[timer] {} green threads spawned in one burst, each sleeping random 0..{} ms again \
         and again for {} s ...",
        plan.sleepers, plan.sleep_range_ms, plan.timer_secs
    );
    // Two figures: the first sleep of every sleeper (armed during the start-up burst, while
    // tens of thousands of green threads have not run yet: fair wake-ups must keep it on
    // time) and the sleeps armed once every sleeper has started (the steady state).
    let burst: Rc<RefCell<Vec<u64>>> = Rc::default();
    let steady: Rc<RefCell<Vec<u64>>> = Rc::default();
    let (early, started) = (Rc::new(Cell::new(0usize)), Rc::new(Cell::new(0usize)));
    let steady_from: Rc<Cell<Option<Instant>>> = Rc::default();
    let end = Instant::now() + Duration::from_secs_f64(plan.timer_secs);
    let handles: Vec<_> = (0..plan.sleepers as u64)
        .map(|i| {
            let (burst, steady, early, started, steady_from) = (
                burst.clone(),
                steady.clone(),
                early.clone(),
                started.clone(),
                steady_from.clone(),
            );
            let (range_us, sleepers) = (plan.sleep_range_ms * 1000, plan.sleepers);
            greenrt::spawn(move || {
                started.set(started.get() + 1);
                if started.get() == sleepers {
                    steady_from.set(Some(Instant::now()));
                }
                let mut rng = (i + 1).wrapping_mul(0x9E3779B97F4A7C15);
                let mut first = true;
                while first || Instant::now() < end {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let armed = Instant::now();
                    let deadline = armed + Duration::from_micros(rng % range_us);
                    greenrt::sleep_until(deadline);
                    let now = Instant::now();
                    if now < deadline {
                        early.set(early.get() + 1);
                    }
                    let late = (now - deadline).as_micros() as u64;
                    if first {
                        burst.borrow_mut().push(late);
                    } else if steady_from.get().is_some_and(|t| armed >= t) {
                        steady.borrow_mut().push(late);
                    }
                    first = false;
                }
            })
        })
        .collect();
    let ok = greenrt::joinall(handles).iter().all(Result::is_ok);
    for (what, lateness) in [("burst", burst), ("steady", steady)] {
        let mut late = lateness.take();
        late.sort_unstable();
        let pct = |p: f64| {
            late.get(((late.len().max(1) - 1) as f64 * p) as usize)
                .copied()
                .unwrap_or(0)
        };
        report.figure(
            "timer",
            &format!("{what}: wakes, lateness p50 / p99 / max"),
            format!(
                "{}, {} / {} / {} us",
                late.len(),
                pct(0.5),
                pct(0.99),
                late.last().copied().unwrap_or(0)
            ),
        );
        report.check(
            !late.is_empty(),
            format!("timer: {what} wakes were measured ({})", late.len()),
        );
    }
    report.check(
        ok,
        format!("timer: all {} sleepers ran to the end", plan.sleepers),
    );
    report.check(
        early.get() == 0,
        format!("timer: no sleeper woke early ({} did)", early.get()),
    );
}

fn sync_storm(plan: &Plan, report: &mut Report) {
    use greenrt::sync::{Mutex, Queue};
    let (n, rounds) = (plan.sync_threads, plan.sync_rounds);
    println!(
        "[sync] {n} green threads, {rounds} rounds each on one Mutex and one bounded Queue ..."
    );
    // Each round: lock, read, yield while holding the lock, write back (a lost update shows
    // as a wrong total), then pass a token through the queue.
    let counter = Rc::new(Mutex::new(0usize));
    let inside = Rc::new(Cell::new(0usize));
    let overlap = Rc::new(Cell::new(false));
    let queue: Rc<Queue<usize>> = Rc::new(Queue::new(64));
    let start = Instant::now();
    let workers: Vec<_> = (0..n)
        .map(|i| {
            let (counter, inside, overlap, queue) = (
                counter.clone(),
                inside.clone(),
                overlap.clone(),
                queue.clone(),
            );
            greenrt::spawn(move || {
                for _ in 0..rounds {
                    let mut c = counter.lock();
                    inside.set(inside.get() + 1);
                    overlap.set(overlap.get() || inside.get() > 1);
                    let seen = *c;
                    greenrt::yield_now();
                    *c = seen + 1;
                    inside.set(inside.get() - 1);
                    drop(c);
                    queue.put(i).expect("open");
                    queue.get().expect("open");
                }
            })
        })
        .collect();
    let ok = greenrt::joinall(workers).iter().all(Result::is_ok);
    let secs = start.elapsed().as_secs_f64();
    let ops = n * rounds;
    report.figure(
        "sync",
        "contended lock+unlock rate",
        format!("{:.0}/s", ops as f64 / secs),
    );
    report.check(
        ok && *counter.lock() == ops,
        format!("sync: counter is exactly {ops} (no lost update)"),
    );
    report.check(
        !overlap.get(),
        "sync: never two holders of the Mutex at once".into(),
    );
    report.check(
        queue.is_empty(),
        "sync: the queue is empty at the end (every put got)".into(),
    );
}

fn echo_storm(plan: &Plan, report: &mut Report) {
    let (mut child, addr) = match echo::spawn_self_server("--echo-server") {
        Ok(pair) => pair,
        Err(e) => {
            report.check(
                false,
                format!("echo: could not start the server process: {e}"),
            );
            return;
        }
    };
    println!(
        "[echo] server pid {} on {addr}; {} connections for {} s ...",
        child.id(),
        plan.echo_conns,
        plan.echo_secs
    );
    let r = echo::bench(addr, plan.echo_conns, plan.echo_secs, 64);
    let _ = child.kill();
    let _ = child.wait();
    report.figure("echo", "round trips/s", format!("{:.0}", r.rate()));
    report.figure(
        "echo",
        "latency p50 / p99",
        format!("{} / {} us", r.percentile_us(0.5), r.percentile_us(0.99)),
    );
    report.check(
        r.round_trips > 0,
        format!("echo: round trips happened ({})", r.round_trips),
    );
    report.check(
        r.errors == 0,
        format!("echo: no connection failed ({} did)", r.errors),
    );
    report.check(
        r.mismatches == 0,
        format!(
            "echo: every echo matched what was sent ({} did not)",
            r.mismatches
        ),
    );
}

fn ipc_storm(plan: &Plan, report: &mut Report) {
    let secs = plan.ipc_secs;
    println!(
        "[ipc] 3 producers + 3 consumers on one ipc::Queue, one SIGKILLed every ~12 ms, {secs} s ..."
    );
    match ipc_storm::queue_storm(secs, 3, seed()) {
        Ok(r) => {
            report.figure(
                "ipc",
                "queue messages/s under kill -9",
                format!("{:.0}", r.delivered as f64 / r.secs),
            );
            report.figure(
                "ipc",
                "queue kills (producers / consumers)",
                format!("{} / {}", r.producer_kills, r.consumer_kills),
            );
            report.check(
                r.duplicates == 0,
                format!("ipc: no message delivered twice ({} were)", r.duplicates),
            );
            report.check(
                r.failed_consumers == 0,
                format!(
                    "ipc: no torn message, no failed consumer ({} failed)",
                    r.failed_consumers
                ),
            );
            report.check(
                r.hung_consumers == 0,
                format!("ipc: no survivor hung ({} did)", r.hung_consumers),
            );
            report.check(
                r.lost <= r.consumer_kills,
                format!(
                    "ipc: returned puts not delivered ({}) <= consumer kills ({}), {} delivered",
                    r.lost, r.consumer_kills, r.delivered
                ),
            );
        }
        Err(e) => report.check(false, format!("ipc: queue storm could not run: {e}")),
    }
    println!("[ipc] 3 workers on one ipc::Lock, one SIGKILLed every ~6 ms, {secs} s ...");
    match ipc_storm::lock_storm(secs, 3, seed() ^ 0xabcd) {
        Ok(r) => {
            report.figure(
                "ipc",
                "lock entries/s under kill -9",
                format!("{:.0}", r.entries as f64 / r.secs),
            );
            report.figure(
                "ipc",
                "lock holders killed / recovered",
                format!("{} / {}", r.kills, r.recoveries),
            );
            report.check(
                r.overlaps == 0,
                format!(
                    "ipc: never two lock holders at once ({} overlaps)",
                    r.overlaps
                ),
            );
            report.check(
                r.entries > 0,
                format!("ipc: the lock kept working ({} entries)", r.entries),
            );
        }
        Err(e) => report.check(false, format!("ipc: lock storm could not run: {e}")),
    }
}

/// How late a timed ipc call may return while other processes are frozen inside the
/// primitives it uses (issue 13's rule).
const FREEZE_LATE: Duration = Duration::from_millis(50);

fn freeze_round(plan: &Plan, report: &mut Report) {
    let secs = plan.ipc_secs;
    println!(
        "[freeze] 3 processes on one ipc Queue/Semaphore/Lock frozen 50-200 ms at a time \
         (SIGSTOP, also inside critical sections); 2 others time their calls, {secs} s ..."
    );
    match ipc_freeze::freeze_storm(secs, 3, 2, FREEZE_LATE, seed()) {
        Ok(r) => {
            report.figure(
                "freeze",
                "frozen by SIGSTOP / inside a lock",
                format!("{} / {}", r.outside_freezes, r.inside_freezes),
            );
            report.figure(
                "freeze",
                "timed + try_* calls, worst overrun",
                format!(
                    "{} calls, {:.1} ms",
                    r.calls,
                    r.max_overrun.as_secs_f64() * 1e3
                ),
            );
            report.check(
                r.late == 0 && r.calls > 0,
                format!(
                    "freeze: no call overran its deadline by more than {} ms ({} of {} did)",
                    FREEZE_LATE.as_millis(),
                    r.late,
                    r.calls
                ),
            );
            report.check(
                r.inside_freezes > 0,
                format!(
                    "freeze: processes froze inside critical sections ({} times)",
                    r.inside_freezes
                ),
            );
            report.check(
                r.failed == 0,
                format!("freeze: every process ended cleanly ({} did not)", r.failed),
            );
        }
        Err(e) => report.check(false, format!("freeze: storm could not run: {e}")),
    }
}

fn fuzz_round(plan: &Plan, report: &mut Report) {
    let secs = plan.ipc_secs;
    let seed = seed();
    println!(
        "[fuzz] named ipc objects of every kind scribbled on and truncated, then opened and \
         used in a child with a watchdog, {secs} s (seed {seed:#x}) ..."
    );
    let fuzz = ipc_fuzz::random_cases(secs, seed);
    report.figure(
        "fuzz",
        "damaged objects opened and used",
        fuzz.cases.to_string(),
    );
    for failure in fuzz.failures.iter().take(5) {
        println!("[fuzz] FAILED: {failure}");
    }
    report.check(
        fuzz.failures.is_empty() && fuzz.cases > 0,
        format!(
            "fuzz: every damaged object ended in a clean Ok or Err ({} of {} did not)",
            fuzz.failures.len(),
            fuzz.cases
        ),
    );
}

fn pool_storm(plan: &Plan, report: &mut Report) {
    let secs = plan.ipc_secs;
    println!(
        "[pool] tiny tasks on a process Pool of 2, a worker SIGKILLed every ~10 ms, {secs} s ..."
    );
    match ipc_storm::pool_storm(secs, 2, seed()) {
        Ok(r) => {
            report.figure(
                "pool",
                "tasks/s under kill -9",
                format!("{:.0}", r.submitted as f64 / r.secs),
            );
            report.figure(
                "pool",
                "workers killed / tasks WorkerDied",
                format!("{} / {}", r.kills, r.worker_died),
            );
            report.check(
                r.succeeded + r.worker_died == r.submitted && r.wrong == 0,
                format!(
                    "pool: every task succeeded or said WorkerDied ({} + {} of {}, {} wrong)",
                    r.succeeded, r.worker_died, r.submitted, r.wrong
                ),
            );
            report.check(r.hung == 0, format!("pool: no task hung ({} did)", r.hung));
            report.check(
                r.worker_died <= r.kills,
                format!(
                    "pool: at most one task lost per kill ({} for {} kills)",
                    r.worker_died, r.kills
                ),
            );
        }
        Err(e) => report.check(false, format!("pool: storm could not run: {e}")),
    }
}

/// Runs `site_server` and `spider` (sibling example binaries) against each other.
fn spider_round(plan: &Plan, report: &mut Report) {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.to_path_buf()));
    let Some(dir) = dir.filter(|d| d.join("spider").exists() && d.join("site_server").exists())
    else {
        println!(
            "[spider] skipped: build it with `--features monkey` (it patches blocking sockets)"
        );
        return;
    };
    let pages = plan.spider_pages.to_string();
    println!(
        "[spider] site_server with {pages} pages (20 ms per answer), spider with 100 green threads ..."
    );
    let server = Command::new(dir.join("site_server"))
        .args([
            "--addr",
            "127.0.0.1:0",
            "--pages",
            &pages,
            "--links",
            "5",
            "--delay-ms",
            "20",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut server) = server else {
        report.check(false, "spider: could not start site_server".into());
        return;
    };
    let mut out = std::io::BufReader::new(server.stdout.take().expect("piped"));
    let mut first = String::new();
    let _ = out.read_line(&mut first);
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let addr = first.trim().rsplit(' ').next().unwrap_or("").to_string();
    let crawl = Command::new(dir.join("spider"))
        .args([
            "--start",
            &format!("http://{addr}/page/0"),
            "--concurrency",
            "100",
            "--max-pages",
            "100000",
        ])
        .output();
    let stats = std::net::TcpStream::connect(&addr).and_then(|mut c| {
        use std::io::{Read, Write};
        c.write_all(b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n")?;
        let mut text = String::new();
        c.read_to_string(&mut text)?;
        Ok(text)
    });
    let _ = server.kill();
    let _ = server.wait();
    let last = crawl
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .last()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default();
    report.figure("spider", "crawl", last.clone());
    let want = format!("spider: pages={pages} errors=0 ");
    report.check(
        last.starts_with(&want),
        format!("spider: every page fetched, no error ({last})"),
    );
    let once = format!("requests={pages} distinct={pages} max_per_page=1");
    report.check(
        stats.as_ref().is_ok_and(|s| s.contains(&once)),
        format!(
            "spider: the server saw each page exactly once ({})",
            stats
                .as_deref()
                .unwrap_or("no stats")
                .lines()
                .last()
                .unwrap_or("")
        ),
    );
}

/// A seed for the storms' random choices, printed so a run can be told apart.
fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}

fn run_echo_server_child() {
    let listener = greenrt::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    println!("{}", listener.local_addr().expect("bound"));
    echo::serve(listener, Rc::new(Cell::new(0)), true)
}

fn print_summary(report: &Report, took: Duration) {
    println!("\n{:<7} {:<38} value", "storm", "figure");
    for (storm, what, value) in &report.figures {
        println!("{storm:<7} {what:<38} {value}");
    }
    println!();
    for (ok, what) in &report.checks {
        println!("{} {what}", if *ok { "PASS" } else { "FAIL" });
    }
    let failed = report.checks.iter().filter(|(ok, _)| !ok).count();
    println!(
        "\nstress: {} passed, {} failed in {:.1} s",
        report.checks.len() - failed,
        failed,
        took.as_secs_f64()
    );
}
