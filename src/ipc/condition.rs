//! `ipc::Condition`: a lock with wait/notify, shared by processes (multiprocessing.Condition).
//!
//! | word      | meaning                                                          |
//! |-----------|------------------------------------------------------------------|
//! | `lock`    | the condition's own robust lock (see `raw_lock`)                 |
//! | `seq`     | a counter bumped by every notify; waiters sleep on it            |
//! | `waiters` | how many may be asleep on `seq` (notify skips the syscall at 0)  |
//!
//! `wait` reads `seq` while holding the lock, releases the lock, sleeps while `seq` still
//! holds that value, then re-takes the lock. A notify that happens after the release changes
//! `seq`, so it cannot be missed. `notify` only bumps and wakes: it never waits for a waiter,
//! so a dead or slow waiter cannot block it. Like POSIX condition variables, a waiter may
//! wake without a notify, and `notify(1)` may wake more than one: wait in a loop
//! ([`Condition::wait_while`]).

use std::io;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::LockError;
use super::event::Uncount;
use super::raw_lock::{Acquired, RawLock};
use super::region::{Kind, Region, SharedLayout};
use super::wait;

#[repr(C)]
struct CondState {
    lock: RawLock,
    seq: AtomicU32,
    waiters: AtomicU32,
}

// SAFETY: repr(C), atomics only.
unsafe impl SharedLayout for CondState {}

/// A process-shared condition: its own lock plus wait/notify.
///
/// ```
/// use greenrt::ipc::{Condition, Value};
///
/// let cond = Condition::new()?;
/// let ready = Value::new(0u32)?;
/// let child = greenrt::process::Process::spawn({
///     let (cond, ready) = (cond.clone(), ready.clone());
///     move || {
///         let _held = cond.lock().unwrap();
///         ready.set(1).unwrap();
///         cond.notify_all();
///     }
/// })?;
/// let held = cond.lock().unwrap();
/// let _held = cond.wait_while(held, || ready.get().unwrap() == 0).unwrap();
/// child.join()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Condition {
    region: Arc<Region>,
}

/// Holds a [`Condition`]'s lock.
#[must_use = "the lock is released when the guard is dropped"]
#[derive(Debug)]
pub struct ConditionGuard<'a> {
    cond: &'a Condition,
    _not_send: PhantomData<*const ()>,
}

type CondResult<'a> = Result<ConditionGuard<'a>, LockError<ConditionGuard<'a>>>;

impl Condition {
    /// A new condition in anonymous shared memory (inherited across `fork`).
    pub fn new() -> io::Result<Condition> {
        Ok(Condition {
            region: Arc::new(Region::anonymous(
                Kind::Condition,
                size_of::<CondState>(),
                |_| {},
            )?),
        })
    }

    /// Creates the named condition `name`.
    pub fn create(name: &str) -> io::Result<Condition> {
        let region = Region::create(name, Kind::Condition, size_of::<CondState>(), |_| {})?;
        Ok(Condition {
            region: Arc::new(region),
        })
    }

    /// Opens the named condition `name`.
    pub fn open(name: &str) -> io::Result<Condition> {
        Ok(Condition {
            region: Arc::new(Region::open(name, Kind::Condition, size_of::<CondState>())?),
        })
    }

    fn state(&self) -> &CondState {
        self.region.body()
    }

    /// Takes the condition's lock (see [`Lock::lock`](super::Lock::lock) for the errors).
    pub fn lock(&self) -> CondResult<'_> {
        self.relock(None)
    }

    fn relock(&self, deadline: Option<Instant>) -> CondResult<'_> {
        let guard = ConditionGuard {
            cond: self,
            _not_send: PhantomData,
        };
        match self.state().lock.lock(deadline) {
            Ok(Some(Acquired::Clean)) => Ok(guard),
            Ok(Some(Acquired::OwnerDied)) => Err(LockError::OwnerDied(guard)),
            Ok(None) => {
                std::mem::forget(guard);
                Err(LockError::TimedOut)
            }
            Err(e) => {
                std::mem::forget(guard);
                Err(LockError::Corrupt(e))
            }
        }
    }

    /// Releases the lock, waits for a notify (or spuriously), and takes the lock again.
    pub fn wait<'a>(&'a self, guard: ConditionGuard<'a>) -> CondResult<'a> {
        self.wait_until(guard, None).0
    }

    /// Like [`wait`](Condition::wait) for at most `timeout`; the bool is false on timeout.
    /// The lock is held again on return either way.
    pub fn wait_timeout<'a>(
        &'a self,
        guard: ConditionGuard<'a>,
        timeout: Duration,
    ) -> (CondResult<'a>, bool) {
        self.wait_until(guard, crate::time::deadline_in(timeout))
    }

    /// Waits until `blocked` returns false, checking it with the lock held.
    pub fn wait_while<'a>(
        &'a self,
        mut guard: ConditionGuard<'a>,
        mut blocked: impl FnMut() -> bool,
    ) -> CondResult<'a> {
        while blocked() {
            guard = self.wait(guard)?;
        }
        Ok(guard)
    }

    fn wait_until<'a>(
        &'a self,
        guard: ConditionGuard<'a>,
        deadline: Option<Instant>,
    ) -> (CondResult<'a>, bool) {
        assert!(
            std::ptr::eq(guard.cond, self),
            "ipc::Condition::wait: guard of another condition"
        );
        let s = self.state();
        let seq = s.seq.load(Ordering::SeqCst);
        s.waiters.fetch_add(1, Ordering::SeqCst);
        let notified = {
            let _count = Uncount(&s.waiters);
            drop(guard);
            wait::wait(&s.seq, seq, deadline) && s.seq.load(Ordering::Acquire) != seq
        };
        (self.relock(None), notified)
    }

    /// Wakes up to `n` waiters. Never blocks, with or without the lock held.
    pub fn notify(&self, n: u32) {
        let s = self.state();
        s.seq.fetch_add(1, Ordering::SeqCst);
        if s.waiters.load(Ordering::SeqCst) != 0 {
            wait::wake(&s.seq, n);
        }
    }

    /// Wakes one waiter, if any (std's `Condvar::notify_one`). Never blocks.
    pub fn notify_one(&self) {
        self.notify(1);
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        self.notify(u32::MAX);
    }
}

impl Drop for ConditionGuard<'_> {
    fn drop(&mut self) {
        super::unlock_or_panic(&self.cond.state().lock);
    }
}
