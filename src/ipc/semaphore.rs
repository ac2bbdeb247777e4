//! `ipc::Semaphore` and `ipc::BoundedSemaphore`: counting semaphores shared by processes, whose
//! permits come back when a process holding them dies.
//!
//! ```text
//!   SemState: lock | seq | waiters | count | max | journal | slots[128]
//! ```
//!
//! | field     | meaning                                                               |
//! |-----------|-----------------------------------------------------------------------|
//! | `lock`    | an internal robust lock, held for a few instructions per operation    |
//! | `count`   | permits available now                                                 |
//! | `max`     | the bound of a `BoundedSemaphore` (0 = unbounded)                     |
//! | `seq`     | bumped by every release; acquirers sleep on it                        |
//! | `waiters` | how many may sleep on `seq` (release skips the wake syscall at 0)     |
//! | `slots`   | per process: (pid, start time, permits held through [`Permit`]s)      |
//! | `journal` | the old values of `count` and one slot while an update is in flight   |
//!
//! **Dead holders.** A [`Permit`] is recorded in its process's slot. A waiter that has waited a
//! while scans the slots, and a slot whose process has gone (pid gone, or a different start
//! time: pid reuse) gives its permits back. Permits given up with [`Permit::forget`] and
//! plain [`Semaphore::release`] calls are *signals*, not holdings, and are not tracked.
//!
//! **Crash-safe updates.** Every update writes the old values to the journal, marks it
//! active, updates, and clears the mark. A process killed in between leaves the mark set; the
//! next one to take the internal lock (told `OwnerDied`) restores the old values, so a
//! half-done acquire or release never leaks or doubles a permit.
//!
//! Up to 128 processes can hold tracked permits at once; a 129th process's permits still
//! work but are not tracked (and so not returned if it dies).

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::event::Uncount;
use super::fault::{self, CrashPoint};
use super::owner::{CHECK_EVERY, my_start_ticks, process_gone, slice_deadline};
use super::raw_lock::{Acquired, RawLock};
use super::region::{Kind, Region, SharedLayout, invalid};
use super::wait;
/// The same error as green semaphores give (here inside an `io::Error` of kind `InvalidInput`).
pub use crate::sync::OverRelease;
use crate::sys::process::cached_pid;

const SLOTS: usize = 128;
/// In `Permit::slot`: the permit is not tracked.
const UNTRACKED: u32 = u32::MAX;

#[repr(C)]
struct Slot {
    pid: AtomicU32,
    held: AtomicU32,
    start: AtomicU64,
}

#[repr(C)]
struct Journal {
    active: AtomicU32,
    slot: AtomicU32,
    count: AtomicU32,
    pid: AtomicU32,
    held: AtomicU32,
    start: AtomicU64,
}

#[repr(C)]
struct SemState {
    lock: RawLock,
    seq: AtomicU32,
    waiters: AtomicU32,
    count: AtomicU32,
    max: AtomicU32,
    journal: Journal,
    slots: [Slot; SLOTS],
}

// SAFETY: repr(C), atomics only (arrays of repr(C) atomic structs included).
unsafe impl SharedLayout for SemState {}

/// A counting semaphore shared by processes (multiprocessing.Semaphore).
///
/// ```
/// let rooms = greenrt::ipc::Semaphore::new(2)?;
/// let a = rooms.acquire()?;
/// let b = rooms.acquire()?;
/// assert!(rooms.try_acquire()?.is_none());
/// drop(a);
/// assert_eq!(rooms.value(), 1);
/// # drop(b);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Semaphore {
    region: Arc<Region>,
}

/// One permit of an ipc semaphore; dropping it gives the permit back.
#[must_use = "the permit is given back when dropped"]
#[derive(Debug)]
pub struct Permit<'a> {
    sem: &'a Semaphore,
    slot: u32,
}

/// The internal lock, held; dropping it unlocks.
struct Inside<'a> {
    s: &'a SemState,
}

impl Semaphore {
    /// A semaphore with `value` permits in anonymous shared memory (inherited across `fork`).
    pub fn new(value: u32) -> io::Result<Semaphore> {
        Semaphore::make(None, value, 0)
    }

    /// Creates the named semaphore `name` with `value` permits.
    pub fn create(name: &str, value: u32) -> io::Result<Semaphore> {
        Semaphore::make(Some(name), value, 0)
    }

