//! `ipc::Barrier`: `parties` processes (or threads, or green threads) wait until all have
//! arrived (multiprocessing.Barrier), with the cycle of the green
//! [`sync::Barrier`](crate::sync::Barrier): filling, draining, broken, resetting.
//!
//! | word       | meaning                                                              |
//! |------------|----------------------------------------------------------------------|
//! | `lock`     | a robust lock over the words below (see `raw_lock`)                  |
//! | `seq`      | bumped on every change of phase; waiters sleep on it                 |
//! | `sleepers` | how many may be asleep on `seq` (a change skips the wake syscall at 0) |
//! | `parties`  | fixed at creation, 1..=[`MAX_PARTIES`]                               |
//! | `phase`    | 0 filling, 1 draining, 2 resetting, 3 broken                         |
//! | `count`    | parties inside `wait`                                                |
//! | `inside`   | the identity (`pid << 40 \| start ticks`) of each party inside `wait` |
//!
//! **Nothing waits forever on a dead process.** A waiter wakes every 20 ms to look at the
//! identities in `inside`: a party that died while waiting breaks the barrier for the others
//! (as an `abort` would). A party that died *holding the lock* is found by the robust lock
//! (`OwnerDied`): the words may be half-updated, so the barrier is broken too, and `reset`
//! recounts `count` from the identities of the parties still alive.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::event::Uncount;
use super::owner::{identity_gone, my_identity, slice_deadline};
use super::raw_lock::{Acquired, RawLock};
use super::region::{Kind, Region, SharedLayout, invalid};
use super::wait;
use crate::sync::BrokenBarrier;
use crate::sys::process::cached_pid;

/// The most parties an `ipc::Barrier` takes (each inside `wait` has a slot for its identity).
pub const MAX_PARTIES: usize = 64;

const FILLING: u32 = 0;
const DRAINING: u32 = 1;
const RESETTING: u32 = 2;
const BROKEN: u32 = 3;

#[repr(C)]
struct BarrierState {
    lock: RawLock,
    seq: AtomicU32,
    sleepers: AtomicU32,
    parties: AtomicU32,
    phase: AtomicU32,
    count: AtomicU32,
    inside: [AtomicU64; MAX_PARTIES],
}

// SAFETY: repr(C), atomics only.
unsafe impl SharedLayout for BarrierState {}

