//! `greenrt::wait` and `greenrt::iwait` (gevent's `wait` and `iwait`) over a mix of green
//! threads, events, results, queues, sockets and thread-pool tasks.

mod util;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use greenrt::sync::{AsyncResult, Event, Queue};
use greenrt::{Waitable, iwait, sleep, spawn, wait};

const LONG: Duration = Duration::from_secs(10);

#[test]
fn smoke_the_first_ready_of_a_mix() {
    let flag = Event::new();
    let queue: Queue<u32> = Queue::new(0);
    let slow = spawn(|| sleep(LONG));
    let quick = spawn(|| sleep(Duration::from_millis(10)));
    let ready = wait(&[&flag, &queue, &slow, &quick], Some(1), None);
    assert_eq!(ready, [3]);
    assert!(!slow.is_finished());
    slow.abort();
}

/// `count: None` waits for every object, each becoming ready by a different path: a green
/// thread ending, an event set from another OS thread, a queue item, a result, a socket.
#[test]
fn none_waits_for_all_of_them() {
    let ends = spawn(|| sleep(Duration::from_millis(20)));
    let flag = Arc::new(Event::new());
    let setter = {
        let flag = flag.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            flag.set();
        })
    };
    let queue = std::rc::Rc::new(Queue::<u8>::new(0));
    let q = queue.clone();
    let _putter = spawn(move || {
        sleep(Duration::from_millis(40));
        q.put(1).unwrap();
    });
    let result = std::rc::Rc::new(AsyncResult::<u8, ()>::new());
    let r = result.clone();
    let _setter = spawn(move || {
        sleep(Duration::from_millis(10));
        r.set(5).unwrap();
    });
    let listener = greenrt::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let _connector = spawn(move || {
        sleep(Duration::from_millis(50));
        let mut c = greenrt::net::TcpStream::connect(addr).unwrap();
        c.write_all(b"x").unwrap();
        sleep(Duration::from_millis(100));
    });
    let began = Instant::now();
    let ready = wait(
        &[&ends, &*flag, &*queue, &*result, &listener],
        None,
        Some(LONG),
    );
    assert_eq!(ready, [0, 1, 2, 3, 4]);
    assert!(
        began.elapsed() >= Duration::from_millis(50),
        "returned before the last one"
    );
    setter.join().unwrap();
}

/// A timeout returns the ones seen ready so far — fewer than asked.
#[test]
fn a_timeout_returns_what_is_ready() {
    let set = Event::new();
    set.set();
    let unset = Event::new();
    let began = Instant::now();
    let ready = wait(
        &[&unset, &set, &unset],
        None,
        Some(Duration::from_millis(40)),
    );
    assert_eq!(ready, [1]);
    assert!(began.elapsed() >= Duration::from_millis(40));
    assert_eq!(
        wait(&[&unset], Some(0), None),
        Vec::<usize>::new(),
        "Some(0) only looks"
    );
}

/// An item a getter has been promised does not make the queue ready for `wait`: only an item
/// a `get` could take now does.
#[test]
fn a_queue_is_ready_only_with_an_item_no_getter_was_promised() {
    let queue = std::rc::Rc::new(Queue::<u32>::new(0));
    let q = queue.clone();
    let getter = spawn(move || q.get().unwrap());
    greenrt::yield_now(); // the getter waits
    queue.put(1).unwrap(); // promised to it
    assert!(
        !queue.is_ready(),
        "the promised item made the queue look ready"
    );
    assert!(wait(&[&*queue], Some(1), Some(Duration::from_millis(20))).is_empty());
    assert_eq!(getter.join().unwrap(), 1);
    queue.put(2).unwrap();
    assert_eq!(wait(&[&*queue], Some(1), Some(LONG)), [0]);
    assert_eq!(queue.get().unwrap(), 2, "wait must not take the item");
    queue.close();
    assert_eq!(
        wait(&[&*queue], Some(1), Some(LONG)),
        [0],
        "closed counts as ready"
    );
}

