//! `greenrt::dist::WorkQueue` against a real redis-server: results come back once, errors
//! too; a worker killed with `kill -9` or frozen past its lease loses nothing and the extra
//! runs are counted and bounded; a Redis restart and a lost reply neither lose nor duplicate;
//! `put_unique` admits a key once among many processes; damaged envelopes are set aside.
#![cfg(feature = "redis")]

mod util;

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenrt::dist::{Ack, Connection, Options, WorkQueue};
use greenrt::process::Process;
use redis::Commands;
use util::redis_server::RedisServer;

/// The tests fork; a child inherits whatever another test thread holds. Take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn options(lease_ms: u64) -> Options {
    Options {
        lease: Duration::from_millis(lease_ms),
        ..Options::default()
    }
}

/// Collects `n` results (at most `within`), as id → outcome; panics on a second result
/// for one id.
fn collect(
    queue: &WorkQueue<u64, u64>,
    n: usize,
    within: Duration,
) -> HashMap<u64, Result<u64, String>> {
    let mut results = HashMap::new();
    collect_into(&mut results, queue, n, within);
    results
}

/// Adds `n` more results to `results` (at most `within`); panics on a second result for an
/// id already there.
fn collect_into(
    results: &mut HashMap<u64, Result<u64, String>>,
    queue: &WorkQueue<u64, u64>,
    n: usize,
    within: Duration,
) {
    let (t0, wanted) = (Instant::now(), results.len() + n);
    while results.len() < wanted {
        assert!(
            t0.elapsed() < within,
            "only {} of {wanted} results after {within:?}: {:?}",
            results.len(),
            queue.stats().unwrap()
        );
        if let Some(r) = queue.next_result(Duration::from_millis(200)).unwrap() {
            let again = results.insert(r.id, r.outcome);
            assert!(again.is_none(), "task {} delivered twice", r.id);
        }
    }
}

/// Sends `sig` to the child process `child`.
fn signal(child: &Process, sig: libc::c_int) {
    // SAFETY: signalling our own child, which has not been reaped (we hold its Process).
    unsafe { libc::kill(child.pid() as libc::pid_t, sig) };
}

/// A worker process: takes tasks (n → 2n after `work` of green sleep) with `slots` green
/// threads until killed; with `count_runs`, counts every run of a task in the key `runs`
/// (on a plain connection, which does not survive a Redis restart).
fn worker_process(
    url: String,
    name: &'static str,
    lease_ms: u64,
    slots: usize,
    work: Duration,
    count_runs: bool,
) {
    let queue: WorkQueue<u64, u64> = WorkQueue::open_with(&url, name, options(lease_ms)).unwrap();
    let worker = Rc::new(queue.worker(slots).unwrap());
    let takers: Vec<_> = (0..slots)
        .map(|_| {
            let (worker, url) = (worker.clone(), url.clone());
            greenrt::spawn(move || {
                let mut counter = Connection::open(url.as_str()).unwrap();
                loop {
                    if let Some(lease) = worker.take(Duration::from_secs(1)).unwrap() {
                        if count_runs {
                            let _: i64 = counter.incr("runs", 1).unwrap();
                        }
                        greenrt::sleep(work);
                        let n = *lease.task();
                        lease.finish(Ok(n * 2)).unwrap();
                    }
                }
            })
        })
        .collect();
    greenrt::joinall(takers);
}

#[test]
fn results_and_errors_come_back_to_the_producer_once_in_order() {
    let server = RedisServer::start();
    let queue: WorkQueue<u64, u64> = WorkQueue::open(&server.url(0), "basic").unwrap();
    let ids = queue.put_many(&[1, 2, 3]).unwrap();
    assert_eq!(ids, vec![1, 2, 3]);
    let worker = queue.worker(1).unwrap();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let lease = worker
            .take(Duration::from_secs(1))
            .unwrap()
            .expect("a task");
        let n = *lease.task();
        seen.push(n);
        let outcome = if n == 2 {
            Err("two is not welcome".to_string())
        } else {
            Ok(n * 10)
        };
        assert_eq!(lease.finish(outcome).unwrap(), Ack::Done);
    }
    assert_eq!(seen, vec![1, 2, 3], "tasks are taken first in, first out");
    assert!(worker.take(Duration::from_millis(100)).unwrap().is_none());
    let results = collect(&queue, 3, Duration::from_secs(5));
    assert_eq!(results[&1], Ok(10));
    assert_eq!(results[&2], Err("two is not welcome".to_string()));
    assert_eq!(results[&3], Ok(30));
    assert!(
        queue
            .next_result(Duration::from_millis(50))
            .unwrap()
            .is_none()
    );
    let stats = queue.stats().unwrap();
    assert_eq!(
        (
            stats.put,
            stats.done,
            stats.failed,
            stats.unfinished,
            stats.pending
        ),
        (3, 2, 1, 0, 0)
    );
}

