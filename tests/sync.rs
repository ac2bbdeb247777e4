//! Green sync primitives: exclusion, FIFO handover, timeouts, kills, cross-thread wakes.

mod util;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use greenrt::sync::{BoundedSemaphore, Event, Mutex, OverRelease, Semaphore};
use greenrt::{joinall, sleep, spawn, yield_now};
use util::Log;

const MS: Duration = Duration::from_millis(1);

#[test]
fn smoke_mutex_lock_unlock() {
    let m = Mutex::new(1);
    *m.lock() += 1;
    assert_eq!(*m.lock(), 2);
    assert_eq!(m.into_inner(), 2);
}

#[test]
fn mutex_excludes_across_parks() {
    let m = Rc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..100)
        .map(|i| {
            let m = m.clone();
            spawn(move || {
                let mut v = m.lock();
                v.push((i, "in"));
                yield_now(); // everyone else runs; nobody else gets in
                v.push((i, "out"));
            })
        })
        .collect();
    joinall(handles);
    let v = m.lock();
    for pair in v.chunks(2) {
        assert_eq!(
            pair[0].0, pair[1].0,
            "in/out of one holder are adjacent: {pair:?}"
        );
    }
}

#[test]
fn waiters_get_the_lock_in_fifo_order() {
    let m = Rc::new(Mutex::new(()));
    let log = Log::default();
    let held = m.lock();
    let handles: Vec<_> = (0..100)
        .map(|i| {
            let (m, log) = (m.clone(), log.clone());
            spawn(move || {
                let _g = m.lock();
                log.push(i.to_string());
            })
        })
        .collect();
    yield_now(); // all 100 queue up in spawn order
    drop(held);
    joinall(handles);
    let expected: Vec<String> = (0..100).map(|i: i32| i.to_string()).collect();
    assert_eq!(log.lines(), expected);
}

#[test]
fn lock_timeout_returns_in_time() {
    let m = Rc::new(Mutex::new(()));
    let held = m.lock();
    let start = Instant::now();
    assert!(m.lock_timeout(MS * 30).is_none());
    assert!(start.elapsed() >= MS * 30 && start.elapsed() < Duration::from_secs(2));
    assert!(m.try_lock().is_none());
    drop(held);
    assert!(m.try_lock().is_some());
}

#[test]
fn a_killed_waiter_leaves_the_queue_and_the_lock_still_works() {
    let m = Rc::new(Mutex::new(0));
    let held = m.lock();
    let m2 = m.clone();
    let victim = spawn(move || *m2.lock() += 100);
    let m3 = m.clone();
    let next = spawn(move || *m3.lock() += 1);
    yield_now();
    victim.kill();
    assert!(victim.join().unwrap_err().is_killed());
    drop(held);
    next.join().unwrap();
    assert_eq!(*m.lock(), 1, "the killed waiter never got the lock");
}

#[test]
fn timeout_around_a_lock_wait_unwinds_cleanly() {
    let m = Rc::new(Mutex::new(()));
    let held = m.lock();
    assert!(greenrt::timeout(MS * 10, || drop(m.lock())).is_err());
    drop(held);
    assert!(
        m.try_lock().is_some(),
        "the interrupted waiter is not left in the queue"
    );
}

#[test]
fn a_std_thread_releasing_a_green_mutex_wakes_the_green_waiter() {
    let m = Arc::new(Mutex::new(0u32));
    let (ready, m2) = (Arc::new(Event::new()), m.clone());
    let r = ready.clone();
    let t = std::thread::spawn(move || {
        let mut g = m2.lock();
        r.set();
        std::thread::sleep(Duration::from_millis(30));
        *g = 7;
    });
    ready.wait();
    let ticker = util::Ticker::start(3, MS * 2);
    let waiter = {
        let m = m.clone();
        spawn(move || *m.lock())
    };
    assert_eq!(waiter.join().unwrap(), 7);
    assert_eq!(
        ticker.finish(),
        3,
        "the hub ran other green threads while waiting"
    );
    t.join().unwrap();
}

#[test]
fn event_set_from_another_os_thread_wakes_green_waiters() {
    let e = Arc::new(Event::new());
    let waiters: Vec<_> = (0..10)
        .map(|_| {
            let e = e.clone();
            spawn(move || {
                e.wait();
                e.is_set()
            })
        })
        .collect();
    let e2 = e.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        e2.set();
    });
    assert!(joinall(waiters).into_iter().all(|r| r.unwrap()));
    t.join().unwrap();
}

#[test]
fn event_wait_timeout_reports_the_flag() {
    let e = Event::new();
    let start = Instant::now();
    assert!(!e.wait_timeout(MS * 20));
    assert!(start.elapsed() >= MS * 20);
    e.set();
    assert!(e.wait_timeout(MS * 20));
    e.clear();
    assert!(!e.is_set());
}

#[test]
fn semaphore_bound_is_never_exceeded() {
    let s = Rc::new(Semaphore::new(3));
    let (inside, most) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let handles: Vec<_> = (0..50)
        .map(|_| {
            let (s, inside, most) = (s.clone(), inside.clone(), most.clone());
            spawn(move || {
                let _p = s.acquire();
                inside.set(inside.get() + 1);
                most.set(most.get().max(inside.get()));
                sleep(MS);
                inside.set(inside.get() - 1);
            })
        })
        .collect();
    joinall(handles);
    assert_eq!(most.get(), 3);
    assert_eq!(s.available(), 3);
}

