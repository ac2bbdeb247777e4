//! Signals and blocking ipc calls: a handled signal that arrives while a thread waits in an
//! ipc primitive or in `Process::join` runs its handler at once, and the call goes on
//! waiting with its deadline unchanged (PEP 475's rule, and what `pthread_mutex_lock` does) —
//! for a green thread exactly as for a plain thread, with or without `SA_RESTART`. Nothing
//! returns early, nothing fails with `Interrupted`, no deadline restarts from the top.
//!
//! Each scenario runs in a forked child (a fresh hub, its own handler) while a plain thread
//! sends SIGUSR2 every few milliseconds, to the waiting thread and to the process.

mod util;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use greenrt::ipc::{self, GetError};
use greenrt::process::Process;
use util::{Ended, in_child, install_sigusr2_counter};

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// How long each blocking call waits.
const WAIT: Duration = Duration::from_millis(300);
/// How late a timed call may return on a busy machine.
const SLACK: Duration = Duration::from_millis(200);

/// Sends SIGUSR2 every 3 ms, alternately to `target` (a thread) and to the whole process,
/// until the returned guard is dropped.
struct Storm {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Storm {
    fn at_this_thread() -> Storm {
        // SAFETY (test): pthread_self is always valid.
        let target = unsafe { libc::pthread_self() } as usize;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let mut n = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    // SAFETY (test): the target thread outlives the storm (joined on drop).
                    unsafe {
                        if n.is_multiple_of(2) {
                            libc::pthread_kill(target as libc::pthread_t, libc::SIGUSR2);
                        } else {
                            libc::kill(libc::getpid(), libc::SIGUSR2);
                        }
                    }
                    n += 1;
                    std::thread::sleep(Duration::from_millis(3));
                }
            }
        });
        Storm {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Storm {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Where the blocking call runs.
#[derive(Clone, Copy, Debug)]
enum On {
    /// A green thread, with another green thread alive beside it (so ipc waits park).
    Green,
    /// The plain main thread of the child, nothing else on its hub.
    Plain,
}

/// Runs `call` on `on` under a signal storm; checks that handlers ran while it waited, that
/// it took `expect` (±slack; never less), and that `ok` accepts its result.
fn check<T>(
    what: &'static str,
    on: On,
    restart: bool,
    expect: Duration,
    call: impl FnOnce() -> T + 'static,
    ok: impl FnOnce(&T) -> bool + 'static,
) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let ended = in_child(30, move || {
        install_sigusr2_counter(restart);
        let body = move || {
            let before = util::HANDLED.load(Ordering::SeqCst);
            let t0 = Instant::now();
            let out = call();
            let took = t0.elapsed();
            let handled = util::HANDLED.load(Ordering::SeqCst) - before;
            eprintln!("{what} on {on:?}, restart {restart}: {took:?}, {handled} handlers ran");
            if handled < 5 {
                eprintln!("  too few handlers ran while it waited");
                return 2;
            }
            if took + Duration::from_millis(5) < expect || took > expect + SLACK {
                eprintln!("  expected about {expect:?}");
                return 3;
            }
            if !ok(&out) {
                eprintln!("  wrong result");
                return 4;
            }
            0
        };
        let _storm = Storm::at_this_thread();
        match on {
            On::Plain => body(),
            On::Green => {
                let beside = greenrt::spawn(|| greenrt::sleep(WAIT * 3));
                let code = greenrt::spawn(body).join().unwrap_or(101);
                beside.kill();
                code
            }
        }
    });
    assert_eq!(
        ended,
        Ended::Exited(0),
        "{what} on {on:?}, restart {restart}"
    );
}

/// Every scenario, on both kinds of thread, with and without SA_RESTART.
fn each(scenario: impl Fn(On, bool)) {
    for on in [On::Green, On::Plain] {
        for restart in [false, true] {
            scenario(on, restart);
        }
    }
}

/// A child process that sleeps `WAIT` and then runs `then`.
fn later(then: impl FnOnce()) -> Process {
    Process::spawn(move || {
        std::thread::sleep(WAIT);
        then();
    })
    .unwrap()
}

#[test]
fn a_lock_held_by_another_process_is_taken_when_released_not_before() {
    each(|on, restart| {
        let lock = ipc::Lock::new().unwrap();
        let held = ipc::Event::new().unwrap();
        let call = move || {
            let holder = Process::spawn({
                let (lock, held) = (lock.clone(), held.clone());
                move || {
                    let _guard = lock.lock().unwrap();
                    held.set();
                    std::thread::sleep(WAIT);
                }
            })
            .unwrap();
            held.wait();
            let got = lock.lock().is_ok();
            let _ = holder.join();
            got
        };
        check("ipc::Lock::lock", on, restart, WAIT, call, |got| *got);
    });
}

#[test]
fn a_timed_queue_get_times_out_at_its_deadline() {
    each(|on, restart| {
        let q: ipc::Queue<u32> = ipc::Queue::new(4096).unwrap();
        let call = move || q.get_timeout(WAIT);
        check("Queue::get_timeout", on, restart, WAIT, call, |r| {
            matches!(r, Err(GetError::Empty))
        });
    });
}

#[test]
fn a_queue_get_returns_what_another_process_puts() {
    each(|on, restart| {
        let q: ipc::Queue<u32> = ipc::Queue::new(4096).unwrap();
        let call = move || {
            let putter = later({
                let q = q.clone();
                move || q.put(&42).unwrap()
            });
            let got = q.get();
            let _ = putter.join();
            got
        };
        check("Queue::get", on, restart, WAIT, call, |r| {
            matches!(r, Ok(42))
        });
    });
}

#[test]
fn a_timed_semaphore_acquire_times_out_at_its_deadline() {
    each(|on, restart| {
        let sem = ipc::Semaphore::new(0).unwrap();
        let call = move || sem.acquire_timeout(WAIT).map(|p| p.is_some());
        check("Semaphore::acquire_timeout", on, restart, WAIT, call, |r| {
            matches!(r, Ok(false))
        });
    });
}

#[test]
fn an_event_wait_returns_when_another_process_sets_it() {
    each(|on, restart| {
        let event = ipc::Event::new().unwrap();
        let call = move || {
            let setter = later({
                let event = event.clone();
                move || event.set()
            });
            let timed_out_first = !event.wait_timeout(WAIT / 2);
            event.wait();
            let _ = setter.join();
            timed_out_first
        };
        check("Event::wait", on, restart, WAIT, call, |first| *first);
    });
}

#[test]
fn a_condition_wait_times_out_at_its_deadline() {
    each(|on, restart| {
        let cond = ipc::Condition::new().unwrap();
        let call = move || {
            let guard = cond.lock().unwrap();
            let (guard, notified) = cond.wait_timeout(guard, WAIT);
            guard.is_ok() && !notified
        };
        check("Condition::wait_timeout", on, restart, WAIT, call, |t| *t);
    });
}

#[test]
fn a_pipe_recv_returns_what_another_process_sends() {
    each(|on, restart| {
        let (a, b) = ipc::pipe().unwrap();
        let call = move || {
            let sender = later(move || b.send(&7u32).unwrap());
            let got: std::io::Result<u32> = a.recv();
            let _ = sender.join();
            got.ok()
        };
        check("Connection::recv", on, restart, WAIT, call, |got| {
            *got == Some(7)
        });
    });
}

#[test]
fn a_pipe_poll_times_out_at_its_deadline() {
    each(|on, restart| {
        let (a, _b) = ipc::pipe().unwrap();
        let call = move || a.poll(Some(WAIT)).ok();
        check("Connection::poll", on, restart, WAIT, call, |r| {
            *r == Some(false)
        });
    });
}

#[test]
fn a_join_returns_the_exit_status_when_the_child_ends() {
    each(|on, restart| {
        let call = || {
            let child = later(|| ());
            child.join().map(|s| s.success()).ok()
        };
        check("Process::join", on, restart, WAIT, call, |r| {
            *r == Some(true)
        });
    });
}

#[test]
fn a_timed_join_times_out_at_its_deadline() {
    each(|on, restart| {
        let call = || {
            let child = Process::spawn(|| std::thread::sleep(Duration::from_secs(10))).unwrap();
            let status = child.join_timeout(WAIT);
            let _ = child.kill();
            let _ = child.join();
            status.ok().map(|s| s.is_none())
        };
        check("Process::join_timeout", on, restart, WAIT, call, |r| {
            *r == Some(true)
        });
    });
}
