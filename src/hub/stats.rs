//! A snapshot of this thread's hub, for reports and the stress job.

use super::with_hub;

/// Counters of the calling OS thread's hub at one instant. See [`stats`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Green threads spawned and not yet finished (main contexts excluded).
    pub alive: usize,
    /// Armed timers (sleeps, timeouts, I/O deadlines, delayed starts).
    pub timers: usize,
    /// Finished stacks kept for reuse.
    pub pooled_stacks: usize,
    /// The guard mechanism the kernel accepted for stacks.
    pub guard: &'static str,
}

/// Reads the counters of this thread's hub (creating the hub if needed).
///
/// ```
/// let h = greenrt::spawn(|| ());
/// assert_eq!(greenrt::hub::stats().alive, 1);
/// h.join().unwrap();
/// assert_eq!(greenrt::hub::stats().alive, 0);
/// ```
pub fn stats() -> Stats {
    with_hub(|hub| Stats {
        alive: hub.greens.borrow().len() - 1,
        timers: hub.timers.borrow().len(),
        pooled_stacks: hub.stacks.borrow().len(),
        guard: crate::sys::mem::guard_mechanism(),
    })
}

/// The resident set size of the whole process in bytes (from `/proc/self/statm`).
///
/// ```
/// assert!(greenrt::hub::resident_bytes().unwrap() > 0);
/// ```
pub fn resident_bytes() -> std::io::Result<usize> {
    crate::sys::mem::resident_bytes()
}