/// A barrier shared by processes; see the module docs.
///
/// ```
/// use greenrt::ipc::Barrier;
/// use greenrt::process::Process;
///
/// let barrier = Barrier::new(3)?;
/// let children: Vec<Process> = (0..2)
///     .map(|_| {
///         let b = barrier.clone();
///         Process::spawn(move || { b.wait().unwrap(); })
///     })
///     .collect::<Result<_, _>>()?;
/// barrier.wait().unwrap(); // all three pass together
/// for child in children {
///     assert!(child.join()?.success());
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Barrier {
    region: Arc<Region>,
    timeout: Option<Duration>,
    action: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl Barrier {
    /// A barrier for `parties` in anonymous shared memory (inherited across `fork`).
    ///
    /// # Errors
    /// `InvalidInput` for 0 parties or more than [`MAX_PARTIES`].
    pub fn new(parties: usize) -> io::Result<Barrier> {
        let parties = checked_parties(parties)?;
        let region = Region::anonymous(Kind::Barrier, size_of::<BarrierState>(), |r| {
            init(r.body(), parties)
        })?;
        Ok(Barrier::from_region(region))
    }

    /// Creates the named barrier `name` (see [`Lock::create`](super::Lock::create)).
    pub fn create(name: &str, parties: usize) -> io::Result<Barrier> {
        let parties = checked_parties(parties)?;
        let region = Region::create(name, Kind::Barrier, size_of::<BarrierState>(), |r| {
            init(r.body(), parties)
        })?;
        Ok(Barrier::from_region(region))
    }

    /// Opens the named barrier `name`.
    pub fn open(name: &str) -> io::Result<Barrier> {
        let region = Region::open(name, Kind::Barrier, size_of::<BarrierState>())?;
        let barrier = Barrier::from_region(region);
        checked_parties(barrier.state().parties.load(Ordering::Relaxed) as usize)
            .map_err(|_| invalid("barrier: corrupt party count"))?;
        Ok(barrier)
    }

    fn from_region(region: Region) -> Barrier {
        Barrier {
            region: Arc::new(region),
            timeout: None,
            action: None,
        }
    }

    /// Runs `action` in the process of the last party to arrive, before any is released
    /// (each process that may arrive last must have set it on its handle).
    pub fn with_action(mut self, action: impl Fn() + Send + Sync + 'static) -> Barrier {
        self.action = Some(Arc::new(action));
        self
    }

    /// The timeout a plain [`wait`](Barrier::wait) uses on this handle.
    pub fn with_timeout(mut self, timeout: Duration) -> Barrier {
        self.timeout = Some(timeout);
        self
    }

    fn state(&self) -> &BarrierState {
        self.region.body()
    }

    /// How many parties must arrive.
    pub fn parties(&self) -> usize {
        self.state().parties.load(Ordering::Relaxed) as usize
    }

    /// Waits until all parties have arrived; this party's arrival index (`parties - 1` for
    /// the last, which ran the action). Parks only the calling green thread.
    ///
    /// # Errors
    /// `BrokenBarrier` on a break: an abort, a timeout, a party that died, a reset while
    /// waiting, or a panicking action in another process.
    ///
    /// Corrupt shared memory (another process wrote nonsense into it) makes the barrier
    /// unusable: `BrokenBarrier` too.
    ///
    /// # Panics
    /// With the action's panic, in the party that ran it.
    pub fn wait(&self) -> Result<usize, BrokenBarrier> {
        self.wait_until(self.timeout.and_then(crate::time::deadline_in))
    }

    /// [`wait`](Barrier::wait) for at most `timeout`, then break the barrier.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, BrokenBarrier> {
        self.wait_until(crate::time::deadline_in(timeout))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<usize, BrokenBarrier> {
        let mut inside = self.enter().map_err(|_| BrokenBarrier)?;
        // The previous cycle drains (or resets). Its last party out lets this one fill; if
        // no live party is inside (it died, or the words were forged), nobody would: fill now.
        while matches!(inside.phase(), DRAINING | RESETTING) {
            if inside.no_live_party_inside() {
                inside.set_phase(FILLING);
                break;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(BrokenBarrier);
            }
            inside = inside.sleep(deadline).ok_or(BrokenBarrier)?;
        }
        if inside.phase() == BROKEN {
            return Err(BrokenBarrier);
        }
        let index = inside.arrive();
        let mut action_panic = None;
        let passed = if index + 1 == self.parties() {
            action_panic = inside.release(self.action.as_deref());
            if action_panic.is_some() {
                Err(BrokenBarrier)
            } else {
                Ok(())
            }
        } else {
            let (back, passed) = inside.wait_for_release(deadline);
            inside = back.ok_or(BrokenBarrier)?; // the lock word went corrupt meanwhile
            passed
        };
        inside.leave();
        drop(inside);
        if let Some(payload) = action_panic {
            std::panic::resume_unwind(payload);
        }
        passed.map(|()| index)
    }

    /// Breaks the barrier for every party, in every process, until [`reset`](Barrier::reset).
    ///
    /// # Errors
    /// `InvalidData` if its shared memory is corrupt.
    pub fn abort(&self) -> io::Result<()> {
        self.enter()?.set_phase(BROKEN);
        Ok(())
    }

    /// Back to filling, unbroken; parties waiting now get `BrokenBarrier`. Recounts the
    /// parties inside from those still alive (a party that died holding the lock left the
    /// count behind).
    ///
    /// # Errors
    /// `InvalidData` if its shared memory is corrupt.
    pub fn reset(&self) -> io::Result<()> {
        let inside = self.enter()?;
        inside.forget_the_dead();
        let count = inside.s.count.load(Ordering::Relaxed);
        let phase = match (count, inside.phase()) {
            (0, _) => FILLING,
            (_, FILLING | BROKEN) => RESETTING,
            (_, phase) => phase,
        };
        inside.set_phase(phase);
        Ok(())
    }

    /// True once broken (and until reset).
    pub fn is_broken(&self) -> bool {
        self.state().phase.load(Ordering::Acquire) == BROKEN
    }

    /// How many parties wait now in the cycle that is filling.
    pub fn n_waiting(&self) -> usize {
        let s = self.state();
        if s.phase.load(Ordering::Acquire) == FILLING {
            s.count.load(Ordering::Acquire) as usize
        } else {
            0
        }
    }

    /// Takes the internal lock; a holder that died there leaves the words suspect, so the
    /// barrier breaks. `InvalidData` for a corrupt lock word.
    fn enter(&self) -> io::Result<Inside<'_>> {
        Inside::lock(self.state())
    }
}

impl std::fmt::Debug for Barrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state();
        f.debug_struct("Barrier")
            .field("parties", &s.parties.load(Ordering::Relaxed))
            .field("phase", &s.phase.load(Ordering::Relaxed))
            .field("count", &s.count.load(Ordering::Relaxed))
            .finish()
    }
}

fn checked_parties(parties: usize) -> io::Result<u32> {
    if (1..=MAX_PARTIES).contains(&parties) {
        Ok(parties as u32)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("an ipc::Barrier takes 1 to {MAX_PARTIES} parties, not {parties}"),
        ))
    }
}

fn init(s: &BarrierState, parties: u32) {
    s.parties.store(parties, Ordering::Relaxed);
}

/// The barrier's lock, held: every read and change of the words goes through here.
struct Inside<'a> {
    s: &'a BarrierState,
}