/// A take blocked for 400 ms parks only its green thread: a ticker on the same hub ticks
/// meanwhile, and the task put by another green thread arrives.
#[test]
fn a_blocked_take_parks_only_its_green_thread() {
    let server = RedisServer::start();
    let queue: Rc<WorkQueue<u64, u64>> = Rc::new(WorkQueue::open(&server.url(0), "parks").unwrap());
    let worker = queue.worker(1).unwrap();
    let ticks = Rc::new(std::cell::Cell::new(0u32));
    let ticker = {
        let ticks = ticks.clone();
        greenrt::spawn(move || {
            for _ in 0..30 {
                greenrt::sleep(Duration::from_millis(10));
                ticks.set(ticks.get() + 1);
            }
        })
    };
    let producer = {
        let queue = queue.clone();
        greenrt::spawn(move || {
            greenrt::sleep(Duration::from_millis(400));
            queue.put(&5).unwrap()
        })
    };
    let t0 = Instant::now();
    let lease = worker
        .take(Duration::from_secs(5))
        .unwrap()
        .expect("the task");
    let waited = t0.elapsed();
    assert_eq!(*lease.task(), 5);
    assert!(waited >= Duration::from_millis(390), "took {waited:?}");
    assert!(
        ticks.get() >= 15,
        "the ticker ticked {} times in {waited:?}: the take blocked the hub",
        ticks.get()
    );
    lease.finish(Ok(0)).unwrap();
    producer.join().unwrap();
    ticker.join().unwrap();
}

/// 30 green threads in one process share a worker with 30 slots: 600 tasks, each result once.
#[test]
fn green_threads_share_one_worker() {
    let server = RedisServer::start();
    let queue: WorkQueue<u64, u64> = WorkQueue::open(&server.url(0), "green").unwrap();
    queue.put_many(&(0..600).collect::<Vec<u64>>()).unwrap();
    let worker = Rc::new(queue.worker(30).unwrap());
    let takers: Vec<_> = (0..30)
        .map(|_| {
            let worker = worker.clone();
            greenrt::spawn(move || {
                let mut done = 0;
                while let Some(lease) = worker.take(Duration::from_millis(300)).unwrap() {
                    let n = *lease.task();
                    lease.finish(Ok(n + 1)).unwrap();
                    done += 1;
                }
                done
            })
        })
        .collect();
    let per_taker: Vec<usize> = greenrt::joinall(takers)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(per_taker.iter().sum::<usize>(), 600);
    assert!(
        per_taker.iter().filter(|&&n| n > 0).count() >= 20,
        "the work was not shared: {per_taker:?}"
    );
    let results = collect(&queue, 600, Duration::from_secs(10));
    assert!(results.values().all(|r| r.is_ok()));
    assert_eq!(queue.unfinished().unwrap(), 0);
}

