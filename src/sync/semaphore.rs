//! [`Semaphore`] and [`BoundedSemaphore`]: counted permits, handed over first come first
//! served.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::waiter::{Waiter, lock_state, unqueue};
use crate::hub::green::Wait;

struct State {
    permits: usize,
    waiters: VecDeque<Arc<Waiter>>,
}

/// A counter of permits: `acquire` takes one, parking while there are none; `release` gives
/// one back, straight to the longest waiter if there is one (so waiters cannot be starved).
///
/// ```
/// use std::rc::Rc;
/// use greenrt::sync::Semaphore;
///
/// let room = Rc::new(Semaphore::new(2)); // two seats
/// let inside = Rc::new(std::cell::Cell::new(0));
/// let handles: Vec<_> = (0..6).map(|_| {
///     let (room, inside) = (room.clone(), inside.clone());
///     greenrt::spawn(move || {
///         let _seat = room.acquire();
///         inside.set(inside.get() + 1);
///         assert!(inside.get() <= 2);
///         greenrt::sleep(std::time::Duration::from_millis(1));
///         inside.set(inside.get() - 1);
///     })
/// }).collect();
/// greenrt::joinall(handles);
/// ```
pub struct Semaphore {
    state: std::sync::Mutex<State>,
}

/// A permit of a [`Semaphore`]; released when dropped.
#[must_use = "the permit is released as soon as it is dropped"]
pub struct Permit<'a> {
    semaphore: &'a Semaphore,
}

impl Semaphore {
    /// A semaphore with `permits` permits.
    pub const fn new(permits: usize) -> Semaphore {
        Semaphore {
            state: std::sync::Mutex::new(State {
                permits,
                waiters: VecDeque::new(),
            }),
        }
    }

    /// Takes a permit, parking while none is available.
    pub fn acquire(&self) -> Permit<'_> {
        self.acquire_deadline(None)
            .expect("no deadline: only returns with a permit")
    }

    /// Takes a permit if one is available now.
    ///
    /// ```
    /// let s = greenrt::sync::Semaphore::new(1);
    /// let first = s.try_acquire();
    /// assert!(first.is_some());
    /// assert!(s.try_acquire().is_none()); // the only permit is out
    /// drop(first); // given back
    /// assert!(s.try_acquire().is_some());
    /// ```
    pub fn try_acquire(&self) -> Option<Permit<'_>> {
        self.take_now(&mut lock_state(&self.state))
    }

    /// Takes a permit under the lock if one is free and nobody queues before us.
    ///
    /// # Invariant
    /// `waiters` is non-empty only while `permits` is 0: `release` hands a permit to the
    /// first waiter rather than counting it, and a waiter queues only under the same lock
    /// hold in which it saw no permit.
    fn take_now(&self, state: &mut State) -> Option<Permit<'_>> {
        if state.permits > 0 && state.waiters.is_empty() {
            state.permits -= 1;
            return Some(Permit { semaphore: self });
        }
        None
    }

    /// Takes a permit, waiting at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let s = greenrt::sync::Semaphore::new(1);
    /// let _held = s.acquire();
    /// assert!(s.acquire_timeout(Duration::from_millis(10)).is_none());
    /// assert_eq!(s.available(), 0); // the timed-out wait minted no permit
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<Permit<'_>> {
        self.acquire_deadline(crate::time::deadline_in(timeout))
    }

    /// Permits available right now.
    ///
    /// ```
    /// let s = greenrt::sync::Semaphore::new(3);
    /// let _one = s.acquire();
    /// assert_eq!(s.available(), 2);
    /// ```
    pub fn available(&self) -> usize {
        lock_state(&self.state).permits
    }

    /// Adds a permit (or hands it to the longest waiter). Also what dropping a `Permit` does;
    /// call it directly for a permit taken with [`Permit::forget`].
    ///
    /// ```
    /// let s = greenrt::sync::Semaphore::new(0);
    /// s.release(); // a plain Semaphore may be released above its start
    /// assert_eq!(s.available(), 1);
    /// ```
    pub fn release(&self) {
        let _ = self.release_up_to(usize::MAX);
    }

    /// Adds `n` permits at once (Python's `release(n)`): up to `n` waiters get one each, in
    /// order; the rest become free permits.
    ///
    /// ```
    /// let s = greenrt::sync::Semaphore::new(0);
    /// s.release_n(3);
    /// assert_eq!(s.available(), 3);
    /// ```
    pub fn release_n(&self, n: usize) {
        let _ = self.release_n_up_to(n, usize::MAX);
    }

    /// [`Semaphore::release`], refused if no one waits and `limit` permits are already free.
    /// One lock hold decides, so two racing releases cannot both pass the check.
    fn release_up_to(&self, limit: usize) -> Result<(), OverRelease> {
        self.release_n_up_to(1, limit)
    }

    /// Gives `n` permits: to waiters first, the rest to the free count — all or nothing:
    /// refused (nothing changes) if the free count would pass `limit`.
    fn release_n_up_to(&self, n: usize, limit: usize) -> Result<(), OverRelease> {
        let woken: Vec<_> = {
            let mut state = lock_state(&self.state);
            let to_waiters = n.min(state.waiters.len());
            let to_free = n - to_waiters;
            if to_free > 0 && state.permits.saturating_add(to_free) > limit {
                return Err(OverRelease);
            }
            state.permits += to_free;
            state.waiters.drain(..to_waiters).collect()
        };
        for waiter in woken {
            waiter.notify(); // each permit goes to its waiter directly: exactly one wakes each
        }
        Ok(())
    }

    fn acquire_deadline(&self, deadline: Option<Instant>) -> Option<Permit<'_>> {
        if let Some(permit) = self.try_acquire() {
            return Some(permit);
        }
        let waiter = Waiter::for_current();
        {
            // Look again and queue in one lock hold: a release between a failed look and the
            // queueing would count a permit no one is queued to receive, and this waiter
            // would then sleep beside a free permit.
            let mut state = lock_state(&self.state);
            if let Some(permit) = self.take_now(&mut state) {
                return Some(permit);
            }
            state.waiters.push_back(waiter.clone());
        }
        let mut give_up = GiveUp {
            semaphore: self,
            waiter: &waiter,
            armed: true,
        };
        let handed = waiter.park(
            Wait::Sync("Semaphore", self as *const Self as usize),
            deadline,
        );
        give_up.armed = false;
        // Timed out, unless a permit was handed over in the meantime (then we hold it). The
        // permit is made only when we hold one: a `Permit` dropped here would release one
        // we never had.
        (handed || !self.leave_queue(&waiter)).then(|| Permit { semaphore: self })
    }

    /// Leaves the queue; false if a permit was handed over meanwhile (then we hold it).
    fn leave_queue(&self, waiter: &Arc<Waiter>) -> bool {
        unqueue(&mut lock_state(&self.state).waiters, waiter)
    }
}

