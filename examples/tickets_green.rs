//! The ticket sale among green threads. Every buyer reads the count, "thinks" (a green sleep
//! that lets the others run), then writes the count back. Without a lock, all buyers see the
//! same count and tickets are oversold; with a `greenrt::sync::Mutex` exactly the available
//! tickets are sold.

#[path = "common/args.rs"]
mod args;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use greenrt::sync::Mutex;

const BUYERS: usize = 20;
const TICKETS: usize = 5;

fn without_lock() -> usize {
    let left = Rc::new(Cell::new(TICKETS));
    let sold = Rc::new(Cell::new(0));
    let buyers: Vec<_> = (0..BUYERS)
        .map(|i| {
            let (left, sold) = (left.clone(), sold.clone());
            greenrt::spawn(move || {
                let seen = left.get(); // check...
                greenrt::sleep(Duration::from_millis(10)); // ...think (others run)...
                if seen > 0 {
                    left.set(seen - 1); // ...and buy: a stale decision
                    sold.set(sold.get() + 1);
                    println!("[buyer {i}] bought a ticket (saw {seen} left)");
                }
            })
        })
        .collect();
    greenrt::joinall(buyers);
    sold.get()
}

fn with_lock() -> usize {
    let left = Rc::new(Mutex::new(TICKETS));
    let sold = Rc::new(Cell::new(0));
    let buyers: Vec<_> = (0..BUYERS)
        .map(|i| {
            let (left, sold) = (left.clone(), sold.clone());
            greenrt::spawn(move || {
                let mut count = left.lock(); // check, think and buy as one step
                let seen = *count;
                greenrt::sleep(Duration::from_millis(10));
                if seen > 0 {
                    *count = seen - 1;
                    sold.set(sold.get() + 1);
                    println!("[buyer {i}] bought a ticket (saw {seen} left)");
                }
            })
        })
        .collect();
    greenrt::joinall(buyers);
    sold.get()
}

fn main() {
    args::Cli::new("tickets_green", "the ticket sale among green threads: oversold without a lock, exact with a green Mutex")
        .mirrors("the ticket sale with a Lock, course note 3 (process isolation, daemons, Lock, Semaphore, Event)")
        .parse();
    println!("[main] {BUYERS} buyers, {TICKETS} tickets, no lock:");
    let oversold = without_lock();
    println!("[main] sold {oversold} of {TICKETS} tickets: oversold!\n");
    println!("[main] {BUYERS} buyers, {TICKETS} tickets, with a green Mutex:");
    let exact = with_lock();
    println!("[main] sold {exact} of {TICKETS} tickets");
    assert_eq!(exact, TICKETS);
}