/// Four worker processes (3 slots each) are killed with SIGKILL, one every 150 ms, ten
/// times, and restarted, while 300 tasks run. Every task's result arrives exactly once; the
/// extra runs equal the `requeued` count, which is at most 3 per kill.
#[test]
fn a_kill_storm_loses_nothing_and_counts_its_duplicates() {
    let _t = turn();
    let server = RedisServer::start();
    let url = server.url(0);
    let (lease_ms, slots, kills) = (1500, 3, 10);
    let queue: WorkQueue<u64, u64> =
        WorkQueue::open_with(&url, "storm", options(lease_ms)).unwrap();
    let spawn = || {
        let url = url.clone();
        Process::spawn(move || {
            worker_process(
                url,
                "storm",
                lease_ms,
                slots,
                Duration::from_millis(20),
                true,
            )
        })
        .unwrap()
    };
    let mut workers: Vec<Process> = (0..4).map(|_| spawn()).collect();
    queue.put_many(&(0..300).collect::<Vec<u64>>()).unwrap();
    for k in 0..kills {
        greenrt::sleep(Duration::from_millis(150));
        let victim = k % workers.len();
        workers[victim].kill().unwrap();
        workers[victim].join().unwrap();
        workers[victim] = spawn();
    }
    let results = collect(&queue, 300, Duration::from_secs(60));
    for (id, outcome) in &results {
        assert_eq!(*outcome, Ok((id - 1) * 2), "task {id}");
    }
    for w in &workers {
        w.kill().unwrap();
        w.join().unwrap();
    }
    let stats = queue.stats().unwrap();
    let runs: u64 = Connection::open(url.as_str()).unwrap().get("runs").unwrap();
    assert_eq!(
        (stats.done, stats.unfinished, stats.lost),
        (300, 0, 0),
        "{stats:?}"
    );
    assert!(
        stats.requeued <= (slots * kills) as u64,
        "{} tasks requeued for {kills} kills of {slots} slots",
        stats.requeued
    );
    assert!(
        runs >= 300 && runs <= 300 + stats.requeued + stats.released,
        "{runs} runs of 300 tasks with {} requeued, {} released",
        stats.requeued,
        stats.released
    );
}

/// A worker frozen (SIGSTOP) past its lease: its task goes to another worker, whose result
/// is the one delivered; thawed, the frozen worker's ack is refused (`Ack::Lost`).
#[test]
fn a_frozen_worker_loses_its_lease_and_its_late_ack_is_refused() {
    let _t = turn();
    let server = RedisServer::start();
    let url = server.url(0);
    let queue: WorkQueue<u64, u64> = WorkQueue::open_with(&url, "frozen", options(600)).unwrap();
    queue.put(&1).unwrap();
    let slow = {
        let url = url.clone();
        Process::spawn(move || {
            let queue: WorkQueue<u64, u64> =
                WorkQueue::open_with(&url, "frozen", options(600)).unwrap();
            let worker = queue.worker(1).unwrap();
            let lease = worker.take(Duration::from_secs(10)).unwrap().unwrap();
            greenrt::sleep(Duration::from_millis(300)); // frozen in here
            let ack = lease.finish(Ok(100)).unwrap();
            std::process::exit(if ack == Ack::Lost { 10 } else { 0 });
        })
        .unwrap()
    };
    let t0 = Instant::now();
    while queue.stats().unwrap().pending != 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the slow worker never took the task"
        );
        greenrt::sleep(Duration::from_millis(5));
    }
    signal(&slow, libc::SIGSTOP);
    let worker = queue.worker(1).unwrap();
    let lease = worker
        .take(Duration::from_secs(5))
        .unwrap()
        .expect("the frozen worker's task, put back");
    assert_eq!(*lease.task(), 1);
    assert_eq!(lease.finish(Ok(200)).unwrap(), Ack::Done);
    signal(&slow, libc::SIGCONT);
    assert_eq!(
        slow.join().unwrap().code(),
        Some(10),
        "the late ack was not refused"
    );
    let results = collect(&queue, 1, Duration::from_secs(5));
    assert_eq!(results[&1], Ok(200));
    assert!(
        queue
            .next_result(Duration::from_millis(200))
            .unwrap()
            .is_none()
    );
    let stats = queue.stats().unwrap();
    assert_eq!(
        (stats.requeued, stats.lost, stats.done),
        (1, 1, 1),
        "{stats:?}"
    );
}