/// Waiting parks only the green thread, burns no CPU, and leaves nothing registered behind: a
/// later set of the same event does not disturb the waiter.
#[test]
fn waiting_is_parked_cheap_and_leaves_no_watch_behind() {
    let never = Event::new();
    let flag = std::rc::Rc::new(Event::new());
    let f = flag.clone();
    let ticks = std::rc::Rc::new(std::cell::Cell::new(0));
    let t = ticks.clone();
    let worker = spawn(move || {
        for _ in 0..20 {
            sleep(Duration::from_millis(10));
            t.set(t.get() + 1);
        }
        f.set();
    });
    let cpu = util::thread_cpu_time();
    let began = Instant::now();
    assert_eq!(wait(&[&never, &*flag], Some(1), Some(LONG)), [1]);
    let spent = util::thread_cpu_time() - cpu;
    let waited = began.elapsed();
    assert_eq!(ticks.get(), 20, "the other green thread did not run");
    assert!(
        spent < waited / 4,
        "the wait spun: {spent:?} of CPU in {waited:?}"
    );
    worker.join().unwrap();
    assert!(
        format!("{never:?}").contains("waiters: 0"),
        "left on the list: {never:?}"
    );
    let queue: Queue<u8> = Queue::new(0);
    assert!(wait(&[&queue, &*flag], Some(1), Some(LONG)) == [1]);
    assert!(
        format!("{queue:?}").contains("watchers: 0"),
        "left on the queue: {queue:?}"
    );
}

/// Thread-pool tasks and process-pool results are waitable too.
#[test]
fn tasks_of_both_pools_are_waitable() {
    let pool = greenrt::thread_pool::ThreadPool::new(2).unwrap();
    let slow = pool.submit(|| std::thread::sleep(Duration::from_millis(300)));
    let quick = pool.submit(|| 7);
    assert_eq!(wait(&[&slow, &quick], Some(1), Some(LONG)), [1]);
    assert_eq!(wait(&[&slow, &quick], None, Some(LONG)), [0, 1]);
}

/// `iwait` yields each object once, in the order they become ready: a driver sets four
/// events in the order 3, 1, 2, 0, letting the waiter run after each (no timing involved).
#[test]
fn iwait_yields_in_the_order_they_become_ready() {
    let events: std::rc::Rc<Vec<Event>> = std::rc::Rc::new((0..4).map(|_| Event::new()).collect());
    let e = events.clone();
    let driver = spawn(move || {
        for i in [3, 1, 2, 0] {
            e[i].set();
            greenrt::yield_now(); // the waiter, woken, runs before the next set
        }
    });
    let objects: Vec<&dyn Waitable> = events.iter().map(|e| e as _).collect();
    let order: Vec<usize> = iwait(&objects, Some(LONG)).collect();
    assert_eq!(order, [3, 1, 2, 0]);
    driver.join().unwrap();
}

#[test]
fn iwait_stops_at_its_timeout() {
    let quick = spawn(|| ());
    let slow = spawn(|| sleep(LONG));
    let objects: [&dyn Waitable; 2] = [&slow, &quick];
    let began = Instant::now();
    let order: Vec<usize> = iwait(&objects, Some(Duration::from_millis(30))).collect();
    assert_eq!(order, [1]);
    assert!(began.elapsed() < LONG / 2);
    slow.abort();
}

/// A green thread that waits on its own handle would wait for ever: it panics, with a
/// message that says why.
#[test]
fn waiting_on_ones_own_handle_panics() {
    use std::cell::RefCell;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::rc::Rc;
    let own_handle: Rc<RefCell<Option<greenrt::JoinHandle<()>>>> = Rc::default();
    let message = Rc::new(RefCell::new(String::new()));
    let (slot, out) = (own_handle.clone(), message.clone());
    let h = spawn(move || {
        greenrt::yield_now(); // main puts our own handle in the slot
        let own = slot.borrow_mut().take().unwrap();
        let panic = catch_unwind(AssertUnwindSafe(|| wait(&[&own], None, None))).unwrap_err();
        *out.borrow_mut() = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .unwrap_or_default();
    });
    own_handle.replace(Some(h));
    while message.borrow().is_empty() {
        greenrt::yield_now();
    }
    assert!(
        message.borrow().contains("cannot end while it waits"),
        "{}",
        message.borrow()
    );
}
