//! `ipc::Event`: a flag that processes wait for (multiprocessing.Event).
//!
//! | word      | value | meaning                                   |
//! |-----------|-------|-------------------------------------------|
//! | `flag`    | 0     | clear: `wait` sleeps on this word          |
//! |           | 1     | set: `wait` returns at once                |
//! | `waiters` | n     | how many may be asleep (so `set` can skip the wake syscall) |
//!
//! `set` stores 1 and then, if anyone may sleep, wakes them all. A waiter counts itself in
//! *before* re-reading the flag; with both sides sequentially consistent, either the setter
//! sees the count or the waiter sees the flag — a wake-up is never lost.

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
            region: Arc::new(Region::open(name, Kind::Event)?),
        })
    }

    fn state(&self) -> &EventState {
        self.region.body()
    }

    /// True if the flag is set.
    pub fn is_set(&self) -> bool {
        self.state().flag.load(Ordering::Acquire) != 0
    }

    /// Sets the flag and wakes every waiter, in every process.
    pub fn set(&self) {
        let s = self.state();
        let was = s.flag.swap(1, Ordering::SeqCst);
        if was == 0 && s.waiters.load(Ordering::SeqCst) != 0 {
            wait::wake(&s.flag, u32::MAX);
        }
    }

    /// Clears the flag.
    pub fn clear(&self) {
        self.state().flag.store(0, Ordering::SeqCst);
    }

    /// Waits until the flag is set (parking only the calling green thread).
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Waits at most `timeout`; true if the flag was set.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(crate::time::deadline_in(timeout))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        let s = self.state();
        loop {
            if s.flag.load(Ordering::Acquire) != 0 {
                return true;
            }
            s.waiters.fetch_add(1, Ordering::SeqCst);
            let _count = Uncount(&s.waiters);
            let flag = s.flag.load(Ordering::SeqCst);
            if flag != 0 {
                return true;
            }
            if !wait::wait(&s.flag, flag, deadline) {
                return s.flag.load(Ordering::Acquire) != 0;
            }
        }
    }
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
