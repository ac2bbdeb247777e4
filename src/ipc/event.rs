//! `ipc::Event`: a flag that processes wait for (multiprocessing.Event).
//!
//! | word      | bits        | meaning                                              |
//! |-----------|-------------|------------------------------------------------------|
//! | `flag`    | bit 0       | 1 = set (`wait` returns at once), 0 = clear            |
//! |           | bits 1..32  | generation: how many times the flag went from clear to set (wraps) |
//! | `waiters` | n           | how many may be asleep (so `set` can skip the wake syscall) |
//!
//! `set` turns the flag on *and bumps the generation* in one CAS, then, if anyone may sleep,
//! wakes them all. A waiter counts itself in *before* re-reading the word; with both sides
//! sequentially consistent, either the setter sees the count or the waiter sees the flag — a
//! wake-up is never lost. A waiter that wakes to a clear flag compares generations: a `set`
//! followed at once by `clear` still changed the word (the generation moved), so the futex
//! wakes and every waiter of that moment returns true — CPython's `test_set_and_clear`. With
//! a plain 0/1 flag, 0 → 1 → 0 looked like no change at all.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::region::{Kind, Region, SharedLayout};
use super::wait;

#[repr(C)]
struct EventState {
    flag: AtomicU32,
    waiters: AtomicU32,
}

// SAFETY: repr(C), atomics only.
unsafe impl SharedLayout for EventState {}

/// A process-shared event flag.
///
/// ```
/// use std::time::Duration;
/// use greenrt::ipc::Event;
///
/// let ready = Event::new()?;
/// let child = greenrt::process::Process::spawn({
///     let ready = ready.clone();
///     move || ready.set()
/// })?;
/// assert!(ready.wait_timeout(Duration::from_secs(10)));
/// child.join()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Event {
    region: Arc<Region>,
}

impl Event {
    /// A new, clear event in anonymous shared memory (inherited across `fork`).
    pub fn new() -> io::Result<Event> {
        Ok(Event {
            region: Arc::new(Region::anonymous(
                Kind::Event,
                size_of::<EventState>(),
                |_| {},
            )?),
        })
    }

    /// Creates the named event `name` (see [`Lock::create`](super::Lock::create)).
    pub fn create(name: &str) -> io::Result<Event> {
        Ok(Event {
            region: Arc::new(Region::create(
                name,
                Kind::Event,
                size_of::<EventState>(),
                |_| {},
            )?),
        })
    }

    /// Opens the named event `name`.
    pub fn open(name: &str) -> io::Result<Event> {
        Ok(Event {
            region: Arc::new(Region::open(name, Kind::Event, size_of::<EventState>())?),
        })
    }

    fn state(&self) -> &EventState {
        self.region.body()
    }

    /// True if the flag is set.
    pub fn is_set(&self) -> bool {
        self.state().flag.load(Ordering::Acquire) & SET != 0
    }

    /// Sets the flag and wakes every waiter, in every process.
    pub fn set(&self) {
        let s = self.state();
        let turned_on = s
            .flag
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |word| {
                (word & SET == 0).then(|| (word & !SET).wrapping_add(GENERATION) | SET)
            })
            .is_ok();
        if turned_on && s.waiters.load(Ordering::SeqCst) != 0 {
            wait::wake(&s.flag, u32::MAX);
        }
    }

    /// Clears the flag (the generation stays).
    pub fn clear(&self) {
        self.state().flag.fetch_and(!SET, Ordering::SeqCst);
    }

    /// Waits until the flag is set (parking only the calling green thread).
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Waits at most `timeout`; true if the flag was set — also if it was set while we
    /// waited and cleared again before we looked.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(crate::time::deadline_in(timeout))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        let s = self.state();
        let first = s.flag.load(Ordering::Acquire);
        if first & SET != 0 {
            return true;
        }
        s.waiters.fetch_add(1, Ordering::SeqCst);
        let _count = Uncount(&s.waiters);
        loop {
            let word = s.flag.load(Ordering::SeqCst);
            if word & SET != 0 || generation(word) != generation(first) {
                return true; // set now, or set (and maybe cleared) since we began
            }
            if !wait::wait(&s.flag, word, deadline) {
                let word = s.flag.load(Ordering::Acquire);
                return word & SET != 0 || generation(word) != generation(first);
            }
        }
    }
}

/// Bit 0 of the flag word: set.
const SET: u32 = 1;
/// One step of the generation in bits 1..32.
const GENERATION: u32 = 2;

fn generation(word: u32) -> u32 {
    word >> 1
}

/// Takes a waiter back out of a shared `waiters` count, also when a wait unwinds.
pub(crate) struct Uncount<'a>(pub(crate) &'a AtomicU32);

impl Drop for Uncount<'_> {
    fn drop(&mut self) {
        // Saturating: a corrupt count must not wrap into a huge one.
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(1))
            });
    }
}
