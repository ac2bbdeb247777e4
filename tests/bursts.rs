//! Bursts: a burst of short green threads maps a handful of stacks (deferred start), a green
//! thread whose timer or fd is ready does not wait behind a backlog of never-started ones
//! (fair wake-ups), the stack pool keeps what a burst used for a while and gives the surplus
//! back once idle (hysteresis), and a green thread that finds no stack ends with `NoStack`.
//! Each test runs on its own OS thread, so it has a fresh hub.

mod util;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use greenrt::JoinError;
use util::{Ended, in_child};

fn on_fresh_hub<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f)
        .join()
        .expect("the test body panicked")
}

/// A deferred start keeps a small function inside the join packet and a large one (over
/// eight words of captures) in a box of its own: both kinds, spawned in one burst on a fresh
/// hub (so every start is deferred), run with their captures intact, and every captured
/// value is dropped exactly once — when its function has run, not when its handle goes.
#[test]
fn deferred_starts_of_small_and_large_functions_run_with_their_captures() {
    use std::rc::Rc;
    let (sum, drops_before_join, drops_after) = on_fresh_hub(|| {
        let dropped = Rc::new(std::cell::Cell::new(0u32));
        struct Counted(Rc<std::cell::Cell<u32>>);
        impl Drop for Counted {
            fn drop(&mut self) {
                self.0.set(self.0.get() + 1);
            }
        }
        let mut handles = Vec::new();
        for i in 0..1_000u64 {
            let counted = Counted(dropped.clone());
            if i % 2 == 0 {
                handles.push(greenrt::spawn(move || {
                    let _keep = &counted;
                    i
                }));
            } else {
                let big = [i; 64]; // 512 bytes of captures: the boxed start
                handles.push(greenrt::spawn(move || {
                    let _keep = &counted;
                    big.iter().sum::<u64>() / 64
                }));
            }
        }
        greenrt::sleep(Duration::ZERO); // every one runs; the handles are still held
        let drops_before_join = dropped.get();
        let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        (sum, drops_before_join, dropped.get())
    });
    assert_eq!(
        sum,
        999 * 1_000 / 2,
        "every function returned its own index"
    );
    assert_eq!(
        drops_before_join, 1_000,
        "captures drop when the function has run"
    );
    assert_eq!(drops_after, 1_000, "and only once");
}

/// 20,000 green threads spawned at once, each returning at once: they start one after
/// another, each on the stack the previous one gave back. Before deferred start, every spawn
/// mapped its own stack: 20,000 of them ended in the pool.
#[test]
fn a_burst_of_short_green_threads_maps_a_handful_of_stacks() {
    let pooled = on_fresh_hub(|| {
        let handles: Vec<_> = (0..20_000u64).map(|i| greenrt::spawn(move || i)).collect();
        let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sum, 19_999 * 20_000 / 2);
        greenrt::hub::stats().pooled_stacks
    });
    assert!(
        pooled <= 64,
        "{pooled} stacks were mapped for a burst of short green threads"
    );
}

/// A burst where every green thread parks still gets one stack each, and all finish. They
/// park on an event the test sets only after counting them, not on a timer: a loaded
/// machine may take longer than any sleep to start 5,000 green threads (one fresh stack page
/// each), and the first sleepers then finished before the count (4,907 alive, seen with a
/// second copy of the suite running beside it).
#[test]
fn a_burst_of_parking_green_threads_gets_a_stack_each() {
    let (pooled, alive_peak) = on_fresh_hub(|| {
        let go = std::rc::Rc::new(greenrt::sync::Event::new());
        let handles: Vec<_> = (0..5_000u64)
            .map(|i| {
                let go = go.clone();
                greenrt::spawn(move || {
                    go.wait();
                    i
                })
            })
            .collect();
        greenrt::yield_now();
        let alive = greenrt::hub::stats().alive;
        go.set();
        let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sum, 4_999 * 5_000 / 2);
        (greenrt::hub::stats().pooled_stacks, alive)
    });
    assert_eq!(alive_peak, 5_000);
    assert!(pooled >= 5_000, "only {pooled} stacks came back");
}

