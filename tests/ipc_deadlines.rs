//! Deadlines that hold whatever another process does: a process frozen (SIGSTOP) *inside* a
//! queue's or a semaphore's critical section — holding the internal lock — must not make a
//! `try_*` call block, nor a timed call overrun its deadline, in any other process.

#[path = "../examples/common/ipc_freeze.rs"]
mod ipc_freeze;
#[path = "../examples/common/rng.rs"]
mod rng;
mod util;

use std::time::{Duration, Instant};

use greenrt::ipc::fault::{CrashPoint, stop_self_at};
use greenrt::ipc::{GetError, PutError, Queue, Semaphore};
use greenrt::process::Process;

/// The fork-based tests take turns (a child inherits what another test thread holds).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// How late a timed call may return (scheduling noise on a busy 2-core machine).
const SLACK: Duration = Duration::from_millis(150);

/// Runs `f` and checks it returned within `limit` (+ slack).
fn within<T>(what: &str, limit: Duration, f: impl FnOnce() -> T) -> T {
    let t0 = Instant::now();
    let out = f();
    let took = t0.elapsed();
    eprintln!("{what}: {took:?} (limit {limit:?})");
    assert!(
        took <= limit + SLACK,
        "{what} took {took:?}, its limit is {limit:?}"
    );
    out
}

#[test]
fn smoke_a_timed_get_on_an_empty_queue_keeps_its_deadline() {
    let q: Queue<u32> = Queue::new(4096).unwrap();
    let limit = Duration::from_millis(50);
    let got = within("get_timeout, empty", limit, || q.get_timeout(limit));
    assert!(matches!(got, Err(GetError::Empty)));
}

#[test]
fn a_process_stopped_inside_a_queue_does_not_stall_the_others() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let q: Queue<u32> = Queue::new(4096).unwrap();
    let frozen = Process::spawn({
        let q = q.clone();
        move || {
            stop_self_at(CrashPoint::PutBeforeCommit, 1);
            q.put(&1).unwrap(); // stops here, inside the queue's lock, until SIGCONT
        }
    })
    .unwrap();
    util::wait_stopped(frozen.pid());
    let got = within("get_timeout(100 ms)", Duration::from_millis(100), || {
        q.get_timeout(Duration::from_millis(100))
    });
    assert!(matches!(got, Err(GetError::Empty)), "{got:?}");
    let put = within("try_put", Duration::ZERO, || q.try_put(&2));
    assert!(matches!(put, Err(PutError::Full)), "{put:?}");
    let got = within("try_get", Duration::ZERO, || q.try_get());
    assert!(matches!(got, Err(GetError::Empty)), "{got:?}");
    let joined = within("join_timeout(10 ms)", Duration::from_millis(10), || {
        q.join_timeout(Duration::from_millis(10))
    });
    assert!(!joined.unwrap());
    // Let it go on: it finishes its put, and the queue works as before.
    // SAFETY (test): signalling our own child.
    unsafe { libc::kill(frozen.pid() as i32, libc::SIGCONT) };
    assert!(frozen.join().unwrap().success());
    assert_eq!(q.get_timeout(Duration::from_secs(5)).unwrap(), 1);
}

#[test]
fn a_process_stopped_inside_a_semaphore_does_not_stall_the_others() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let sem = Semaphore::new(1).unwrap();
    let frozen = Process::spawn({
        let sem = sem.clone();
        move || {
            stop_self_at(CrashPoint::SemaphoreBeforeCommit, 1);
            sem.acquire().unwrap().forget(); // stops inside the semaphore's lock
        }
    })
    .unwrap();
    util::wait_stopped(frozen.pid());
    let got = within("try_acquire", Duration::ZERO, || sem.try_acquire().unwrap());
    assert!(got.is_none());
    let got = within(
        "acquire_timeout(100 ms)",
        Duration::from_millis(100),
        || sem.acquire_timeout(Duration::from_millis(100)).unwrap(),
    );
    assert!(got.is_none());
    // SAFETY (test): signalling our own child.
    unsafe { libc::kill(frozen.pid() as i32, libc::SIGCONT) };
    assert!(frozen.join().unwrap().success());
}

/// `stress`'s freeze round, short: processes frozen for 50–200 ms (by SIGSTOP, and by
/// themselves inside queue and semaphore critical sections) while two others make timed and
/// `try_*` calls. `stress` holds the 50 ms rule on a machine of its own; here, beside other
/// tests, a call may be late by scheduling noise but never by a frozen holder's time.
#[test]
fn a_freeze_storm_never_makes_a_timed_call_overrun() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let late = Duration::from_millis(250);
    let r = ipc_freeze::freeze_storm(1.5, 3, 2, late, 0x5eed_f00d).unwrap();
    eprintln!("{r:?}");
    assert!(r.calls > 100, "{r:?}");
    assert!(
        r.inside_freezes > 0,
        "nothing froze inside a critical section: {r:?}"
    );
    assert_eq!(
        r.late, 0,
        "calls overran their deadline by more than {late:?}: {r:?}"
    );
    assert_eq!(r.failed, 0, "{r:?}");
}
