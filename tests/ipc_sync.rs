//! ipc Lock, Event, Condition, Value/Array across forked processes: exact counts, a holder
//! killed with SIGKILL, green-only waiting, named objects, corrupt shared memory.

mod util;

use std::time::{Duration, Instant};

use greenrt::ipc::{Array, Condition, Event, Lock, LockError, Value};
use greenrt::process::Process;

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn join_ok(p: Process) {
    let status = p.join().unwrap();
    assert!(status.success(), "child {} ended with {status:?}", p.pid());
}

#[test]
fn lock_makes_read_modify_write_exact_across_processes() {
    let _t = turn();
    let lock = Lock::new().unwrap();
    let count = Array::<u64>::new(1).unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| {
            let (lock, count) = (lock.clone(), count.clone());
            Process::spawn(move || {
                for _ in 0..2000 {
                    let _held = lock.lock().unwrap();
                    // Unlocked read and write of the array's data, guarded by `lock` only:
                    // a lost update here would show up in the total.
                    let mut g = count.lock().unwrap();
                    let v = g[0];
                    std::hint::black_box(&v);
                    g[0] = v + 1;
                }
            })
            .unwrap()
        })
        .collect();
    children.into_iter().for_each(join_ok);
    assert_eq!(count.to_vec().unwrap(), [8000]);
    assert_eq!(lock.holder(), None);
}

#[test]
fn lock_taken_over_from_a_killed_holder_within_100ms() {
    let _t = turn();
    let lock = Lock::new().unwrap();
    let held = Event::new().unwrap();
    let child = Process::spawn({
        let (lock, held) = (lock.clone(), held.clone());
        move || {
            let _g = lock.lock().unwrap();
            held.set();
            std::thread::sleep(Duration::from_secs(60));
        }
    })
    .unwrap();
    assert!(held.wait_timeout(Duration::from_secs(10)));
    assert_eq!(lock.holder(), Some(child.pid()));
    assert!(matches!(lock.try_lock(), Err(LockError::TimedOut)));
    child.kill().unwrap();
    child.join().unwrap();
    let start = Instant::now();
    let guard = match lock.lock_timeout(Duration::from_secs(5)) {
        Err(LockError::OwnerDied(g)) => g,
        other => panic!("expected OwnerDied, got {other:?}"),
    };
    assert!(
        start.elapsed() < Duration::from_millis(100),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(lock.holder(), Some(std::process::id()));
    drop(guard);
    // Only the first acquirer is told.
    assert!(lock.lock().is_ok());
}

#[test]
fn green_waiter_on_ipc_event_does_not_stall_the_hub() {
    let _t = turn();
    let event = Event::new().unwrap();
    let setter = Process::spawn({
        let event = event.clone();
        move || {
            std::thread::sleep(Duration::from_millis(500));
            event.set();
        }
    })
    .unwrap();
    let ticker = util::Ticker::start(40, Duration::from_millis(10));
    let waiter = greenrt::spawn({
        let event = event.clone();
        move || {
            let start = Instant::now();
            event.wait();
            start.elapsed()
        }
    });
    let waited = waiter.join().unwrap();
    let ticks = ticker.finish();
    join_ok(setter);
    assert!(waited >= Duration::from_millis(400), "waited {waited:?}");
    assert_eq!(ticks, 40);
}

#[test]
fn many_green_threads_wait_on_many_ipc_words() {
    let _t = turn();
    // More distinct words than one futex_waitv call takes: the service grows a second thread.
    let events: Vec<Event> = (0..300).map(|_| Event::new().unwrap()).collect();
    let waiters: Vec<_> = events
        .iter()
        .map(|e| {
            let e = e.clone();
            greenrt::spawn(move || e.wait_timeout(Duration::from_secs(20)))
        })
        .collect();
    greenrt::sleep(Duration::from_millis(50));
    let setter = Process::spawn({
        let events = events.clone();
        move || events.iter().for_each(Event::set)
    })
    .unwrap();
    assert!(greenrt::joinall(waiters).into_iter().all(|r| r.unwrap()));
    join_ok(setter);
}

#[test]
fn event_timeouts_are_on_time_for_threads_and_green_threads() {
    let _t = turn();
    let event = Event::new().unwrap();
    let start = Instant::now();
    assert!(!event.wait_timeout(Duration::from_millis(50)));
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(50) && took < Duration::from_millis(500),
        "{took:?}"
    );
    let e = event.clone();
    let h = greenrt::spawn(move || {
        let start = Instant::now();
        (e.wait_timeout(Duration::from_millis(50)), start.elapsed())
    });
    let (set, took) = h.join().unwrap();
    assert!(!set);
    assert!(
        took >= Duration::from_millis(50) && took < Duration::from_millis(500),
        "{took:?}"
    );
    event.set();
    assert!(event.wait_timeout(Duration::ZERO));
    event.clear();
    assert!(!event.is_set());
}

