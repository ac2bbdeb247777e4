//! Green queues: order, bounds, timeouts, task_done/join, close, FIFO waiters, cross-thread.

mod util;

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use greenrt::sync::{GetError, LifoQueue, PriorityQueue, PutError, Queue, TaskDoneTooOften};
use greenrt::{joinall, spawn, yield_now};
use util::Log;

const MS: Duration = Duration::from_millis(1);

#[test]
fn smoke_fifo_lifo_priority_order() {
    let fifo: Queue<i32> = Queue::new(0);
    let lifo: LifoQueue<i32> = LifoQueue::new(0);
    let prio: PriorityQueue<i32> = PriorityQueue::new(0);
    for i in [3, 1, 2] {
        fifo.put(i).unwrap();
        lifo.put(i).unwrap();
        prio.put(i).unwrap();
    }
    let drain =
        |f: &dyn Fn() -> Result<i32, GetError>| (0..3).map(|_| f().unwrap()).collect::<Vec<_>>();
    assert_eq!(drain(&|| fifo.get()), [3, 1, 2]);
    assert_eq!(drain(&|| lifo.get()), [2, 1, 3]);
    assert_eq!(drain(&|| prio.get()), [1, 2, 3]);
    assert_eq!(fifo.try_get(), Err(GetError::Empty));
}

#[test]
fn bounded_put_blocks_and_try_put_returns_the_item() {
    let q: Rc<Queue<u32>> = Rc::new(Queue::new(2));
    q.put(1).unwrap();
    q.put(2).unwrap();
    assert!(q.is_full());
    assert_eq!(q.try_put(3), Err(PutError::Full(3)));
    let start = Instant::now();
    assert!(matches!(q.put_timeout(3, MS * 20), Err(PutError::Full(3))));
    assert!(start.elapsed() >= MS * 20);
    let q2 = q.clone();
    let putter = spawn(move || q2.put(3));
    yield_now();
    assert!(!putter.is_finished(), "parks while full");
    assert_eq!(q.get(), Ok(1));
    putter.join().unwrap().unwrap();
    assert_eq!((q.get(), q.get()), (Ok(2), Ok(3)));
}

#[test]
fn get_timeout_and_task_done_rules() {
    let q: Queue<u8> = Queue::new(0);
    let start = Instant::now();
    assert_eq!(q.get_timeout(MS * 20), Err(GetError::Empty));
    assert!(start.elapsed() >= MS * 20);
    assert_eq!(q.task_done(), Err(TaskDoneTooOften));
    q.put(1).unwrap();
    q.get().unwrap();
    assert_eq!(q.task_done(), Ok(()));
    assert_eq!(q.task_done(), Err(TaskDoneTooOften));
    q.join(); // nothing unfinished: returns at once
}

#[test]
fn join_waits_for_every_task_done() {
    let q: Rc<Queue<u32>> = Rc::new(Queue::new(0));
    let log = Log::default();
    for i in 0..10 {
        q.put(i).unwrap();
    }
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let (q, log) = (q.clone(), log.clone());
            spawn(move || {
                while let Ok(item) = q.get() {
                    greenrt::sleep(MS);
                    log.push(item.to_string());
                    q.task_done().unwrap();
                }
            })
        })
        .collect();
    q.join();
    assert_eq!(
        log.lines().len(),
        10,
        "join returned only after all ten were done"
    );
    q.close();
    joinall(workers);
}

#[test]
fn getters_are_served_in_fifo_order() {
    let q: Rc<Queue<u32>> = Rc::new(Queue::new(0));
    let log = Log::default();
    let getters: Vec<_> = (0..50)
        .map(|i| {
            let (q, log) = (q.clone(), log.clone());
            spawn(move || {
                let item = q.get().unwrap();
                log.push(format!("{i}:{item}"));
            })
        })
        .collect();
    yield_now();
    for item in 0..50 {
        q.put(item).unwrap();
    }
    joinall(getters);
    let expected: Vec<String> = (0..50).map(|i| format!("{i}:{i}")).collect();
    assert_eq!(log.lines(), expected);
}

#[test]
fn close_drains_then_fails_every_waiter() {
    let q: Rc<Queue<u32>> = Rc::new(Queue::new(1));
    q.put(7).unwrap();
    let q2 = q.clone();
    let blocked_putter = spawn(move || q2.put(8));
    let getters: Vec<_> = (0..3)
        .map(|_| {
            let q = q.clone();
            spawn(move || q.get())
        })
        .collect();
    yield_now();
    q.close();
    assert!(matches!(
        blocked_putter.join().unwrap(),
        Err(PutError::Closed(8))
    ));
    let outcomes: Vec<_> = joinall(getters).into_iter().map(Result::unwrap).collect();
    assert_eq!(
        outcomes.iter().filter(|r| **r == Ok(7)).count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes
            .iter()
            .filter(|r| **r == Err(GetError::Closed))
            .count(),
        2,
        "{outcomes:?}"
    );
    assert!(matches!(q.put(9), Err(PutError::Closed(9))));
}

#[test]
fn a_killed_getter_does_not_swallow_an_item() {
    let q: Rc<Queue<u32>> = Rc::new(Queue::new(0));
    let q1 = q.clone();
    let victim = spawn(move || q1.get());
    let q2 = q.clone();
    let survivor = spawn(move || q2.get());
    yield_now();
    q.put(1).unwrap(); // reserved for the victim, the longest waiter...
    victim.kill(); // ...which dies before taking it: the item goes on
    assert_eq!(survivor.join().unwrap(), Ok(1));
}

