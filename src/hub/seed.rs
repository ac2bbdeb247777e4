//! Seeded schedules: the order of ready green threads (and of timers due at the same instant)
//! drawn from a seed instead of first-in-first-out, so that an interleaving a stress run
//! finds can be replayed. Set per hub with [`seed_schedule`], or for every hub of a process
//! with `GREENRT_SEED=<n>` (or `random`), parsed here when a hub is made.

use super::{Hub, with_hub};

/// Runs this thread's hub on a seeded schedule: ready green threads are picked in a
/// pseudo-random order drawn from `seed` (and timers due at the same instant are ordered
/// from it), instead of first-in-first-out. The same seed gives the same order again, so a
/// failure a stress run finds under one interleaving can be replayed. `0` returns to FIFO.
/// The seed is printed to stderr. Setting `GREENRT_SEED=<n>` seeds every new hub
/// (`GREENRT_SEED=random` picks one and prints it).
///
/// ```
/// greenrt::hub::seed_schedule(42);
/// let order = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
/// let hs: Vec<_> = (0..5).map(|i| { let o = order.clone(); greenrt::spawn(move || o.borrow_mut().push(i)) }).collect();
/// greenrt::joinall(hs);
/// assert_eq!(order.borrow().len(), 5); // some order drawn from 42, the same every run
/// greenrt::hub::seed_schedule(0);
/// ```
pub fn seed_schedule(seed: u64) {
    with_hub(|hub| apply(hub, seed, true));
}

/// Seeds `hub`'s run queue and timers; `announce` prints the seed (a hub seeded from the
/// environment was announced there).
pub(super) fn apply(hub: &Hub, seed: u64, announce: bool) {
    hub.run_queue.seed(seed);
    hub.timers.borrow_mut().seed(seed);
    if announce && seed != 0 {
        eprintln!(
            "greenrt: schedule seed {seed} on thread '{}' (replay with GREENRT_SEED={seed})",
            std::thread::current().name().unwrap_or("unnamed")
        );
    }
}

/// `GREENRT_SEED` for a new hub: a number, or `random` (one seed chosen per process and
/// printed once). Each hub's seed mixes the process's seed with the order in which hubs were
/// made, so one number replays every hub of a run.
pub(super) fn from_env() -> Option<u64> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static CHOSEN: AtomicU64 = AtomicU64::new(0);
    static HUBS: AtomicU64 = AtomicU64::new(0);
    let value = std::env::var("GREENRT_SEED").ok()?;
    let base = if value == "random" {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        match CHOSEN.compare_exchange(0, nanos | 1, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                eprintln!(
                    "greenrt: GREENRT_SEED=random chose {} (replay with GREENRT_SEED={})",
                    nanos | 1,
                    nanos | 1
                );
                nanos | 1
            }
            Err(chosen) => chosen,
        }
    } else {
        value.parse().ok()?
    };
    let index = HUBS.fetch_add(1, Ordering::Relaxed);
    Some(super::run_queue::xorshift(base ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1)
}
