//! The green `Barrier`, held to CPython's `threading.Barrier` semantics (the cases of its
//! test suite, written from the behaviour): cycles, arrival indexes, the action, abort,
//! reset, timeouts breaking it for everyone, and a panicking action.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use greenrt::sync::{Barrier, BrokenBarrier};
use greenrt::{joinall, sleep, spawn};

const N: usize = 5;

/// Five green threads through five cycles: nobody starts cycle k+1 before all finished k.
#[test]
fn cycles_keep_every_thread_in_step() {
    let barrier = Rc::new(Barrier::new(N));
    let log = Rc::new(RefCell::new(Vec::new()));
    let handles: Vec<_> = (0..N)
        .map(|t| {
            let (b, log) = (barrier.clone(), log.clone());
            spawn(move || {
                for cycle in 0..5 {
                    log.borrow_mut().push((cycle, t));
                    sleep(Duration::from_millis((t as u64 * 7 + cycle as u64) % 3));
                    b.wait().unwrap();
                }
            })
        })
        .collect();
    joinall(handles).into_iter().for_each(|r| r.unwrap());
    let cycles: Vec<usize> = log.borrow().iter().map(|(c, _)| *c).collect();
    let mut sorted = cycles.clone();
    sorted.sort();
    assert_eq!(cycles, sorted, "a thread ran ahead into the next cycle");
    assert_eq!(barrier.n_waiting(), 0);
}

/// Each wait returns a different index in 0..parties; the last to arrive gets parties - 1.
#[test]
fn wait_returns_each_arrival_index_once() {
    let barrier = Rc::new(Barrier::new(N));
    let handles: Vec<_> = (0..N)
        .map(|t| {
            let b = barrier.clone();
            spawn(move || {
                sleep(Duration::from_millis(5 * t as u64)); // arrive in order
                b.wait().unwrap()
            })
        })
        .collect();
    let indexes: Vec<usize> = joinall(handles).into_iter().map(Result::unwrap).collect();
    assert_eq!(indexes, (0..N).collect::<Vec<_>>());
}

/// The action runs once per cycle, in the last arrival, before anyone is released.
#[test]
fn the_action_runs_once_per_cycle_before_the_release() {
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let barrier = Rc::new(Barrier::new(N).with_action(move || {
        r.fetch_add(1, Ordering::SeqCst);
    }));
    let handles: Vec<_> = (0..N)
        .map(|_| {
            let (b, runs) = (barrier.clone(), runs.clone());
            spawn(move || {
                let mut seen = Vec::new();
                for _ in 0..3 {
                    b.wait().unwrap();
                    seen.push(runs.load(Ordering::SeqCst));
                }
                seen
            })
        })
        .collect();
    for seen in joinall(handles) {
        assert_eq!(seen.unwrap(), [1, 2, 3], "released before the action ran");
    }
}

/// `abort` breaks it for the waiters and for later arrivals, until `reset`.
#[test]
fn abort_breaks_it_for_everyone_until_reset() {
    let barrier = Rc::new(Barrier::new(N));
    let waiters: Vec<_> = (0..N - 1)
        .map(|_| {
            let b = barrier.clone();
            spawn(move || b.wait())
        })
        .collect();
    sleep(Duration::from_millis(10));
    assert_eq!(barrier.n_waiting(), N - 1);
    barrier.abort();
    for r in joinall(waiters) {
        assert_eq!(r.unwrap(), Err(BrokenBarrier));
    }
    assert!(barrier.is_broken());
    assert_eq!(
        barrier.wait(),
        Err(BrokenBarrier),
        "a later arrival sees it broken"
    );
    barrier.reset();
    assert!(!barrier.is_broken());
    let again: Vec<_> = (0..N)
        .map(|_| {
            let b = barrier.clone();
            spawn(move || b.wait())
        })
        .collect();
    assert!(
        joinall(again).into_iter().all(|r| r.unwrap().is_ok()),
        "works after reset"
    );
}

