//! process::Pool: order, callbacks, panics, a worker killed mid-task, terminate, the
//! close/join rules, no zombies.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use greenrt::process::{Pool, PoolError, TaskError};

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn square(x: u64) -> u64 {
    x * x
}

fn slow_plus_100(i: u32) -> u32 {
    std::thread::sleep(Duration::from_millis(50));
    i + 100
}

fn explode(x: u32) -> u32 {
    if x == 3 {
        panic!("task {x} exploded");
    }
    x
}

fn my_pid(_: ()) -> u32 {
    std::process::id()
}

/// Kills its own worker when asked to, otherwise returns the worker's pid.
fn die_on_zero(x: u32) -> u32 {
    if x == 0 {
        std::thread::sleep(Duration::from_millis(30));
        // SAFETY (test): signalling our own process.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
    std::process::id()
}

/// Aborts its worker (SIGABRT) on 0, segfaults it (SIGSEGV) on 1.
fn crash(x: u32) -> u32 {
    match x {
        0 => std::process::abort(),
        // SAFETY (test): deliberately a wild write, so the worker dies of a real SIGSEGV
        // (a raised one would just return from greenrt's fault handler).
        1 => unsafe {
            std::ptr::without_provenance_mut::<u32>(8).write_volatile(1);
            1
        },
        _ => x,
    }
}

/// Direct children of this process that are zombies.
fn zombie_children() -> Vec<String> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
            let fields: Vec<&str> = after.split_whitespace().collect();
            fields.first() == Some(&"Z") && fields.get(1) == Some(&me.as_str())
        })
        .collect()
}

#[test]
fn map_keeps_input_order() {
    let _t = turn();
    let pool = Pool::new(2).unwrap();
    let out = pool.map(square, 0..1000).unwrap();
    assert_eq!(out, (0..1000).map(|x| x * x).collect::<Vec<_>>());
    assert_eq!(
        pool.map_chunked(square, 0..10, 1).unwrap(),
        (0..10).map(|x| x * x).collect::<Vec<_>>()
    );
    assert!(pool.map(square, Vec::new()).unwrap().is_empty());
    let mut unordered: Vec<u64> = pool
        .imap_unordered(square, 0..50)
        .map(Result::unwrap)
        .collect();
    unordered.sort_unstable();
    assert_eq!(unordered, (0..50).map(|x| x * x).collect::<Vec<_>>());
    pool.close();
    pool.join().unwrap();
}

#[test]
fn callbacks_run_in_the_parent_and_results_come_back() {
    let _t = turn();
    let pool = Pool::new(3).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let results: Vec<_> = (0..10)
        .map(|i| {
            let (s, e) = (seen.clone(), errors.clone());
            pool.apply_async_with(
                slow_plus_100,
                i,
                move |v| s.lock().unwrap().push(*v),
                move |err| e.lock().unwrap().push(err.to_string()),
            )
        })
        .collect();
    let values: Vec<u32> = results.into_iter().map(|r| r.get().unwrap()).collect();
    assert_eq!(values, (100..110).collect::<Vec<_>>());
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_unstable();
    assert_eq!(seen, (100..110).collect::<Vec<_>>());
    assert!(errors.lock().unwrap().is_empty());
    pool.close();
    pool.join().unwrap();
}

#[test]
fn a_panicking_task_fails_with_its_message_and_the_worker_lives_on() {
    let _t = turn();
    let pool = Pool::new(1).unwrap();
    let before = pool.apply(my_pid, ()).unwrap();
    let errs = Arc::new(Mutex::new(Vec::new()));
    let e = errs.clone();
    let r = pool.apply_async_with(
        explode,
        3,
        |_| {},
        move |err| e.lock().unwrap().push(err.clone()),
    );
    assert!(r.wait_timeout(Duration::from_secs(10)));
    assert_eq!(r.successful(), Some(false));
    match r.get() {
        Err(TaskError::Panicked(msg)) => assert!(msg.contains("task 3 exploded"), "{msg}"),
        other => panic!("expected Panicked, got {other:?}"),
    }
    assert_eq!(errs.lock().unwrap().len(), 1);
    assert_eq!(pool.apply(explode, 4).unwrap(), 4);
    assert_eq!(
        pool.apply(my_pid, ()).unwrap(),
        before,
        "the same worker served on"
    );
    assert!(matches!(
        pool.map(explode, 0..8),
        Err(TaskError::Panicked(_))
    ));
}

