//! Generators: Python's send/yield/close semantics, with drop counting.

mod util;

use std::panic::{AssertUnwindSafe, catch_unwind};

use greenrt::coro::{Generator, GeneratorState};
use util::DropCounter;

#[test]
fn smoke_yield_and_complete() {
    let mut g = Generator::new(|co, ()| {
        co.yield_(1);
        co.yield_(2);
        "end"
    });
    assert_eq!(g.resume(()), GeneratorState::Yielded(1));
    assert_eq!(g.resume(()), GeneratorState::Yielded(2));
    assert_eq!(g.resume(()), GeneratorState::Complete("end"));
    assert!(g.is_complete());
}

#[test]
fn the_first_resume_starts_the_body_and_sends_are_received_in_order() {
    let log = util::Log::default();
    let l = log.clone();
    let mut g = Generator::new(move |co, first: &'static str| {
        l.push(format!("started with {first}"));
        let a = co.yield_(10);
        l.push(format!("got {a}"));
        let b = co.yield_(20);
        l.push(format!("got {b}"));
        30
    });
    assert!(
        log.lines().is_empty(),
        "nothing runs before the first resume"
    );
    assert_eq!(g.resume("x"), GeneratorState::Yielded(10));
    assert_eq!(g.resume("y"), GeneratorState::Yielded(20));
    assert_eq!(g.resume("z"), GeneratorState::Complete(30));
    assert_eq!(log.lines(), ["started with x", "got y", "got z"]);
}

#[test]
fn close_unwinds_a_suspended_body_and_runs_destructors() {
    let drops = DropCounter::default();
    let token = drops.token();
    let reached = std::rc::Rc::new(std::cell::Cell::new(false));
    let r = reached.clone();
    let mut g: Generator<u32, ()> = Generator::new(move |co, ()| {
        let _t = token;
        co.yield_(1);
        r.set(true);
    });
    assert_eq!(g.resume(()), GeneratorState::Yielded(1));
    g.close();
    assert_eq!(drops.dropped(), 1);
    assert!(!reached.get(), "the body never continued past its yield");
    assert!(g.is_complete());
    g.close(); // twice is fine
}

#[test]
fn dropping_suspended_or_unstarted_generators_runs_destructors() {
    let drops = DropCounter::default();
    let (a, b) = (drops.token(), drops.token());
    let mut started: Generator<(), ()> = Generator::new(move |co, ()| {
        let _a = a;
        co.yield_(());
    });
    started.resume(());
    drop(started);
    let unstarted: Generator<(), ()> = Generator::new(move |_, ()| drop(b));
    drop(unstarted);
    assert_eq!(drops.dropped(), 2);
}

#[test]
fn a_generator_is_an_iterator_when_nothing_is_sent() {
    let fib = Generator::new(|co, ()| {
        let (mut a, mut b) = (0u64, 1u64);
        for _ in 0..10 {
            co.yield_(a);
            (a, b) = (b, a + b);
        }
    });
    assert_eq!(fib.collect::<Vec<_>>(), [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]);
}

#[test]
fn a_panic_in_the_body_comes_out_of_resume() {
    let mut g: Generator<(), ()> = Generator::new(|co, ()| {
        co.yield_(());
        panic!("body failed");
    });
    g.resume(());
    let err = catch_unwind(AssertUnwindSafe(|| g.resume(()))).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"body failed"));
    assert!(g.is_complete());
}

#[test]
fn resuming_a_completed_generator_is_a_clear_panic() {
    let mut g: Generator<(), ()> = Generator::new(|_, ()| ());
    assert_eq!(g.resume(()), GeneratorState::Complete(()));
    let err = catch_unwind(AssertUnwindSafe(|| g.resume(()))).unwrap_err();
    assert!(
        err.downcast_ref::<&str>()
            .unwrap()
            .contains("already completed")
    );
}

#[test]
fn blocking_inside_a_generator_is_refused_with_a_clear_panic() {
    greenrt::yield_now(); // make this thread's hub first, so the sleep below must park
    let mut g: Generator<(), ()> =
        Generator::new(|_, ()| greenrt::sleep(std::time::Duration::from_millis(200)));
    let err = catch_unwind(AssertUnwindSafe(|| g.resume(()))).unwrap_err();
    let msg = err
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| err.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    assert!(
        msg.contains("cannot block") && msg.contains("Generator"),
        "{msg}"
    );
    // Outside the body, blocking works again.
    greenrt::sleep(std::time::Duration::from_millis(1));
}

#[test]
fn generators_run_inside_green_threads() {
    let handles: Vec<_> = (0..100u64)
        .map(|i| {
            greenrt::spawn(move || {
                let g = Generator::new(move |co, ()| {
                    for k in 0..10 {
                        co.yield_(i * 10 + k);
                    }
                });
                let mut sum = 0;
                for v in g {
                    sum += v;
                    greenrt::yield_now(); // blocking between resumes is fine
                }
                sum
            })
        })
        .collect();
    let total: u64 = greenrt::joinall(handles)
        .into_iter()
        .map(Result::unwrap)
        .sum();
    assert_eq!(total, (0..1000u64).sum());
}