/// Redis killed (SIGKILL) and restarted from its append-only file twice while two worker
/// processes and the producer run: every result arrives once, no task is lost or doubled.
#[test]
fn a_redis_restart_loses_and_doubles_nothing() {
    let _t = turn();
    let mut server = RedisServer::start_durable();
    let url = server.url(0);
    let queue: WorkQueue<u64, u64> = WorkQueue::open_with(&url, "restart", options(5000)).unwrap();
    let workers: Vec<Process> = (0..2)
        .map(|_| {
            let url = url.clone();
            Process::spawn(move || {
                worker_process(url, "restart", 5000, 4, Duration::from_millis(10), false)
            })
            .unwrap()
        })
        .collect();
    queue.put_many(&(0..200).collect::<Vec<u64>>()).unwrap();
    let mut results = HashMap::new();
    for _ in 0..2 {
        collect_into(&mut results, &queue, 50, Duration::from_secs(30));
        server.restart(Duration::from_millis(300));
    }
    collect_into(&mut results, &queue, 100, Duration::from_secs(60));
    assert!(
        queue
            .next_result(Duration::from_millis(300))
            .unwrap()
            .is_none()
    );
    for (id, outcome) in &results {
        assert_eq!(*outcome, Ok((id - 1) * 2), "task {id}");
    }
    for w in &workers {
        w.kill().unwrap();
        w.join().unwrap();
    }
    let stats = queue.stats().unwrap();
    assert_eq!(
        (stats.put, stats.done, stats.unfinished),
        (200, 200, 0),
        "{stats:?}"
    );
}

/// Four processes put the same 100 keys (plus their own 10) with `put_unique`: each key
/// becomes one task; with `max_unique` the queue admits no more than its budget.
#[test]
fn put_unique_admits_each_key_once_among_processes() {
    let _t = turn();
    let server = RedisServer::start();
    let url = server.url(0);
    let children: Vec<Process> = (0..4u64)
        .map(|p| {
            let url = url.clone();
            Process::spawn(move || {
                let queue: WorkQueue<u64> = WorkQueue::open(&url, "unique").unwrap();
                let keys: Vec<String> = (0..100)
                    .map(|k| format!("k{k}"))
                    .chain((0..10).map(|k| format!("p{p}-{k}")))
                    .collect();
                for chunk in keys.chunks(7) {
                    let items: Vec<(&str, &u64)> = chunk.iter().map(|k| (k.as_str(), &p)).collect();
                    queue.put_unique_many(&items).unwrap();
                }
            })
            .unwrap()
        })
        .collect();
    for c in &children {
        assert!(c.join().unwrap().success());
    }
    let queue: WorkQueue<u64> = WorkQueue::open(&url, "unique").unwrap();
    let stats = queue.stats().unwrap();
    assert_eq!(
        (stats.put, stats.pending, stats.unfinished),
        (140, 140, 140)
    );
    assert_eq!(
        queue.put_unique("k5", &9).unwrap(),
        None,
        "a seen key was admitted again"
    );

    let budget = Options {
        max_unique: Some(25),
        ..Options::default()
    };
    let limited: WorkQueue<u64> = WorkQueue::open_with(&url, "budget", budget).unwrap();
    let keys: Vec<String> = (0..40).map(|k| format!("k{k}")).collect();
    let items: Vec<(&str, &u64)> = keys.iter().map(|k| (k.as_str(), &0)).collect();
    let admitted = limited.put_unique_many(&items).unwrap();
    assert_eq!(admitted.iter().flatten().count(), 25);
    assert!(admitted[..25].iter().all(Option::is_some));
}

/// A reply lost on the way back (a proxy cuts the connection after the server ran the put):
/// the put is retried on a new connection and runs once, not twice.
#[test]
fn a_put_whose_reply_is_lost_runs_once() {
    let server = RedisServer::start();
    let proxy = util::cutting_proxy::CuttingProxy::start(server.port);
    let url = format!("redis://127.0.0.1:{}/0", proxy.port);
    let queue: WorkQueue<u64, u64> = WorkQueue::open(&url, "lost-reply").unwrap();
    queue.put(&1).unwrap();
    proxy.cut_next_reply();
    let id = queue.put(&2).unwrap();
    assert!(proxy.cuts() == 1, "the proxy did not cut a reply");
    assert_eq!(id, 2);
    let stats = queue.stats().unwrap();
    assert_eq!(
        (stats.put, stats.pending),
        (2, 2),
        "the retried put ran twice: {stats:?}"
    );
}

