//! Green-thread core: spawn, join, sleep, yield, kill, timeout, panics, current, unpark.

mod util;

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenrt::{
    JoinError, current, joinall, joinall_timeout, sleep, spawn, spawn_later, timeout, yield_now,
};
use util::{DropCounter, Log};

const MS: Duration = Duration::from_millis(1);

#[test]
fn smoke_spawn_and_join() {
    assert_eq!(spawn(|| 40 + 2).join().unwrap(), 42);
}

#[test]
fn gevent_sleep_order() {
    let log = Log::default();
    let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
    let foo = spawn(move || {
        l1.push("Running in foo");
        sleep(MS * 40);
        l1.push("foo done");
    });
    let bar = spawn(move || {
        l2.push("running in bar");
        sleep(MS * 20);
        l2.push("bar done");
    });
    let func3 = spawn(move || {
        l3.push("running in func3");
        sleep(Duration::ZERO);
        l3.push("func3 done");
    });
    let start = Instant::now();
    for r in joinall([foo, bar, func3]) {
        r.unwrap();
    }
    assert_eq!(
        log.lines(),
        [
            "Running in foo",
            "running in bar",
            "running in func3",
            "func3 done",
            "bar done",
            "foo done"
        ]
    );
    let took = start.elapsed();
    assert!(
        took >= MS * 40 && took < MS * 400,
        "sleeps must overlap, took {took:?}"
    );
}

#[test]
fn spawn_does_not_run_the_child_until_the_spawner_blocks() {
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let h = spawn(move || r.set(true));
    assert!(!ran.get(), "spawn must not switch");
    yield_now();
    assert!(ran.get(), "yield_now runs the ready child");
    h.join().unwrap();
}

#[test]
fn ready_queue_is_fifo_and_sleep_zero_runs_each_other_once() {
    let log = Log::default();
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let log = log.clone();
            spawn(move || {
                log.push(format!("a{i}"));
                sleep(Duration::ZERO);
                log.push(format!("b{i}"));
            })
        })
        .collect();
    joinall(handles);
    assert_eq!(
        log.lines(),
        ["a0", "a1", "a2", "a3", "b0", "b1", "b2", "b3"]
    );
}

#[test]
fn hundred_thousand_green_threads_spawned_and_joined() {
    let handles: Vec<_> = (0..100_000u64).map(|i| spawn(move || i * 2)).collect();
    let sum: u64 = joinall(handles).into_iter().map(Result::unwrap).sum();
    assert_eq!(sum, 2 * (100_000 * 99_999 / 2));
    assert_eq!(greenrt::hub::stats().alive, 0);
}

#[test]
fn ten_thousand_sleepers_overlap() {
    let start = Instant::now();
    let handles: Vec<_> = (0..10_000)
        .map(|i| spawn(move || sleep(MS * (i % 50))))
        .collect();
    joinall(handles);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "10k sleeps of <=50 ms took {:?}",
        start.elapsed()
    );
}

#[test]
fn join_timeout_gives_the_handle_back() {
    let h = spawn(|| {
        sleep(MS * 30);
        "late"
    });
    let h = h.join_timeout(MS * 5).expect_err("still sleeping");
    assert!(!h.is_finished());
    assert_eq!(
        h.join_timeout(Duration::from_secs(5)).unwrap().unwrap(),
        "late"
    );
}

#[test]
fn joinall_timeout_splits_finished_and_running() {
    let quick = spawn(|| 1);
    let slow = spawn(|| {
        sleep(Duration::from_secs(10));
        2
    });
    let start = Instant::now();
    let mut out = joinall_timeout([quick, slow], MS * 20).into_iter();
    assert!(matches!(out.next(), Some(Ok(Ok(1)))));
    let slow = out.next().unwrap().expect_err("slow is still running");
    assert!(start.elapsed() < Duration::from_secs(2));
    slow.kill();
    assert!(slow.join().unwrap_err().is_killed());
}

#[test]
fn spawn_later_starts_after_the_delay() {
    let start = Instant::now();
    let h = spawn_later(MS * 30, move || start.elapsed());
    assert!(h.join().unwrap() >= MS * 30);
}