#[test]
fn condition_hands_work_between_processes() {
    let _t = turn();
    let cond = Condition::new().unwrap();
    let slot = Value::new(0u64).unwrap();
    let consumer = Process::spawn({
        let (cond, slot) = (cond.clone(), slot.clone());
        move || {
            let mut sum = 0;
            for _ in 0..100 {
                let g = cond.lock().unwrap();
                let g = cond.wait_while(g, || slot.get().unwrap() == 0).unwrap();
                sum += slot.get().unwrap();
                slot.set(0).unwrap();
                cond.notify_all();
                drop(g);
            }
            assert_eq!(sum, (1..=100).sum::<u64>());
        }
    })
    .unwrap();
    for i in 1..=100u64 {
        let g = cond.lock().unwrap();
        let g = cond.wait_while(g, || slot.get().unwrap() != 0).unwrap();
        slot.set(i).unwrap();
        cond.notify_all();
        drop(g);
    }
    join_ok(consumer);
}

#[test]
fn condition_wait_timeout_reports_timeout_and_holds_the_lock() {
    let cond = Condition::new().unwrap();
    let g = cond.lock().unwrap();
    let (g, notified) = cond.wait_timeout(g, Duration::from_millis(30));
    assert!(!notified);
    let g = g.unwrap();
    drop(g);
    // Notify never blocks, with nobody waiting.
    cond.notify(1);
    cond.notify_all();
}

#[test]
fn named_objects_open_by_name_and_disappear_with_their_creator() {
    let _t = turn();
    let name = format!("test-named-{}", std::process::id());
    let path = format!("/dev/shm/greenrt.{name}");
    {
        let value = Value::create(&name, 41u32).unwrap();
        let mode = std::fs::metadata(&path).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o600
        );
        assert_eq!(
            Value::<u32>::create(&name, 0).unwrap_err().kind(),
            std::io::ErrorKind::AlreadyExists
        );
        let child = Process::spawn({
            let name = name.clone();
            move || {
                let v = Value::<u32>::open(&name).unwrap();
                *v.lock().unwrap() += 1;
            }
        })
        .unwrap();
        join_ok(child);
        assert_eq!(value.get().unwrap(), 42);
        // The wrong kind is refused.
        assert_eq!(
            Lock::open(&name).unwrap_err().kind(),
            std::io::ErrorKind::InvalidData
        );
    }
    assert!(
        !std::path::Path::new(&path).exists(),
        "removed when the creator dropped it"
    );
    assert_eq!(
        Event::open(&name).unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );
    assert_eq!(
        Lock::create("bad/name").unwrap_err().kind(),
        std::io::ErrorKind::InvalidInput
    );
}

#[test]
fn named_object_removed_when_creator_panics_or_exits() {
    let _t = turn();
    let name = format!("test-exit-{}", std::process::id());
    let path = format!("/dev/shm/greenrt.{name}");
    let child = Process::spawn({
        let name = name.clone();
        move || {
            let _lock = Lock::create(&name).unwrap();
            panic!("creator panics holding a named lock");
        }
    })
    .unwrap();
    assert!(!child.join().unwrap().success());
    assert!(
        !std::path::Path::new(&path).exists(),
        "removed while unwinding"
    );
    let child = Process::spawn({
        let name = name.clone();
        move || {
            std::mem::forget(Event::create(&name).unwrap());
            std::process::exit(0);
        }
    })
    .unwrap();
    join_ok(child);
    assert!(!std::path::Path::new(&path).exists(), "removed at exit");
}

#[test]
fn corrupt_lock_word_is_invalid_data_not_a_hang() {
    let name = format!("test-corrupt-{}", std::process::id());
    let lock = Lock::create(&name).unwrap();
    // Scribble on the lock word (offset 64: after the header) as a rogue process would.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/dev/shm/greenrt.{name}"))
        .unwrap();
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(64)).unwrap();
    std::io::Write::write_all(&mut file, &0x4000_0001u32.to_le_bytes()).unwrap();
    match lock.lock_timeout(Duration::from_secs(1)) {
        Err(LockError::Corrupt(e)) => assert_eq!(e.kind(), std::io::ErrorKind::InvalidData),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn rlock_is_reentrant_for_its_owner_and_exclusive_for_others() {
    let _t = turn();
    let rlock = greenrt::ipc::RLock::new().unwrap();
    let inside = Value::new(0u32).unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| {
            let (rlock, inside) = (rlock.clone(), inside.clone());
            Process::spawn(move || {
                for _ in 0..300 {
                    let _a = rlock.lock().unwrap();
                    let _b = rlock.lock().unwrap();
                    assert_eq!(rlock.depth(), 2);
                    let n = inside.get().unwrap();
                    assert_eq!(n, 0, "two processes inside the RLock");
                    inside.set(1).unwrap();
                    inside.set(0).unwrap();
                }
            })
            .unwrap()
        })
        .collect();
    children.into_iter().for_each(join_ok);
    // Another green thread of this process is not the owner.
    let held = rlock.lock().unwrap();
    let r = rlock.clone();
    let other = greenrt::spawn(move || {
        matches!(
            r.lock_timeout(Duration::from_millis(20)),
            Err(LockError::TimedOut)
        )
    });
    assert!(other.join().unwrap());
    drop(held);
    assert_eq!(rlock.depth(), 0);
}