/// Busy work that does not park: about `micros` of CPU.
fn spin(micros: u64) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_micros(micros) {
        std::hint::spin_loop();
    }
}

/// A sleeper whose timer fires while 10,000 never-started green threads (20 µs of work
/// each, 200 ms in all) wait in the run queue runs long before they are through, not after
/// them. Judged against the backlog's own span in the same run (lateness under half of the
/// time from the deadline to the backlog's end), so a loaded machine that stretches both
/// does not fail it; behind the backlog, the lateness would be the whole span.
#[test]
fn a_timer_that_fires_during_a_burst_does_not_wait_behind_the_backlog() {
    let (late, span) = on_fresh_hub(|| {
        let sleeper = greenrt::spawn(|| {
            let deadline = Instant::now() + Duration::from_millis(5);
            greenrt::sleep_until(deadline);
            (deadline, Instant::now() - deadline)
        });
        greenrt::yield_now(); // the sleeper arms its timer
        let backlog: Vec<_> = (0..10_000).map(|_| greenrt::spawn(|| spin(20))).collect();
        let (deadline, late) = sleeper.join().unwrap();
        greenrt::joinall(backlog);
        (late, Instant::now().saturating_duration_since(deadline))
    });
    eprintln!("woke {late:?} late; the backlog ran {span:?} past the deadline");
    assert!(
        late < span / 2,
        "the sleeper woke {late:?} late of {span:?}: it waited behind the backlog"
    );
}

/// The same for a socket that becomes readable during the burst.
#[test]
fn a_ready_socket_during_a_burst_does_not_wait_behind_the_backlog() {
    let (late, span) = on_fresh_hub(|| {
        let listener = greenrt::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<Instant>();
        let writer = std::thread::spawn(move || {
            let mut conn = std::net::TcpStream::connect(addr).unwrap();
            std::thread::sleep(Duration::from_millis(10));
            tx.send(Instant::now()).unwrap();
            conn.write_all(b"x").unwrap();
            std::thread::sleep(Duration::from_millis(500));
        });
        let reader = greenrt::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut byte = [0u8; 1];
            conn.read_exact(&mut byte).unwrap();
            Instant::now()
        });
        greenrt::yield_now(); // the reader waits in accept
        let backlog: Vec<_> = (0..10_000).map(|_| greenrt::spawn(|| spin(20))).collect();
        let read_at = reader.join().unwrap();
        greenrt::joinall(backlog);
        let backlog_end = Instant::now();
        let written_at = rx.recv().unwrap();
        writer.join().unwrap();
        (
            read_at.saturating_duration_since(written_at),
            backlog_end.saturating_duration_since(written_at),
        )
    });
    eprintln!("read {late:?} after the write; the backlog ran {span:?} past it");
    // Against the backlog's own span, as for the timer: load stretches both.
    assert!(
        late < span / 2,
        "the reader ran {late:?} after its data came, of {span:?}: it waited behind the backlog"
    );
}

/// `yield_now` still lets every other ready green thread run once, never-started ones
/// included: fair wake-ups change nothing for what green threads do to each other.
#[test]
fn yield_now_still_lets_every_spawned_green_thread_run_first() {
    let order = on_fresh_hub(|| {
        let order = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let handles: Vec<_> = (0..100)
            .map(|i| {
                let order = order.clone();
                greenrt::spawn(move || order.borrow_mut().push(i))
            })
            .collect();
        greenrt::yield_now();
        order.borrow_mut().push(1000);
        greenrt::joinall(handles);
        order.take()
    });
    let mut expected: Vec<i32> = (0..100).collect();
    expected.push(1000);
    assert_eq!(order, expected);
}