impl<'a> Inside<'a> {
    /// Takes the lock; breaks the barrier if its last holder died inside.
    fn lock(s: &'a BarrierState) -> io::Result<Inside<'a>> {
        match s.lock.lock(None)? {
            Some(Acquired::Clean) => Ok(Inside { s }),
            Some(Acquired::OwnerDied) => {
                let inside = Inside { s };
                inside.set_phase(BROKEN);
                Ok(inside)
            }
            None => unreachable!("a lock without deadline is always taken"),
        }
    }

    fn phase(&self) -> u32 {
        self.s.phase.load(Ordering::Relaxed)
    }

    /// Sets the phase and wakes every sleeper (in every process).
    fn set_phase(&self, phase: u32) {
        self.s.phase.store(phase, Ordering::Relaxed);
        self.s.seq.fetch_add(1, Ordering::SeqCst);
        if self.s.sleepers.load(Ordering::SeqCst) != 0 {
            wait::wake(&self.s.seq, u32::MAX);
        }
    }

    /// Counts this party in and records its identity; its arrival index.
    fn arrive(&self) -> usize {
        let index = self.s.count.load(Ordering::Relaxed);
        self.s
            .count
            .store(index.saturating_add(1), Ordering::Relaxed); // forged: no overflow
        let me = my_identity(cached_pid());
        if let Some(slot) = self
            .s
            .inside
            .iter()
            .find(|w| w.load(Ordering::Relaxed) == 0)
        {
            slot.store(me, Ordering::Relaxed);
        }
        index as usize
    }

    /// Counts this party out; the last one out of a drain or reset lets the next cycle fill.
    fn leave(&self) {
        let me = my_identity(cached_pid());
        if let Some(slot) = self
            .s
            .inside
            .iter()
            .find(|w| w.load(Ordering::Relaxed) == me)
        {
            slot.store(0, Ordering::Relaxed);
        }
        let count = self.s.count.load(Ordering::Relaxed).saturating_sub(1);
        self.s.count.store(count, Ordering::Relaxed);
        if count == 0 && matches!(self.phase(), DRAINING | RESETTING) {
            self.set_phase(FILLING);
        }
    }

    /// The last arrival: run the action, then release everyone. A panicking action breaks
    /// the barrier instead; its payload comes back, to go on once the lock is let go.
    fn release(
        &self,
        action: Option<&(dyn Fn() + Send + Sync)>,
    ) -> Option<Box<dyn std::any::Any + Send>> {
        if let Some(action) = action
            && let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(action))
        {
            self.set_phase(BROKEN);
            return Some(payload);
        }
        self.set_phase(DRAINING);
        None
    }

    /// Any other arrival: wait for the release, a break, a reset, a dead party or the
    /// deadline (which breaks it).
    /// `None` in the pair if the lock word went corrupt while we slept (we no longer hold it).
    fn wait_for_release(
        mut self,
        deadline: Option<Instant>,
    ) -> (Option<Self>, Result<(), BrokenBarrier>) {
        loop {
            match self.phase() {
                DRAINING => return (Some(self), Ok(())),
                BROKEN | RESETTING => return (Some(self), Err(BrokenBarrier)),
                _ => {}
            }
            if deadline.is_some_and(|d| Instant::now() >= d) || self.a_party_died() {
                self.set_phase(BROKEN);
                return (Some(self), Err(BrokenBarrier));
            }
            match self.sleep(deadline) {
                Some(again) => self = again,
                None => return (None, Err(BrokenBarrier)),
            }
        }
    }

    /// True if a party recorded inside `wait` no longer runs.
    fn a_party_died(&self) -> bool {
        self.s.inside.iter().any(|w| {
            let identity = w.load(Ordering::Relaxed);
            identity != 0 && identity_gone(identity)
        })
    }

    /// True if no party recorded inside `wait` is alive (after clearing the dead ones).
    fn no_live_party_inside(&self) -> bool {
        self.forget_the_dead();
        self.s.count.load(Ordering::Relaxed) == 0
    }

    /// Clears the slots of parties that died and recounts `count` from the live ones.
    fn forget_the_dead(&self) {
        let mut live = 0;
        for slot in &self.s.inside {
            let identity = slot.load(Ordering::Relaxed);
            if identity == 0 {
                continue;
            }
            if identity_gone(identity) {
                slot.store(0, Ordering::Relaxed);
            } else {
                live += 1;
            }
        }
        self.s.count.store(live, Ordering::Relaxed);
    }

    /// Releases the lock, sleeps until the phase changes (or a 20 ms slice passes, to look
    /// for dead parties), takes the lock again — `None` if its word went corrupt meanwhile.
    fn sleep(self, deadline: Option<Instant>) -> Option<Self> {
        let s = self.s;
        let seen = s.seq.load(Ordering::SeqCst);
        s.sleepers.fetch_add(1, Ordering::SeqCst);
        let _count = Uncount(&s.sleepers);
        self.unlock();
        wait::wait(&s.seq, seen, Some(slice_deadline(deadline)));
        Inside::lock(s).ok()
    }

    fn unlock(self) {
        let s = self.s;
        std::mem::forget(self);
        super::unlock_or_panic(&s.lock);
    }
}

impl Drop for Inside<'_> {
    fn drop(&mut self) {
        super::unlock_or_panic(&self.s.lock);
    }
}
