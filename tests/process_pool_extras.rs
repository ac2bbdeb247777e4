//! process::Pool's multiprocessing extras: `initializer` (and a pool it breaks),
//! `maxtasksperchild`, `map_async`, `starmap`, ordered `imap`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use greenrt::process::{Pool, PoolBuilder, Rejection, TaskError};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Set by the initializer, in each worker's own copy of memory.
static SETUP: AtomicU32 = AtomicU32::new(0);
/// Counts initializer runs in one worker process (so a second run in a process shows).
static INIT_RUNS: AtomicU32 = AtomicU32::new(0);

fn pid_and_setup(_: u32) -> (u32, u32, u32) {
    std::thread::sleep(Duration::from_millis(2));
    (
        std::process::id(),
        SETUP.load(Ordering::SeqCst),
        INIT_RUNS.load(Ordering::SeqCst),
    )
}

fn init_setup() {
    SETUP.store(42, Ordering::SeqCst);
    INIT_RUNS.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn smoke_the_initializer_runs_in_each_worker_before_its_tasks() {
    let _turn = turn();
    let pool = PoolBuilder::new(3).initializer(init_setup).build().unwrap();
    let seen = pool.map(pid_and_setup, 0..60).unwrap();
    for (pid, setup, runs) in &seen {
        assert_eq!(*setup, 42, "worker {pid} ran a task before its initializer");
        assert_eq!(*runs, 1, "worker {pid} ran the initializer {runs} times");
    }
    assert_eq!(
        SETUP.load(Ordering::SeqCst),
        0,
        "the owner ran the initializer"
    );
    pool.close();
    pool.join().unwrap();
}

/// `maxtasksperchild`: no worker runs more than its budget; the replacements run the
/// initializer too; nothing is lost or run twice.
#[test]
fn max_tasks_per_child_replaces_workers_and_loses_nothing() {
    let _turn = turn();
    let pool = PoolBuilder::new(2)
        .initializer(init_setup)
        .max_tasks_per_child(3)
        .build()
        .unwrap();
    let seen = pool.map_chunked(pid_and_setup, 0..30, 1).unwrap();
    assert_eq!(seen.len(), 30, "a task was lost");
    let mut per_pid: HashMap<u32, usize> = HashMap::new();
    for (pid, setup, runs) in &seen {
        assert_eq!(
            (*setup, *runs),
            (42, 1),
            "a replacement skipped the initializer"
        );
        *per_pid.entry(*pid).or_default() += 1;
    }
    let most = per_pid.values().max().copied().unwrap();
    assert!(most <= 3, "a worker ran {most} tasks with a budget of 3");
    assert!(
        per_pid.len() >= 10,
        "30 tasks at 3 per worker need 10 workers, saw {}",
        per_pid.len()
    );
    pool.close();
    pool.join().unwrap();
}

#[test]
fn max_tasks_per_child_zero_is_invalid_input() {
    let err = PoolBuilder::new(1)
        .max_tasks_per_child(0)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

fn double(x: u32) -> u32 {
    2 * x
}

/// A panicking initializer breaks the pool: tasks fail with `Rejection::Broken` and the panic
/// message (Python's Pool would respawn and fail for ever), and close/join still return.
#[test]
fn a_panicking_initializer_breaks_the_pool() {
    let _turn = turn();
    let pool = PoolBuilder::new(2)
        .initializer(|| panic!("no database"))
        .build()
        .unwrap();
    let first = pool.apply(double, 1);
    match &first {
        Err(TaskError::Rejected(Rejection::Broken(why))) => {
            assert!(why.contains("no database"), "{why}")
        }
        other => panic!("expected a broken pool, got {other:?}"),
    }
    assert!(pool.is_broken());
    let later = pool.apply_async(double, 2);
    assert!(later.ready(), "a task for a broken pool fails at once");
    assert!(matches!(
        later.get(),
        Err(TaskError::Rejected(Rejection::Broken(_)))
    ));
    assert!(pool.map(double, 0..100).is_err());
    let io: std::io::Error = pool.apply(double, 3).unwrap_err().into();
    assert!(io.to_string().contains("initializer panicked"), "{io}");
    pool.close();
    pool.join().unwrap(); // the workers are gone, the factory exits: no hang
}

#[test]
fn map_async_gives_every_value_in_order_and_runs_the_callback_first() {
    let _turn = turn();
    let pool = Pool::new(2).unwrap();
    let seen = Arc::new(Mutex::new(None));
    let s = seen.clone();
    let pending = pool.map_async_with(
        double,
        0..1000,
        move |values| *s.lock().unwrap() = Some(values.len()),
        |e| panic!("unexpected {e}"),
    );
    let values = pending.get().unwrap();
    assert_eq!(values, (0..1000).map(|x| 2 * x).collect::<Vec<_>>());
    assert_eq!(
        *seen.lock().unwrap(),
        Some(1000),
        "the callback did not run first"
    );
    assert_eq!(
        pool.map_async(double, Vec::new()).get().unwrap(),
        Vec::<u32>::new()
    );
}

fn explode_at_7(x: u32) -> u32 {
    if x == 7 {
        panic!("item {x} exploded");
    }
    x
}

#[test]
fn map_async_fails_with_the_first_error_and_calls_the_error_callback() {
    let _turn = turn();
    let pool = Pool::new(2).unwrap();
    let error_seen = Arc::new(Mutex::new(None));
    let e2 = error_seen.clone();
    let pending = pool.map_async_with(
        explode_at_7,
        0..50,
        |_| panic!("the callback ran for a failed map"),
        move |e| *e2.lock().unwrap() = Some(e.to_string()),
    );
    match pending.get() {
        Err(TaskError::Panicked(msg)) => assert!(msg.contains("item 7 exploded"), "{msg}"),
        other => panic!("{other:?}"),
    }
    let told = error_seen.lock().unwrap().clone().unwrap();
    assert!(told.contains("item 7 exploded"), "{told}");
}

fn power(base: u64, exp: u32) -> u64 {
    base.pow(exp)
}

#[test]
fn starmap_calls_f_with_each_pair_in_order() {
    let _turn = turn();
    let pool = Pool::new(2).unwrap();
    let pairs: Vec<(u64, u32)> = (0..300).map(|i| (i % 7, (i % 5) as u32)).collect();
    let expected: Vec<u64> = pairs.iter().map(|&(b, e)| b.pow(e)).collect();
    assert_eq!(pool.starmap(power, pairs.clone()).unwrap(), expected);
    assert_eq!(pool.starmap_async(power, pairs).get().unwrap(), expected);
    assert_eq!(pool.starmap(power, Vec::new()).unwrap(), Vec::<u64>::new());
}

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// Ordered `imap`: values in input order even when later tasks finish first, and the first
/// value comes as soon as it is done, not when all are.
#[test]
fn imap_yields_in_input_order_as_soon_as_each_is_ready() {
    let _turn = turn();
    let pool = Pool::new(3).unwrap();
    pool.apply(double, 0).unwrap(); // the workers are up
    let began = Instant::now();
    let mut values = pool.imap(sleep_ms, [20, 600, 1, 2, 3]);
    assert_eq!(values.next().unwrap().unwrap(), 20);
    let first_at = began.elapsed();
    let rest: Vec<u64> = values.map(Result::unwrap).collect();
    let all_at = began.elapsed();
    assert_eq!(rest, [600, 1, 2, 3], "out of input order");
    assert!(
        first_at + Duration::from_millis(300) < all_at,
        "the first value waited for the slow one: {first_at:?} of {all_at:?}"
    );
}

/// Chunk 0 sleeps, so every later chunk comes back before it: the values are gathered as
/// the chunks ahead of them arrive, and still come out in input order, none lost or doubled.
#[test]
fn map_gathers_chunks_that_arrive_out_of_order_in_input_order() {
    let _turn = turn();
    let pool = Pool::new(3).unwrap();
    let items: Vec<u64> = (0..60).map(|i| if i < 3 { 150 } else { i }).collect();
    let values = pool
        .map_chunked(sleep_ms_if_large, items.clone(), 3)
        .unwrap();
    assert_eq!(values, items);
}

fn sleep_ms_if_large(x: u64) -> u64 {
    if x >= 100 {
        std::thread::sleep(Duration::from_millis(x));
    }
    x
}

fn checksum(x: [u32; 4]) -> u64 {
    x.iter().map(|&v| u64::from(v)).sum()
}

/// `map_plain`: plain values travel as raw bytes; the values come back in order, for a
/// number type and an array type, and an empty input is an empty output.
#[test]
fn map_plain_carries_plain_values_as_bytes_in_order() {
    let _turn = turn();
    let pool = Pool::new(2).unwrap();
    let items: Vec<u32> = (0..50_000).collect();
    let doubled = pool.map_plain(double, &items).unwrap();
    assert_eq!(doubled, items.iter().map(|x| 2 * x).collect::<Vec<_>>());
    let quads: Vec<[u32; 4]> = (0..1000u32).map(|i| [i, i + 1, i + 2, u32::MAX]).collect();
    let sums = pool.map_plain(checksum, &quads).unwrap();
    assert_eq!(sums[999], 999 + 1000 + 1001 + u64::from(u32::MAX));
    assert_eq!(pool.map_plain(double, &[]).unwrap(), Vec::<u32>::new());
}

#[test]
fn map_plain_reports_a_panic_in_a_chunk() {
    let _turn = turn();
    let pool = Pool::new(2).unwrap();
    let items: Vec<u32> = (0..100).collect();
    match pool.map_plain(explode_at_7, &items) {
        Err(TaskError::Panicked(msg)) => assert!(msg.contains("item 7 exploded"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

fn widen_and_negate(x: i8) -> i128 {
    -i128::from(x) * (1 << 100)
}

fn halve(x: u64) -> f32 {
    x as f32 / 2.0
}

fn bits_of(x: f64) -> u64 {
    x.to_bits()
}

/// `map` over primitive numbers travels as raw bytes (no serde), whatever the two types'
/// sizes: the values must be exactly what serde would have carried — edge values, a result
/// wider or narrower than the argument, float bit patterns, a last chunk that is short.
#[test]
fn map_of_numbers_carries_every_value_exactly_whatever_the_two_types() {
    let _turn = turn();
    let pool = Pool::new(2).unwrap();
    let small: Vec<i8> = (0..1001).map(|i| (i % 256 - 128) as i8).collect();
    let wide = pool
        .map_chunked(widen_and_negate, small.clone(), 7)
        .unwrap();
    assert_eq!(
        wide,
        small
            .iter()
            .map(|&x| widen_and_negate(x))
            .collect::<Vec<_>>()
    );
    assert_eq!(wide[0], 128 * (1 << 100), "i8::MIN widened");
    let big: Vec<u64> = [0, 1, u64::MAX, u64::MAX - 1]
        .into_iter()
        .chain(2..333)
        .collect();
    let halves = pool.map(halve, big.clone()).unwrap();
    assert_eq!(halves, big.iter().map(|&x| halve(x)).collect::<Vec<_>>());
    let odd = [
        f64::NAN,
        -0.0,
        f64::INFINITY,
        f64::MIN_POSITIVE / 2.0,
        1e300,
    ];
    let bits = pool.map(bits_of, odd).unwrap();
    assert_eq!(bits, odd.map(f64::to_bits), "float bits changed on the way");
    let words: Vec<String> = pool.map(|x: u32| format!("{x}"), [3, 1, 2]).unwrap();
    assert_eq!(
        words,
        ["3", "1", "2"],
        "a non-number type still goes through serde"
    );
}
