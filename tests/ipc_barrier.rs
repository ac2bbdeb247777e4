//! The process-shared `ipc::Barrier`: CPython's Barrier semantics across processes, and the
//! rule that nothing waits forever on a dead process (a party killed while waiting breaks it
//! for the others; `reset` recounts the live ones).

use std::time::{Duration, Instant};

use greenrt::ipc::{Barrier, Value};
use greenrt::process::Process;
use greenrt::sync::BrokenBarrier;

/// Three processes through three cycles: nobody passes cycle k before all three arrived at
/// it (each adds 1 to a shared count before waiting, and reads it after).
#[test]
fn processes_pass_each_cycle_together() {
    let barrier = Barrier::new(3).unwrap();
    let arrived = Value::new(0u64).unwrap();
    let party = {
        let (barrier, arrived) = (barrier.clone(), arrived.clone());
        move || -> Vec<(u64, usize)> {
            (1..=3u64)
                .map(|cycle| {
                    *arrived.lock().unwrap() += 1;
                    let index = barrier.wait().unwrap();
                    let seen = arrived.get().unwrap();
                    assert!(
                        seen >= 3 * cycle,
                        "passed cycle {cycle} having seen {seen} arrivals"
                    );
                    (cycle, index)
                })
                .collect()
        }
    };
    let children: Vec<Process> = (0..2)
        .map(|_| {
            let party = party.clone();
            Process::spawn(move || {
                party();
            })
            .unwrap()
        })
        .collect();
    let mine = party();
    assert_eq!(mine.len(), 3);
    for child in children {
        assert!(
            child.join().unwrap().success(),
            "a child's cycle check failed"
        );
    }
    assert_eq!(arrived.get().unwrap(), 9);
}

/// The action runs once per cycle, in the process of the last arrival.
#[test]
fn the_action_runs_once_per_cycle() {
    let runs = Value::new(0u64).unwrap();
    let barrier = {
        let runs = runs.clone();
        Barrier::new(2)
            .unwrap()
            .with_action(move || *runs.lock().unwrap() += 1)
    };
    let child = Process::spawn({
        let barrier = barrier.clone();
        move || {
            for _ in 0..4 {
                barrier.wait().unwrap();
            }
        }
    })
    .unwrap();
    for _ in 0..4 {
        barrier.wait().unwrap();
    }
    assert!(child.join().unwrap().success());
    assert_eq!(runs.get().unwrap(), 4);
}

/// A party SIGKILLed while waiting breaks the barrier for the others within a wait slice,
/// instead of leaving them to wait forever; `reset` recounts and it works again.
#[test]
fn a_party_killed_while_waiting_breaks_it_for_the_others() {
    let barrier = Barrier::new(3).unwrap();
    let doomed = Process::spawn({
        let barrier = barrier.clone();
        move || {
            let _ = barrier.wait();
        }
    })
    .unwrap();
    let t0 = Instant::now();
    while barrier.n_waiting() < 1 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the child never arrived"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let killer = std::thread::spawn({
        let pid = doomed.pid();
        move || {
            std::thread::sleep(Duration::from_millis(100));
            // SAFETY (test): signals our own child.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    });
    let t0 = Instant::now();
    // (A timeout far beyond the check, so a missed death fails here instead of hanging.)
    assert_eq!(
        barrier.wait_timeout(Duration::from_secs(10)),
        Err(BrokenBarrier),
        "the third party never comes"
    );
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "found the dead party only after {took:?}"
    );
    killer.join().unwrap();
    let _ = doomed.join();
    assert!(barrier.is_broken());
    barrier.reset().unwrap();
    assert!(!barrier.is_broken());
    assert_eq!(barrier.n_waiting(), 0, "the dead party was not counted out");
    let helpers: Vec<Process> = (0..2)
        .map(|_| {
            let b = barrier.clone();
            Process::spawn(move || {
                b.wait().unwrap();
            })
            .unwrap()
        })
        .collect();
    barrier.wait().unwrap();
    for helper in helpers {
        assert!(helper.join().unwrap().success());
    }
}

/// One party's timeout breaks the barrier in every waiting process.
#[test]
fn a_timeout_breaks_it_in_every_process() {
    let barrier = Barrier::new(3).unwrap();
    let waiter = Process::spawn({
        let barrier = barrier.clone();
        move || {
            let broken = barrier.wait() == Err(BrokenBarrier);
            std::process::exit(if broken { 0 } else { 1 });
        }
    })
    .unwrap();
    let t0 = Instant::now();
    while barrier.n_waiting() < 1 {
        assert!(t0.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(1));
    }
    let t0 = Instant::now();
    assert_eq!(
        barrier.wait_timeout(Duration::from_millis(50)),
        Err(BrokenBarrier)
    );
    assert!(t0.elapsed() >= Duration::from_millis(50));
    assert!(
        waiter.join().unwrap().success(),
        "the other process was not told"
    );
}

/// A green thread waiting at the barrier parks only itself.
#[test]
fn a_green_wait_parks_only_its_green_thread() {
    let barrier = Barrier::new(2).unwrap();
    let ticks = std::rc::Rc::new(std::cell::Cell::new(0));
    let t = ticks.clone();
    let ticker = greenrt::spawn(move || {
        for _ in 0..10 {
            greenrt::sleep(Duration::from_millis(5));
            t.set(t.get() + 1);
        }
    });
    let waiting = greenrt::spawn({
        let barrier = barrier.clone();
        move || barrier.wait()
    });
    let child = Process::spawn({
        let barrier = barrier.clone();
        move || {
            std::thread::sleep(Duration::from_millis(150));
            barrier.wait().unwrap();
        }
    })
    .unwrap();
    ticker.join().unwrap();
    assert_eq!(
        ticks.get(),
        10,
        "the ticker stalled while a green thread waited"
    );
    assert!(waiting.join().unwrap().is_ok());
    assert!(child.join().unwrap().success());
}

#[test]
fn parties_out_of_range_are_refused() {
    for bad in [0, greenrt::ipc::MAX_PARTIES + 1] {
        let err = Barrier::new(bad).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{bad}");
    }
}
