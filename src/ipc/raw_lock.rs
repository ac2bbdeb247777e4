//! The robust lock word every ipc lock is built on.
//!
//! One `u32` in shared memory:
//!
//! | bits   | meaning                                                             |
//! |--------|---------------------------------------------------------------------|
//! | 0..=21 | pid of the holding process; 0 = unlocked (Linux pids are < 2^22)    |
//! | 22..=30| always 0 (a set bit means the word is corrupt)                      |
//! | 31     | `WAITERS`: someone may be asleep on the word; unlock must wake one  |
//!
//! | word            | state                                  |
//! |-----------------|----------------------------------------|
//! | `0`             | free, nobody waiting                   |
//! | `WAITERS`       | free, a woken waiter is on its way     |
//! | `pid`           | held by `pid`, nobody waiting          |
//! | `pid | WAITERS` | held by `pid`, waiters may be asleep   |
//!
//! * **lock**: CAS `0 -> me` (no syscall). Otherwise spin briefly, then set `WAITERS` and wait
//!   on the word; a waiter takes a free word as `me | WAITERS`, since others may still sleep.
//! * **unlock**: swap in `0`; if `WAITERS` was set, `futex_wake(1)` (the only syscall).
//! * **holder died**: a waiter that finds the holder dead (see `ipc::owner`) CASes the word
//!   from `dead | bits` to `me | WAITERS` and reports `Acquired::OwnerDied`. Exactly one waiter
//!   wins that CAS.
//! * **holder identity**: next to the word, `holder` records `pid << 40 | start time` of the
//!   process that holds it — written right after taking the word — so a waiter can tell the
//!   holder from an unrelated process that was given the dead holder's pid (pid reuse).
//!
//! The holder is a *process*: threads and green threads of one process share its pid. Locks
//! that care which thread holds them (RLock) keep that next to the word.

use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use super::owner::{OwnerWatch, my_identity, slice_deadline};
use super::region::{SharedLayout, invalid};
use super::wait;
use crate::sys::process::cached_pid;

const WAITERS: u32 = 1 << 31;
const PID_MASK: u32 = (1 << 22) - 1;
const MUST_BE_ZERO: u32 = !(PID_MASK | WAITERS);
/// Reads of the word before a contended lock sleeps in the kernel: `Backoff::spin` doubles
/// the pause between reads each time, up to 64, so 7 reads span 127 pauses.
const SPIN_STEPS: u32 = 6;

/// How a lock was acquired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acquired {
    /// From a live holder or free.
    Clean,
    /// Taken over from a holder that died holding it: the data it guards may be half-updated.
    OwnerDied,
}

/// The lock word and its holder's identity. See the module docs.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct RawLock {
    word: AtomicU32,
    _pad: AtomicU32,
    /// Who holds it: `pid << 40 | start time in boot ticks (low 40 bits)`, written by the
    /// holder right after it takes the word (and left there after it releases it: the next
    /// holder overwrites it); 0 before anyone held it. With it, a waiter tells the holder
    /// from an unrelated process that got the holder's pid after the holder died (see
    /// `ipc::owner`).
    holder: AtomicU64,
}

// SAFETY: repr(C), atomics only.
unsafe impl SharedLayout for RawLock {}

impl RawLock {
    /// Takes the lock if it is free. `Ok(None)` if it is held.
    pub(crate) fn try_lock(&self) -> io::Result<Option<Acquired>> {
        let me = cached_pid();
        match self
            .word
            .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
        {
            Ok(_) => Ok(Some(self.taken(me, Acquired::Clean))),
            Err(w) => {
                check(w)?;
                if w & PID_MASK == 0 && self.take_free(w, me) {
                    return Ok(Some(self.taken(me, Acquired::Clean)));
                }
                Ok(None)
            }
        }
    }

