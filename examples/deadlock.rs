//! The classic deadlock: green threads take lock A then B in one function and B then A in
//! another. Thread 1 holds B and sleeps while thread 2 holds A and waits for B: nobody can
//! move. Instead of hanging, the hub reports the deadlock, naming each blocked green thread
//! and the lock it waits on. Then the same program runs fixed, with one reentrant lock
//! standing for both (Python's `mutexA = mutexB = RLock()`).

#[path = "common/args.rs"]
mod args;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::Duration;

use greenrt::sync::{Mutex, RLock};

const WORKERS: usize = 10;

fn two_locks() {
    let (a, b) = (Rc::new(Mutex::new(())), Rc::new(Mutex::new(())));
    let workers: Vec<_> = (1..=WORKERS)
        .map(|i| {
            let (a, b) = (a.clone(), b.clone());
            greenrt::Builder::new()
                .name(format!("Thread-{i}"))
                .spawn(move || {
                    let me = greenrt::current().name().unwrap_or_default().to_string();
                    {
                        let _a = a.lock();
                        println!("{me} got lock A");
                        let _b = b.lock();
                        println!("{me} got lock B");
                    }
                    let _b = b.lock();
                    println!("{me} got lock B");
                    greenrt::sleep(Duration::from_millis(500));
                    let _a = a.lock();
                    println!("{me} got lock A");
                })
                .expect("spawn")
        })
        .collect();
    greenrt::joinall(workers);
}

fn one_rlock() {
    let lock = Rc::new(RLock::new()); // mutexA = mutexB = RLock()
    let workers: Vec<_> = (1..=WORKERS)
        .map(|i| {
            let lock = lock.clone();
            greenrt::spawn(move || {
                let me = format!("Thread-{i}");
                lock.acquire();
                println!("{me} got lock A");
                lock.acquire();
                println!("{me} got lock B");
                lock.release().expect("held");
                lock.release().expect("held");
                lock.acquire();
                println!("{me} got lock B");
                greenrt::sleep(Duration::from_millis(50));
                lock.acquire();
                println!("{me} got lock A");
                lock.release().expect("held");
                lock.release().expect("held");
            })
        })
        .collect();
    greenrt::joinall(workers);
}

fn main() {
    args::Cli::new("deadlock", "two locks taken in opposite orders: the deadlock report, then the fix with an RLock")
        .mirrors("the deadlock (recursive lock) program, course note 2 (TCP/UDP, processes, threads, coroutines)")
        .parse();
    println!("[main] two locks taken in opposite orders:");
    let outcome = catch_unwind(AssertUnwindSafe(two_locks));
    match outcome {
        Err(_) => println!("[main] the hub reported the deadlock above instead of hanging"),
        Ok(()) => println!("[main] no deadlock this time"),
    }
    println!("\n[main] the same program with one RLock for both:");
    one_rlock();
    println!("[main] all {WORKERS} finished");
}