/// A reset while threads wait breaks the cycle for them, and the barrier fills again after.
#[test]
fn reset_while_waiting_breaks_that_cycle_only() {
    let barrier = Rc::new(Barrier::new(3));
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let b = barrier.clone();
            spawn(move || b.wait())
        })
        .collect();
    sleep(Duration::from_millis(10));
    barrier.reset();
    for r in joinall(waiters) {
        assert_eq!(r.unwrap(), Err(BrokenBarrier));
    }
    assert!(!barrier.is_broken());
    let again: Vec<_> = (0..3)
        .map(|_| {
            let b = barrier.clone();
            spawn(move || b.wait())
        })
        .collect();
    assert!(joinall(again).into_iter().all(|r| r.unwrap().is_ok()));
}

/// One waiter's timeout breaks the barrier for every waiter, at that time and not before.
#[test]
fn a_timeout_breaks_it_in_every_waiter() {
    let barrier = Rc::new(Barrier::new(N));
    let started = Instant::now();
    let patient: Vec<_> = (0..N - 2)
        .map(|_| {
            let b = barrier.clone();
            spawn(move || (b.wait(), Instant::now()))
        })
        .collect();
    let hasty = {
        let b = barrier.clone();
        spawn(move || b.wait_timeout(Duration::from_millis(50)))
    };
    assert_eq!(hasty.join().unwrap(), Err(BrokenBarrier));
    let broke_at = started.elapsed();
    assert!(
        broke_at >= Duration::from_millis(50),
        "broke early: {broke_at:?}"
    );
    for r in joinall(patient) {
        let (outcome, _) = r.unwrap();
        assert_eq!(outcome, Err(BrokenBarrier), "a patient waiter was not told");
    }
    assert!(barrier.is_broken());
}

/// The default timeout of `with_timeout` applies to a plain `wait`.
#[test]
fn the_default_timeout_applies_to_wait() {
    let barrier = Barrier::new(2).with_timeout(Duration::from_millis(30));
    let started = Instant::now();
    assert_eq!(barrier.wait(), Err(BrokenBarrier));
    assert!(started.elapsed() >= Duration::from_millis(30));
}

/// A barrier for one passes at once, every time.
#[test]
fn a_barrier_of_one_never_waits() {
    let barrier = Barrier::new(1);
    for _ in 0..3 {
        assert_eq!(barrier.wait(), Ok(0));
    }
}

/// A panicking action breaks the barrier for the others; the panic goes on in the thread
/// that ran it.
#[test]
fn a_panicking_action_breaks_it_and_panics_in_its_thread() {
    let barrier = Rc::new(Barrier::new(3).with_action(|| panic!("action failed")));
    let handles: Vec<_> = (0..3)
        .map(|t| {
            let b = barrier.clone();
            spawn(move || {
                sleep(Duration::from_millis(5 * t as u64)); // thread 2 arrives last
                b.wait()
            })
        })
        .collect();
    let results = joinall(handles);
    assert_eq!(results[0].as_ref().unwrap(), &Err(BrokenBarrier));
    assert_eq!(results[1].as_ref().unwrap(), &Err(BrokenBarrier));
    assert_eq!(
        results[2].as_ref().unwrap_err().panic_message(),
        Some("action failed")
    );
    assert!(barrier.is_broken());
}

/// Green threads on two OS threads meet at one barrier (it is `Sync`).
#[test]
fn parties_on_different_os_threads_meet() {
    let barrier = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let b = barrier.clone();
            std::thread::spawn(move || {
                let hs: Vec<_> = (0..2)
                    .map(|_| {
                        let b = b.clone();
                        spawn(move || b.wait().unwrap())
                    })
                    .collect();
                joinall(hs)
                    .into_iter()
                    .map(Result::unwrap)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<usize> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort();
    assert_eq!(all, [0, 1, 2, 3]);
}