/// After a burst the pool keeps its stacks for a while (a burst that comes back finds them),
/// then, once the hub is idle, gives the surplus back within a bounded time.
#[test]
fn the_pool_keeps_a_burst_then_gives_the_surplus_back_when_idle() {
    let (right_after, later, took) = on_fresh_hub(|| {
        // All 6,000 alive at once, however slowly they start (under load a first run can come
        // after another one ended, and then reuse its stack): each waits for the last.
        let started = std::rc::Rc::new(std::cell::Cell::new(0));
        let all_in = std::rc::Rc::new(greenrt::sync::Event::new());
        let handles: Vec<_> = (0..6_000)
            .map(|_| {
                let (started, all_in) = (started.clone(), all_in.clone());
                greenrt::spawn(move || {
                    started.set(started.get() + 1);
                    all_in.wait();
                    greenrt::sleep(Duration::from_millis(50));
                })
            })
            .collect();
        while started.get() < 6_000 {
            greenrt::sleep(Duration::from_millis(5));
        }
        all_in.set();
        greenrt::joinall(handles);
        let right_after = greenrt::hub::stats().pooled_stacks;
        let t0 = Instant::now();
        let mut later = right_after;
        while t0.elapsed() < Duration::from_secs(10) && later > 1024 {
            greenrt::sleep(Duration::from_millis(50)); // idle
            later = greenrt::hub::stats().pooled_stacks;
        }
        (right_after, later, t0.elapsed())
    });
    eprintln!("pool: {right_after} right after the burst, {later} after {took:?} idle");
    assert!(right_after >= 6_000, "the burst's stacks were not kept");
    assert!(
        later <= 1024,
        "the surplus was not given back ({later} left)"
    );
    assert!(
        took >= Duration::from_millis(900),
        "given back after {took:?}: sooner than one epoch, so a burst that comes back would \
         find no stacks"
    );
}

/// A green thread spawned with no pooled stack, in a process that then cannot map one
/// (RLIMIT_AS), ends without running: its join says `NoStack`, and the others go on.
#[test]
fn a_green_thread_that_finds_no_stack_ends_with_no_stack() {
    let ended = in_child(20, || {
        let ran = std::rc::Rc::new(std::cell::Cell::new(false));
        let r = ran.clone();
        let deferred = greenrt::spawn(move || r.set(true));
        // SAFETY (test): only lowers this child's address-space limit below what a batch of
        // stacks needs (current usage + 1 MiB).
        unsafe {
            let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
            let pages: u64 = statm.split_whitespace().next().unwrap().parse().unwrap();
            let limit = pages * 4096 + (1 << 20);
            let rl = libc::rlimit {
                rlim_cur: limit,
                rlim_max: libc::RLIM_INFINITY,
            };
            assert_eq!(libc::setrlimit(libc::RLIMIT_AS, &rl), 0);
        }
        let outcome = deferred.join();
        let ok = matches!(&outcome, Err(JoinError::NoStack(_))) && !ran.get();
        eprintln!("join: {outcome:?}, ran: {}", ran.get());
        if ok { 0 } else { 1 }
    });
    assert_eq!(ended, Ended::Exited(0));
}

/// Wake-ups from successive polls run in the order they came: 100 sleepers due at +50 ms
/// (each then busy for 300 µs: 30 ms of work) and 100 due at +60 ms, which fire at a poll
/// taken while the first batch is still running. Every one of the first batch runs before any
/// of the second. All 200 are parked in their sleep well before +50 ms (a gate lets them start
/// together; each asserts it slept). (A version that put each poll's wake-ups at the front ran
/// the second batch in the middle of the first: under a flood of I/O, newer wake-ups kept
/// jumping older ones.)
#[test]
fn wake_ups_from_successive_polls_keep_their_order() {
    let order = on_fresh_hub(|| {
        let order = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let gate = std::rc::Rc::new(greenrt::sync::Event::new());
        let base = std::rc::Rc::new(std::cell::Cell::new(Instant::now()));
        let sleepers: Vec<_> = (0..200)
            .map(|i| {
                let (order, gate, base) = (order.clone(), gate.clone(), base.clone());
                greenrt::spawn(move || {
                    gate.wait();
                    let due = base.get() + Duration::from_millis(if i < 100 { 50 } else { 60 });
                    assert!(
                        Instant::now() < due,
                        "sleeper {i} started after its deadline"
                    );
                    greenrt::sleep_until(due);
                    order.borrow_mut().push(i);
                    spin(300);
                })
            })
            .collect();
        greenrt::yield_now(); // all 200 wait at the gate
        base.set(Instant::now());
        gate.set();
        for outcome in greenrt::joinall(sleepers) {
            outcome.expect("a sleeper started after its deadline: the machine stalled 50 ms");
        }
        order.take()
    });
    let last_first = order.iter().rposition(|&i| i < 100).unwrap();
    let first_second = order.iter().position(|&i| i >= 100).unwrap();
    assert!(
        last_first < first_second,
        "a later batch ran in the middle of an earlier one: {order:?}"
    );
}

