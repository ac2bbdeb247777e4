//! `ipc::Event` under CPython's lock_tests: `set()` followed at once by `clear()` wakes every
//! waiter of that moment with true — green waiters in this process and waiter processes.

use std::rc::Rc;
use std::time::{Duration, Instant};

use greenrt::ipc::Event;
use greenrt::process::Process;

#[test]
fn smoke_set_wait_clear() {
    let e = Event::new().unwrap();
    assert!(!e.is_set());
    e.set();
    assert!(e.is_set() && e.wait_timeout(Duration::ZERO));
    e.clear();
    assert!(!e.wait_timeout(Duration::from_millis(10)));
}

#[test]
fn set_and_clear_wakes_every_green_waiter_with_true() {
    for _ in 0..20 {
        let event = Rc::new(Event::new().unwrap());
        let waiters: Vec<_> = (0..5)
            .map(|_| {
                let e = event.clone();
                greenrt::spawn(move || e.wait_timeout(Duration::from_secs(5)))
            })
            .collect();
        greenrt::sleep(Duration::from_millis(20)); // all five wait
        event.set();
        event.clear();
        let t0 = Instant::now();
        let seen: Vec<bool> = greenrt::joinall(waiters)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(seen, [true; 5]);
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "they woke at the set"
        );
    }
}

#[test]
fn set_and_clear_wakes_every_waiter_process_with_true() {
    for _ in 0..5 {
        let event = Event::new().unwrap();
        let ready = greenrt::ipc::Semaphore::new(0).unwrap();
        let children: Vec<_> = (0..4)
            .map(|_| {
                let (e, ready) = (event.clone(), ready.clone());
                Process::spawn(move || {
                    ready.release().unwrap();
                    let seen = e.wait_timeout(Duration::from_secs(5));
                    std::process::exit(if seen { 0 } else { 3 });
                })
                .unwrap()
            })
            .collect();
        for _ in 0..4 {
            ready.acquire().unwrap().forget();
        }
        std::thread::sleep(Duration::from_millis(50)); // each is asleep in its wait
        event.set();
        event.clear();
        let codes: Vec<_> = children
            .into_iter()
            .map(|c| c.join().unwrap().code())
            .collect();
        assert_eq!(codes, [Some(0); 4], "a waiter process missed the set");
    }
}