#[test]
fn producers_on_os_threads_consumers_on_green_threads() {
    let q: Arc<Queue<u64>> = Arc::new(Queue::new(16));
    let producers: Vec<_> = (0..4u64)
        .map(|t| {
            let q = q.clone();
            std::thread::spawn(move || {
                for i in 0..1000 {
                    q.put(t * 1000 + i).unwrap();
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..8)
        .map(|_| {
            let q = q.clone();
            spawn(move || {
                let mut sum = 0;
                while let Ok(v) = q.get() {
                    sum += v;
                }
                sum
            })
        })
        .collect();
    // std's join would block this OS thread, and with it the green consumers: poll instead.
    while !producers.iter().all(|p| p.is_finished()) {
        greenrt::sleep(MS);
    }
    while !q.is_empty() {
        greenrt::sleep(MS);
    }
    q.close();
    let total: u64 = joinall(consumers).into_iter().map(Result::unwrap).sum();
    assert_eq!(total, (0..4000).sum());
}

#[test]
fn short_get_timeouts_racing_with_cross_thread_puts_lose_nothing() {
    // Getters keep timing out while other OS threads put: a reservation made for a getter
    // that is giving up at that moment must pass to someone else, never strand an item.
    let q: Arc<Queue<u64>> = Arc::new(Queue::new(8));
    let producers: Vec<_> = (0..2u64)
        .map(|t| {
            let q = q.clone();
            std::thread::spawn(move || {
                for i in 0..2000 {
                    q.put(t * 10_000 + i).unwrap();
                    if i % 64 == 0 {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }
            })
        })
        .collect();
    let got = Rc::new(std::cell::RefCell::new(Vec::new()));
    let getters: Vec<_> = (0..4)
        .map(|_| {
            let (q, got) = (q.clone(), got.clone());
            spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(20);
                while got.borrow().len() < 4000 && Instant::now() < deadline {
                    match q.get_timeout(Duration::from_micros(300)) {
                        Ok(v) => got.borrow_mut().push(v),
                        Err(GetError::Empty) => {}
                        Err(GetError::Closed) => unreachable!(),
                    }
                }
            })
        })
        .collect();
    joinall(getters);
    while !producers.iter().all(|p| p.is_finished()) {
        greenrt::sleep(MS);
    }
    let mut got = got.take();
    got.sort_unstable();
    let mut expected: Vec<u64> = (0..2000).chain(10_000..12_000).collect();
    expected.sort_unstable();
    assert_eq!(got, expected, "every item delivered exactly once");
}

/// `iter` gets every item, waiting for each, and ends when the queue is closed and drained;
/// `try_iter` takes only what is there now; `len`/`is_empty`/`is_full` say the same as Python's
/// `qsize`/`empty`/`full`.
#[test]
fn a_queue_iterates_until_closed_and_try_iter_takes_what_is_there() {
    use std::rc::Rc;
    let q: Rc<Queue<i32>> = Rc::new(Queue::new(2));
    for i in 0..2 {
        q.put(i).unwrap();
    }
    assert!(q.is_full() && q.len() == 2 && q.qsize() == 2);
    assert_eq!(q.try_iter().collect::<Vec<_>>(), [0, 1]);
    assert!(q.is_empty());
    assert_eq!(q.try_iter().next(), None, "try_iter does not wait");
    let producer = greenrt::spawn({
        let q = q.clone();
        move || {
            for i in 10..15 {
                q.put(i).unwrap(); // parks when the queue holds two
            }
            q.close();
        }
    });
    let mut got = Vec::new();
    for item in &*q {
        got.push(item);
    }
    assert_eq!(got, [10, 11, 12, 13, 14]);
    producer.join().unwrap();
}

/// `peek` shows the head in each order and takes nothing.
#[test]
fn peek_shows_the_head_in_each_order() {
    use greenrt::sync::{LifoQueue, PriorityQueue};
    let fifo: Queue<u32> = Queue::new(0);
    let lifo: LifoQueue<u32> = LifoQueue::new(0);
    let prio: PriorityQueue<u32> = PriorityQueue::new(0);
    assert_eq!(fifo.peek(), None);
    for n in [2, 1, 3] {
        fifo.put(n).unwrap();
        lifo.put(n).unwrap();
        prio.put(n).unwrap();
    }
    assert_eq!(
        (fifo.peek(), lifo.peek(), prio.peek()),
        (Some(2), Some(3), Some(1))
    );
    assert_eq!((fifo.len(), lifo.len(), prio.len()), (3, 3, 3));
    assert_eq!(fifo.get(), Ok(2));
    assert_eq!(fifo.peek(), Some(1));
}

/// `shutdown(true)` drops the waiting items, counts them done for `join`, and fails the
/// getters at once; a blocked putter fails too. `shutdown(false)` is `close`: gets drain first.
#[test]
fn an_immediate_shutdown_drops_the_items_and_frees_join() {
    use std::rc::Rc;
    let q: Rc<Queue<u32>> = Rc::new(Queue::new(2));
    q.put(1).unwrap();
    q.put(2).unwrap();
    let putter = greenrt::spawn({
        let q = q.clone();
        move || q.put(3) // parks: the queue is full
    });
    let joiner = greenrt::spawn({
        let q = q.clone();
        move || q.join()
    });
    greenrt::yield_now();
    assert_eq!(q.shutdown(true), 2);
    assert!(matches!(putter.join().unwrap(), Err(PutError::Closed(3))));
    joiner.join().unwrap(); // returned: nothing unfinished
    assert_eq!(q.get(), Err(GetError::Closed));
    let gentle: Queue<u32> = Queue::new(0);
    gentle.put(5).unwrap();
    assert_eq!(gentle.shutdown(false), 0);
    assert_eq!(gentle.get(), Ok(5), "a gentle shutdown lets gets drain");
    assert_eq!(gentle.get(), Err(GetError::Closed));
}
