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

/// A Channel is a rendezvous: `put` returns only once a getter has the item; items pass in
/// order from several putters; a timed put with no getter gives the item back.
#[test]
fn a_channel_put_waits_for_a_getter() {
    use greenrt::sync::{Channel, GetError, PutError};
    let ch: Rc<Channel<u32>> = Rc::new(Channel::new());
    let taken = Rc::new(Cell::new(false));
    let (c, t) = (ch.clone(), taken.clone());
    let putter = spawn(move || {
        c.put(1).unwrap();
        t.get() // was the item taken when put returned?
    });
    sleep(Duration::from_millis(20));
    assert_eq!(ch.waiting_putters(), 1, "the putter must still be waiting");
    taken.set(true);
    assert_eq!(ch.get(), Ok(1));
    assert!(putter.join().unwrap(), "put returned before the get");
    match ch.put_timeout(7, Duration::from_millis(10)) {
        Err(PutError::Full(7)) => {}
        other => panic!("no getter: expected Full(7), got {other:?}"),
    }
    assert_eq!(ch.try_get(), Err(GetError::Empty));
    let putters: Vec<_> = (10..13)
        .map(|i| {
            let c = ch.clone();
            spawn(move || c.put(i))
        })
        .collect();
    yield_now();
    let got: Vec<u32> = (0..3).map(|_| ch.get().unwrap()).collect();
    assert_eq!(got, [10, 11, 12]);
    joinall(putters)
        .into_iter()
        .for_each(|r| r.unwrap().unwrap());
    ch.close();
    assert_eq!(ch.get(), Err(GetError::Closed));
    assert!(matches!(ch.put(5), Err(PutError::Closed(5))));
}

/// A getter killed after a putter handed it an item does not lose the item: the next get
/// takes it.
#[test]
fn an_item_handed_to_a_killed_getter_is_not_lost() {
    use greenrt::sync::Channel;
    let ch: Rc<Channel<&str>> = Rc::new(Channel::new());
    let c = ch.clone();
    let getter = spawn(move || c.get());
    yield_now(); // it waits
    ch.put("precious").unwrap(); // handed to the waiting getter, which has not woken yet
    getter.abort(); // killed before it runs again
    assert!(getter.join().unwrap_err().is_killed());
    assert_eq!(ch.try_get(), Ok("precious"));
}

/// A full pool refuses `try_spawn` and hands the function back; `spawn_timeout` waits its
/// time, then does the same; `wait_available` returns when a member ends, taking no slot;
/// `apply` gives the value; `apply_async`'s callback sees it.
#[test]
fn a_full_pool_refuses_or_waits_as_asked() {
    let pool = greenrt::pool::GreenPool::new(1).unwrap();
    let busy = pool.spawn(|| sleep(Duration::from_millis(80)));
    let back = pool.try_spawn(|| 7).expect_err("the only slot is taken");
    assert_eq!(back(), 7, "the function comes back unrun");
    let t0 = Instant::now();
    assert!(
        pool.spawn_timeout(|| (), Duration::from_millis(20))
            .is_err()
    );
    assert!(t0.elapsed() >= Duration::from_millis(20));
    assert_eq!(
        pool.wait_available(None),
        1,
        "one slot free once the member ended"
    );
    assert!(busy.is_finished());
    assert_eq!(pool.free_count(), 1, "wait_available took a slot");
    assert_eq!(pool.apply(|| 6 * 7), 42);
    let seen = Rc::new(Cell::new(0));
    let s = seen.clone();
    let h = pool.apply_async(|| 5, move |v| s.set(*v));
    assert_eq!(h.join().unwrap(), 5);
    assert_eq!(seen.get(), 5);
}

/// `imap` yields in input order, feeding at most a few tasks ahead of a slow consumer (the
/// back-pressure), and an unbounded group starts every spawn at once.
#[test]
fn imap_keeps_input_order_and_does_not_run_far_ahead() {
    let pool = greenrt::pool::GreenPool::new(2).unwrap();
    let started = Rc::new(Cell::new(0));
    let s = started.clone();
    let mut results = pool.imap(
        move |i: u64| {
            s.set(s.get() + 1);
            sleep(Duration::from_millis((7 * i) % 5));
            i
        },
        0..100u64,
    );
    sleep(Duration::from_millis(50)); // the consumer dawdles
    assert!(
        started.get() <= 5,
        "{} tasks ran ahead of the consumer",
        started.get()
    );
    assert_eq!(results.next().unwrap().unwrap(), 0);
    let rest: Vec<u64> = results.map(Result::unwrap).collect();
    assert_eq!(rest, (1..100).collect::<Vec<_>>());
    assert_eq!(started.get(), 100);
    let group = greenrt::pool::GreenPool::unbounded();
    let hs: Vec<_> = (0..50)
        .map(|_| group.spawn(|| sleep(Duration::from_millis(20))))
        .collect();
    let t0 = Instant::now();
    group.join();
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "the group ran its members one by one"
    );
    assert!(hs.iter().all(|h| h.is_finished()));
}
