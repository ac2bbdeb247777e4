//! `sync::Semaphore` and `BoundedSemaphore` under the sequences that broke them: a release
//! racing a waiter that is about to queue (two OS threads, 10,000 rounds each, watched for
//! progress), and a timed-out acquire that must not leave a permit behind.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use greenrt::sync::{BoundedSemaphore, Semaphore};

/// Something with acquire/release, to run the same rounds on both kinds.
trait Permits: Send + Sync + 'static {
    fn take_and_give_back(&self);
    fn free(&self) -> usize;
}

impl Permits for Semaphore {
    fn take_and_give_back(&self) {
        drop(self.acquire());
    }
    fn free(&self) -> usize {
        self.available()
    }
}

impl Permits for BoundedSemaphore {
    fn take_and_give_back(&self) {
        drop(self.acquire());
    }
    fn free(&self) -> usize {
        self.available()
    }
}

const ROUNDS: u64 = 10_000;

/// Two OS threads, each doing `ROUNDS` acquire/release pairs on `sem` — on green threads of
/// their own hubs when `green`, else in their main contexts. A watchdog fails the test if the
/// rounds stop advancing for 5 s (both sides waiting while a permit is free).
fn two_threads_make_progress(sem: Arc<dyn Permits>, green: bool) {
    let done = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (sem, done) = (sem.clone(), done.clone());
            std::thread::spawn(move || {
                let rounds = move || {
                    for _ in 0..ROUNDS {
                        sem.take_and_give_back();
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                };
                if green {
                    greenrt::spawn(rounds).join().unwrap();
                } else {
                    rounds();
                }
            })
        })
        .collect();
    let (mut last, mut since) = (0, Instant::now());
    while done.load(Ordering::Relaxed) < 2 * ROUNDS {
        std::thread::sleep(Duration::from_millis(20));
        let now = done.load(Ordering::Relaxed);
        if now != last {
            (last, since) = (now, Instant::now());
        }
        assert!(
            since.elapsed() < Duration::from_secs(5),
            "stuck after {now} of {} rounds with {} permit(s) free",
            2 * ROUNDS,
            sem.free()
        );
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(sem.free(), 1, "every permit came back");
}

#[test]
fn smoke_acquire_release() {
    let s = Semaphore::new(1);
    let p = s.acquire();
    assert_eq!(s.available(), 0);
    drop(p);
    assert_eq!(s.available(), 1);
}

#[test]
fn two_os_threads_in_their_main_contexts_never_both_wait_beside_a_free_permit() {
    two_threads_make_progress(Arc::new(Semaphore::new(1)), false);
}

#[test]
fn two_os_threads_on_green_threads_never_both_wait_beside_a_free_permit() {
    two_threads_make_progress(Arc::new(Semaphore::new(1)), true);
}

#[test]
fn bounded_two_os_threads_never_both_wait_beside_a_free_permit() {
    two_threads_make_progress(Arc::new(BoundedSemaphore::new(1)), false);
    two_threads_make_progress(Arc::new(BoundedSemaphore::new(1)), true);
}

#[test]
fn a_timed_out_acquire_leaves_no_permit_behind() {
    let s = Semaphore::new(0);
    assert!(s.acquire_timeout(Duration::from_millis(1)).is_none());
    assert_eq!(s.available(), 0, "the failed acquire minted a permit");

    let two = Semaphore::new(2);
    let (a, b) = (two.acquire(), two.acquire());
    assert!(two.acquire_timeout(Duration::from_millis(1)).is_none());
    let t0 = Instant::now();
    assert!(
        two.acquire_timeout(Duration::from_millis(100)).is_none(),
        "a third holder of two permits"
    );
    assert!(t0.elapsed() >= Duration::from_millis(100));
    drop((a, b));
    assert_eq!(two.available(), 2);
}

#[test]
fn bounded_a_timed_out_acquire_leaves_no_permit_behind() {
    let s = BoundedSemaphore::new(1);
    let held = s.acquire();
    assert!(s.acquire_timeout(Duration::from_millis(1)).is_none());
    assert_eq!(s.available(), 0);
    drop(held);
    assert_eq!(s.available(), 1);
    assert_eq!(s.release(), Err(greenrt::sync::OverRelease));
}

#[test]
fn a_release_wakes_exactly_one_waiter_in_fifo_order() {
    let s = std::rc::Rc::new(Semaphore::new(0));
    let order = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let waiters: Vec<_> = (0..3)
        .map(|i| {
            let (s, order) = (s.clone(), order.clone());
            greenrt::spawn(move || {
                s.acquire().forget();
                order.borrow_mut().push(i);
            })
        })
        .collect();
    greenrt::sleep(Duration::from_millis(5)); // all three queue, in spawn order
    s.release();
    greenrt::sleep(Duration::from_millis(5));
    assert_eq!(*order.borrow(), [0], "one release, one waiter");
    s.release();
    s.release();
    greenrt::joinall(waiters);
    assert_eq!(*order.borrow(), [0, 1, 2]);
    assert_eq!(s.available(), 0);
}

#[test]
fn an_over_release_from_two_threads_at_once_is_refused_once() {
    for _ in 0..200 {
        let s = Arc::new(BoundedSemaphore::new(1));
        s.acquire().forget();
        let go = Arc::new(AtomicBool::new(false));
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let (s, go) = (s.clone(), go.clone());
                std::thread::spawn(move || {
                    while !go.load(Ordering::Acquire) {}
                    s.release()
                })
            })
            .collect();
        go.store(true, Ordering::Release);
        let results: Vec<_> = racers.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "{results:?}"
        );
        assert_eq!(s.available(), 1);
    }
}