    /// Takes the lock, waiting until `deadline`. `Ok(None)` if the deadline passed.
    #[inline(always)]
    pub(crate) fn lock(&self, deadline: Option<Instant>) -> io::Result<Option<Acquired>> {
        let me = cached_pid();
        if self
            .word
            .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return Ok(Some(self.taken(me, Acquired::Clean)));
        }
        self.lock_contended(me, deadline)
    }

    /// [`lock`](RawLock::lock) when the word was not free: kept out of line, so the free case
    /// inlined into every caller is a compare-and-swap and a load.
    #[inline(never)]
    fn lock_contended(&self, me: u32, deadline: Option<Instant>) -> io::Result<Option<Acquired>> {
        self.lock_slow(me, deadline)
            .map(|got| got.map(|how| self.taken(me, how)))
    }

    #[cold]
    fn lock_slow(&self, me: u32, deadline: Option<Instant>) -> io::Result<Option<Acquired>> {
        // Spin a little before sleeping in the kernel, reading the word less and less often
        // (1, 2, 4 ... 64 pause instructions between reads): a holder in another process
        // usually lets go within a few hundred nanoseconds, and fewer reads of a contended
        // cache line leave it to the holder.
        let backoff = crossbeam_utils::Backoff::new();
        for _ in 0..=SPIN_STEPS {
            let w = self.word.load(Ordering::Relaxed);
            if w == 0 && self.take_free(w, me) {
                return Ok(Some(Acquired::Clean));
            }
            backoff.spin();
        }
        let mut watch = OwnerWatch::new();
        loop {
            let w = self.word.load(Ordering::Relaxed);
            check(w)?;
            let holder = w & PID_MASK;
            if holder == 0 {
                if self.take(w, me | WAITERS) {
                    return Ok(Some(Acquired::Clean));
                }
                continue;
            }
            if w & WAITERS == 0 && !self.take(w, w | WAITERS) {
                continue;
            }
            if watch.holder_died(holder, self.holder.load(Ordering::Acquire)) {
                if self.take(w | WAITERS, me | WAITERS) {
                    return Ok(Some(Acquired::OwnerDied));
                }
                continue;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            wait::wait(&self.word, w | WAITERS, Some(slice_deadline(deadline)));
        }
    }

    /// Releases the lock, which this process must hold.
    ///
    /// Errors: `InvalidData` if the word does not name this process (corrupt shared memory, or
    /// an unlock without a lock).
    #[inline(always)]
    pub(crate) fn unlock(&self) -> io::Result<()> {
        let me = cached_pid();
        if self
            .word
            .compare_exchange(me, 0, Ordering::Release, Ordering::Relaxed)
            .is_ok()
        {
            return Ok(());
        }
        self.unlock_slow(me)
    }

    #[cold]
    fn unlock_slow(&self, me: u32) -> io::Result<()> {
        let w = self.word.load(Ordering::Relaxed);
        if w & PID_MASK != me || w & MUST_BE_ZERO != 0 {
            return Err(invalid(format!(
                "ipc lock word {w:#x} does not name this process ({me}) as its holder"
            )));
        }
        let prev = self.word.swap(0, Ordering::Release);
        if prev & WAITERS != 0 {
            wait::wake(&self.word, 1);
        }
        Ok(())
    }

    /// Records this process as the holder (just taken, in any way); passes `how` through.
    #[inline]
    fn taken(&self, me: u32, how: Acquired) -> Acquired {
        let identity = my_identity(me);
        // Usually it is there already (this process held it last): then no store, and the
        // unlock's locked instruction has no extra store to wait for.
        if self.holder.load(Ordering::Relaxed) != identity {
            self.holder.store(identity, Ordering::Release);
        }
        how
    }

    /// The pid holding the lock now, if any (a snapshot).
    pub(crate) fn holder(&self) -> Option<u32> {
        match self.word.load(Ordering::Relaxed) & PID_MASK {
            0 => None,
            pid => Some(pid),
        }
    }

    fn take_free(&self, seen: u32, me: u32) -> bool {
        self.take(seen, me | (seen & WAITERS))
    }

    fn take(&self, seen: u32, new: u32) -> bool {
        self.word
            .compare_exchange(seen, new, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }
}

/// A word with reserved bits set was not written by greenrt.
fn check(w: u32) -> io::Result<()> {
    if w & MUST_BE_ZERO != 0 {
        return Err(invalid(format!(
            "ipc lock word {w:#x} is corrupt (reserved bits set)"
        )));
    }
    Ok(())
}
