//! [`Mutex`]: a lock whose `lock` parks only the calling green thread.
//!
//! The lock is one atomic byte, so an uncontended lock and unlock are one compare-and-swap
//! each, like `std::sync::Mutex`. Only when there is contention does anyone touch the wait
//! queue (a FIFO of [`Waiter`]s behind a short-held std mutex):
//!
//! | `state` bits | meaning |
//! |---|---|
//! | `LOCKED` (1) | someone holds the lock |
//! | `QUEUED` (2) | the wait queue is not empty: unlock must take the slow path |
//!
//! Unlock with waiters *hands the lock over*: `LOCKED` stays set and the longest waiter is
//! notified as the new owner, so waiters are served strictly first come, first served and a
//! stream of newcomers cannot starve them.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use super::waiter::{Waiter, lock_state, unqueue};
use crate::hub::green::Wait;

const LOCKED: u8 = 1;
const QUEUED: u8 = 2;

/// A mutual-exclusion lock for green threads, shaped like `std::sync::Mutex` (without
/// poisoning). Waiting parks only the calling green thread; it works from the main context,
/// plain OS threads, and across OS threads.
///
/// ```
/// use std::rc::Rc;
/// use greenrt::sync::Mutex;
///
/// let counter = Rc::new(Mutex::new(0));
/// let handles: Vec<_> = (0..10).map(|_| {
///     let counter = counter.clone();
///     greenrt::spawn(move || {
///         let mut n = counter.lock();
///         let seen = *n;
///         greenrt::yield_now(); // others run, but cannot get in
///         *n = seen + 1;
///     })
/// }).collect();
/// greenrt::joinall(handles);
/// assert_eq!(*counter.lock(), 10);
/// ```
pub struct Mutex<T: ?Sized> {
    state: AtomicU8,
    queue: std::sync::Mutex<VecDeque<Arc<Waiter>>>,
    data: UnsafeCell<T>,
}

// SAFETY: the lock hands out access to `data` to one holder at a time, as std's Mutex does.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above: `&Mutex` only gives `T` access through a guard, one at a time.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

impl<T> Mutex<T> {
    /// A new unlocked mutex.
    pub const fn new(value: T) -> Mutex<T> {
        Mutex {
            state: AtomicU8::new(0),
            queue: std::sync::Mutex::new(VecDeque::new()),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the mutex, returning the value.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks, parking the calling green thread while another holds the lock.
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        if self.try_lock_fast() || self.lock_slow(None) {
            return MutexGuard::new(self);
        }
        unreachable!("a lock without deadline only returns once acquired")
    }

    /// Locks if nobody holds the lock right now.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.try_lock_fast().then(|| MutexGuard::new(self))
    }

    /// Locks, waiting at most `timeout`; `None` if the lock could not be had in time.
    ///
    /// ```
    /// use std::time::Duration;
    /// let m = greenrt::sync::Mutex::new(());
    /// let held = m.lock();
    /// assert!(m.lock_timeout(Duration::from_millis(5)).is_none());
    /// drop(held);
    /// assert!(m.lock_timeout(Duration::from_millis(5)).is_some());
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> Option<MutexGuard<'_, T>> {
        let got = self.try_lock_fast() || self.lock_slow(crate::time::deadline_in(timeout));
        got.then(|| MutexGuard::new(self))
    }

    /// Mutable access without locking: `&mut self` proves nobody else holds it.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    #[inline]
    fn try_lock_fast(&self) -> bool {
        self.state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Queues the caller and parks until the lock is handed over (true) or `deadline`
    /// passes (false).
    #[cold]
    fn lock_slow(&self, deadline: Option<Instant>) -> bool {
        let waiter = Waiter::for_current();
        if self.acquire_or_enqueue(&waiter) {
            return true;
        }
        let mut abandon = AbandonOnUnwind {
            mutex: self,
            waiter: &waiter,
            armed: true,
        };
        let handed_over = waiter.park(
            Wait::Sync("Mutex", self as *const Self as *const () as usize),
            deadline,
        );
        abandon.armed = false;
        handed_over || self.give_up(&waiter)
    }

    /// Under the queue lock: takes the lock if it is free, else marks QUEUED and enqueues.
    fn acquire_or_enqueue(&self, waiter: &Arc<Waiter>) -> bool {
        let mut queue = lock_state(&self.queue);
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & LOCKED == 0 {
                match self.state.compare_exchange_weak(
                    state,
                    state | LOCKED,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return true,
                    Err(now) => state = now,
                }
            } else if state & QUEUED != 0 {
                break;
            } else {
                match self.state.compare_exchange_weak(
                    state,
                    state | QUEUED,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => break,
                    Err(now) => state = now,
                }
            }
        }
        queue.push_back(waiter.clone());
        false
    }

    /// A waiter stops waiting (deadline passed, or it unwinds). Returns true if the lock was
    /// handed to it in the meantime: then it is the owner after all.
    fn give_up(&self, waiter: &Arc<Waiter>) -> bool {
        let mut queue = lock_state(&self.queue);
        if !unqueue(&mut queue, waiter) {
            return true;
        }
        if queue.is_empty() {
            self.state.fetch_and(!QUEUED, Ordering::Relaxed);
        }
        false
    }

    /// Releases the lock, handing it to the longest waiter if there is one.
    #[inline]
    fn unlock(&self) {
        if self
            .state
            .compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            self.unlock_slow();
        }
    }

    #[cold]
    fn unlock_slow(&self) {
        let mut queue = lock_state(&self.queue);
        match queue.pop_front() {
            Some(next) => {
                if queue.is_empty() {
                    self.state.store(LOCKED, Ordering::Release); // still held: by `next`
                }
                drop(queue);
                next.notify();
            }
            None => self.state.store(0, Ordering::Release),
        }
    }
}

/// If a waiting green thread unwinds (kill, timeout) it leaves the queue; if the lock was
/// handed to it meanwhile, it passes the lock on.
struct AbandonOnUnwind<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
    waiter: &'a Arc<Waiter>,
    armed: bool,
}

impl<T: ?Sized> Drop for AbandonOnUnwind<'_, T> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if self.mutex.give_up(self.waiter) {
            self.mutex.unlock(); // it was handed to us as we unwound: pass it on
        }
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.try_lock() {
            Some(guard) => f.debug_struct("Mutex").field("data", &&*guard).finish(),
            None => f.debug_struct("Mutex").field("data", &"<locked>").finish(),
        }
    }
}

/// Access to the data of a locked [`Mutex`]; unlocks when dropped. Not `Send`, like std's.
pub struct MutexGuard<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
    _not_send: PhantomData<*const ()>,
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    fn new(mutex: &'a Mutex<T>) -> MutexGuard<'a, T> {
        MutexGuard {
            mutex,
            _not_send: PhantomData,
        }
    }

    /// The mutex this guard holds (for `Condition`, which must unlock and relock it).
    pub(crate) fn mutex(&self) -> &'a Mutex<T> {
        self.mutex
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Releases a lock whose guard was forgotten (`RLock` keeps the lock across calls).
    ///
    /// # Safety
    /// The caller must own the lock: it locked it and forgot the guard.
    pub(crate) unsafe fn force_unlock(&self) {
        self.unlock();
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while this holder owns the lock.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only access through the guard.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.mutex.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