#[test]
fn a_worker_killed_mid_task_fails_that_task_only_and_is_replaced() {
    let _t = turn();
    let pool = Pool::new(2).unwrap();
    // Tasks queue behind the one that kills its worker; none of them may be lost.
    let doomed = pool.apply_async(die_on_zero, 0);
    let others: Vec<_> = (1..=40).map(|i| pool.apply_async(die_on_zero, i)).collect();
    match doomed.get() {
        Err(TaskError::WorkerDied { signal, .. }) => assert_eq!(signal, Some(9)),
        other => panic!("expected WorkerDied, got {other:?}"),
    }
    for r in others {
        assert!(
            r.get().is_ok(),
            "a task queued behind the dead worker was lost"
        );
    }
    // Later tasks succeed on the replacement.
    let pids: std::collections::HashSet<u32> =
        (0..20).map(|_| pool.apply(my_pid, ()).unwrap()).collect();
    assert!(!pids.is_empty());
    pool.close();
    pool.join().unwrap();
    assert!(
        zombie_children().is_empty(),
        "zombies: {:?}",
        zombie_children()
    );
}

#[test]
fn abort_and_segfault_in_a_task_fail_it_with_worker_died() {
    let _t = turn();
    let pool = Pool::new(1).unwrap();
    for (x, sig) in [(0, libc::SIGABRT), (1, libc::SIGSEGV)] {
        match pool.apply(crash, x) {
            Err(TaskError::WorkerDied { signal, .. }) => assert_eq!(signal, Some(sig)),
            other => panic!("expected WorkerDied, got {other:?}"),
        }
        assert_eq!(pool.apply(crash, 7).unwrap(), 7, "the replacement serves");
    }
}

#[test]
fn terminate_is_prompt_and_fails_unfinished_tasks() {
    let _t = turn();
    let pool = Pool::new(2).unwrap();
    let slow: Vec<_> = (0..20)
        .map(|i| pool.apply_async(slow_plus_100, i))
        .collect();
    std::thread::sleep(Duration::from_millis(20));
    let start = Instant::now();
    pool.terminate();
    pool.join().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "terminate took {:?}",
        start.elapsed()
    );
    let terminated = slow
        .into_iter()
        .filter(|r| {
            matches!(
                r.get_timeout(Duration::from_secs(5)),
                Err(TaskError::Terminated)
            )
        })
        .count();
    assert!(terminated > 0);
    assert!(
        zombie_children().is_empty(),
        "zombies: {:?}",
        zombie_children()
    );
}

#[test]
fn close_and_join_rules() {
    let _t = turn();
    let pool = Pool::new(1).unwrap();
    assert_eq!(pool.join(), Err(PoolError::StillRunning));
    let r = pool.apply_async(square, 3);
    pool.close();
    assert_eq!(
        pool.apply(square, 2),
        Err(TaskError::Rejected(greenrt::process::Rejection::Closed))
    );
    pool.join().unwrap();
    assert_eq!(r.get().unwrap(), 9, "tasks submitted before close finish");
    pool.join().unwrap(); // twice is fine
}