    /// Opens the named semaphore `name`.
    ///
    /// ```
    /// use greenrt::ipc::Semaphore;
    /// let name = format!("doc-sem-{}", std::process::id());
    /// let created = Semaphore::create(&name, 1)?; // the name goes when this is dropped
    /// let opened = Semaphore::open(&name)?; // e.g. in an unrelated process
    /// let _permit = created.acquire()?;
    /// assert_eq!(opened.value(), 0); // one semaphore, two handles
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn open(name: &str) -> io::Result<Semaphore> {
        Ok(Semaphore {
            region: Arc::new(Region::open(name, Kind::Semaphore, size_of::<SemState>())?),
        })
    }

    fn make(name: Option<&str>, value: u32, max: u32) -> io::Result<Semaphore> {
        let init = |r: &Region| {
            let s: &SemState = r.body();
            s.count.store(value, Ordering::Relaxed);
            s.max.store(max, Ordering::Relaxed);
        };
        let len = size_of::<SemState>();
        let region = match name {
            Some(name) => Region::create(name, Kind::Semaphore, len, init)?,
            None => Region::anonymous(Kind::Semaphore, len, init)?,
        };
        Ok(Semaphore {
            region: Arc::new(region),
        })
    }

    fn state(&self) -> &SemState {
        self.region.body()
    }

    /// Permits available now (a snapshot).
    pub fn value(&self) -> u32 {
        self.state().count.load(Ordering::Relaxed)
    }

    /// Takes a permit, waiting as long as needed (parking only the green thread).
    /// Errors only for corrupt shared memory (`InvalidData`).
    pub fn acquire(&self) -> io::Result<Permit<'_>> {
        self.acquire_until(None).map(|p| p.expect("no deadline"))
    }

    /// Takes a permit, waiting at most `timeout`; `Ok(None)` on timeout.
    ///
    /// ```
    /// use std::time::Duration;
    /// let s = greenrt::ipc::Semaphore::new(1)?;
    /// let _held = s.acquire()?;
    /// assert!(s.acquire_timeout(Duration::from_millis(10))?.is_none());
    /// assert_eq!(s.value(), 0); // the timed-out wait minted no permit
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> io::Result<Option<Permit<'_>>> {
        self.acquire_until(crate::time::deadline_in(timeout))
    }

    /// Takes a permit if one is free now. Never blocks: if another process holds the
    /// internal lock (it may be stopped), the answer is "none free now".
    pub fn try_acquire(&self) -> io::Result<Option<Permit<'_>>> {
        let Some(mut inside) = self.enter_within(Some(Instant::now()))? else {
            return Ok(None);
        };
        let slot = inside.take()?;
        Ok(slot.map(|slot| Permit { sem: self, slot }))
    }

    fn acquire_until(&self, deadline: Option<Instant>) -> io::Result<Option<Permit<'_>>> {
        let s = self.state();
        let mut next_reclaim = Instant::now() + CHECK_EVERY;
        loop {
            let seq = {
                let Some(mut inside) = self.enter_within(deadline)? else {
                    return Ok(None); // the internal lock's holder kept it past our deadline
                };
                if Instant::now() >= next_reclaim {
                    inside.reclaim_dead()?;
                    next_reclaim = Instant::now() + CHECK_EVERY;
                }
                if let Some(slot) = inside.take()? {
                    return Ok(Some(Permit { sem: self, slot }));
                }
                s.waiters.fetch_add(1, Ordering::SeqCst);
                s.seq.load(Ordering::SeqCst)
            };
            let _count = Uncount(&s.waiters);
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            wait::wait(&s.seq, seq, Some(slice_deadline(deadline)));
        }
    }

    /// Adds a permit that no one held (a signal, as in producer/consumer counting).
    /// A bounded semaphore refuses to pass its bound: `InvalidInput` carrying [`OverRelease`].
    ///
    /// ```
    /// let items = greenrt::ipc::Semaphore::new(0)?; // counts items produced
    /// items.release()?; // a producer signals one
    /// let item = items.try_acquire()?.expect("one was signalled");
    /// item.forget(); // the consumer used it up: not given back
    /// assert!(items.try_acquire()?.is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn release(&self) -> io::Result<()> {
        self.enter()?.give(UNTRACKED)?;
        self.wake_one();
        Ok(())
    }

    fn wake_one(&self) {
        let s = self.state();
        if s.waiters.load(Ordering::SeqCst) != 0 {
            wait::wake(&s.seq, 1);
        }
    }

    /// Takes the internal lock, repairing a half-done update of a process that died in it.
    fn enter(&self) -> io::Result<Inside<'_>> {
        Ok(self.enter_within(None)?.expect("no deadline"))
    }

    /// [`Semaphore::enter`] by `deadline`: `None` if the lock's holder (perhaps a stopped
    /// process) kept it until then.
    fn enter_within(&self, deadline: Option<Instant>) -> io::Result<Option<Inside<'_>>> {
        let s = self.state();
        match s.lock.lock(deadline)? {
            Some(Acquired::Clean) => Ok(Some(Inside { s })),
            Some(Acquired::OwnerDied) => {
                let inside = Inside { s };
                inside.roll_back()?;
                Ok(Some(inside))
            }
            None => Ok(None),
        }
    }
}

