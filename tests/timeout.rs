//! The `Timeout` value (gevent's `Timeout`): started, cancelled, asked whether it is pending,
//! put over blocking code with `run`; and how it nests with the `timeout` function.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use greenrt::{Elapsed, Timeout, sleep, spawn, timeout};

const LONG: Duration = Duration::from_secs(10);

#[test]
fn smoke_pending_from_start_until_run_ends() {
    let t = Timeout::new(Duration::from_millis(30));
    assert!(!t.pending(), "not started");
    assert_eq!(t.deadline(), None);
    t.start();
    assert!(t.pending());
    let began = Instant::now();
    assert_eq!(t.run(|| sleep(LONG)), Err(Elapsed));
    let took = began.elapsed();
    assert!(took >= Duration::from_millis(29), "fired early: {took:?}");
    assert!(took < LONG / 2, "did not fire: {took:?}");
    assert!(!t.pending(), "run cancels it at the end");
    assert_eq!(t.deadline(), None);
}

/// The deadline counts from `start`: work between `start` and `run` is on the clock.
#[test]
fn the_clock_runs_from_start_not_from_run() {
    let t = Timeout::start_new(Duration::from_millis(300));
    sleep(Duration::from_millis(250));
    let began = Instant::now();
    assert_eq!(t.run(|| sleep(LONG)), Err(Elapsed));
    let in_run = began.elapsed();
    // Counted from run it would be 300 ms; from start, what was left (~50 ms).
    assert!(
        in_run < Duration::from_millis(300),
        "counted from run: {in_run:?}"
    );
}

/// Expiring outside any `run` interrupts nothing; the passed deadline takes effect at the
/// first blocking call of the next `run`.
#[test]
fn an_expired_deadline_interrupts_nobody_until_run_blocks() {
    let t = Timeout::start_new(Duration::from_millis(10));
    let began = Instant::now();
    sleep(Duration::from_millis(40)); // not interrupted: no run in progress
    assert!(began.elapsed() >= Duration::from_millis(40));
    assert!(!t.pending(), "its deadline passed");
    assert!(t.deadline().is_some(), "but it was not cancelled");
    let began = Instant::now();
    assert_eq!(t.run(|| sleep(LONG)), Err(Elapsed));
    assert!(began.elapsed() < LONG / 2);
}

#[test]
fn run_without_start_starts_it() {
    let t = Timeout::new(Duration::from_millis(20));
    assert_eq!(t.run(|| sleep(LONG)), Err(Elapsed));
    assert_eq!(Timeout::new(LONG).run(|| 7), Ok(7));
}

/// `cancel` inside `run` disarms the timer: the rest of `f` runs without a deadline.
#[test]
fn cancel_inside_run_lets_f_finish() {
    let t = Timeout::start_new(Duration::from_millis(20));
    let began = Instant::now();
    let outcome = t.run(|| {
        t.cancel();
        assert!(!t.pending());
        sleep(Duration::from_millis(100));
        1
    });
    assert_eq!(outcome, Ok(1), "the cancelled deadline still fired");
    assert!(began.elapsed() >= Duration::from_millis(100));
}

/// A clone held by another green thread cancels the deadline of a run in progress (the
/// canceller first runs when the main context parks inside `run`: no timing involved).
#[test]
fn another_green_thread_can_cancel_it() {
    let t = Timeout::start_new(Duration::from_millis(60));
    let canceller = t.clone();
    let h = spawn(move || {
        assert!(
            canceller.pending(),
            "runs while the other is parked inside run"
        );
        canceller.cancel();
    });
    assert_eq!(t.run(|| sleep(Duration::from_millis(150))), Ok(()));
    h.join().unwrap();
}

/// An outer `timeout` that fires passes through an inner `Timeout::run`; an inner `Timeout`
/// that fires is caught by its own `run`, and the outer call returns normally.
#[test]
fn it_nests_with_the_timeout_function() {
    let inner = Timeout::new(LONG);
    let outer = timeout(Duration::from_millis(20), || inner.run(|| sleep(LONG)));
    assert_eq!(outer, Err(Elapsed), "the outer deadline fired");
    assert!(
        !inner.pending(),
        "the inner run ended by unwinding, and cancelled"
    );
    assert_eq!(inner.run(|| 3), Ok(3), "and can run again");

    let inner = Timeout::new(Duration::from_millis(20));
    let outer = timeout(LONG, || inner.run(|| sleep(LONG)));
    assert_eq!(outer, Ok(Err(Elapsed)), "the inner deadline fired");
}

/// A `Timeout` bounds only the green thread that runs under it.
#[test]
fn it_interrupts_only_the_green_thread_running_under_it() {
    let bystander = spawn(|| {
        sleep(Duration::from_millis(80));
        "slept in full"
    });
    let t = Timeout::new(Duration::from_millis(10));
    assert_eq!(t.run(|| sleep(LONG)), Err(Elapsed));
    assert_eq!(bystander.join().unwrap(), "slept in full");
}

#[test]
fn misuse_panics_with_a_precise_message() {
    let t = Timeout::start_new(LONG);
    let again = catch_unwind(AssertUnwindSafe(|| t.start())).unwrap_err();
    assert!(
        again
            .downcast_ref::<&str>()
            .unwrap()
            .contains("cancel it first"),
        "start on a pending timeout"
    );
    t.cancel();
    t.start(); // restarting after a cancel is allowed
    let nested = catch_unwind(AssertUnwindSafe(|| t.run(|| t.run(|| ())))).unwrap_err();
    assert!(
        nested
            .downcast_ref::<&str>()
            .unwrap()
            .contains("inside a run of the same timeout")
    );
    assert_eq!(t.run(|| 4), Ok(4), "the panic ended the outer run too");
}
