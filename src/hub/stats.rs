//! What a hub can tell about itself: counters ([`stats`]) and a list of every green thread
//! ([`dump`]), for people watching the runtime work and for diagnosing a stuck program.
//!
//! The counters are plain increments on paths that already run (a resume, a spawn, a
//! poll), and the "parked since" time is the hub's *coarse clock* — the time of its last
//! poll, read once per park — so keeping them costs no extra system call.

use std::cell::Cell;
use std::fmt::Write;
use std::time::{Duration, Instant};

use super::green::{State, Wait};
use super::with_hub;

/// The hub's counters and coarse clock.
pub(crate) struct Counters {
    pub(crate) spawns: Cell<u64>,
    pub(crate) polls: Cell<u64>,
    /// The time of the last poll (when due timers were fired).
    pub(crate) clock: Cell<Instant>,
}

impl Counters {
    pub(crate) fn new() -> Counters {
        Counters {
            spawns: Cell::new(0),
            polls: Cell::new(0),
            clock: Cell::new(Instant::now()),
        }
    }
}

/// How many parked green threads wait on each kind of thing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Parked {
    /// On a socket or other fd (readable or writable).
    pub io: usize,
    /// In `sleep`, or not started yet (`spawn_later`).
    pub timer: usize,
    /// On a lock, event, queue, semaphore, condition (green or ipc), or in `greenrt::wait`.
    pub sync: usize,
    /// In `join` of another green thread.
    pub join: usize,
    /// For an `Unparker` (another OS thread, a future, a thread pool task).
    pub unpark: usize,
}

/// Counters of the calling OS thread's hub at one instant. See [`stats`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Green threads spawned and not yet finished (main contexts excluded).
    pub alive: usize,
    /// Green threads ready to run now.
    pub ready: usize,
    /// Parked green threads, by what they wait on.
    pub parked: Parked,
    /// Context switches into green threads since the hub started.
    pub switches: u64,
    /// Green threads spawned since the hub started.
    pub spawns: u64,
    /// Times the hub polled its reactor.
    pub polls: u64,
    /// Armed timers (sleeps, timeouts, I/O deadlines, delayed starts).
    pub timers: usize,
    /// Finished stacks kept for reuse.
    pub pooled_stacks: usize,
    /// Bytes of all green-thread stacks (live and pooled) resident in memory, by `mincore`
    /// (so `stats()` costs time in proportion to the stack pages mapped).
    pub stack_resident_bytes: usize,
    /// The guard mechanism the kernel accepted for stacks.
    pub guard: &'static str,
}

/// Reads the counters of this thread's hub (creating the hub if needed).
///
/// ```
/// let h = greenrt::spawn(|| greenrt::sleep(std::time::Duration::from_millis(10)));
/// greenrt::yield_now(); // let it start and park in its sleep
/// let s = greenrt::stats();
/// assert_eq!((s.alive, s.parked.timer), (1, 1));
/// h.join().unwrap();
/// assert_eq!(greenrt::stats().alive, 0);
/// assert!(greenrt::stats().switches >= 2);
/// ```
pub fn stats() -> Stats {
    with_hub(|hub| {
        let mut parked = Parked::default();
        let mut ready = 0;
        for green in hub.greens.borrow().values().filter(|g| !g.is_main) {
            match green.state.get() {
                State::Ready => ready += 1,
                State::Parked => match green.wait.get() {
                    Wait::Readable(_) | Wait::Writable(_) => parked.io += 1,
                    Wait::Sleep | Wait::Start => parked.timer += 1,
                    Wait::Sync(..) | Wait::Any(_) => parked.sync += 1,
                    Wait::Join(_) => parked.join += 1,
                    Wait::Unpark | Wait::Nothing => parked.unpark += 1,
                },
                State::Running | State::Finished => {}
            }
        }
        let mut scratch = Vec::new();
        let live: usize = hub
            .greens
            .borrow()
            .values()
            .map(|g| g.stack_span.get())
            .filter(|&(_, len)| len > 0)
            .map(|(start, len)| crate::sys::mem::resident_in(start, len, &mut scratch))
            .sum();
        let pooled: usize = hub
            .stacks
            .borrow()
            .spans()
            .into_iter()
            .map(|(start, len)| crate::sys::mem::resident_in(start, len, &mut scratch))
            .sum();
        Stats {
            stack_resident_bytes: live + pooled,
            alive: hub.greens.borrow().len() - 1,
            ready,
            parked,
            switches: hub.beat.switches(),
            spawns: hub.counters.spawns.get(),
            polls: hub.counters.polls.get(),
            timers: hub.timers.borrow().len(),
            pooled_stacks: hub.stacks.borrow().len(),
            guard: crate::sys::mem::guard_mechanism(),
        }
    })
}

/// Every green thread of this thread's hub, one per line: id, name, state, what it waits on
/// and for about how long (by the hub's coarse clock), and where it was spawned.
///
/// ```
/// let h = greenrt::Builder::new().name("napper".into()).spawn(|| greenrt::sleep(std::time::Duration::from_millis(50))).unwrap();
/// greenrt::yield_now();
/// let text = greenrt::dump();
/// assert!(text.contains("'napper'") && text.contains("a sleep"), "{text}");
/// h.join().unwrap();
/// ```
pub fn dump() -> String {
    with_hub(|hub| {
        let now = hub.counters.clock.get().max(Instant::now());
        let greens = hub.greens.borrow();
        let mut text = format!(
            "greenrt hub on thread {:?}: {} green threads\n",
            std::thread::current().name().unwrap_or("?"),
            greens.len() - 1
        );
        for green in greens.values().filter(|g| !g.is_main) {
            let state = green.state.get();
            let _ = write!(
                text,
                "  #{} '{}' {:?}",
                green.id,
                green.display_name(),
                state
            );
            if state == State::Parked {
                let waited = now.saturating_duration_since(green.parked_at.get().unwrap_or(now));
                let _ = write!(text, " on {} for ~{}", green.wait.get(), round_ms(waited));
            }
            let _ = writeln!(text, ", spawned at {}", green.spawned_at);
        }
        text
    })
}

fn round_ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// The resident set size of the whole process in bytes (from `/proc/self/statm`).
///
/// ```
/// assert!(greenrt::hub::resident_bytes().unwrap() > 0);
/// ```
pub fn resident_bytes() -> std::io::Result<usize> {
    crate::sys::mem::resident_bytes()
}