#[test]
fn semaphore_timeouts_and_bounded_over_release() {
    let s = Semaphore::new(1);
    let p = s.acquire();
    assert!(s.acquire_timeout(MS * 10).is_none());
    drop(p);
    assert!(s.acquire_timeout(MS * 10).is_some());
    let b = BoundedSemaphore::new(2);
    assert_eq!(b.release(), Err(OverRelease));
    b.acquire().forget();
    assert_eq!(b.release(), Ok(()));
    assert_eq!(b.available(), 2);
}

#[test]
fn two_locks_in_opposite_order_end_with_the_deadlock_report() {
    // A single-threaded child process: there the report is exact.
    // SAFETY: the child runs green code only and leaves with _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        greenrt::hub::reset_after_fork();
        let (a, b) = (Rc::new(Mutex::new(())), Rc::new(Mutex::new(())));
        let (a1, b1, a2, b2) = (a.clone(), b.clone(), a.clone(), b.clone());
        let t1 = greenrt::Builder::new()
            .name("ab".into())
            .spawn(move || {
                let _a = a1.lock();
                sleep(MS * 5);
                let _b = b1.lock();
            })
            .unwrap();
        let t2 = greenrt::Builder::new()
            .name("ba".into())
            .spawn(move || {
                let _b = b2.lock();
                sleep(MS * 5);
                let _a = a2.lock();
            })
            .unwrap();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| joinall([t1, t2])));
        let msg = caught
            .err()
            .and_then(|p| p.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let ok = msg.contains("deadlock")
            && msg.contains("'ab'")
            && msg.contains("'ba'")
            && msg.contains("Mutex at");
        // SAFETY: ends the child at once.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "status {status:#x}"
    );
}

#[test]
fn rlock_is_reentrant_per_green_thread_and_refuses_non_owners() {
    use greenrt::sync::{NotOwner, RLock};
    let r = Rc::new(RLock::new());
    r.acquire();
    r.acquire();
    assert_eq!(r.count(), 2);
    let r2 = r.clone();
    let stranger = spawn(move || r2.release());
    assert_eq!(
        stranger.join().unwrap(),
        Err(NotOwner),
        "a non-owner cannot release"
    );
    let r3 = r.clone();
    let waiter = spawn(move || {
        let _g = r3.lock(); // parks until main releases both acquisitions
        r3.count()
    });
    yield_now();
    r.release().unwrap();
    yield_now();
    assert!(!waiter.is_finished(), "still held once");
    r.release().unwrap();
    assert_eq!(waiter.join().unwrap(), 1);
    assert_eq!(r.release(), Err(NotOwner));
}

#[test]
fn lock_is_a_data_less_mutex() {
    let l = greenrt::sync::Lock::new();
    let g = l.acquire();
    assert!(l.locked() && l.try_acquire().is_none());
    assert!(l.acquire_timeout(MS * 5).is_none());
    drop(g);
    assert!(!l.locked());
}

#[test]
fn condition_wait_while_and_notify_counts() {
    use greenrt::sync::Condition;
    let state = Rc::new((Mutex::new(0u32), Condition::new()));
    let consumers: Vec<_> = (0..5)
        .map(|_| {
            let s = state.clone();
            spawn(move || {
                let mut n = s.1.wait_while(s.0.lock(), |n| *n == 0);
                *n -= 1; // take one item
            })
        })
        .collect();
    yield_now(); // all five wait
    *state.0.lock() = 2;
    assert_eq!(state.1.notify(2), 2);
    sleep(MS);
    *state.0.lock() += 3;
    state.1.notify_all();
    joinall(consumers);
    assert_eq!(*state.0.lock(), 0);
}

#[test]
fn condition_wait_timeout_reports_timeouts() {
    use greenrt::sync::Condition;
    let (m, c) = (Mutex::new(()), Condition::new());
    let start = Instant::now();
    let (_g, timed_out) = c.wait_timeout(m.lock(), MS * 20);
    assert!(timed_out && start.elapsed() >= MS * 20);
    drop(_g);
    let (_g, still) = c.wait_while_timeout(m.lock(), MS * 5, |_| true);
    assert!(still);
}

/// `notify_one` wakes exactly the longest waiting of three waiters, then the next.
#[test]
fn condition_notify_one_wakes_one_waiter_in_order() {
    use greenrt::sync::Condition;
    let state = Rc::new((Mutex::new(Vec::new()), Condition::new()));
    let waiters: Vec<_> = (0..3)
        .map(|i| {
            let s = state.clone();
            spawn(move || {
                let mut woken = s.1.wait(s.0.lock());
                woken.push(i);
            })
        })
        .collect();
    yield_now(); // all three wait, 0 first
    assert_eq!(state.1.notify_one(), 1);
    sleep(MS);
    assert_eq!(*state.0.lock(), [0]);
    assert_eq!(state.1.notify_one(), 1);
    sleep(MS);
    assert_eq!(*state.0.lock(), [0, 1]);
    state.1.notify_all();
    joinall(waiters);
    assert_eq!(state.1.notify_one(), 0, "nobody left to wake");
}