/// Resident bytes of this process, from `/proc/self/statm`.
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// Touches about `bytes` of this green thread's stack, then parks until `gate` opens.
fn park_deep(bytes: usize, gate: &greenrt::sync::Event) {
    let mut frame = [0u8; 32 * 1024];
    let touched = bytes.min(frame.len());
    for i in (0..touched).step_by(1024) {
        // SAFETY (test): a volatile write keeps the pages touched in an optimised build.
        unsafe { std::ptr::write_volatile(&mut frame[i], 1) };
    }
    gate.wait();
    std::hint::black_box(&frame);
}

/// A child forked beside 8,000 parked green threads (each with ~32 KiB of stack in use) and
/// right after a burst (8,000 more stacks pooled) does not get their stacks: the parent's
/// green threads are not carried over, so copying their page tables made such a fork take
/// up to a second (found by #13's fuzz round after a million green threads). The child's
/// resident size shows what it got; it forks from a green thread and runs on that green
/// thread's stack, which it does get, and resumes a Generator made before the fork (a
/// Generator's stack is copied: the child may use it).
#[test]
fn a_child_does_not_get_the_parents_green_thread_stacks() {
    let (parent, child) = on_fresh_hub(|| {
        let gate = std::rc::Rc::new(greenrt::sync::Event::new());
        let parked: Vec<_> = (0..8_000)
            .map(|_| {
                let gate = gate.clone();
                greenrt::spawn(move || park_deep(32 * 1024, &gate))
            })
            .collect();
        greenrt::yield_now();
        let open = std::rc::Rc::new(greenrt::sync::Event::new());
        let burst: Vec<_> = (0..8_000)
            .map(|_| {
                let open = open.clone();
                greenrt::spawn(move || park_deep(32 * 1024, &open))
            })
            .collect();
        greenrt::yield_now();
        open.set();
        greenrt::joinall(burst); // now pooled, their pages resident
        let mut generator = greenrt::coro::Generator::<u32>::new(|co, ()| {
            for i in 1.. {
                co.yield_(i);
            }
        });
        generator.resume(());
        let (mut theirs, mut ours) = std::os::unix::net::UnixStream::pair().unwrap();
        let parent = resident_bytes();
        let forker = greenrt::spawn(move || {
            let child = greenrt::process::Process::spawn(move || {
                let next = generator.resume(());
                assert!(matches!(next, greenrt::coro::GeneratorState::Yielded(2)));
                ours.write_all(&resident_bytes().to_le_bytes()).unwrap();
            })
            .unwrap();
            assert!(child.join().unwrap().success());
        });
        forker.join().unwrap();
        let mut bytes = [0u8; 8];
        theirs.read_exact(&mut bytes).unwrap();
        gate.set();
        greenrt::joinall(parked);
        (parent, u64::from_le_bytes(bytes))
    });
    let mib = |b: u64| b >> 20;
    eprintln!(
        "resident: parent {} MiB, child {} MiB",
        mib(parent),
        mib(child)
    );
    assert!(
        parent >= 400 << 20,
        "the parent holds only {} MiB: the test did not build its stacks",
        mib(parent)
    );
    assert!(
        child < parent / 4,
        "the child got {} MiB of the parent's {} MiB: green-thread stacks were copied",
        mib(child),
        mib(parent)
    );
}