#[test]
fn green_threads_wait_for_results_without_stalling_the_hub() {
    let _t = turn();
    let pool = Arc::new(Pool::new(2).unwrap());
    let ticks = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let t = ticks.clone();
    let ticker = greenrt::spawn(move || {
        for _ in 0..10 {
            greenrt::sleep(Duration::from_millis(10));
            t.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let p = pool.clone();
    let waiter = greenrt::spawn(move || p.apply(slow_plus_100, 1).unwrap());
    assert_eq!(waiter.join().unwrap(), 101);
    ticker.join().unwrap();
    assert_eq!(ticks.load(std::sync::atomic::Ordering::Relaxed), 10);
}

#[path = "../examples/common/rng.rs"]
mod rng;
#[path = "../examples/common/ipc_storm.rs"]
mod storm;

#[test]
fn pool_storm_with_workers_killed_mid_task_loses_nothing_and_never_hangs() {
    let _t = turn();
    let r = storm::pool_storm(1.5, 2, 7).unwrap();
    eprintln!("{r:?}");
    assert_eq!(r.wrong, 0, "{r:?}");
    assert_eq!(r.hung, 0, "{r:?}");
    assert_eq!(r.succeeded + r.worker_died, r.submitted, "{r:?}");
    assert!(
        r.worker_died <= r.kills,
        "more tasks died than workers were killed: {r:?}"
    );
    assert!(r.kills > 10 && r.succeeded > 1000, "{r:?}");
}

#[test]
fn successful_still_answers_after_the_value_was_taken() {
    let _t = turn();
    let pool = Pool::new(1).unwrap();
    let good = pool.apply_async(square, 7);
    assert_eq!(good.get_timeout(Duration::from_secs(10)).unwrap(), 49);
    assert!(good.ready());
    assert_eq!(
        good.successful(),
        Some(true),
        "the value was taken, the task still succeeded"
    );
    let bad = pool.apply_async(explode, 3);
    assert!(matches!(
        bad.get_timeout(Duration::from_secs(10)),
        Err(TaskError::Panicked(_))
    ));
    assert_eq!(bad.successful(), Some(false));
    pool.close();
    pool.join().unwrap();
}

/// Sleeps 300 ms, then says which worker ran it.
fn slow_pid(i: u32) -> (u32, u32) {
    std::thread::sleep(Duration::from_millis(300));
    (i + 100, std::process::id())
}

/// Python's Pool(3) with ten slow `apply_async` tasks: every worker takes the next task when
/// it is free, so the tasks go 4/3/3 and finish in four waves (0-2, 3-5, 6-8, 9), whichever
/// worker is forked first. (greenrt used to queue 4 tasks in the first worker's inbox before
/// the others existed: 4/4/2, and a later task could finish before an earlier wave.)
#[test]
fn slow_tasks_spread_over_every_worker_in_waves_like_python() {
    let _t = turn();
    let pool = Pool::new(3).unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let t0 = Instant::now();
    let results: Vec<_> = (0..10)
        .map(|i| {
            let order = order.clone();
            pool.apply_async_with(
                slow_pid,
                i,
                move |(v, _)| order.lock().unwrap().push(*v),
                |e| panic!("{e}"),
            )
        })
        .collect();
    let mut per_worker = std::collections::HashMap::new();
    for r in results {
        *per_worker.entry(r.get().unwrap().1).or_insert(0) += 1;
    }
    let took = t0.elapsed();
    pool.close();
    pool.join().unwrap();
    let mut counts: Vec<u32> = per_worker.into_values().collect();
    counts.sort_unstable();
    assert_eq!(counts, [3, 3, 4], "tasks per worker");
    let order = order.lock().unwrap().clone();
    let waves: Vec<Vec<u32>> = order
        .chunks(3)
        .map(|w| {
            let mut w = w.to_vec();
            w.sort_unstable();
            w
        })
        .collect();
    assert_eq!(
        waves,
        [
            vec![100, 101, 102],
            vec![103, 104, 105],
            vec![106, 107, 108],
            vec![109]
        ],
        "callback order {order:?}"
    );
    assert!(
        took >= Duration::from_millis(1200),
        "four waves of 300 ms took only {took:?}"
    );
}

/// A value serde cannot carry is a `Codec` error, not a panic: an argument that fails to
/// encode (in the owner: the task never reaches a worker) and a result that encodes in the
/// worker but fails to decode in the owner. Both keep the worker, and both convert into an
/// `io::Error` of kind `InvalidData` that carries the `TaskError`.
#[test]
fn codec_failures_are_their_own_error_and_convert_into_io_errors() {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    struct Unencodable;
    impl Serialize for Unencodable {
        fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom(
                "this value refuses to be encoded",
            ))
        }
    }
    impl<'de> Deserialize<'de> for Unencodable {
        fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
            Ok(Unencodable)
        }
    }
    #[derive(Serialize, Debug)]
    struct Undecodable(u32);
    impl<'de> Deserialize<'de> for Undecodable {
        fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
            Err(serde::de::Error::custom("this value refuses to be decoded"))
        }
    }
    fn takes(_: Unencodable) -> u32 {
        1
    }
    fn gives(x: u32) -> Undecodable {
        Undecodable(x)
    }
    let _t = turn();
    let pool = Pool::new(1).unwrap();
    let arg = pool.apply(takes, Unencodable);
    assert!(
        matches!(&arg, Err(TaskError::Codec(m)) if m.contains("cannot encode the argument")),
        "{arg:?}"
    );
    let result = pool.apply(gives, 5);
    assert!(
        matches!(&result, Err(TaskError::Codec(m)) if m.contains("cannot decode the task's result")),
        "{result:?}"
    );
    assert_eq!(pool.apply(square, 4), Ok(16), "the worker lives on");
    let io: std::io::Error = result.err().unwrap().into();
    assert_eq!(io.kind(), std::io::ErrorKind::InvalidData);
    assert!(io.get_ref().unwrap().downcast_ref::<TaskError>().is_some());
    pool.close();
    pool.join().unwrap();
}