#[test]
fn rlock_taken_over_from_a_killed_holder() {
    let _t = turn();
    let rlock = greenrt::ipc::RLock::new().unwrap();
    let held = Event::new().unwrap();
    let child = Process::spawn({
        let (rlock, held) = (rlock.clone(), held.clone());
        move || {
            let _a = rlock.lock().unwrap();
            let _b = rlock.lock().unwrap();
            held.set();
            std::thread::sleep(Duration::from_secs(60));
        }
    })
    .unwrap();
    assert!(held.wait_timeout(Duration::from_secs(10)));
    child.kill().unwrap();
    child.join().unwrap();
    match rlock.lock_timeout(Duration::from_secs(5)) {
        Err(LockError::OwnerDied(g)) => {
            assert_eq!(rlock.depth(), 1, "the dead owner's count is reset");
            drop(g);
        }
        other => panic!("expected OwnerDied, got {other:?}"),
    }
    assert_eq!(rlock.depth(), 0);
}

#[test]
fn semaphore_bounds_processes_inside() {
    let _t = turn();
    let rooms = greenrt::ipc::Semaphore::new(4).unwrap();
    let stats = Array::<u32>::new(2).unwrap(); // [inside now, most inside at once]
    let users: Vec<_> = (0..13)
        .map(|_| {
            let (rooms, stats) = (rooms.clone(), stats.clone());
            Process::spawn(move || {
                for _ in 0..5 {
                    let _room = rooms.acquire().unwrap();
                    {
                        let mut s = stats.lock().unwrap();
                        s[0] += 1;
                        s[1] = s[1].max(s[0]);
                    }
                    std::thread::sleep(Duration::from_millis(2));
                    stats.lock().unwrap()[0] -= 1;
                }
            })
            .unwrap()
        })
        .collect();
    users.into_iter().for_each(join_ok);
    let s = stats.to_vec().unwrap();
    assert_eq!(s[0], 0);
    assert!(s[1] >= 2 && s[1] <= 4, "max inside {}", s[1]);
    assert_eq!(rooms.value(), 4);
}

#[test]
fn semaphore_permits_of_a_killed_process_come_back() {
    let _t = turn();
    let sem = greenrt::ipc::Semaphore::new(2).unwrap();
    let held = Event::new().unwrap();
    let child = Process::spawn({
        let (sem, held) = (sem.clone(), held.clone());
        move || {
            let a = sem.acquire().unwrap();
            let b = sem.acquire().unwrap();
            held.set();
            std::thread::sleep(Duration::from_secs(60));
            drop((a, b));
        }
    })
    .unwrap();
    assert!(held.wait_timeout(Duration::from_secs(10)));
    assert!(sem.try_acquire().unwrap().is_none());
    child.kill().unwrap();
    child.join().unwrap();
    let start = Instant::now();
    let p = sem
        .acquire_timeout(Duration::from_secs(5))
        .unwrap()
        .expect("a permit came back");
    assert!(
        start.elapsed() < Duration::from_millis(200),
        "took {:?}",
        start.elapsed()
    );
    drop(p);
    assert_eq!(
        sem.value(),
        2,
        "both of the dead process's permits are back, no more"
    );
}

#[test]
fn bounded_semaphore_refuses_over_release_and_signals_are_not_tracked() {
    let sem = greenrt::ipc::BoundedSemaphore::new(2).unwrap();
    let err = sem.release().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.get_ref().unwrap().is::<greenrt::ipc::OverRelease>());
    sem.acquire().unwrap().forget();
    assert_eq!(sem.value(), 1);
    sem.release().unwrap();
    assert_eq!(sem.value(), 2);
    let start = Instant::now();
    let (_a, _b) = (sem.acquire().unwrap(), sem.acquire().unwrap());
    assert!(
        sem.acquire_timeout(Duration::from_millis(30))
            .unwrap()
            .is_none()
    );
    assert!(start.elapsed() >= Duration::from_millis(30));
}

#[test]
fn a_semaphore_acquire_killed_midway_leaks_no_permit() {
    let _t = turn();
    let sem = greenrt::ipc::Semaphore::new(3).unwrap();
    let child = Process::spawn({
        let sem = sem.clone();
        move || {
            use greenrt::ipc::fault::{CrashPoint, kill_self_at};
            let _held = sem.acquire().unwrap();
            kill_self_at(CrashPoint::SemaphoreBeforeCommit, 1);
            let _second = sem.acquire();
            unreachable!("the crash point was not reached");
        }
    })
    .unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&child.join().unwrap()),
        Some(9)
    );
    // The half-done acquire is rolled back and the finished one returned: all 3 available.
    let permits: Vec<_> = (0..3)
        .map(|_| {
            sem.acquire_timeout(Duration::from_secs(5))
                .unwrap()
                .expect("a permit")
        })
        .collect();
    assert!(sem.try_acquire().unwrap().is_none());
    drop(permits);
    assert_eq!(sem.value(), 3);
}
