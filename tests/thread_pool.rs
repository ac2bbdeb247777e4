//! ThreadPool: results, callbacks, cancel, panics, green-only waiting, shutdown.

mod util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use greenrt::thread_pool::{TaskError, ThreadPool};

#[test]
fn smoke_submit_and_result() {
    let pool = ThreadPool::new(2).unwrap();
    assert_eq!(pool.submit(|| 1 + 1).result().unwrap(), 2);
}

#[test]
fn results_and_callbacks_for_twenty_tasks_on_three_threads() {
    let pool = ThreadPool::new(3).unwrap();
    let tasks: Vec<_> = (0..20u64)
        .map(|i| pool.submit(move || i * (i + 1)))
        .collect();
    let seen = Arc::new(Mutex::new(Vec::new()));
    for t in &tasks {
        let seen = seen.clone();
        t.add_done_callback(move |r| seen.lock().unwrap().push(*r.as_ref().unwrap()));
    }
    let values: Vec<u64> = tasks.into_iter().map(|t| t.result().unwrap()).collect();
    assert_eq!(values, (0..20u64).map(|i| i * (i + 1)).collect::<Vec<_>>());
    pool.shutdown(true);
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_unstable();
    assert_eq!(seen, values, "every callback ran once with its value");
}

#[test]
fn a_callback_added_after_completion_runs_at_once() {
    let pool = ThreadPool::new(1).unwrap();
    let t = pool.submit(|| "done");
    while !t.done() {
        greenrt::sleep(Duration::from_millis(1));
    }
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    t.add_done_callback(move |_| {
        r.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(ran.load(Ordering::SeqCst), 1);
}

#[test]
fn panics_report_through_result_and_cancel_works_before_start() {
    let pool = ThreadPool::new(1).unwrap();
    let blocker = pool.submit(|| std::thread::sleep(Duration::from_millis(50)));
    let queued = pool.submit(|| 1);
    assert!(queued.cancel(), "not started yet: cancellable");
    assert!(matches!(queued.result(), Err(TaskError::Cancelled)));
    assert!(
        !blocker.cancel() || blocker.done(),
        "running tasks cannot be cancelled"
    );
    let bad = pool.submit(|| -> u8 { panic!("job failed") });
    assert_eq!(
        bad.result().unwrap_err().panic_message(),
        Some("job failed")
    );
    assert_eq!(
        pool.submit(|| 3).result().unwrap(),
        3,
        "the worker survived the panic"
    );
}

#[test]
fn waiting_for_a_result_parks_only_the_green_thread() {
    let pool = ThreadPool::new(1).unwrap();
    let ticker = util::Ticker::start(5, Duration::from_millis(5));
    let slow = pool.submit(|| {
        std::thread::sleep(Duration::from_millis(60));
        7
    });
    let waiter = greenrt::spawn(move || slow.result().unwrap());
    assert_eq!(waiter.join().unwrap(), 7);
    assert_eq!(ticker.finish(), 5);
}

#[test]
fn result_timeout_gives_the_handle_back() {
    let pool = ThreadPool::new(1).unwrap();
    let t = pool.submit(|| {
        std::thread::sleep(Duration::from_millis(50));
        9
    });
    let t = t
        .result_timeout(Duration::from_millis(5))
        .expect_err("not done yet");
    assert_eq!(
        t.result_timeout(Duration::from_secs(5)).unwrap().unwrap(),
        9
    );
}

/// Regression: a worker that woke the main context and exited between the hub's two looks
/// (pending wake-ups, then thread count) made the hub report a deadlock that was not one.
/// The report is only made in a single-threaded process, so the loop runs in a forked child.
#[test]
fn shutdown_right_after_work_never_reports_a_false_deadlock() {
    let child = greenrt::process::Process::spawn(|| {
        for _ in 0..3000 {
            let pool = greenrt::thread_pool::ThreadPool::new(3).unwrap();
            assert_eq!(pool.submit(|| 6 * 7).result().unwrap(), 42);
            assert_eq!(pool.map(|i: u64| i * i, 0..5), [0, 1, 4, 9, 16]);
            pool.shutdown(true);
        }
    })
    .unwrap();
    assert!(
        child.join().unwrap().success(),
        "the child reported a deadlock (see stderr)"
    );
}

#[test]
fn a_panicking_done_callback_is_contained_before_and_after_completion() {
    let pool = ThreadPool::new(1).unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(greenrt::sync::Event::new());
    let g = gate.clone();
    let task = pool.submit(move || {
        g.wait();
        5
    });
    let r = ran.clone();
    task.add_done_callback(move |_| panic!("callback one fails"));
    task.add_done_callback(move |out| {
        assert_eq!(*out.as_ref().unwrap(), 5);
        r.fetch_add(1, Ordering::SeqCst);
    });
    gate.set();
    while !task.done() {
        greenrt::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        ran.load(Ordering::SeqCst),
        1,
        "the callback after the panicking one ran"
    );
    // Added after completion: runs at once, here, and its panic does not reach us either.
    task.add_done_callback(|_| panic!("late callback fails"));
    let r = ran.clone();
    task.add_done_callback(move |_| {
        r.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(ran.load(Ordering::SeqCst), 2);
    assert_eq!(task.result().unwrap(), 5);
}

#[test]
fn cancel_twice_says_cancelled_twice() {
    let pool = ThreadPool::new(1).unwrap();
    let blocker = pool.submit(|| std::thread::sleep(Duration::from_millis(50)));
    let queued = pool.submit(|| 1);
    assert!(queued.cancel());
    assert!(queued.cancel(), "an already cancelled task is cancelled");
    assert!(matches!(queued.result(), Err(TaskError::Cancelled)));
    blocker.result().unwrap();
}

#[test]
fn submit_after_shutdown_is_a_rejected_task_not_a_panic() {
    let pool = ThreadPool::new(1).unwrap();
    pool.shutdown(true);
    let late = pool.submit(|| 1);
    assert!(late.done());
    assert!(matches!(late.result(), Err(TaskError::Rejected)));
}

mod futures_wait {
    use std::time::{Duration, Instant};

    use greenrt::thread_pool::{ReturnWhen, ThreadPool, Unfinished, as_completed, wait};

    fn sleeper(pool: &ThreadPool, ms: u64) -> greenrt::thread_pool::Task<u64> {
        pool.submit(move || {
            std::thread::sleep(Duration::from_millis(ms));
            ms
        })
    }

    #[test]
    fn first_completed_returns_with_the_first_one_done() {
        let pool = ThreadPool::new(2).unwrap();
        let tasks = [sleeper(&pool, 1500), sleeper(&pool, 10)];
        let t0 = Instant::now();
        let finished = wait(&tasks, ReturnWhen::FirstCompleted, None);
        assert!(
            t0.elapsed() < Duration::from_millis(1000),
            "waited for the slow one"
        );
        assert_eq!((finished.done, finished.not_done), (vec![1], vec![0]));
    }

    /// FIRST_EXCEPTION returns at once when a task has already failed, beside a slow one.
    #[test]
    fn first_exception_returns_at_once_when_one_already_failed() {
        let pool = ThreadPool::new(2).unwrap();
        let failed = pool.submit(|| -> u64 { panic!("no") });
        while !failed.done() {
            std::thread::sleep(Duration::from_millis(1));
        }
        let tasks = [sleeper(&pool, 1500), failed];
        let t0 = Instant::now();
        let finished = wait(&tasks, ReturnWhen::FirstException, None);
        assert!(
            t0.elapsed() < Duration::from_millis(1000),
            "waited for the slow one"
        );
        assert_eq!((finished.done, finished.not_done), (vec![1], vec![0]));
    }

    /// A cancelled task is done, not failed: FIRST_EXCEPTION waits for the rest.
    #[test]
    fn a_cancelled_task_is_not_an_exception() {
        let pool = ThreadPool::new(1).unwrap();
        let busy = sleeper(&pool, 100);
        let cancelled = sleeper(&pool, 1);
        assert!(cancelled.cancel());
        let tasks = [busy, cancelled];
        let finished = wait(&tasks, ReturnWhen::FirstException, None);
        assert_eq!(
            finished.done,
            [0, 1],
            "returned before the others were done"
        );
    }

    #[test]
    fn all_completed_with_a_timeout_reports_what_is_left() {
        let pool = ThreadPool::new(3).unwrap();
        let tasks = [sleeper(&pool, 5), sleeper(&pool, 2000), sleeper(&pool, 10)];
        let t0 = Instant::now();
        let finished = wait(
            &tasks,
            ReturnWhen::AllCompleted,
            Some(Duration::from_millis(400)),
        );
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(400) && took < Duration::from_millis(1800),
            "{took:?}"
        );
        assert_eq!((finished.done, finished.not_done), (vec![0, 2], vec![1]));
    }

    /// as_completed hands each task back once, in the order they end; its timeout says how
    /// many were left, once, and ends the iteration.
    #[test]
    fn as_completed_yields_in_end_order_then_reports_the_unfinished() {
        let pool = ThreadPool::new(4).unwrap();
        let tasks = vec![
            sleeper(&pool, 400),
            sleeper(&pool, 5),
            sleeper(&pool, 3000),
            sleeper(&pool, 200),
        ];
        let mut seen = Vec::new();
        let mut unfinished = None;
        for item in as_completed(tasks, Some(Duration::from_millis(1000))) {
            match item {
                Ok(task) => seen.push(task.result().unwrap()),
                Err(e) => unfinished = Some(e),
            }
        }
        assert_eq!(seen, [5, 200, 400]);
        assert_eq!(unfinished, Some(Unfinished { count: 1, of: 4 }));
    }
}

/// `shutdown_cancelling` cancels every job that has not started (their callbacks run and
/// they say Cancelled), lets the running one finish, counts only what it cancelled, and
/// rejects later submits.
#[test]
fn shutdown_cancelling_cancels_the_pending_jobs() {
    use greenrt::thread_pool::{TaskError, ThreadPool};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let pool = ThreadPool::new(1).unwrap();
    let started = Arc::new(std::sync::Barrier::new(2));
    let s = started.clone();
    let running = pool.submit(move || {
        s.wait();
        std::thread::sleep(std::time::Duration::from_millis(50));
        "finished"
    });
    started.wait(); // the worker is busy with it
    let callbacks = Arc::new(AtomicUsize::new(0));
    let queued: Vec<_> = (0..5)
        .map(|i| {
            let t = pool.submit(move || i);
            let c = callbacks.clone();
            t.add_done_callback(move |r| {
                if matches!(r, Err(TaskError::Cancelled)) {
                    c.fetch_add(1, Ordering::SeqCst);
                }
            });
            t
        })
        .collect();
    assert!(queued[0].cancel(), "cancelled by hand before the shutdown");
    assert_eq!(
        pool.shutdown_cancelling(true),
        4,
        "the one cancelled before is not counted"
    );
    assert_eq!(running.result().unwrap(), "finished");
    for t in queued {
        assert!(matches!(t.result(), Err(TaskError::Cancelled)));
    }
    assert_eq!(callbacks.load(Ordering::SeqCst), 5);
    assert!(matches!(
        pool.submit(|| 0).result(),
        Err(TaskError::Rejected)
    ));
}

/// `map_timeout`: in time, the values in input order; too late, `Unfinished` with the count,
/// and the jobs that had not started never run.
#[test]
fn map_timeout_cancels_what_has_not_started() {
    use greenrt::thread_pool::{ThreadPool, Unfinished};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    let pool = ThreadPool::new(2).unwrap();
    let squares = pool.map_timeout(|x: u64| x * x, 0..10, Duration::from_secs(10));
    assert_eq!(squares, Ok((0..10).map(|x| x * x).collect::<Vec<_>>()));
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let late = pool.map_timeout(
        move |ms: u64| {
            r.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(ms));
        },
        [400, 400, 1, 1, 1, 1],
        Duration::from_millis(100),
    );
    assert_eq!(late, Err(Unfinished { count: 6, of: 6 }));
    pool.shutdown(true);
    // The two 400 ms jobs held both workers past the timeout, so the four behind them were
    // cancelled before they started (on a machine too busy to start even those two, fewer
    // ran: never more).
    assert!(ran.load(Ordering::SeqCst) <= 2, "a cancelled job ran");
}

/// Python's `initializer=`: once per worker thread, before that worker's first job.
#[test]
fn the_initializer_runs_once_on_each_worker_before_its_jobs() {
    use std::cell::Cell;
    thread_local!(static INITIALIZED: Cell<bool> = const { Cell::new(false) });
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let pool = ThreadPool::with_initializer(3, move || {
        assert!(
            !INITIALIZED.get(),
            "the initializer ran twice on one thread"
        );
        INITIALIZED.set(true);
        counted.fetch_add(1, Ordering::SeqCst);
    })
    .unwrap();
    let tasks: Vec<_> = (0..30)
        .map(|_| {
            pool.submit(|| {
                std::thread::sleep(Duration::from_millis(1));
                INITIALIZED.get()
            })
        })
        .collect();
    for t in tasks {
        assert!(
            t.result().unwrap(),
            "a job ran before its worker's initializer"
        );
    }
    pool.shutdown(true);
    assert_eq!(calls.load(Ordering::SeqCst), 3, "once per worker");
    assert!(!pool.is_broken());
}

/// A panicking initializer breaks the pool (`BrokenThreadPool`): the jobs queued before and
/// submitted after end `Broken` without running, and nothing hangs.
#[test]
fn a_panicking_initializer_breaks_the_pool() {
    let ran = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(std::sync::Barrier::new(2));
    let init_gate = gate.clone();
    let pool = ThreadPool::with_initializer(1, move || {
        init_gate.wait(); // the jobs below are queued before the initializer fails
        panic!("cannot connect");
    })
    .unwrap();
    let queued: Vec<_> = (0..5)
        .map(|_| {
            let ran = ran.clone();
            pool.submit(move || ran.fetch_add(1, Ordering::SeqCst))
        })
        .collect();
    gate.wait();
    for task in queued {
        let outcome = task.result();
        assert!(matches!(outcome, Err(TaskError::Broken)), "{outcome:?}");
    }
    assert!(pool.is_broken());
    let later = pool.submit(|| 1);
    assert!(later.done(), "a submit to a broken pool ends at once");
    let error = later.result().unwrap_err();
    assert!(
        error.to_string().contains("initializer panicked"),
        "{error}"
    );
    pool.shutdown(true); // returns: the worker exited
    assert_eq!(ran.load(Ordering::SeqCst), 0, "a job ran in a broken pool");
}

/// One worker's initializer failing breaks the whole pool, as in Python; workers whose
/// initializer succeeded finish the job they run and exit.
#[test]
fn one_failing_initializer_of_three_breaks_the_pool() {
    let started = Arc::new(AtomicUsize::new(0));
    let submitted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (counter, all_in) = (started.clone(), submitted.clone());
    let pool = ThreadPool::with_initializer(3, move || {
        if counter.fetch_add(1, Ordering::SeqCst) == 1 {
            // Fail once every job is queued, while the others run the first ones (2 ms each).
            while !all_in.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
            panic!("the second worker's initializer fails");
        }
    })
    .unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            pool.submit(move || {
                std::thread::sleep(Duration::from_millis(2));
                i
            })
        })
        .collect();
    submitted.store(true, Ordering::SeqCst);
    let mut done = 0;
    let mut broken = 0;
    for task in tasks {
        match task.result() {
            Ok(_) => done += 1,
            Err(TaskError::Broken) => broken += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert!(pool.is_broken());
    assert!(
        broken > 0,
        "no job was failed by the broken pool ({done} ran)"
    );
    assert_eq!(done + broken, 200, "a task was lost");
    pool.shutdown(true);
}