#[test]
fn kill_parked_green_thread_runs_its_destructors() {
    let drops = DropCounter::default();
    let token = drops.token();
    let reached_end = Rc::new(Cell::new(false));
    let end = reached_end.clone();
    let h = spawn(move || {
        let _t = token;
        sleep(Duration::from_secs(60));
        end.set(true);
    });
    yield_now();
    let start = Instant::now();
    h.kill();
    assert!(h.is_finished());
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(
        drops.dropped(),
        1,
        "the stack unwound and dropped the token"
    );
    assert!(!reached_end.get());
    assert!(h.join().unwrap_err().is_killed());
    assert_eq!(
        greenrt::hub::stats().timers,
        0,
        "the sleep's timer was cancelled on unwind"
    );
}

#[test]
fn kill_unstarted_green_thread_never_runs_it() {
    let drops = DropCounter::default();
    let token = drops.token();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let h = spawn(move || {
        let _t = token;
        r.set(true);
    });
    h.kill();
    assert!(!ran.get());
    assert_eq!(
        drops.dropped(),
        1,
        "the closure and its captures were dropped"
    );
    assert!(h.join().unwrap_err().is_killed());

    let ran_later = Rc::new(Cell::new(false));
    let r = ran_later.clone();
    let delayed = spawn_later(MS * 10, move || r.set(true));
    delayed.kill();
    sleep(MS * 30);
    assert!(!ran_later.get());
    assert!(delayed.join().unwrap_err().is_killed());
}

#[test]
fn kill_finished_green_thread_does_nothing() {
    let h = spawn(|| 5);
    yield_now();
    assert!(h.is_finished());
    h.kill();
    assert_eq!(h.join().unwrap(), 5);
}

#[test]
fn kill_self_is_a_clear_panic_and_join_self_an_error() {
    // The victim is handed its own handle through a cell, then misuses it.
    let slot = Rc::new(Cell::new(None::<greenrt::JoinHandle<()>>));
    let report = Rc::new(RefCell::new(None::<(String, bool)>));
    let (s, r) = (slot.clone(), report.clone());
    let victim = spawn(move || {
        yield_now();
        let me = s.take().expect("handle placed before the first yield");
        let panic = catch_unwind(AssertUnwindSafe(|| me.kill())).expect_err("kill self must panic");
        let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        let join_self = matches!(me.join(), Err(JoinError::JoinSelf));
        *r.borrow_mut() = Some((message, join_self));
    });
    let id = victim.id();
    slot.set(Some(victim));
    while report.borrow().is_none() {
        yield_now();
    }
    let (message, join_self) = report.take().unwrap();
    assert_eq!(
        message,
        format!(
            "greenrt: green thread {id} tried to kill itself; return from its function instead"
        )
    );
    assert!(
        join_self,
        "joining yourself returns JoinError::JoinSelf instead of hanging"
    );
}

#[test]
fn panics_are_reported_through_join_and_the_hub_survives() {
    let bad = spawn(|| -> u32 { panic!("green boom") });
    let good = spawn(|| {
        sleep(MS);
        7
    });
    let err = bad.join().unwrap_err();
    assert_eq!(err.panic_message(), Some("green boom"));
    assert!(err.to_string().contains("green boom"));
    assert_eq!(good.join().unwrap(), 7);
    let formatted = spawn(|| -> () { panic!("code {}", 42) })
        .join()
        .unwrap_err();
    assert_eq!(formatted.panic_message(), Some("code 42"));
}

#[test]
fn timeout_interrupts_a_blocking_call_and_unwinds() {
    let drops = DropCounter::default();
    let token = drops.token();
    let start = Instant::now();
    let r = timeout(MS * 20, move || {
        let _t = token;
        sleep(Duration::from_secs(60));
    });
    assert_eq!(r, Err(greenrt::Elapsed));
    assert!(start.elapsed() >= MS * 20 && start.elapsed() < Duration::from_secs(2));
    assert_eq!(drops.dropped(), 1);
    assert_eq!(timeout(Duration::from_secs(5), || "fast"), Ok("fast"));
}

#[test]
fn timeout_inside_green_thread_interrupts_join() {
    let h = spawn(|| {
        let sleeper = spawn(|| sleep(Duration::from_secs(60)));
        let r = timeout(MS * 10, || sleeper.join().is_ok());
        r.is_err()
    });
    assert!(h.join().unwrap());
}

