//! [`Lock`] and [`RLock`]: Python's data-less locks.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use super::{Mutex, MutexGuard};
use crate::hub::with_hub;

/// A data-less lock (Python's `threading.Lock`): `acquire` returns a guard that releases it.
///
/// ```
/// let lock = greenrt::sync::Lock::new();
/// let held = lock.acquire();
/// assert!(lock.locked());
/// drop(held);
/// assert!(!lock.locked());
/// ```
#[derive(Debug, Default)]
pub struct Lock {
    inner: Mutex<()>,
}

impl Lock {
    /// A new, released lock.
    pub const fn new() -> Lock {
        Lock {
            inner: Mutex::new(()),
        }
    }

    /// Acquires, parking the calling green thread while another holds it.
    pub fn acquire(&self) -> MutexGuard<'_, ()> {
        self.inner.lock()
    }

    /// Acquires if free right now.
    pub fn try_acquire(&self) -> Option<MutexGuard<'_, ()>> {
        self.inner.try_lock()
    }

    /// Acquires, waiting at most `timeout`.
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<MutexGuard<'_, ()>> {
        self.inner.lock_timeout(timeout)
    }

    /// Whether someone holds it now.
    pub fn locked(&self) -> bool {
        self.inner.try_lock().is_none()
    }
}

/// The error of releasing an [`RLock`] the caller does not hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotOwner;

impl fmt::Display for NotOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot release an RLock held by another green thread (or not held)")
    }
}

impl std::error::Error for NotOwner {}

/// A reentrant lock (Python's `threading.RLock`): the green thread that holds it may acquire
/// it again; it is free once released as many times as acquired. Releasing it from a green
/// thread that does not hold it is an error ([`NotOwner`]).
///
/// ```
/// let r = greenrt::sync::RLock::new();
/// r.acquire();
/// r.acquire(); // again, same green thread: no deadlock
/// assert_eq!(r.count(), 2);
/// r.release().unwrap();
/// r.release().unwrap();
/// assert_eq!(r.release(), Err(greenrt::sync::NotOwner));
/// ```
#[derive(Debug, Default)]
pub struct RLock {
    inner: Mutex<()>,
    /// Green thread id of the owner; 0 when free. Written only by the owner.
    owner: AtomicU64,
    /// How many times the owner has acquired it.
    count: AtomicUsize,
}

impl RLock {
    /// A new, released reentrant lock.
    pub const fn new() -> RLock {
        RLock {
            inner: Mutex::new(()),
            owner: AtomicU64::new(0),
            count: AtomicUsize::new(0),
        }
    }

    /// Acquires (again, if the caller already holds it).
    pub fn acquire(&self) {
        let me = current_id();
        if self.owner.load(Ordering::Relaxed) == me {
            self.count.fetch_add(1, Ordering::Relaxed);
            return;
        }
        std::mem::forget(self.inner.lock());
        self.owner.store(me, Ordering::Relaxed);
        self.count.store(1, Ordering::Relaxed);
    }

    /// Releases one acquisition; the lock is free after the last.
    pub fn release(&self) -> Result<(), NotOwner> {
        if self.owner.load(Ordering::Relaxed) != current_id() {
            return Err(NotOwner);
        }
        if self.count.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.owner.store(0, Ordering::Relaxed);
            // SAFETY: we are the owner: we locked `inner` and forgot its guard in `acquire`.
            unsafe { self.inner.force_unlock() };
        }
        Ok(())
    }

    /// How many times the current owner holds it (0 when free).
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Acquires and returns a guard that releases once when dropped.
    pub fn lock(&self) -> RLockGuard<'_> {
        self.acquire();
        RLockGuard { rlock: self }
    }
}

/// Releases one acquisition of an [`RLock`] when dropped.
#[derive(Debug)]
pub struct RLockGuard<'a> {
    rlock: &'a RLock,
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        self.rlock
            .release()
            .expect("a guard is dropped by the green thread that acquired it");
    }
}

/// The id of the running green thread (or main context), never 0.
fn current_id() -> u64 {
    with_hub(|hub| hub.with_current(|me| me.id))
}