impl Inside<'_> {
    fn max(&self) -> u32 {
        self.s.max.load(Ordering::Relaxed)
    }

    fn count(&self) -> io::Result<u32> {
        let (count, max) = (self.s.count.load(Ordering::Relaxed), self.max());
        if max != 0 && count > max {
            return Err(invalid(format!(
                "ipc semaphore count {count} is above its bound {max}"
            )));
        }
        Ok(count)
    }

    /// Takes a permit if one is free, recording it in this process's slot. Returns the slot
    /// (or UNTRACKED when all slots are busy).
    fn take(&mut self) -> io::Result<Option<u32>> {
        let count = self.count()?;
        if count == 0 {
            return Ok(None);
        }
        let slot = self.my_slot();
        self.begin(slot);
        self.s.count.store(count - 1, Ordering::Relaxed);
        fault::point(CrashPoint::SemaphoreBeforeCommit);
        if let Some(i) = slot {
            let sl = &self.s.slots[i];
            sl.start.store(my_start_ticks(), Ordering::Relaxed);
            sl.pid.store(cached_pid(), Ordering::Relaxed);
            sl.held.store(
                sl.held.load(Ordering::Relaxed).saturating_add(1),
                Ordering::Relaxed,
            );
        }
        self.commit();
        Ok(Some(slot.map_or(UNTRACKED, |i| i as u32)))
    }

    /// Gives a permit back, from `slot` (or a signal with UNTRACKED).
    fn give(&mut self, slot: u32) -> io::Result<()> {
        let count = self.count()?;
        let max = self.max();
        if count == u32::MAX || (max != 0 && count >= max) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, OverRelease));
        }
        let tracked = (slot != UNTRACKED)
            .then_some(slot as usize)
            .filter(|&i| i < SLOTS);
        self.begin(tracked);
        self.s.count.store(count + 1, Ordering::Relaxed);
        if let Some(i) = tracked {
            let sl = &self.s.slots[i];
            let held = sl.held.load(Ordering::Relaxed).saturating_sub(1);
            sl.held.store(held, Ordering::Relaxed);
            if held == 0 {
                sl.pid.store(0, Ordering::Relaxed);
            }
        }
        self.s.seq.fetch_add(1, Ordering::SeqCst);
        self.commit();
        Ok(())
    }

    /// Returns the permits of every slot whose process has gone.
    fn reclaim_dead(&mut self) -> io::Result<()> {
        let me = cached_pid();
        for i in 0..SLOTS {
            let sl = &self.s.slots[i];
            let (pid, held) = (
                sl.pid.load(Ordering::Relaxed),
                sl.held.load(Ordering::Relaxed),
            );
            if pid == 0
                || pid == me
                || held == 0
                || !process_gone(pid, sl.start.load(Ordering::Relaxed))
            {
                continue;
            }
            let count = self.count()?;
            let max = self.max();
            let back = if max != 0 {
                held.min(max - count)
            } else {
                held.min(u32::MAX - count)
            };
            self.begin(Some(i));
            self.s.count.store(count + back, Ordering::Relaxed);
            sl.held.store(0, Ordering::Relaxed);
            sl.pid.store(0, Ordering::Relaxed);
            self.s.seq.fetch_add(1, Ordering::SeqCst);
            self.commit();
        }
        Ok(())
    }

    /// This process's slot, or a free one, or None when all 128 are taken by live others.
    fn my_slot(&self) -> Option<usize> {
        let (me, start) = (cached_pid(), my_start_ticks());
        let slots = &self.s.slots;
        let mine = slots.iter().position(|sl| {
            sl.pid.load(Ordering::Relaxed) == me && sl.start.load(Ordering::Relaxed) == start
        });
        mine.or_else(|| {
            slots
                .iter()
                .position(|sl| sl.pid.load(Ordering::Relaxed) == 0)
        })
    }

    /// Journals the values an update may change, then marks the journal active.
    fn begin(&self, slot: Option<usize>) {
        let j = &self.s.journal;
        j.count
            .store(self.s.count.load(Ordering::Relaxed), Ordering::Relaxed);
        match slot {
            Some(i) => {
                let sl = &self.s.slots[i];
                j.slot.store(i as u32, Ordering::Relaxed);
                j.pid
                    .store(sl.pid.load(Ordering::Relaxed), Ordering::Relaxed);
                j.held
                    .store(sl.held.load(Ordering::Relaxed), Ordering::Relaxed);
                j.start
                    .store(sl.start.load(Ordering::Relaxed), Ordering::Relaxed);
            }
            None => j.slot.store(UNTRACKED, Ordering::Relaxed),
        }
        j.active.store(1, Ordering::Release);
    }

    fn commit(&self) {
        self.s.journal.active.store(0, Ordering::Release);
    }

    /// Undoes the update a dead process left half done (if any).
    fn roll_back(&self) -> io::Result<()> {
        let j = &self.s.journal;
        if j.active.load(Ordering::Acquire) == 0 {
            return Ok(());
        }
        self.s
            .count
            .store(j.count.load(Ordering::Relaxed), Ordering::Relaxed);
        let slot = j.slot.load(Ordering::Relaxed);
        if slot != UNTRACKED {
            let sl = self.s.slots.get(slot as usize).ok_or_else(|| {
                invalid(format!(
                    "ipc semaphore journal names slot {slot} of {SLOTS}"
                ))
            })?;
            sl.pid
                .store(j.pid.load(Ordering::Relaxed), Ordering::Relaxed);
            sl.held
                .store(j.held.load(Ordering::Relaxed), Ordering::Relaxed);
            sl.start
                .store(j.start.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        self.commit();
        self.s.seq.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

impl Drop for Inside<'_> {
    fn drop(&mut self) {
        super::unlock_or_panic(&self.s.lock);
    }
}

impl Permit<'_> {
    /// Keeps the permit taken for good: it is no longer this process's holding (it will not
    /// come back if the process dies); someone may `release` it later as a signal.
    pub fn forget(self) {
        let sem = self.sem;
        let slot = self.slot;
        std::mem::forget(self);
        if slot == UNTRACKED {
            return;
        }
        if let Ok(inside) = sem.enter() {
            let sl = &inside.s.slots[slot as usize % SLOTS];
            inside.begin(Some(slot as usize % SLOTS));
            let held = sl.held.load(Ordering::Relaxed).saturating_sub(1);
            sl.held.store(held, Ordering::Relaxed);
            if held == 0 {
                sl.pid.store(0, Ordering::Relaxed);
            }
            inside.commit();
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let given = self
            .sem
            .enter()
            .and_then(|mut inside| inside.give(self.slot));
        match given {
            Ok(()) => self.sem.wake_one(),
            Err(e) if !std::thread::panicking() => {
                panic!("greenrt::ipc: cannot return a permit: {e}")
            }
            Err(_) => {}
        }
    }
}

/// A semaphore that refuses to be released above its initial value
/// (multiprocessing.BoundedSemaphore): such a release is `InvalidInput` with [`OverRelease`].
///
/// ```
/// let s = greenrt::ipc::BoundedSemaphore::new(1)?;
/// s.acquire()?.forget();
/// s.release()?;
/// let err = s.release().unwrap_err();
/// assert!(err.get_ref().unwrap().is::<greenrt::ipc::OverRelease>());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct BoundedSemaphore {
    sem: Semaphore,
}

impl BoundedSemaphore {
    /// A bounded semaphore with `value` permits, also its bound (`value` must be at least 1).
    pub fn new(value: u32) -> io::Result<BoundedSemaphore> {
        assert!(
            value > 0,
            "ipc::BoundedSemaphore::new(0): the bound must be at least 1"
        );
        Ok(BoundedSemaphore {
            sem: Semaphore::make(None, value, value)?,
        })
    }

    /// Creates the named bounded semaphore `name`.
    pub fn create(name: &str, value: u32) -> io::Result<BoundedSemaphore> {
        assert!(
            value > 0,
            "ipc::BoundedSemaphore::create: the bound must be at least 1"
        );
        Ok(BoundedSemaphore {
            sem: Semaphore::make(Some(name), value, value)?,
        })
    }

    /// Opens the named bounded semaphore `name` (`InvalidData` if it has no bound).
    pub fn open(name: &str) -> io::Result<BoundedSemaphore> {
        let sem = Semaphore::open(name)?;
        if sem.state().max.load(Ordering::Relaxed) == 0 {
            return Err(invalid(format!("ipc semaphore {name:?} is not bounded")));
        }
        Ok(BoundedSemaphore { sem })
    }
}

impl std::ops::Deref for BoundedSemaphore {
    type Target = Semaphore;
    fn deref(&self) -> &Semaphore {
        &self.sem
    }
}
