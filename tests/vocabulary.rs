//! The smaller pieces of gevent's and threading's vocabulary: `Semaphore.release(n)`, a
//! non-blocking kill, a pool's `kill(timeout=)` that reports survivors.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenrt::sync::{BoundedSemaphore, OverRelease, Semaphore};
use greenrt::{joinall, sleep, spawn, yield_now};

/// `release_n(3)` with two waiters: each waiter gets one permit, the third becomes free.
#[test]
fn release_n_feeds_the_waiters_first_then_the_free_count() {
    let sem = Rc::new(Semaphore::new(0));
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let s = sem.clone();
            spawn(move || s.acquire().forget())
        })
        .collect();
    yield_now(); // both wait
    sem.release_n(3);
    joinall(waiters).into_iter().for_each(|r| r.unwrap());
    assert_eq!(
        sem.available(),
        1,
        "two permits went to the waiters, one is free"
    );
}

/// A bounded semaphore refuses a `release_n` that would pass its bound, all or nothing.
#[test]
fn bounded_release_n_is_all_or_nothing() {
    let sem = BoundedSemaphore::new(3);
    let (a, b) = (sem.acquire(), sem.acquire());
    a.forget();
    b.forget();
    assert_eq!(sem.available(), 1);
    assert_eq!(sem.release_n(3), Err(OverRelease), "1 + 3 > 3");
    assert_eq!(sem.available(), 1, "a refused release_n changed the count");
    assert_eq!(sem.release_n(2), Ok(()));
    assert_eq!(sem.available(), 3);
}

/// `abort` returns at once; the green thread unwinds at its park point, running its
/// destructors, and its join says Killed.
#[test]
fn abort_does_not_wait_for_the_green_thread() {
    struct SetOnDrop(Rc<Cell<bool>>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let unwound = Rc::new(Cell::new(false));
    let u = unwound.clone();
    let h = spawn(move || {
        let _guard = SetOnDrop(u);
        sleep(Duration::from_secs(60));
    });
    yield_now(); // it parks in its sleep
    let started = Instant::now();
    h.abort();
    assert!(!unwound.get(), "abort waited for the unwinding");
    assert!(started.elapsed() < Duration::from_millis(50));
    assert!(h.join().unwrap_err().is_killed());
    assert!(unwound.get());
}

/// `kill_all_timeout` returns 0 once every member died within the time; members not yet
/// started never start. (A member that survives is one that swallows the kill in a hooked
/// call and calls again: see `tests/monkey_fd.rs`.)
#[test]
fn kill_all_timeout_is_zero_when_every_member_dies() {
    let pool = greenrt::pool::GreenPool::new(4).unwrap();
    let started = Rc::new(Cell::new(0));
    for _ in 0..3 {
        let s = started.clone();
        pool.spawn(move || {
            s.set(s.get() + 1);
            sleep(Duration::from_secs(60));
        });
    }
    let t0 = Instant::now();
    assert_eq!(pool.kill_all_timeout(Duration::from_secs(5)), 0);
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "it waited for the timeout"
    );
    assert_eq!(
        started.get(),
        0,
        "members killed before they started must never start"
    );
}