/// The reply to a result fetch lost on the way back (the proxy cuts it): the fetch is
/// retried on a new connection and hands out the same batch — every result once, none lost.
#[test]
fn a_result_fetch_whose_reply_is_lost_loses_no_result() {
    let server = RedisServer::start();
    let proxy = util::cutting_proxy::CuttingProxy::start(server.port);
    let through_proxy = format!("redis://127.0.0.1:{}/0", proxy.port);
    let queue: WorkQueue<u64, u64> = WorkQueue::open(&through_proxy, "lost-fetch").unwrap();
    queue.put_many(&[1, 2, 3]).unwrap();
    let direct: WorkQueue<u64, u64> = WorkQueue::open(&server.url(0), "lost-fetch").unwrap();
    let worker = direct.worker(1).unwrap();
    for _ in 0..3 {
        let lease = worker
            .take(Duration::from_secs(2))
            .unwrap()
            .expect("a task");
        let n = *lease.task();
        lease.finish(Ok(n * 10)).unwrap();
    }
    proxy.cut_next_reply(); // the first reply the receiver gets: its first fetch's
    let results = collect(&queue, 3, Duration::from_secs(10));
    assert_eq!(proxy.cuts(), 1, "the proxy did not cut a reply");
    assert_eq!(
        (
            results[&1].clone(),
            results[&2].clone(),
            results[&3].clone()
        ),
        (Ok(10), Ok(20), Ok(30))
    );
    assert!(
        queue
            .next_result(Duration::from_millis(200))
            .unwrap()
            .is_none()
    );
}

/// The server forgets the queue's scripts (`SCRIPT FLUSH`) under open connections: every
/// kind of call — a put, a take (its script runs in a pipeline), an ack, a result fetch —
/// loads them again and goes on, and runs once. (A take may put its task back and take it
/// again on the way, counted `released`.)
#[test]
fn calls_go_on_after_the_server_forgets_the_scripts() {
    let server = RedisServer::start();
    let url = server.url(0);
    let queue: WorkQueue<u64, u64> = WorkQueue::open(&url, "flushed").unwrap();
    let worker = queue.worker(1).unwrap();
    let mut raw = Connection::open(url.as_str()).unwrap();
    let mut flush = || redis::cmd("SCRIPT").arg("FLUSH").exec(&mut raw).unwrap();
    queue.put(&1).unwrap();
    flush();
    queue.put(&2).unwrap();
    flush();
    let lease = worker
        .take(Duration::from_secs(2))
        .unwrap()
        .expect("a task");
    flush();
    assert_eq!(lease.finish(Ok(5)).unwrap(), Ack::Done);
    flush();
    let first = queue
        .next_result(Duration::from_secs(2))
        .unwrap()
        .expect("a result");
    assert_eq!((first.id, first.outcome), (1, Ok(5)));
    let stats = queue.stats().unwrap();
    assert_eq!(
        (stats.put, stats.done, stats.unfinished, stats.pending),
        (2, 1, 1, 1),
        "{stats:?}"
    );
}

/// Damaged envelopes in `pending` are moved to the dead letters and counted; the worker goes
/// on to the good task. A lease dropped unfinished puts its task back (`released`).
#[test]
fn damaged_envelopes_are_set_aside_and_dropped_leases_put_back() {
    let server = RedisServer::start();
    let url = server.url(0);
    let queue: WorkQueue<u64, u64> = WorkQueue::open_with(&url, "damaged", options(400)).unwrap();
    let mut raw = Connection::open(url.as_str()).unwrap();
    let pending = "greenrt:{damaged}:pending";
    let _: () = raw.lpush(pending, "not an envelope").unwrap();
    let _: () = raw
        .lpush(
            pending,
            b"7\n\n\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff".as_slice(),
        )
        .unwrap();
    queue.put(&3).unwrap();
    let worker = queue.worker(1).unwrap();
    let lease = worker
        .take(Duration::from_secs(2))
        .unwrap()
        .expect("the good task");
    assert_eq!(*lease.task(), 3);
    let id = lease.id();
    drop(lease); // unfinished: put back
    let again = worker
        .take(Duration::from_secs(2))
        .unwrap()
        .expect("the dropped task again");
    assert_eq!(again.id(), id);
    again.finish(Ok(6)).unwrap();
    let stats = queue.stats().unwrap();
    assert_eq!(
        (stats.corrupt, stats.released, stats.done),
        (2, 1, 1),
        "{stats:?}"
    );
    let dead: usize = raw.llen("greenrt:{damaged}:dead").unwrap();
    assert_eq!(dead, 2);
}