#[test]
fn nested_timeouts_inner_fires_outer_survives() {
    let outcome = timeout(MS * 200, || {
        let inner = timeout(MS * 10, || sleep(Duration::from_secs(60)));
        assert_eq!(inner, Err(greenrt::Elapsed));
        sleep(MS * 5); // the outer deadline is still armed but not reached
        "outer body finished"
    });
    assert_eq!(outcome, Ok("outer body finished"));
}

#[test]
fn nested_timeouts_outer_fires_through_inner() {
    let inner_saw = Rc::new(Cell::new(false));
    let saw = inner_saw.clone();
    let outcome = timeout(MS * 10, move || {
        let inner = timeout(Duration::from_secs(60), || sleep(Duration::from_secs(60)));
        saw.set(true); // never reached: the outer unwind passes through the inner scope
        inner
    });
    assert_eq!(outcome, Err(greenrt::Elapsed));
    assert!(!inner_saw.get());
}

#[test]
fn a_timeout_that_fires_after_its_body_returns_is_forgotten() {
    assert_eq!(timeout(MS * 5, || 1), Ok(1));
    sleep(MS * 10);
    yield_now(); // no stale interrupt may hit us here
}

#[test]
fn current_names_green_threads_and_main() {
    let main = current();
    assert!(main.is_main());
    let named = greenrt::Builder::new()
        .name("worker-7".into())
        .spawn(current)
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(named.name(), Some("worker-7"));
    assert!(!named.is_main());
    assert_ne!(named.id(), main.id());
}

#[test]
fn small_and_large_stacks() {
    fn depth(n: u32) -> u32 {
        let pad = std::hint::black_box([0u8; 512]);
        if n == 0 {
            pad[0] as u32
        } else {
            1 + depth(n - 1)
        }
    }
    let small = greenrt::Builder::new()
        .stack_size(64 * 1024)
        .spawn(|| depth(8))
        .unwrap();
    let big = greenrt::Builder::new()
        .stack_size(8 << 20)
        .spawn(|| depth(2000))
        .unwrap();
    assert_eq!(small.join().unwrap(), 8);
    assert_eq!(big.join().unwrap(), 2000);
}

#[test]
fn unparker_wakes_a_green_thread_from_another_os_thread() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    let ticker = util::Ticker::start(5, MS * 5);
    let waiter = spawn(move || {
        let unparker = greenrt::hub::unparker();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(40));
            f.store(true, Ordering::Release);
            unparker.unpark();
        });
        while !flag.load(Ordering::Acquire) {
            greenrt::hub::park();
        }
        "woken"
    });
    assert_eq!(waiter.join().unwrap(), "woken");
    assert_eq!(
        ticker.finish(),
        5,
        "the hub kept running other green threads meanwhile"
    );
}

#[test]
fn every_os_thread_has_its_own_hub() {
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let handles: Vec<_> = (0..1000)
                    .map(|i| {
                        spawn(move || {
                            sleep(MS);
                            t * 1000 + i
                        })
                    })
                    .collect();
                joinall(handles)
                    .into_iter()
                    .map(Result::unwrap)
                    .sum::<u64>()
            })
        })
        .collect();
    let total: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(total, (0..4000u64).sum());
}

#[test]
fn a_yield_loop_in_the_main_context_still_lets_timers_and_io_run() {
    // A deadline over a main context that only yields: the timer must get to fire.
    let t0 = Instant::now();
    let spun = greenrt::timeout(Duration::from_millis(50), || {
        loop {
            greenrt::yield_now();
        }
    });
    assert_eq!(spun, Err(greenrt::Elapsed));
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());

    // A green thread waiting for a socket wakes while main spins on `sleep(0)`.
    let listener = greenrt::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let writer = std::thread::spawn(move || {
        let mut conn = std::net::TcpStream::connect(addr).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        std::io::Write::write_all(&mut conn, b"x").unwrap();
    });
    let reader = spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut byte = [0u8; 1];
        std::io::Read::read_exact(&mut conn, &mut byte).unwrap();
        byte
    });
    let t0 = Instant::now();
    while !reader.is_finished() && t0.elapsed() < Duration::from_secs(5) {
        sleep(Duration::ZERO);
    }
    assert!(
        reader.is_finished(),
        "the socket's event never reached the hub"
    );
    assert_eq!(&reader.join().unwrap(), b"x");
    writer.join().unwrap();
}