/// A waiter that unwinds leaves the queue, and passes on a permit handed to it meanwhile.
struct GiveUp<'a> {
    semaphore: &'a Semaphore,
    waiter: &'a Arc<Waiter>,
    armed: bool,
}

impl Drop for GiveUp<'_> {
    fn drop(&mut self) {
        if self.armed && !self.semaphore.leave_queue(self.waiter) {
            self.semaphore.release();
        }
    }
}

impl Permit<'_> {
    /// Keeps the permit taken without releasing it (release later with
    /// [`Semaphore::release`]).
    ///
    /// ```
    /// let s = greenrt::sync::Semaphore::new(1);
    /// s.acquire().forget();
    /// assert_eq!(s.available(), 0); // still taken after the permit is gone
    /// s.release();
    /// assert_eq!(s.available(), 1);
    /// ```
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.semaphore.release();
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock_state(&self.state);
        f.debug_struct("Semaphore")
            .field("permits", &state.permits)
            .field("waiters", &state.waiters.len())
            .finish()
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Permit")
    }
}

/// The error of releasing a [`BoundedSemaphore`] above its initial value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverRelease;

impl fmt::Display for OverRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("semaphore released too many times")
    }
}

impl std::error::Error for OverRelease {}

/// A [`Semaphore`] that refuses to be released above its initial number of permits (an
/// over-release is a bug: Python raises `ValueError`; we return [`OverRelease`]).
///
/// ```
/// let s = greenrt::sync::BoundedSemaphore::new(1);
/// s.acquire().forget();
/// assert_eq!(s.release(), Ok(()));
/// assert_eq!(s.release(), Err(greenrt::sync::OverRelease));
/// ```
#[derive(Debug)]
pub struct BoundedSemaphore {
    inner: Semaphore,
    initial: usize,
}

impl BoundedSemaphore {
    /// A bounded semaphore with `permits` permits, which is also its upper bound.
    pub const fn new(permits: usize) -> BoundedSemaphore {
        BoundedSemaphore {
            inner: Semaphore::new(permits),
            initial: permits,
        }
    }

    /// See [`Semaphore::acquire`].
    pub fn acquire(&self) -> Permit<'_> {
        self.inner.acquire()
    }

    /// See [`Semaphore::try_acquire`].
    pub fn try_acquire(&self) -> Option<Permit<'_>> {
        self.inner.try_acquire()
    }

    /// See [`Semaphore::acquire_timeout`].
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<Permit<'_>> {
        self.inner.acquire_timeout(timeout)
    }

    /// See [`Semaphore::available`].
    pub fn available(&self) -> usize {
        self.inner.available()
    }

    /// Gives a permit back; `Err(OverRelease)` (and nothing changes) if that would exceed
    /// the initial number.
    pub fn release(&self) -> Result<(), OverRelease> {
        self.inner.release_up_to(self.initial)
    }

    /// Gives `n` permits back at once; `Err(OverRelease)` (and nothing changes) if that
    /// would exceed the initial number (Python's `BoundedSemaphore.release(n)`).
    ///
    /// ```
    /// use greenrt::sync::{BoundedSemaphore, OverRelease};
    /// let s = BoundedSemaphore::new(2);
    /// s.acquire().forget();
    /// assert_eq!(s.release_n(2), Err(OverRelease)); // would make 3 of 2
    /// assert_eq!(s.available(), 1); // and nothing changed
    /// assert_eq!(s.release_n(1), Ok(()));
    /// ```
    pub fn release_n(&self, n: usize) -> Result<(), OverRelease> {
        self.inner.release_n_up_to(n, self.initial)
    }
}
