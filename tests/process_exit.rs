//! Python's exit rules: a process that ends waits for its non-daemonic children, terminates
//! its daemonic ones, and leaves detached ones alone. Each scenario's "parent" is a forked
//! child of the test that ends with `std::process::exit`, as a program's `main` does.

mod util;

use std::time::{Duration, Instant};

use greenrt::process::Builder;
use util::{Ended, in_child};

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A word shared with every process forked after it is made.
struct Shared(*mut u32);

impl Shared {
    fn new() -> Shared {
        Shared(util::shared_page())
    }
    fn get(&self) -> u32 {
        // SAFETY (test): the page mapped above, for the test's life.
        unsafe { std::ptr::read_volatile(self.0) }
    }
    fn address(&self) -> usize {
        self.0 as usize
    }
}

fn set(address: usize, value: u32) {
    // SAFETY (test): the shared page of `Shared`, inherited by the fork.
    unsafe { std::ptr::write_volatile(address as *mut u32, value) };
}

/// Runs a parent that spawns one child with `builder`; the child sleeps `nap` and then sets
/// the shared word to 1. Returns how long the parent took to exit, and the word right then.
fn parent_with_child(builder: fn() -> Builder, nap: Duration) -> (Duration, u32, Shared) {
    let shared = Shared::new();
    let address = shared.address();
    let t0 = Instant::now();
    let ended = in_child(20, move || {
        builder()
            .spawn(move || {
                std::thread::sleep(nap);
                set(address, 1);
            })
            .unwrap();
        std::process::exit(0); // as if `main` returned: the exit rules run
    });
    let took = t0.elapsed();
    assert_eq!(ended, Ended::Exited(0));
    let word = shared.get();
    (took, word, shared)
}

#[test]
fn smoke_a_parent_waits_for_its_child_at_exit() {
    let _t = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (took, word, _) = parent_with_child(Builder::new, Duration::from_millis(300));
    assert_eq!(word, 1, "the parent exited before its child finished");
    assert!(took >= Duration::from_millis(300), "{took:?}");
}

#[test]
fn a_daemonic_child_is_terminated_when_its_parent_exits() {
    let _t = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (took, word, shared) =
        parent_with_child(|| Builder::new().daemon(true), Duration::from_secs(2));
    assert!(
        took < Duration::from_secs(1),
        "the parent waited for its daemon: {took:?}"
    );
    assert_eq!(word, 0);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(shared.get(), 0, "the daemon lived on after its parent");
}

#[test]
fn a_detached_child_is_left_to_run() {
    let _t = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (took, word, shared) =
        parent_with_child(|| Builder::new().detached(true), Duration::from_millis(400));
    assert!(
        took < Duration::from_millis(300),
        "the parent waited: {took:?}"
    );
    assert_eq!(word, 0);
    let t0 = Instant::now();
    while shared.get() == 0 && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(shared.get(), 1, "the detached child did not run on");
}
