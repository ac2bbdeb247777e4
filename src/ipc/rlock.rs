//! `ipc::RLock`: a re-entrant lock shared by processes (multiprocessing.RLock).
//!
//! | word    | meaning                                                                 |
//! |---------|-------------------------------------------------------------------------|
//! | `lock`  | the robust lock word (holder pid, see `raw_lock`)                        |
//! | `owner` | which thread owns it: the pid in bits 40.., and in bits 0..40 a green    |
//! |         | thread's id or a per-OS-thread token (0 = none); written by the holder  |
//! | `count` | how many times the owner has taken it                                    |
//!
//! Only the owner ever writes `owner` and `count`, so "do I own it?" is exact: the holder pid
//! is mine *and* `owner` is my token (no one else would write my token). The pid inside the
//! token keeps a dead holder's leftover `owner` from matching a thread of the process that
//! takes the lock over, before it writes its own.

use std::io;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::LockError;
use super::raw_lock::{Acquired, RawLock};
use super::region::{Kind, Region, SharedLayout, invalid};
use crate::sys::process::cached_pid;

#[repr(C)]
struct RLockState {
    lock: RawLock,
    count: AtomicU32,
    owner: AtomicU64,
}

// SAFETY: repr(C), atomics only.
unsafe impl SharedLayout for RLockState {}

/// A re-entrant process-shared lock: the owning (green) thread may take it again.
///
/// ```
/// let rlock = greenrt::ipc::RLock::new()?;
/// let outer = rlock.lock().unwrap();
/// let inner = rlock.lock().unwrap(); // same owner: no deadlock
/// assert_eq!(rlock.depth(), 2);
/// drop(inner);
/// drop(outer);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct RLock {
    region: Arc<Region>,
}

/// Holds one level of an [`RLock`].
#[must_use = "the lock is released when the guard is dropped"]
#[derive(Debug)]
pub struct RLockGuard<'a> {
    rlock: &'a RLock,
    _not_send: PhantomData<*const ()>,
}

type RLockResult<'a> = Result<RLockGuard<'a>, LockError<RLockGuard<'a>>>;

impl RLock {
    /// A new re-entrant lock in anonymous shared memory (inherited across `fork`).
    pub fn new() -> io::Result<RLock> {
        Ok(RLock {
            region: Arc::new(Region::anonymous(
                Kind::RLock,
                size_of::<RLockState>(),
                |_| {},
            )?),
        })
    }

    /// Creates the named re-entrant lock `name`.
    pub fn create(name: &str) -> io::Result<RLock> {
        Ok(RLock {
            region: Arc::new(Region::create(
                name,
                Kind::RLock,
                size_of::<RLockState>(),
                |_| {},
            )?),
        })
    }

    /// Opens the named re-entrant lock `name`.
    pub fn open(name: &str) -> io::Result<RLock> {
        Ok(RLock {
            region: Arc::new(Region::open(name, Kind::RLock, size_of::<RLockState>())?),
        })
    }

    fn state(&self) -> &RLockState {
        self.region.body()
    }

    fn owned_by_caller(&self) -> bool {
        let s = self.state();
        s.lock.holder() == Some(cached_pid()) && s.owner.load(Ordering::Relaxed) == owner_token()
    }

    /// Takes the lock, or one more level of it if the caller owns it.
    pub fn lock(&self) -> RLockResult<'_> {
        self.lock_until(None)
    }

    /// Like [`lock`](RLock::lock), giving up after `timeout`.
    pub fn lock_timeout(&self, timeout: Duration) -> RLockResult<'_> {
        self.lock_until(crate::time::deadline_in(timeout))
    }

    fn lock_until(&self, deadline: Option<Instant>) -> RLockResult<'_> {
        let s = self.state();
        let guard = RLockGuard {
            rlock: self,
            _not_send: PhantomData,
        };
        if self.owned_by_caller() {
            let count = s.count.load(Ordering::Relaxed);
            if count == u32::MAX {
                std::mem::forget(guard);
                return Err(LockError::Corrupt(invalid(
                    "ipc::RLock taken 2^32 - 1 times",
                )));
            }
            s.count.store(count + 1, Ordering::Relaxed);
            return Ok(guard);
        }
        let how = match s.lock.lock(deadline) {
            Ok(Some(how)) => how,
            Ok(None) => {
                std::mem::forget(guard);
                return Err(LockError::TimedOut);
            }
            Err(e) => {
                std::mem::forget(guard);
                return Err(LockError::Corrupt(e));
            }
        };
        s.owner.store(owner_token(), Ordering::Relaxed);
        s.count.store(1, Ordering::Relaxed);
        match how {
            Acquired::Clean => Ok(guard),
            Acquired::OwnerDied => Err(LockError::OwnerDied(guard)),
        }
    }

    /// How many levels the caller holds (0 if it does not own the lock).
    pub fn depth(&self) -> u32 {
        if self.owned_by_caller() {
            self.state().count.load(Ordering::Relaxed)
        } else {
            0
        }
    }
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        let s = self.rlock.state();
        let count = s.count.load(Ordering::Relaxed);
        if count > 1 {
            s.count.store(count - 1, Ordering::Relaxed);
            return;
        }
        s.count.store(0, Ordering::Relaxed);
        s.owner.store(0, Ordering::Relaxed);
        super::unlock_or_panic(&s.lock);
    }
}

/// The caller as an `owner` value: pid in bits 40.., thread token below.
fn owner_token() -> u64 {
    (u64::from(cached_pid()) << 40) | (crate::hub::caller_token() & ((1 << 40) - 1))
}
